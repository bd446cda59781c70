// Run under `dsm run --nodes 2 --placement block`: the main thread (node 0)
// writes pages it allocated, so node 0 is their home; a worker on node 1 then
// reads one byte of each, timing each first read: a read fault served by the
// remote home. Run with DSM_READAHEAD=0 (bench rtt does), so that read-ahead
// does not hide the fetches; pages are read in descending order, so that the
// pages after a faulting one are valid already (no read-ahead either way
// before read-ahead followed scans going down); the program checks that
// every read was a fault (one fetch per page).
// Prints one JSON line. With a second argument `hops`, the line also holds,
// per page, when the reading thread started its read and when it had the
// value (this machine's epoch time in microseconds, as dsm's trace hops).
import { Worker, isMainThread, workerData, parentPort } from 'node:worker_threads';

const pageBytes = 4096;
if (isMainThread) {
  const pageCount = Number(process.argv[2] ?? 2000);
  const hops = process.argv[3] === 'hops';
  const view = new Uint8Array(new SharedArrayBuffer(pageCount * pageBytes));
  for (let page = 0; page < pageCount; page += 1) view[page * pageBytes] = (page % 250) + 1;
  const worker = new Worker(new URL(import.meta.url), { workerData: { view, pageCount, hops }, dsmNode: 1 });
  worker.on('message', ({ samples, starts, ends }) => {
    const sorted = Float64Array.from(samples).sort();
    const at = (fraction) => Math.round(sorted[Math.min(sorted.length - 1, Math.floor(fraction * sorted.length))] * 100) / 100;
    const q=[0.1,0.25,0.5,0.75,0.9,0.95,0.98,0.99,0.995,0.999].map(at); console.error("Q", JSON.stringify(q), "sum ms", Math.round(samples.reduce((a,b)=>a+b,0)/1000), "over1ms", samples.filter(s=>s>1000).length); const figures = { pageCount, pageFetchUsP50: at(0.5), pageFetchUsP99: at(0.99), pageFetchUsP10: at(0.1) };
    console.log(JSON.stringify(hops ? { ...figures, starts, ends } : figures));
  });
} else {
  const { view, pageCount, hops } = workerData;
  const samples = new Float64Array(pageCount);
  const starts = hops ? new Array(pageCount) : null;
  const ends = hops ? new Array(pageCount) : null;
  let wrong = 0;
  for (let page = pageCount - 1; page >= 0; page -= 1) {
    const startUs = hops ? performance.timeOrigin * 1000 + performance.now() * 1000 : 0;
    const start = process.hrtime.bigint();
    const value = view[page * pageBytes];
    samples[page] = Number(process.hrtime.bigint() - start) / 1000;
    if (hops) {
      starts[page] = startUs;
      ends[page] = performance.timeOrigin * 1000 + performance.now() * 1000;
    }
    if (value !== (page % 250) + 1) wrong += 1;
  }
  if (wrong > 0) throw new Error(`${wrong} pages read stale values`);
  parentPort.postMessage({ samples: Array.from(samples), starts, ends });
}
