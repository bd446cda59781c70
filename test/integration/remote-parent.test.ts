// A worker hosted on another node than its parent talks to it through the
// channel (parent-message events, parent-post calls): its parentPort must
// behave as Node's — messages sent before it listens wait, in order; close()
// and unref() let the worker end.

import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { test } from 'node:test';

const fixture = 'test/fixtures/programs/remote-parent-port.mjs';

function run(args: string[]) {
  const result = spawnSync(process.execPath, args, { encoding: 'utf8', timeout: 120_000 });
  assert.equal(result.error, undefined, String(result.error));
  return result;
}

test('a remote worker\'s parentPort: queued messages in order, close() and unref() end it, as under node', () => {
  const plain = run([fixture]);
  assert.equal(plain.status, 0, plain.stderr);
  const onDsm = run(['bin/dsm.js', 'run', '--nodes', '2', fixture]);
  assert.equal(onDsm.status, 0, onDsm.stderr);
  assert.equal(onDsm.stdout, plain.stdout);
  assert.match(onDsm.stderr, /^late worker on node 1$/m, 'the worker ran on the other node');
});

test('worker creation is a synchronization: a remote worker\'s thread, created before its node acquires the parent\'s writes, waits for that acquire (made 1 s late by a test hook)', () => {
  const program = 'test/fixtures/litmus/worker-start.mjs';
  // Without the start gate this printed stale=3072 (the workers read their node's old zero copies).
  const result = spawnSync(process.execPath, ['bin/dsm.js', 'run', '--nodes', '2', '--region-bytes', '256m', program], {
    encoding: 'utf8', timeout: 240_000, env: { ...process.env, DSM_TEST_HOOK_SLOW_WORKER_START: '*:1000' },
  });
  assert.equal(result.error, undefined, String(result.error));
  assert.equal(result.status, 0, result.stderr);
  assert.equal(result.stdout, 'rounds=4 stale=0\n');
});
