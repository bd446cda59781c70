// The allocation figure of bench/programs/atomics.mjs (under dsm) and atomics-plain.mjs (plain node): one measure for both.

/** µs per `new SharedArrayBuffer(64)` (kept alive), the best of 3 rounds of allocSmallCount (session 40). */
export function allocSmallUs() {
  const allocSmallCount = 20_000;
  let best = Infinity;
  for (let round = 0; round < 3; round += 1) {
    const kept = [];
    const begin = performance.now();
    for (let i = 0; i < allocSmallCount; i += 1) kept.push(new SharedArrayBuffer(64));
    best = Math.min(best, (performance.now() - begin) * 1000 / allocSmallCount);
  }
  return Math.round(best * 100) / 100;
}
