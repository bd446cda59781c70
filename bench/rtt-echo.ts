// The far side of the rtt benchmark: one process that echoes over plain
// length-prefixed TCP, over dsm's transport and (given certificates) over dsm's
// transport under TLS, each on a listener of its own. One process for every
// kind, so that each kind's round trips meet the same scheduling: on a 2-vCPU
// machine a round trip between two processes on one vCPU took ~25 µs and one
// between vCPUs ~60–80 µs (the wake-up of a halted vCPU), and two echo
// processes placed apart by the scheduler made the ratio of dsm to raw read
// anywhere from 0.6 to 3 with no change in the code (session 23).

import net from 'node:net';
import { handshake } from '../src/transport/connection.js';
import { connectionEventOf, createStreamServer, loadTls } from '../src/transport/tls.js';
import { rttHello, rttSecret } from './rtt-config.js';

type Mode = 'raw' | 'dsm' | 'tls';

function listen(mode: Mode): Promise<number> {
  // 'tls': dsm's transport under mutual TLS, certificates from DSM_BENCH_TLS_{CERT,KEY,CA}.
  const tlsConfig = mode === 'tls' ? loadTls({ cert: process.env.DSM_BENCH_TLS_CERT, key: process.env.DSM_BENCH_TLS_KEY, ca: process.env.DSM_BENCH_TLS_CA }) : undefined;
  const server = createStreamServer(tlsConfig);
  server.on(connectionEventOf(tlsConfig), (socket: net.Socket) => {
    socket.setNoDelay(true);
    if (mode === 'raw') {
      // Raw echo: [u32 length][bytes], sent back as received (a 'data' listener: dsm's echo answers from one too).
      socket.on('data', (chunk: Buffer) => socket.write(chunk));
      return;
    }
    handshake(socket, { hello: { ...rttHello, nodeId: 1 }, secret: rttSecret, role: 'accept', peerLabel: 'bench client' }).then((connection) => {
      connection.on('message', (message) => connection.send(message));
    }, (error: Error) => {
      process.stderr.write(`rtt echo: ${error.message}\n`);
      process.exit(1);
    });
  });
  return new Promise((resolve) => server.listen(0, '127.0.0.1', () => resolve((server.address() as net.AddressInfo).port)));
}

// argv[2]: the kinds to serve, comma-separated; one line out: their ports, in that order.
const modes = (process.argv[2] ?? '').split(',') as Mode[];
const ports: number[] = [];
for (const mode of modes) ports.push(await listen(mode));
process.stdout.write(`${ports.join(' ')}\n`);
process.stdin.on('end', () => process.exit(0));
process.stdin.resume();
