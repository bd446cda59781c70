// The heartbeat datagram of beacon.ts (50 bytes, big-endian):
//   [4 magic 'DSMB'][u8 version][u8 0][u16 from node][u16 to node][u64 sequence][32 HMAC-SHA256 of the first 18 bytes]
// The key is derived from the cluster's secret and id (beaconKey), so only a
// node of this cluster can make a beat; `to` stops a beat being reflected to
// another node, the sequence (strictly increasing per sender) stops replays.

import { createHmac } from 'node:crypto';

export const beatMagic = 'DSMB';
export const beatVersion = 1;
export const beatSignedBytes = 18;
export const beatMacBytes = 32;
export const beatBytes = beatSignedBytes + beatMacBytes;

export interface BeaconWorkerData {
  nodeId: number;
  host: string;
  port: number;
  intervalMs: number;
  key: Uint8Array;
  /** Int32 per node id: ms after baseMs when that peer's last valid beat arrived (0: never). */
  heard: SharedArrayBuffer;
  baseMs: number;
  peers: Array<[number, { host: string; port: number }]>;
  /** The datagram's layout (the thread's code is plain JavaScript: beacon-worker.ts). */
  format: { magic: string; version: number; signedBytes: number; macBytes: number; bytes: number };
}

/** The beat key: never the secret itself (the heartbeat thread holds only this). */
export function beaconKey(secret: string, clusterId: string): Buffer {
  return createHmac('sha256', secret).update(`dsm heartbeat key\0${clusterId}`).digest();
}
