// The cluster's Web Locks service (src/runtime/web-locks-service.ts): grants per name in request order, an exclusive
// request alone, shared ones together, steal first, ifAvailable at once, drops of ended threads, its request limit.

import assert from 'node:assert/strict';
import { test } from 'node:test';
import { webLockRequestCountMax } from '../../src/constants.js';
import { WebLockService } from '../../src/runtime/web-locks-service.js';
import type { WebLockLaneMessage } from '../../src/runtime/envelope.js';

function service() {
  const sent: string[] = [];
  const locks = new WebLockService((toNode, message) => {
    sent.push(message.type === 'rtWebLockGrant'
      ? `${toNode} ${message.granted ? 'grant' : message.full === undefined ? 'miss' : 'full'} ${message.key}`
      : `${toNode} stolen ${message.key} by ${message.by}`);
  });
  const request = (node: number, key: string, mode: 'exclusive' | 'shared' = 'exclusive', more: Partial<Extract<WebLockLaneMessage, { type: 'rtWebLockRequest' }>> = {}) =>
    locks.onMessage(node, { type: 'rtWebLockRequest', key, name: more.name ?? 'a', mode, ifAvailable: more.ifAvailable ?? false, steal: more.steal ?? false });
  const release = (node: number, key: string) => locks.onMessage(node, { type: 'rtWebLockRelease', key });
  const take = () => sent.splice(0);
  return { locks, request, release, take };
}

test('an exclusive lock is granted alone, in request order, across nodes', () => {
  const { locks, request, release, take } = service();
  request(1, '1:0');
  request(2, '2:0');
  request(0, '0:0');
  assert.deepEqual(take(), ['1 grant 1:0']);
  release(1, '1:0');
  assert.deepEqual(take(), ['2 grant 2:0']);
  release(2, '2:0');
  assert.deepEqual(take(), ['0 grant 0:0']);
  release(0, '0:0');
  assert.equal(locks.size, 0);
});

test('shared requests are granted together; one behind a queued exclusive request waits', () => {
  const { request, release, take } = service();
  request(1, 's1', 'shared');
  request(2, 's2', 'shared');
  request(0, 'x', 'exclusive');
  request(1, 's3', 'shared');
  assert.deepEqual(take(), ['1 grant s1', '2 grant s2']);
  release(1, 's1');
  assert.deepEqual(take(), []);
  release(2, 's2');
  assert.deepEqual(take(), ['0 grant x']);
  release(0, 'x');
  assert.deepEqual(take(), ['1 grant s3']);
});

test('ifAvailable is answered at once; steal takes the lock from its holders and goes first', () => {
  const { locks, request, release, take } = service();
  request(1, 'h', 'shared');
  request(2, 'q', 'exclusive');
  request(0, 'i', 'exclusive', { ifAvailable: true });
  request(0, 'j', 'shared', { ifAvailable: true });
  request(0, 'other', 'exclusive', { ifAvailable: true, name: 'b' });
  assert.deepEqual(take(), ['1 grant h', '0 miss i', '0 miss j', '0 grant other']);
  request(2, 's', 'exclusive', { steal: true });
  assert.deepEqual(take(), ['1 stolen h by s', '2 grant s']);
  // The stolen holder's release comes later: ignored.
  release(1, 'h');
  assert.deepEqual(take(), []);
  release(2, 's');
  assert.deepEqual(take(), ['2 grant q']);
  release(2, 'q');
  release(0, 'other');
  assert.equal(locks.size, 0);
});

test("an ended thread's held and queued requests are dropped", () => {
  const { locks, request, take } = service();
  request(1, 'held');
  request(1, 'queued');
  request(2, 'next');
  take();
  locks.onMessage(1, { type: 'rtWebLockDrop', keys: ['held', 'queued'] });
  assert.deepEqual(take(), ['2 grant next']);
  assert.equal(locks.size, 1);
});

test('a request past webLockRequestCountMax is refused', () => {
  const { locks, request, take } = service();
  for (let index = 0; index < webLockRequestCountMax; index += 1) request(1, `k${index}`, 'shared');
  take();
  request(2, 'one more', 'shared');
  assert.deepEqual(take(), [`2 full one more`]);
  assert.equal(locks.size, webLockRequestCountMax);
});
