// Native page packing (src/runtime/page-pack.ts, native PackWordsInto / UnpackWordsInto): µs a page to pack and
// to unpack, per kind of page, with the addon alone (no cluster). Session 24 made mixed words one pext / pdep on
// x86-64 with BMI2. Usage: node bench/programs/page-pack-cost.mjs (after npm run build). Prints one JSON object.
import { pathToFileURL } from 'node:url';
const dir = new URL('../..', import.meta.url).pathname.replace(/\/$/, '');
const { loadNativeMmu } = await import(pathToFileURL(`${dir}/dist/src/memory/native.js`).href);
const native = loadNativeMmu();
const pageBytes = 4096;
const rounds = 20_000;
const kinds = {
  'doubles of small integers': (page) => { const f = new Float64Array(page.buffer); for (let i = 0; i < 512; i++) f[i] = 1000 + i; },
  'half doubles, half zeros': (page) => { const f = new Float64Array(page.buffer); for (let i = 0; i < 256; i++) f[i] = i * 1.5; },
  'Int32 in [0, 10)': (page) => { const v = new Int32Array(page.buffer); for (let i = 0; i < 1024; i++) v[i] = (i * 7) % 10; },
};
const out = {};
for (const [name, fill] of Object.entries(kinds)) {
  const page = new Uint8Array(pageBytes);
  fill(page);
  const packedBuffer = new Uint8Array(2 * pageBytes);
  let end = 0;
  let start = performance.now();
  for (let r = 0; r < rounds; r++) end = native.packWords(page, packedBuffer, 0);
  const packUs = (performance.now() - start) * 1000 / rounds;
  const packed = packedBuffer.slice(0, end);
  const back = new Uint8Array(pageBytes);
  start = performance.now();
  for (let r = 0; r < rounds; r++) native.unpackWords(packed, back, false);
  const unpackUs = (performance.now() - start) * 1000 / rounds;
  if (Buffer.compare(Buffer.from(back), Buffer.from(page)) !== 0) throw new Error(`${name}: unpacked bytes differ`);
  out[name] = { packedBytes: end, packUs: Math.round(packUs * 100) / 100, unpackUs: Math.round(unpackUs * 100) / 100 };
}
console.log(JSON.stringify(out));
