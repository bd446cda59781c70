// 10^5 fuzz inputs against the frame decoder, the message decoder, both sides
// of the handshake and post-auth dispatch (test/fuzz/transport-fuzz.ts). A
// fresh seed each run, printed; a failure prints the seed and input to replay
// with `npm run fuzz -- --seed S --only I`. 10^7 on demand: `npm run fuzz -- --inputs 10000000`.

import assert from 'node:assert/strict';
import { test } from 'node:test';
import { runFuzz } from '../fuzz/transport-fuzz.js';

test('10^5 fuzzed inputs: no exception but dsm\'s own, no hang, bounded memory', async (t) => {
  const seed = Number(process.env.DSM_FUZZ_SEED ?? Math.floor(Math.random() * 2 ** 31));
  t.diagnostic(`fuzz seed ${seed} (replay: npm run fuzz -- --seed ${seed} --inputs 100000)`);
  const lines: string[] = [];
  const report = await runFuzz({ inputs: 100_000, seed, log: (line) => lines.push(line) });
  t.diagnostic(JSON.stringify({ ...report, failures: report.failures.length }));
  assert.deepEqual(report.failures.map((failure) => `seed ${failure.seed} input ${failure.input} (${failure.target}): ${failure.error.split('\n')[0]}`), [], lines.join('\n'));
  assert.equal(report.inputs, 100_000);
  for (const target of ['frame decoder', 'message decoder', 'handshake', 'dispatch']) assert.ok((report.byTarget[target] ?? 0) > 1000, `${target} was reached`);
  // The outcomes show the inputs got past the first check: accepted frames, proven handshakes, dispatched messages.
  for (const outcome of ['frames ok', 'message ok', 'handshake ok', 'dispatch ended the connection']) assert.ok((report.outcomes[outcome] ?? 0) > 0, outcome);
  assert.ok(report.rssBytesMax < 512 * 1024 * 1024, `rss peaked at ${report.rssBytesMax} bytes`);
});
