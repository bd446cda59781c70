// The heartbeat thread (see beacon.ts): sends an authenticated UDP datagram to
// every peer each interval and records when each peer's last valid one
// arrived, whatever the node's main thread is doing. Imports node builtins
// only (it runs beside the manager, not inside dsm's runtime).

import { createHmac, timingSafeEqual } from 'node:crypto';
import dgram from 'node:dgram';
import { parentPort, workerData } from 'node:worker_threads';
import { type BeaconWorkerData, beatBytes, beatMacBytes, beatMagic, beatSignedBytes, beatVersion } from './beacon-format.js';

const data = workerData as BeaconWorkerData;
const heard = new Int32Array(data.heard);
const key = Buffer.from(data.key);
const lastSeq = new Map<number, bigint>();
let peers = new Map<number, { host: string; port: number }>(data.peers);
let seq = BigInt(Date.now()) * 1000n;

const socket = dgram.createSocket({ type: data.host.includes(':') ? 'udp6' : 'udp4' });

function mac(bytes: Buffer): Buffer {
  return createHmac('sha256', key).update(bytes).digest();
}

function beat(): void {
  for (const [nodeId, address] of peers) {
    seq += 1n;
    const datagram = Buffer.alloc(beatBytes);
    datagram.write(beatMagic, 0, 'latin1');
    datagram.writeUInt8(beatVersion, 4);
    datagram.writeUInt16BE(data.nodeId, 6);
    datagram.writeUInt16BE(nodeId, 8);
    datagram.writeBigUInt64BE(seq, 10);
    mac(datagram.subarray(0, beatSignedBytes)).copy(datagram, beatSignedBytes);
    // A send error (no route during a partition) is the silence the detector is for.
    socket.send(datagram, address.port, address.host, () => {});
  }
}

socket.on('message', (datagram: Buffer) => {
  // Anyone may send here: drop silently whatever is not a fresh beat from a peer with the key.
  if (datagram.length !== beatBytes || datagram.toString('latin1', 0, 4) !== beatMagic || datagram.readUInt8(4) !== beatVersion) return;
  const from = datagram.readUInt16BE(6);
  if (datagram.readUInt16BE(8) !== data.nodeId || !peers.has(from) || from >= heard.length) return;
  const expected = mac(datagram.subarray(0, beatSignedBytes));
  if (!timingSafeEqual(expected, datagram.subarray(beatSignedBytes, beatSignedBytes + beatMacBytes))) return;
  const beatSeq = datagram.readBigUInt64BE(10);
  if (beatSeq <= (lastSeq.get(from) ?? 0n)) return;
  lastSeq.set(from, beatSeq);
  Atomics.store(heard, from, Math.max(1, Date.now() - data.baseMs));
});
socket.on('error', (error: Error) => parentPort?.postMessage({ type: 'error', message: error.message }));

parentPort?.on('message', (message: { type: 'peers'; peers: Array<[number, { host: string; port: number }]> } | { type: 'close' }) => {
  if (message.type === 'peers') peers = new Map(message.peers);
  else {
    clearInterval(timer);
    socket.close();
    parentPort?.close();
  }
});

let timer: NodeJS.Timeout;
socket.bind({ address: data.host, port: data.port, exclusive: true }, () => {
  parentPort?.postMessage({ type: 'bound' });
  beat();
  timer = setInterval(beat, data.intervalMs);
});
