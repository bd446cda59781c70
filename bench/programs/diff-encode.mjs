// Native diff encode (flush) and apply time per page, per write pattern (diff31, session 21: masked runs). Runs the addon alone, no cluster: node bench/programs/diff-encode.mjs (after npm run build). Prints one JSON object: per pattern, µs a page to encode and to apply (min and p50 of 200 flushes of 256 pages) and the diff bytes of a page.
import { pathToFileURL } from 'node:url';
const dir = new URL("../..", import.meta.url).pathname.replace(/\/$/, "");
const { loadNativeMmu } = await import(pathToFileURL(`${dir}/dist/src/memory/native.js`).href);
const native = loadNativeMmu();
const P = 4096, N = 256;
native.init(N * P);
let seed = 7; const rnd = () => { seed ^= seed << 13; seed >>>= 0; seed ^= seed >>> 17; seed ^= seed << 5; seed >>>= 0; return seed >>> 1; };
const patterns = {
  'sparse 4 words': (t) => { const p = t.slice(); const v = new Int32Array(p.buffer); for (let k = 0; k < 4; k++) v[(rnd() % 1024)] ^= 0x01020304; return p; },
  'full rewrite': (t) => { const p = t.slice(); for (let k = 0; k < P; k++) p[k] = t[k] ^ 0x5a; return p; },
  'partition (half of random ints)': (t) => { const p = t.slice(); const v = new Int32Array(p.buffer); for (let i = 0; i < 1024; i++) if (rnd() & 1) v[i] = rnd(); return p; },
  'int32 < 2^24 over zeros': (t) => { const p = new Uint8Array(P); const v = new Int32Array(p.buffer); for (let i = 0; i < 1024; i++) v[i] = (i * 31 + 70000) | 0; return p; },
  'doubles nudged': (t) => { const p = t.slice(); const v = new Float64Array(p.buffer); for (let i = 0; i < 512; i++) v[i] = 1 + (rnd() % 1000) / 1000; const w = v.slice(); return { twin: new Uint8Array(v.buffer.slice(0)), page: new Uint8Array(w.map((x) => x * (1 + 1e-7)).buffer) }; },
};
const out = {};
for (const [name, make] of Object.entries(patterns)) {
  const twins = [], pages = [];
  for (let k = 0; k < N; k++) {
    const base = new Uint8Array(P); for (let j = 0; j < P; j++) base[j] = name.includes('zeros') ? 0 : rnd() & 0xff;
    const made = make(base);
    if (made instanceof Uint8Array) { twins.push(base); pages.push(made); } else { twins.push(made.twin); pages.push(made.page); }
  }
  const all = Uint32Array.from({ length: N }, (_, k) => k);
  const samples = [], applies = []; let bytes = 0;
  for (let rep = 0; rep < 200; rep++) {
    for (let k = 0; k < N; k++) { native.writePage(k, twins[k]); native.makeTwin(k); native.writePage(k, pages[k]); }
    const t0 = process.hrtime.bigint();
    const recs = native.flush(all);
    const t1 = process.hrtime.bigint();
    samples.push(Number(t1 - t0) / N / 1000);
    bytes = recs.reduce((s, r) => s + r.diff.byteLength, 0) / N;
    for (let k = 0; k < N; k++) native.writePage(k, twins[k]);
    const t2 = process.hrtime.bigint();
    for (let k = 0; k < N; k++) native.applyDiff(k, recs[k].diff);
    const t3 = process.hrtime.bigint();
    applies.push(Number(t3 - t2) / N / 1000);
  }
  samples.sort((a, b) => a - b); applies.sort((a, b) => a - b);
  out[name] = { flushUsPerPageP50: +samples[100].toFixed(3), flushUsMin: +samples[0].toFixed(3), applyUsP50: +applies[100].toFixed(3), diffBytes: Math.round(bytes) };
}
console.log(JSON.stringify(out));
