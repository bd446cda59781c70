// A worker hosted on another node than its parent talks to it through the
// channel (parent-message events, parent-post calls): its parentPort must
// behave as Node's — messages sent before it listens wait, in order; close()
// and unref() let the worker end.

import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { availableParallelism, tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';

const fixture = 'test/fixtures/programs/remote-parent-port.mjs';

function run(args: string[], env: Record<string, string> = {}) {
  const result = spawnSync(process.execPath, args, { encoding: 'utf8', timeout: 120_000, env: { ...process.env, ...env } });
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

test('a child\'s \'exit\' comes after the wake-up of its notify, with the directory\'s messages 300 ms late: the spawner awaiting only Atomics.waitAsync never runs dry (exit fences, session 35)', () => {
  const program = 'test/fixtures/users10/exit-after-wake.mjs';
  const plain = run([program]);
  assert.equal(plain.status, 0, plain.stderr);
  assert.equal(plain.stdout, 'children 0:0 1:0 2:0\nspawner exit 0\n');
  // Node 0 holds the slots' lines' directory; the spawner runs on node 1, its children on nodes 2, 0 and 1. Each
  // child's notify counts its waiter itself (the grant listed it) and goes to node 0 with no answer awaited;
  // before exit fences the first child's 'exit' (node 2 to node 1) beat node 0's wake-up, and the spawner ended
  // with exit code 13 (its top-level await unsettled), as users9/grandchild-churn did in session 33's CI.
  const onDsm = run(['bin/dsm.js', 'run', '--nodes', '3', program], { DSM_TEST_HOOK_DELAY_SENDS: '0:300' });
  assert.equal(onDsm.status, 0, onDsm.stderr);
  assert.equal(onDsm.stdout, plain.stdout);
  // And on 2 nodes (a child on the spawner's own node, its 'exit' local), with no delay on 3.
  for (const [nodes, env] of [['2', { DSM_TEST_HOOK_DELAY_SENDS: '0:300' }], ['3', {}]] as const) {
    const again = run(['bin/dsm.js', 'run', '--nodes', nodes, program], env);
    assert.equal(again.status, 0, again.stderr);
    assert.equal(again.stdout, plain.stdout, `${nodes} nodes`);
  }
  // users9/grandchild-churn itself, node 0 100 ms late: spawner 1's third grandchild runs on its own node, and its
  // 'exit' is local; the wake comes on the spawner's channel in the loop's next turn, which the exit holds for
  // (3 runs of 4 ended with exit code 13 before that hold, with the fences).
  const churn = 'test/fixtures/users9/grandchild-churn.mjs';
  const churnPlain = run([churn, '2', '4', '1']);
  assert.equal(churnPlain.status, 0, churnPlain.stderr);
  const churnDsm = run(['bin/dsm.js', 'run', '--nodes', '3', churn, '2', '4', '1'], { DSM_TEST_HOOK_DELAY_SENDS: '0:100' });
  assert.equal(churnDsm.status, 0, churnDsm.stderr);
  assert.equal(churnDsm.stdout, churnPlain.stdout);
});

test('a child\'s \'exit\' held for its exit fence does not make the next message from its node fail: the exit\'s intervals are logged on arrival (race run, the race home 400 ms late; CI, session 37)', () => {
  const program = 'test/fixtures/programs/exit-fence-order.mjs';
  const plain = run([program]);
  assert.equal(plain.status, 0, plain.stderr);
  assert.equal(plain.stdout, 'worker 0: 10\nworker 1: 20\nworker 2: 30\nworker 3: 40\nexits 0 0 0 0 sum 10\n');
  // Race mode homes every page on an extra node (3 here): worker 0's notify goes there, so its 'exit' (node 1
  // to node 0) waits for node 3's fence answer, and worker 3 (node 1 again) sends its 'online' and message
  // meanwhile. Before the fix node 0 failed an invariant on the first ("intervals of node 1 arrive in order").
  const onDsm = run(['bin/dsm.js', 'run', '--race', '--nodes', '3', program], { DSM_TEST_HOOK_DELAY_SENDS: '3:400' });
  assert.equal(onDsm.status, 0, onDsm.stderr);
  assert.equal(onDsm.stdout, plain.stdout);
  assert.match(onDsm.stderr, /dsm race: no data races found/);
});

test('posts across nodes do not wait: 500 each way (past postsInFlightMax) in order, and a worker\'s posts to its parent, a relayed port and a BroadcastChannel before process.exit arrive, as under node', () => {
  const program = 'test/fixtures/programs/post-burst-exit.mjs';
  const plain = run([program]);
  assert.equal(plain.status, 0, plain.stderr);
  assert.equal(plain.stdout, 'exit 4: parent 501 in order true first got 500\nport true, channel true\n');
  const onDsm = run(['bin/dsm.js', 'run', '--nodes', '2', program]);
  assert.equal(onDsm.status, 0, onDsm.stderr);
  assert.equal(onDsm.stdout, plain.stdout);
  assert.match(onDsm.stderr, /^worker on node 1$/m, 'the worker ran on the other node');
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

// Which start each worker had: the thread that starts it stamps it (DSM_HOPS): node 1's manager for a
// remote worker (src/runtime/remote-workers.ts), the main thread for a local one (src/threads/worker.ts).
// 11 workers on node 1: on threads of their own the 3 with env, resourceLimits or a name; the next one
// (node 1's warm thread went to the first), after which each worker's end makes a warm thread; the second
// of the pair started together. 12 on node 0: the same, except that from the miss on each start makes the
// next one's warm thread, and the last one, made after the program changed process.env, gets a thread of its own.
// On one node the main thread makes its warm threads before its gate when the entry names worker_threads (one a CPU,
// at most mainThreadPrewarmCountMax): the first workers take them, and from the first miss on each start makes the
// next one's.
const warmStarts = [
  { node: 1, nodes: 2, expected: { warm: 6, cold: 5 } },
  { node: 0, nodes: 2, expected: { warm: 7, cold: 5 } },
  { node: 0, nodes: 1, expected: { warm: 7, cold: 5 } },
];

for (const { node, nodes, expected } of warmStarts) {
  test(`a worker started on ${node === 1 ? 'its node\'s' : 'its parent\'s'} warm thread (node ${node} of ${nodes}) behaves as a new thread: workerData, argv, env, threadId, stdout, online, exit codes, errors, terminate at once; env, resourceLimits, name${node === 0 ? ' and a changed process.env' : ''} get a thread of their own`, () => {
    const program = 'test/fixtures/programs/warm-start.mjs';
    // Warm threads on, whatever the environment says.
    const env: NodeJS.ProcessEnv = { ...process.env, WARM_START_VAR: 'outer' };
    delete env.DSM_WARM_THREADS;
    const plain = spawnSync(process.execPath, [program, String(node)], { encoding: 'utf8', timeout: 120_000, env });
    assert.equal(plain.status, 0, plain.stderr);
    const hops = mkdtempSync(join(tmpdir(), 'dsm-warm-'));
    try {
      const onDsm = spawnSync(process.execPath, ['bin/dsm.js', 'run', '--nodes', String(nodes), program, String(node)], {
        encoding: 'utf8', timeout: 120_000, env: { ...env, DSM_HOPS: hops },
      });
      assert.equal(onDsm.error, undefined, String(onDsm.error));
      assert.equal(onDsm.status, 0, onDsm.stderr);
      assert.equal(onDsm.stdout, plain.stdout);
      const stamps = readdirSync(hops).map((file) => readFileSync(join(hops, file), 'utf8')).join('');
      const count = (hop: string) => stamps.split('\n').filter((line) => line.endsWith(` ${hop}`)).length;
      const side = node === 1 ? 'm' : 't';
      const warm = count(`${side}:warm thread taken`);
      const cold = count(`${side}:creating thread`);
      assert.equal(warm + cold, expected.warm + expected.cold, `every start counted (warm ${warm}, cold ${cold})`);
      // A parent makes the next warm thread once a started worker's thread has booted (src/threads/worker.ts
      // refillWhenOnline): of the two started in one turn, the second is warm only if the first had booted.
      const warmMin = node === 0 ? expected.warm - 1 : expected.warm;
      assert.ok(warm >= warmMin, `at least ${warmMin} warm starts (warm ${warm}, cold ${cold})`);
      // The first start is warm: the main thread's own warm thread (made before its start gate,
      // src/threads/worker.ts prewarmLocalThread: on a cluster, and on one node because this program's entry names
      // worker_threads, src/runtime/program.ts entryNamesWorkers) or its node's.
      const starts = stamps.split('\n').filter((line) => line.endsWith(` ${side}:warm thread taken`) || line.endsWith(` ${side}:creating thread`))
        .sort((a, b) => (BigInt(a.split(' ')[0]!) < BigInt(b.split(' ')[0]!) ? -1 : 1));
      assert.equal(starts[0]?.endsWith('warm thread taken'), true, `the first start: ${starts[0]}`);
      if (node === 1) {
        // Node 1's first warm thread started before the node joined (src/runtime/node-prepare.ts), and the node,
        // once made, took it as its first warm thread; on a machine with fewer cores than nodes it starts then.
        const early = availableParallelism() >= nodes ? 1 : 0;
        assert.equal(count('m:warm thread prestarted'), early, 'node 1 prestarts one warm thread');
        assert.equal(count('m:warm thread adopted'), early, 'and adopts it');
      }
    } finally {
      rmSync(hops, { recursive: true, force: true });
    }
  });
}

test('a thread\'s start allocates no dsm memory (its Atomics state is private to it): no alloc request in a program that allocates nothing', () => {
  const hops = mkdtempSync(join(tmpdir(), 'dsm-start-alloc-'));
  try {
    const result = spawnSync(process.execPath, ['bin/dsm.js', 'run', '--nodes', '2', 'test/fixtures/programs/start-alloc.mjs'], {
      encoding: 'utf8', timeout: 120_000, env: { ...process.env, DSM_HOPS: hops },
    });
    assert.equal(result.error, undefined, String(result.error));
    assert.equal(result.status, 0, result.stderr);
    assert.equal(result.stdout, 'hello from the worker placed on node 1\nhello from the worker placed on node 0\n');
    const stamps = readdirSync(hops).map((file) => readFileSync(join(hops, file), 'utf8')).join('');
    // Before: one per app thread (3), each a round trip to its manager during the thread's set-up.
    assert.equal(stamps.split('\n').filter((line) => line.endsWith(' t:ring alloc')).length, 0);
  } finally {
    rmSync(hops, { recursive: true, force: true });
  }
});
