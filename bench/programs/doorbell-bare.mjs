// A bare doorbell round trip: a ChannelServer on this main thread answers a
// worker's ChannelClient calls at once (no dsm run, no engine), against a bare
// futex ping-pong in the same process. Uses dist/. One JSON line.
import { MessageChannel, Worker, isMainThread, parentPort, workerData } from 'node:worker_threads';
import { fileURLToPath } from 'node:url';
import { join, dirname } from 'node:path';

const root = join(dirname(fileURLToPath(import.meta.url)), '..', '..');
const iterations = Number(process.argv[2] ?? 2000);
const median = (samples) => Math.round(Float64Array.from(samples).sort()[Math.floor(samples.length / 2)] * 100) / 100;

if (isMainThread) {
  const { ChannelServer } = await import(join(root, 'dist', 'src', 'channel', 'server.js'));
  const server = new ChannelServer(() => 7);
  const { port1, port2 } = new MessageChannel();
  server.attach(port1);
  const url = new URL(import.meta.url);
  const run = (data, transferList = []) => new Promise((resolve, reject) => {
    const worker = new Worker(url, { workerData: data, transferList, argv: [String(iterations)] });
    worker.on('message', resolve);
    worker.on('error', reject);
  });
  const doorbell = await run({ role: 'doorbell', port: port2 }, [port2]);
  const words = new Int32Array(new SharedArrayBuffer(16));
  const [futex] = await Promise.all([run({ role: 'ping', words }), run({ role: 'pong', words })]);
  console.log(JSON.stringify({ iterations, doorbellUsP50: median(doorbell), futexUsP50: median(futex), ratio: Math.round(median(doorbell) / median(futex) * 100) / 100 }));
} else {
  const { role } = workerData;
  const rounds = Math.min(100, iterations) + iterations;
  const samples = [];
  if (role === 'doorbell') {
    const { ChannelClient } = await import(join(root, 'dist', 'src', 'channel', 'client.js'));
    const channel = new ChannelClient(workerData.port, 1);
    for (let i = -Math.min(100, iterations); i < iterations; i += 1) {
      const begin = performance.now();
      channel.call({ op: 'thread-id' });
      if (i >= 0) samples.push((performance.now() - begin) * 1000);
    }
    parentPort.postMessage(samples);
  } else if (role === 'pong') {
    const { words } = workerData;
    for (let i = 0; i < rounds; i += 1) {
      while (Atomics.load(words, 0) === 0) Atomics.wait(words, 0, 0);
      Atomics.store(words, 0, 0);
      Atomics.notify(words, 0);
    }
    parentPort.postMessage(null);
  } else {
    const { words } = workerData;
    for (let i = -Math.min(100, iterations); i < iterations; i += 1) {
      const begin = performance.now();
      Atomics.store(words, 0, 1);
      Atomics.notify(words, 0);
      while (Atomics.load(words, 0) === 1) Atomics.wait(words, 0, 1);
      if (i >= 0) samples.push((performance.now() - begin) * 1000);
    }
    parentPort.postMessage(samples);
  }
}
