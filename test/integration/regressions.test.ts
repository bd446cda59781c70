// Bugs found by running real programs, each pinned by its reproduction in
// test/fixtures/bugs/ (the header of each file says what went wrong).

import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { test } from 'node:test';

const cases = [
  // One release with more diffs for one home than a frame holds (found by bench/apps/jacobi.mjs).
  { file: 'test/fixtures/bugs/large-release.mjs', nodes: 2, expected: 'written=4194304 wrong=0 stale=0,0\n' },
  // Atomics.waitAsync parked natively on its node's copy, so a remote notify found nobody.
  { file: 'test/fixtures/bugs/sync-wait-async.mjs', nodes: 3, expected: 'woken=ok notify=1\n' },
  // Views over one dsm buffer sent in one message each arrived over their own buffer object.
  { file: 'test/fixtures/bugs/sync-view-buffer-identity.mjs', nodes: 2, expected: 'same=true,true,true\n' },
  // Atomics on remote dsm memory converted a BigInt for an Int32Array (and a Number for a BigInt64Array) instead of throwing.
  {
    file: 'test/fixtures/bugs/sync-atomics-conversion.mjs', nodes: 2,
    expected: 'add-i32-bigint=TypeError add-i64-number=TypeError wait-i32-bigint=TypeError wait-i64-number=TypeError store-nan=0\n',
  },
  // A process-wide node flag (here --v8-pool-size) stopped dsm before the program ran: ERR_WORKER_INVALID_EXEC_ARGV.
  { file: 'test/fixtures/bugs/process-flags.mjs', nodes: 2, expected: 'main=true worker=true\n', nodeFlags: ['--v8-pool-size=1'] },
  // A worker terminated while parked in Mutex.lock, granted the lock before its manager learned of its end (its
  // channel's 'close' came after main's unlock): the lock stayed with the dead thread and the next locker waited
  // for ever (once in a suite run). The hook makes the late 'close' certain.
  {
    file: 'test/fixtures/bugs/lock-terminated-waiter.mjs', nodes: 2, expected: 'node0: next=ok relock=true node1: next=ok relock=true\n',
    env: { DSM_TEST_HOOK_THREAD_END_DELAY: '*:300' },
  },
  // The same for a worker terminated while parked in Atomics.wait: main's notify(…, 1) woke the dead waiter and the
  // live one timed out. Now the parent's 'exit' (or, for a worker on another node, its host's) withdraws the dead
  // thread's requests ahead of the parent's next operation.
  {
    file: 'test/fixtures/bugs/sync-terminated-waiter.mjs', nodes: 2, expected: 'node0: notify=1 live=ok node1: notify=1 live=ok\n',
    env: { DSM_TEST_HOOK_THREAD_END_DELAY: '*:300' },
  },
];

for (const { file, nodes, expected, nodeFlags = [], env = {} } of cases) {
  test(`${file} on ${nodes} nodes`, () => {
    const result = spawnSync(process.execPath, [...nodeFlags, 'bin/dsm.js', 'run', '--nodes', String(nodes), '--region-bytes', '512m', file],
      { encoding: 'utf8', timeout: 120_000, env: { ...process.env, ...env } });
    assert.equal(result.status, 0, result.stderr);
    assert.equal(result.stdout, expected);
  });
}
