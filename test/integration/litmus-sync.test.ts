// Litmus programs for synchronization over real processes: message passing
// with Atomics, barrier reuse, producer–consumer with Condition, and
// Atomics.wait / notify / waitAsync across nodes. Each runs on 4 nodes under
// both protocols and must print exactly what plain node prints.

import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { test } from 'node:test';

const atomicsWaitErrors = ['Uint32Array', 'Int16Array', 'Uint8Array', 'Float64Array', 'BigUint64Array']
  .flatMap((kind) => [`wait-${kind}:TypeError`, `notify-${kind}:TypeError`])
  .concat(['wait-out-of-range:RangeError', 'notify-idle:0'])
  .join(',');

const litmus = [
  { file: 'test/fixtures/litmus/message-passing.mjs', expected: 'rounds=200 readers=2 stale=0\n' },
  { file: 'test/fixtures/litmus/barrier-reuse.mjs', expected: 'threads=8 rounds=250 stale=0 rounds-with-one-serial=250\n' },
  { file: 'test/fixtures/litmus/producer-consumer.mjs', expected: 'items=400 consumed-once=400 sum=20040200 expected=20040200\n' },
  {
    file: 'test/fixtures/litmus/atomics-wait.mjs',
    expected: 'timed-out=timed-out bigint-timed-out=timed-out not-equal=not-equal not-equal-plain=not-equal bigint-not-equal=not-equal '
      + `notify=2,1,0 waiters=ok,ok,ok errors=${atomicsWaitErrors}\n`,
  },
  { file: 'test/fixtures/litmus/atomics-wait-async.mjs', expected: 'timed-out=timed-out not-equal=not-equal woken=ok notify=1\n' },
];

for (const protocol of ['hlrc', 'sc']) {
  for (const { file, expected } of litmus) {
    test(`${protocol}, 4 nodes: ${file}`, () => {
      const result = spawnSync(process.execPath, ['bin/dsm.js', 'run', '--nodes', '4', '--protocol', protocol, '--region-bytes', '256m', file],
        { encoding: 'utf8', timeout: 90_000 });
      assert.equal(result.error, undefined, String(result.error));
      assert.equal(result.status, 0, result.stderr);
      assert.equal(result.stdout, expected);
    });
  }
}

test('the sync litmus programs give the same answers under plain node', () => {
  for (const { file, expected } of litmus) {
    const result = spawnSync(process.execPath, [file], { encoding: 'utf8', timeout: 60_000 });
    assert.equal(result.status, 0, `${file}: ${result.stderr}`);
    assert.equal(result.stdout, expected, file);
  }
});
