// A worker hosted on another node than its parent talks to it through the
// channel (parent-message events, parent-post calls): its parentPort must
// behave as Node's — messages sent before it listens wait, in order; close()
// and unref() let the worker end.

import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
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

test('a remote worker started on its node\'s warm thread behaves as a new thread: workerData, argv, env, threadId, stdout, online, exit codes, errors, terminate at once; env, resourceLimits and name get a thread of their own', () => {
  const program = 'test/fixtures/programs/warm-start.mjs';
  const env = { ...process.env, WARM_START_VAR: 'outer' };
  const plain = spawnSync(process.execPath, [program], { encoding: 'utf8', timeout: 120_000, env });
  assert.equal(plain.status, 0, plain.stderr);
  for (const warm of ['1', '0']) {
    // Which start each worker had: node 1's manager stamps it (DSM_HOPS, src/runtime/remote-workers.ts).
    const hops = mkdtempSync(join(tmpdir(), 'dsm-warm-'));
    try {
      const onDsm = spawnSync(process.execPath, ['bin/dsm.js', 'run', '--nodes', '2', program], {
        encoding: 'utf8', timeout: 120_000, env: { ...env, DSM_HOPS: hops, DSM_WARM_THREADS: warm },
      });
      assert.equal(onDsm.error, undefined, String(onDsm.error));
      assert.equal(onDsm.status, 0, onDsm.stderr);
      assert.equal(onDsm.stdout, plain.stdout, `DSM_WARM_THREADS=${warm}`);
      const stamps = readdirSync(hops).map((file) => readFileSync(join(hops, file), 'utf8')).join('');
      const count = (hop: string) => stamps.split('\n').filter((line) => line.endsWith(` ${hop}`)).length;
      // 11 workers. On threads of their own: the 3 with env, resourceLimits or a name; the next one (node 1's
      // warm thread was taken by the first), after which each worker's end makes a warm thread; the
      // second of the pair started together.
      assert.deepEqual({ warm: count('m:warm thread taken'), cold: count('m:creating thread') }, warm === '1' ? { warm: 6, cold: 5 } : { warm: 0, cold: 11 });
    } finally {
      rmSync(hops, { recursive: true, force: true });
    }
  }
});
