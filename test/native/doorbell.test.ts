// The channel's doorbell between real threads (test/native/fixtures/doorbell.mjs):
// binary requests and replies, the thread's order across doorbell and port,
// a full ring, many threads ringing at once, a thread terminated while parked, a tryLock served after the unlock
// another thread posted before it (ordered by an Atomics flag between them);
// and the same answers with the doorbell off (DSM_DOORBELL=0: every request by postMessage).

import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { test } from 'node:test';

const u64Max = '18446744073709551615';

function run(env: Record<string, string> = {}) {
  const result = spawnSync(process.execPath, ['test/native/fixtures/doorbell.mjs'], { encoding: 'utf8', timeout: 120_000, env: { ...process.env, ...env } });
  assert.equal(result.error, undefined, String(result.error));
  assert.equal(result.status, 0, result.stderr);
  return JSON.parse(result.stdout.trim().split('\n').pop()!);
}

function check(r: ReturnType<typeof run>): void {
  assert.deepEqual(r.crossOrder, ['11:unlock', '12:lock:try'], 'an unlock another thread posted before a tryLock (ordered by Atomics) is served first');
  assert.deepEqual(r.values, {
    threadId: 7, place: -2.5, alloc: { offset: 4096, note: 'an object: JSON in the block' },
    free: 'DSM_ERR_CHANNEL: free refused: ünïcode text', escape: 123456789012, lock: 'busy', barrier: null,
    load: u64Max, cas: '9007199254740993', add: '4294967295', notify: '-1', last: 7,
    linePin: 3, lineAcquire: null, lineWait: 'ok', lineWaitAsync: null, lineNotify: 2,
  });
  assert.deepEqual(r.order, [
    'sync:unlock:11:5:posted', 'worker-terminate:2', 'sync:unlock:12:5:posted', 'thread-id:', 'place:', 'alloc:64',
    'free:4096', 'escape:8192', 'sync:lock:13:5:try', 'sync:barrier:14:5:3', 'atomic:load:40:8::-1',
    `atomic:compareExchange:48:8:${u64Max},9007199254740993:-1`, 'atomic:add:52:4:4294967295:2.5', 'atomic:notify:56:4:-1:-1',
    'atomic:wait:60:4:0:1000:async3', 'line:pin::::', 'line:acquire:33554431:::', 'line:wait::2147483644:2.5:',
    'line:waitAsync::68:-1::async4', 'line:notify::72::-1', 'thread-id:',
  ], 'requests served in the order the thread made them, fields exact');
  assert.equal(r.full, 7);
  assert.equal(r.fullOrder, [...Array.from({ length: 600 }, (_, i) => `sync:unlock:${100 + i}:2:posted`), 'thread-id:'].join(' '), 'a full ring loses and reorders nothing');
  assert.equal(r.posts, 7);
  const sum = (length: number, seed: number) => {
    let total = 0;
    for (let k = 0; k < length; k += 1) total = (total * 31 + ((seed * 7 + k * 13) & 255)) % 1_000_003;
    return total;
  };
  assert.deepEqual(r.postsOrder, [
    ...Array.from({ length: 40 }, (_, i) => `worker-post:${i}:${3000 + i}:${sum(3000 + i, i)}:${i % 3 === 0 ? i % 5 : ''}:posted`),
    `port-post:relay:ünï:1:10:${sum(10, 1)}::posted`, 'bc-post:chän:0:0::posted', `parent-post::4096:${sum(4096, 3)}:0:posted`,
    `worker-post:99:20000:${sum(20_000, 4)}::posted`, 'thread-id:',
  ], 'posts through the ring (their bytes wrapping the post bytes) and by port, in order, their bytes, text and form exact');
  assert.deepEqual(r.counts, [500, 500, 500, 500, 500]);
  assert.equal(r.parkedEndpointGone, true, 'a thread terminated while parked leaves no endpoint');
  assert.equal(r.endpointsLeft, 0);
}

test('doorbell: binary requests and replies, order with the port, a full ring, threads at once, a parked thread terminated', () => {
  const r = run();
  check(r);
  assert.ok(r.rings >= 2000, `every call of the four threads rang (${r.rings})`);
  assert.ok(r.wakes >= 1 && r.wakes <= r.rings, `wake-ups coalesce (${r.wakes} for ${r.rings} rings)`);
});

test('the direct paths of sync and Atomics entries: the same answers and order, declined entries served by the general path', () => {
  const r = run({ DOORBELL_DIRECT: '1' });
  check(r);
  // Thread 1: unlock 11, tryLock 13, barrier 14, the add and the line's acquire, wait and notify direct; unlock 12,
  // load, compareExchange, notify, the async wait, the line's pin and waitAsync declined. Thread 2: 600 unlocks direct.
  // Thread 8's wait (it is terminated while parked in it) declined. Threads 11 and 12: mutex 21's unlock and tryLock.
  assert.equal(r.directServed, 609);
  assert.equal(r.directDeclined, 8);
});

test('DSM_DOORBELL=0: the same answers and order, all by postMessage', () => {
  const r = run({ DSM_DOORBELL: '0' });
  check(r);
  assert.equal(r.rings, 0);
});
