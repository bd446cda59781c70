// The native flush alone (session 14, docs/EVALUATION.md "Session 14: QuickSort
// on 2 nodes"): 2,048 pages of random ints, half of each page's ints rewritten
// (what QuickSort's partition leaves in a page), twinned and flushed in
// 256-page calls (an early-flush piece), 20 rounds. Plain node, not `dsm run`:
// it loads the addon directly and uses only its manager view (no fault, no
// signal handler). Prints µs a page (median and fastest round) and the diff
// bytes a page. Pass another build's addon to compare two trees on one machine.
// Usage: node bench/programs/native-flush.mjs [path/to/dsm_mmu.node]
import { createRequire } from 'node:module';
import { fileURLToPath } from 'node:url';

const addonPath = process.argv[2] ?? fileURLToPath(new URL('../../build/Release/dsm_mmu.node', import.meta.url));
const native = createRequire(import.meta.url)(addonPath);
const pageBytes = 4096;
const pageCount = 2048;
const piece = 256;
const rounds = 20;
native.init(pageCount * pageBytes);
let seed = 7;
const next = () => { seed = (Math.imul(seed, 1103515245) + 12345) | 0; return seed; };
const twins = [];
const pages = [];
for (let p = 0; p < pageCount; p++) {
  const twin = new Int32Array(pageBytes / 4);
  for (let k = 0; k < twin.length; k++) twin[k] = next();
  const page = twin.slice();
  for (let k = 0; k < page.length; k++) if (next() & 1) page[k] = next();
  twins.push(new Uint8Array(twin.buffer));
  pages.push(new Uint8Array(page.buffer));
}
const all = Uint32Array.from({ length: pageCount }, (_, k) => k);
const usPerPage = [];
let bytes = 0;
for (let round = 0; round < rounds; round++) {
  for (let p = 0; p < pageCount; p++) { native.writePage(p, twins[p]); native.makeTwin(p); native.writePage(p, pages[p]); }
  const start = process.hrtime.bigint();
  for (let first = 0; first < pageCount; first += piece) {
    for (const record of native.flush(all.subarray(first, first + piece))) bytes += record.diff.length;
  }
  usPerPage.push(Number(process.hrtime.bigint() - start) / 1e3 / pageCount);
}
usPerPage.sort((a, b) => a - b);
console.log(JSON.stringify({
  program: 'native-flush', addon: addonPath, pages: pageCount, rounds,
  usPerPageP50: Number(usPerPage[rounds >> 1].toFixed(2)), usPerPageMin: Number(usPerPage[0].toFixed(2)),
  diffBytesPerPage: Math.round(bytes / rounds / pageCount),
}));
