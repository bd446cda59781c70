// The far side of the rtt benchmark: a separate process that echoes, once
// over plain length-prefixed TCP and once over dsm's transport.

import net from 'node:net';
import { handshake } from '../src/transport/connection.js';
import { connectionEventOf, createStreamServer, loadTls } from '../src/transport/tls.js';
import { rttHello, rttSecret } from './rtt-config.js';

const mode = process.argv[2];
// 'tls': dsm's transport under mutual TLS, certificates from DSM_BENCH_TLS_{CERT,KEY,CA}.
const tlsConfig = mode === 'tls' ? loadTls({ cert: process.env.DSM_BENCH_TLS_CERT, key: process.env.DSM_BENCH_TLS_KEY, ca: process.env.DSM_BENCH_TLS_CA }) : undefined;
const server = createStreamServer(tlsConfig);
server.on(connectionEventOf(tlsConfig), (socket: net.Socket) => {
  socket.setNoDelay(true);
  if (mode === 'raw') {
    // Raw echo: [u32 length][bytes], sent back as received.
    socket.pipe(socket);
    return;
  }
  handshake(socket, { hello: { ...rttHello, nodeId: 1 }, secret: rttSecret, role: 'accept', peerLabel: 'bench client' }).then((connection) => {
    connection.on('message', (message) => connection.send(message));
  }, (error: Error) => {
    process.stderr.write(`rtt echo: ${error.message}\n`);
    process.exit(1);
  });
});
server.listen(0, '127.0.0.1', () => {
  process.stdout.write(`${(server.address() as net.AddressInfo).port}\n`);
});
process.stdin.on('end', () => process.exit(0));
process.stdin.resume();
