// The far process of the two-process transport test: node 1 dials node 0 at
// the given port, answers each ping with a pong (payload bytes plus one), and
// exits 0 on 'bye'.

import { connectPeer, wireVersion } from '../../src/transport/index.js';

const port = Number(process.argv[2]);
const connection = await connectPeer({
  host: '127.0.0.1', port, secret: 'two-processes',
  hello: { clusterId: 'mesh', dsmVersion: '0.1.0', wireVersion, coherence: 'hlrc', pageBytes: 4096, regionBytes: 1 << 30, nodeId: 1 },
});
connection.on('message', (message) => {
  if (message.type === 'bye') {
    connection.close();
    process.exit(0);
  }
  connection.send({ type: 'pong', i: message.i, pid: process.pid, payload: message.payload!.map((byte: number) => byte + 1) });
});
connection.on('error', (error) => {
  process.stderr.write(`transport peer: ${error.message}\n`);
  process.exit(1);
});
setTimeout(() => process.exit(2), 15000).unref();
