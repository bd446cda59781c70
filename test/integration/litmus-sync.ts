// Shared by test/integration/litmus-sync-*.test.ts (three files, so that the
// runner's two lanes can share them out and none nears the per-file time
// limit). Litmus programs for synchronization over real processes: message passing
// with Atomics and with postMessage, barrier reuse, producer–consumer with
// Condition, Atomics.wait / notify / waitAsync across nodes, misuse errors,
// read-modify-write atomics of every width, FIFO mutex handoff, lock and
// tryLock between nodes and between threads of one node, Condition
// broadcast and timed wait, views at offsets sent to other nodes, and the
// corner cases of the Atomics specification (node's own output is the oracle),
// notify's FIFO order, a waiter whose worker was terminated (in Atomics.wait
// and in Mutex.lock).
// Each runs on 4 nodes under both protocols (a racy one under sc only) and
// must print exactly what plain node prints.

import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { test } from 'node:test';
import { Sequence } from './sequence-runs.js';

const atomicsWaitErrors = ['Uint32Array', 'Int16Array', 'Uint8Array', 'Float64Array', 'BigUint64Array']
  .flatMap((kind) => [`wait-${kind}:TypeError`, `notify-${kind}:TypeError`])
  .concat(['wait-out-of-range:RangeError', 'notify-idle:0'])
  .join(',');

const syncErrors = 'lockTwice=DSM_ERR_NOT_OWNER unlockHeldElsewhere=DSM_ERR_NOT_OWNER tryLockHeldElsewhere=none(false) '
  + 'conditionWithoutMutex=DSM_ERR_NOT_OWNER barrierWrongParties=DSM_ERR_BARRIER_PARTIES barrierNoParties=DSM_ERR_BARRIER_PARTIES '
  + 'mutexFromBarrier=DSM_ERR_INVALID_OPTION tryLockFree=none(true) unlockTwice=DSM_ERR_NOT_OWNER';

const bothProtocols = ['hlrc', 'sc'];
// Programs whose outcome rests on layers both protocols share (the lock and
// barrier managers, cloning, errors thrown in the thread, the waiter lists)
// run under hlrc only, to keep this file within its time budget. Atomics
// differ (under sc they run where the page is writable), so those run under both.
const sharedLayers = ['hlrc'];
// The oracle for the Atomics corner cases is node itself: one line per case.
const atomicsEdge = 'test/fixtures/litmus/atomics-edge.mjs';
const atomicsEdgeCaseCount = 64;
function plainNode(file: string): string {
  const result = spawnSync(process.execPath, [file], { encoding: 'utf8', timeout: 60_000 });
  assert.equal(result.status, 0, `${file} under plain node: ${result.stderr}`);
  return result.stdout;
}

/** `dsmOnly`: what dsm promises beyond plain node (not run under plain node). */
const litmus: { file: string; expected: string; protocols?: string[]; dsmOnly?: boolean }[] = [
  { file: 'test/fixtures/litmus/message-passing.mjs', expected: 'rounds=80 readers=2 stale=0\n' },
  { file: 'test/fixtures/litmus/barrier-reuse.mjs', expected: 'threads=8 rounds=200 stale=0 rounds-with-one-serial=200\n' },
  { file: 'test/fixtures/litmus/producer-consumer.mjs', expected: 'items=160 consumed-once=160 sum=8006480 expected=8006480\n' },
  {
    file: 'test/fixtures/litmus/atomics-wait.mjs',
    expected: 'timed-out=timed-out bigint-timed-out=timed-out not-equal=not-equal not-equal-plain=not-equal bigint-not-equal=not-equal '
      + `notify=2,1,0 waiters=ok,ok,ok errors=${atomicsWaitErrors}\n`,
  },
  { file: 'test/fixtures/litmus/atomics-wait-async.mjs', expected: 'timed-out=timed-out not-equal=not-equal woken=ok notify=1\n' },
  { file: 'test/fixtures/litmus/post-message.mjs', expected: 'rounds=100 workers=2 stale=0 exit-stale=0\n' },
  { file: 'test/fixtures/litmus/sync-errors.mjs', expected: `${syncErrors}\n`, protocols: sharedLayers },
  {
    file: 'test/fixtures/litmus/atomic-counters.mjs',
    expected: 'add=320 sub=-960 or=-1 and=0 xor=0 cas=320 halves=80,80,80,80,80,80,80,80 big=320,-2748779069440 exchange-chain=true\n',
  },
  { file: 'test/fixtures/litmus/mutex-fifo.mjs', expected: 'orders=1,2,3 1,2,3\n', protocols: sharedLayers },
  { file: 'test/fixtures/litmus/condition-broadcast.mjs', expected: 'timed-wait=false held-after=true signalled=6/6\n', protocols: sharedLayers },
  {
    file: 'test/fixtures/litmus/views.mjs',
    expected: 'shape=Int32Array@4104+4;Uint8Array@8195+5;Float64Array@16+2;DataView@8292+16;BigInt64Array@40+1;bytes=12288;one-buffer=true '
      + 'seen=11,12,14,21,25,3.5,deadbeef,-5,-7\n',
    protocols: sharedLayers,
  },
  { file: 'test/fixtures/litmus/mutex-pages.mjs', expected: 'counts=400,400,400 expected=400 regressions=0\n' },
  // Lock tokens in the node's table (issue 12.3): recalled while free and while held, tryLock against a local holder.
  { file: 'test/fixtures/litmus/mutex-tokens.mjs', expected: 'recalled-free=500 recalled-held=78 try=true,false/true\n', protocols: sharedLayers },
  { file: atomicsEdge, expected: 'the output of plain node' },
  { file: 'test/fixtures/litmus/notify-order.mjs', expected: 'order=1,2,3 notified=1,1,1 outcomes=ok,ok,ok\n' },
  { file: 'test/fixtures/bugs/sync-terminated-waiter.mjs', expected: 'node0: notify=1 live=ok node1: notify=1 live=ok\n', protocols: sharedLayers },
  // dsm's own: under plain node a ticket lock cannot drop a terminated waiter's ticket.
  { file: 'test/fixtures/bugs/lock-terminated-waiter.mjs', expected: 'node0: next=ok relock=true node1: next=ok relock=true\n', protocols: sharedLayers, dsmOnly: true },
  { file: 'test/fixtures/litmus/sc-plain-flag.mjs', expected: 'rounds=100 stale=0\n', protocols: ['sc'] },
];

/**
 * Registers the runs of one share: `protocol`'s programs from index `from` (inclusive) to `to` (exclusive) of the
 * table; `withPlainNode` adds the check of the expected outputs under plain node. One `dsm run` runs the share's
 * programs in turn (test/integration/sequence-runs.ts): each still has its own test, which looks at its own output.
 */
export function litmusSync(protocol: 'hlrc' | 'sc', from: number, to: number, withPlainNode = false): void {
  const programs = litmus.slice(from, to).filter(({ protocols = bothProtocols }) => protocols.includes(protocol));
  const sequence = new Sequence({
    dsmArgs: ['--nodes', '4', '--protocol', protocol, '--region-bytes', '256m'],
    files: programs.map(({ file }) => file),
    // The programs that need a request to have reached its home before the next thread asks wait for it
    // through this hook (test/fixtures/litmus/arrivals.mjs) instead of sleeping a grace period; the sequence
    // clears its record before each program.
    arrivals: true,
    // Bounds for hangs, not time budgets (one program's run took over 90 s at load 40).
    timeoutMs: 600_000,
    programTimeoutMs: 240_000,
  });
  for (const { file, expected } of programs) {
    test(`${protocol}, 4 nodes: ${file}`, () => {
      const result = sequence.resultOf(file);
      assert.equal(result.error, undefined, `${String(result.error)} ${result.stderr}`);
      assert.equal(result.status, 0, result.stderr);
      if (file === atomicsEdge) {
        const oracle = plainNode(file);
        assert.equal(oracle.split('\n').length, atomicsEdgeCaseCount + 1, 'one line per case, under plain node');
        assert.match(oracle, /^add i32 bigint: TypeError$/m);
        assert.match(oracle, /^compareExchange u8 expected 300 \(wraps to 44\): 44$/m);
        assert.equal(result.stdout, oracle);
        return;
      }
      assert.equal(result.stdout, expected);
    });
  }
  test(`${protocol}, 4 nodes: the run of the share's programs exits 0`, () => {
    const result = sequence.whole();
    assert.equal(result.error, undefined, String(result.error));
    assert.equal(result.status, 0, result.stderr);
  });
  if (!withPlainNode) return;
  test('the sync litmus programs give the same answers under plain node', () => {
    for (const { file, expected, dsmOnly } of litmus) {
      if (file !== atomicsEdge && dsmOnly !== true) assert.equal(plainNode(file), expected, file);
    }
  });
}

/** How many programs the table holds (the shares split it). */
export const litmusSyncCount = litmus.length;
