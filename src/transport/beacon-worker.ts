// The heartbeat thread's code (see beacon.ts): sends an authenticated UDP
// datagram to every peer each interval and records when each peer's last
// valid one arrived, whatever the node's main thread is doing. It is plain
// JavaScript run with `eval: true`, so it needs no loader (dsm's TypeScript
// tests run under tsx, which worker threads do not inherit) and imports node
// builtins only. workerData: BeaconWorkerData (beacon-format.ts).

export const beaconThreadSource = `
'use strict';
const { createHmac, timingSafeEqual } = require('node:crypto');
const dgram = require('node:dgram');
const { parentPort, workerData: data } = require('node:worker_threads');
const { magic, version, signedBytes, macBytes, bytes } = data.format;
const heard = new Int32Array(data.heard);
const key = Buffer.from(data.key);
const lastSeq = new Map();
let peers = new Map(data.peers);
let seq = BigInt(Date.now()) * 1000n;
let timer = null;
const socket = dgram.createSocket({ type: data.host.includes(':') ? 'udp6' : 'udp4' });
const mac = (part) => createHmac('sha256', key).update(part).digest();

function beat() {
  for (const [nodeId, address] of peers) {
    seq += 1n;
    const datagram = Buffer.alloc(bytes);
    datagram.write(magic, 0, 'latin1');
    datagram.writeUInt8(version, 4);
    datagram.writeUInt16BE(data.nodeId, 6);
    datagram.writeUInt16BE(nodeId, 8);
    datagram.writeBigUInt64BE(seq, 10);
    mac(datagram.subarray(0, signedBytes)).copy(datagram, signedBytes);
    // A send error (no route during a partition) is the silence the detector is for.
    socket.send(datagram, address.port, address.host, () => {});
  }
}

socket.on('message', (datagram) => {
  // Anyone may send here: drop silently whatever is not a fresh beat from a peer holding the key.
  if (datagram.length !== bytes || datagram.toString('latin1', 0, 4) !== magic || datagram.readUInt8(4) !== version) return;
  const from = datagram.readUInt16BE(6);
  if (datagram.readUInt16BE(8) !== data.nodeId || !peers.has(from) || from >= heard.length) return;
  if (!timingSafeEqual(mac(datagram.subarray(0, signedBytes)), datagram.subarray(signedBytes, signedBytes + macBytes))) return;
  const beatSeq = datagram.readBigUInt64BE(10);
  if (beatSeq <= (lastSeq.get(from) ?? 0n)) return;
  lastSeq.set(from, beatSeq);
  Atomics.store(heard, from, Math.max(1, Date.now() - data.baseMs));
});
socket.on('error', (error) => parentPort.postMessage({ type: 'error', message: error.message }));

parentPort.on('message', (message) => {
  if (message.type === 'peers') peers = new Map(message.peers);
  else {
    if (timer !== null) clearInterval(timer);
    socket.close();
    parentPort.close();
  }
});

socket.bind({ address: data.host, port: data.port, exclusive: true }, () => {
  parentPort.postMessage({ type: 'bound' });
  beat();
  timer = setInterval(beat, data.intervalMs);
});
`;
