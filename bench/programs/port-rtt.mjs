// A MessagePort's round trip, one JSON line (docs/EVALUATION.md, "Session 11:
// ports that cross nodes"): main pings a worker through one end of a
// MessageChannel, the worker answers on it. Under dsm with 2 or more nodes the
// worker runs on node 1 (dsmNode; plain node ignores it) and the port is
// relayed (src/threads/port-relay.ts); under plain node, or `--nodes 1`, it is
// Node's own. Also, for reference, the round trip of worker.postMessage /
// parentPort.postMessage to the same worker. p50 and p90 in microseconds.
import { MessageChannel, Worker, isMainThread, parentPort } from 'node:worker_threads';

const warmUp = 200;
const rounds = Number(process.env.PORT_RTT_ROUNDS ?? 2000);
/** PORT_RTT_PORT=0: the worker.postMessage round trip only (a tree before the relay, for an A/B of that path). */
const withPort = process.env.PORT_RTT_PORT !== '0';

function percentile(sorted, fraction) {
  return sorted[Math.min(sorted.length - 1, Math.floor(sorted.length * fraction))];
}

async function roundTrips(post, once) {
  const times = [];
  for (let round = 0; round < warmUp + rounds; round += 1) {
    const start = process.hrtime.bigint();
    const answer = once();
    post(round);
    await answer;
    if (round >= warmUp) times.push(Number(process.hrtime.bigint() - start) / 1000);
  }
  times.sort((a, b) => a - b);
  return { p50: Math.round(percentile(times, 0.5)), p90: Math.round(percentile(times, 0.9)) };
}

if (isMainThread) {
  const nodeCount = Number(process.env.DSM_NODE_COUNT ?? 1);
  const worker = new Worker(new URL(import.meta.url), { dsmNode: nodeCount > 1 ? 1 : 0 });
  const { port1, port2 } = new MessageChannel();
  worker.postMessage(withPort ? { port: port2 } : {}, withPort ? [port2] : []);
  const port = withPort
    ? await roundTrips((round) => port1.postMessage(round), () => new Promise((resolve) => port1.once('message', resolve)))
    : { p50: null, p90: null };
  const parent = await roundTrips((round) => worker.postMessage(round), () => new Promise((resolve) => worker.once('message', resolve)));
  port1.close();
  await worker.terminate();
  console.log(JSON.stringify({ nodes: nodeCount, rounds, portRttUsP50: port.p50, portRttUsP90: port.p90, postRttUsP50: parent.p50, postRttUsP90: parent.p90 }));
} else {
  parentPort.once('message', ({ port }) => {
    port?.on('message', (value) => port.postMessage(value));
    parentPort.on('message', (value) => parentPort.postMessage(value));
  });
}
