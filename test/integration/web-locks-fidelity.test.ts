// Web Locks (Node 24: navigator.locks, worker_threads.locks) exclude the threads of every node of a cluster
// (session 23: before, each node had Node's own lock manager, and a lock excluded the threads of one node only).
// The program's API part prints what plain node 24 prints; its cluster part, where node 24.21 itself hangs now
// and then (a grant to another thread lost) or crashes (a steal from another thread), prints what the test states. Skipped under Node < 24 (no Web Locks).

import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { ended, started, startRun } from '../fixtures/runs.js';
import { test } from 'node:test';

const fixture = 'test/fixtures/fidelity/web-locks.mjs';
const hasWebLocks = Number(process.versions.node.split('.')[0]) >= 24;

function run(command: string[]) {
  // A bound for hangs, not a time budget.
  const result = spawnSync(process.execPath, command, { encoding: 'utf8', timeout: 180_000 });
  assert.equal(result.error, undefined, `${command.join(' ')}: ${String(result.error)}`);
  return result;
}

function runDsm(protocol: string, ...args: string[]) {
  return run(['bin/dsm.js', 'run', '--nodes', '3', '--protocol', protocol, '--region-bytes', '256m', fixture, ...args]);
}

for (const protocol of ['hlrc', 'sc']) {
  test(`3 nodes, ${protocol}: the Web Locks API behaves as under node (shape, errors, ifAvailable, query, steal within a thread, signal)`, { skip: !hasWebLocks && 'Node < 24 has no Web Locks' }, () => {
    const plain = run([fixture]);
    assert.equal(plain.status, 0, plain.stderr);
    const onDsm = runDsm(protocol);
    assert.equal(onDsm.status, 0, onDsm.stderr);
    assert.equal(onDsm.stdout, plain.stdout);
  });

  test(`3 nodes, ${protocol}: a Web Lock excludes every thread of the cluster, shared holders are together, a steal from another thread rejects the holder's request, a thread's end releases its locks and drops its requests`, { skip: !hasWebLocks && 'Node < 24 has no Web Locks' }, () => {
    const onDsm = runDsm(protocol, 'cluster');
    assert.equal(onDsm.status, 0, onDsm.stderr);
    assert.equal(onDsm.stdout, [
      'count 100 of 100 most inside 1',
      'shared: readers together 3 readers inside at the writer 0',
      'stealer runs with victim',
      'holder request rejected: Error Error  LOCK_STOLEN',
      'query after steal held [] pending []',
      'exit exit code 3 granted end-exit',
      'throw worker error thrown while holding',
      'throw exit code 1 granted end-throw',
      'terminate exit code 1 granted end-terminate',
      'waiter queued held [wait-end:exclusive] pending []',
      'waiter ended held [wait-end:exclusive] pending []',
      'after all held [] pending []',
      'done',
      '',
    ].join('\n'));
  });
}

// An interrupted run names a thread waiting for a Web Lock on its node's line, with the lock's name and mode.
test('an interrupted run (SIGINT) names a thread waiting for a Web Lock', { skip: !hasWebLocks && 'Node < 24 has no Web Locks' }, async () => {
  const run = startRun(['run', '--nodes', '2', 'test/fixtures/programs/stuck-web-lock.mjs']);
  await started(run);
  run.child.kill('SIGINT');
  const { code } = await ended(run);
  assert.equal(code, 130, run.stderr());
  assert.match(run.stderr(), /^dsm: interrupted; parked on node 1: app thread \d+: navigator\.locks\.request of 'stuck' \(shared\) for [\d.]+ s$/m);
  assert.match(run.stderr(), /^dsm: interrupted; parked on node 0: app thread 0: Atomics\.wait at byte 12 for [\d.]+ s$/m);
});
