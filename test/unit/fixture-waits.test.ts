// The repository's programs (fixtures, examples, benchmarks) wait, untimed, only on the value their loop tested.
// `while (Atomics.load(a, i) < n) Atomics.wait(a, i, Atomics.load(a, i))` reads the word twice: a store and
// notify between the two reads leave the thread waiting on the new value, for a change that may never come.
// The window is nanoseconds under node but a manager round trip per Atomics op under dsm's sc: users7
// receive-drain.mjs hung so in about 1 run of 5 to 10 on 2 nodes (session 22). A timed wait re-tests, so it is allowed.

import assert from 'node:assert/strict';
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';

function files(dir: string): string[] {
  return readdirSync(dir).sort().flatMap((name) => {
    const path = join(dir, name);
    if (statSync(path).isDirectory()) return name === 'node_modules' || name === 'generated' ? [] : files(path);
    return /\.(mjs|cjs|js|ts|mts)$/.test(name) ? [path] : [];
  });
}

/** An untimed wait on a second read of the word its `while` loop tested, on one line. */
const rereadWait = /while \(Atomics\.load\(([^()]+)\)[^;]*?\) Atomics\.wait\(\1, Atomics\.load\(\1\)\)/;

test('the pattern is recognized', () => {
  assert.ok(rereadWait.test('  while (Atomics.load(words, 8 * w) !== -1) Atomics.wait(words, 8 * w, Atomics.load(words, 8 * w));'));
  assert.ok(!rereadWait.test('  while (Atomics.load(w, 7) < 6) Atomics.wait(w, 7, Atomics.load(w, 7), 1000);'));
  assert.ok(!rereadWait.test('  for (let v = Atomics.load(words, 2); v < n; v = Atomics.load(words, 2)) Atomics.wait(words, 2, v);'));
});

test('no program waits, untimed, on a second read of the word its loop tested', () => {
  const found = ['test/fixtures', 'examples', 'bench'].flatMap((dir) => files(dir)).flatMap((path) =>
    readFileSync(path, 'utf8').split('\n').flatMap((line, i) => rereadWait.test(line) ? [`${path}:${i + 1}: ${line.trim()}`] : []));
  assert.deepEqual(found, []);
});
