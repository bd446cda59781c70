// Run under `dsm run --nodes 2`: the main thread (node 0) writes pages; a
// worker on node 1 then reads one byte of each, timing each first read: a
// read fault whose page must come from its home (or, for pages homed on node
// 1, be brought up to date there). Prints one JSON line.
import { Worker, isMainThread, workerData, parentPort } from 'node:worker_threads';

const pageBytes = 4096;
if (isMainThread) {
  const pageCount = Number(process.argv[2] ?? 2000);
  const view = new Uint8Array(new SharedArrayBuffer(pageCount * pageBytes));
  for (let page = 0; page < pageCount; page += 1) view[page * pageBytes] = (page % 250) + 1;
  const worker = new Worker(new URL(import.meta.url), { workerData: { view, pageCount }, dsmNode: 1 });
  worker.on('message', (samples) => {
    const sorted = Float64Array.from(samples).sort();
    const at = (fraction) => Math.round(sorted[Math.min(sorted.length - 1, Math.floor(fraction * sorted.length))] * 100) / 100;
    const half = (parity) => { const s = Float64Array.from(samples.filter((_, i) => i % 2 === parity)).sort(); return Math.round(s[Math.floor(s.length / 2)] * 100) / 100; };
    console.log(JSON.stringify({ pageCount, pageFetchUsP50: at(0.5), pageFetchUsP99: at(0.99), homeRemoteUsP50: half(0), homeLocalUsP50: half(1) }));
  });
} else {
  const { view, pageCount } = workerData;
  const samples = new Float64Array(pageCount);
  let wrong = 0;
  for (let page = 0; page < pageCount; page += 1) {
    const start = process.hrtime.bigint();
    const value = view[page * pageBytes];
    samples[page] = Number(process.hrtime.bigint() - start) / 1000;
    if (value !== (page % 250) + 1) wrong += 1;
  }
  if (wrong > 0) throw new Error(`${wrong} pages read stale values`);
  parentPort.postMessage(Array.from(samples));
}
