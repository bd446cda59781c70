import assert from 'node:assert/strict';
import { test } from 'node:test';
import { PortRoutes, type PortDelivery } from '../../src/runtime/port-routes.js';
import { portRelayCountMax, portRelayPendingMax } from '../../src/constants.js';

const message = (text: string): PortDelivery<string> => ({ kind: 'message', message: text });

test('a sent port\'s end is open at once: messages for it go to its thread, a close ends the route', () => {
  const routes = new PortRoutes<string, string>();
  routes.sent('thread A', ['0.0.1'], 2);
  assert.equal(routes.farNodeOf('0.0.1'), 2);
  assert.equal(routes.deliver('0.0.1', message('m1')), 'thread A');
  assert.equal(routes.deliver('0.0.1', { kind: 'close' }), 'thread A');
  assert.equal(routes.farNodeOf('0.0.1'), null);
  // Anything after the close has nowhere to go (dropped, as a message to a closed port).
  assert.equal(routes.deliver('0.0.1', message('late')), null);
  assert.equal(routes.size, 0);
});

test('a received port\'s messages wait, in order, until its thread opens it; a far close waits last and ends the route', () => {
  const routes = new PortRoutes<string, string>();
  routes.received('thread B', ['1.4.0', '1.4.1'], 1);
  assert.equal(routes.endpointOf('1.4.0'), 'thread B');
  assert.equal(routes.deliver('1.4.0', message('q0')), null);
  assert.equal(routes.deliver('1.4.0', message('q1')), null);
  assert.equal(routes.deliver('1.4.1', message('other')), null);
  assert.equal(routes.deliver('1.4.1', { kind: 'close' }), null);
  assert.deepEqual(routes.opened('thread B', '1.4.0'), [message('q0'), message('q1')]);
  // Open now: straight to the thread; opening twice hands nothing again.
  assert.equal(routes.deliver('1.4.0', message('q2')), 'thread B');
  assert.deepEqual(routes.opened('thread B', '1.4.0'), []);
  assert.deepEqual(routes.opened('thread B', '1.4.1'), [message('other'), { kind: 'close' }]);
  assert.equal(routes.farNodeOf('1.4.1'), null);
  assert.equal(routes.size, 1);
});

test('closing here answers the far node once; a thread\'s end closes all its ends, opened or not', () => {
  const routes = new PortRoutes<string, string>();
  routes.sent('thread A', ['0.0.1', '0.0.2'], 1);
  routes.received('thread A', ['2.9.0'], 2);
  routes.sent('thread C', ['0.7.0'], 3);
  assert.equal(routes.closedHere('0.0.1'), 1);
  assert.equal(routes.closedHere('0.0.1'), null);
  assert.deepEqual(routes.threadEnded('thread A'), [{ id: '0.0.2', farNode: 1 }, { id: '2.9.0', farNode: 2 }]);
  assert.equal(routes.size, 1);
  assert.deepEqual(routes.threadEnded('thread A'), []);
});

test(`at most portRelayPendingMax (${portRelayPendingMax}) wait for an unopened port: one more is DSM_ERR_PORT_RELAYS`, () => {
  const routes = new PortRoutes<string, string>();
  routes.received('thread B', ['1.0.0'], 1);
  for (let index = 0; index < portRelayPendingMax; index += 1) assert.equal(routes.deliver('1.0.0', message(String(index))), null);
  assert.throws(() => routes.deliver('1.0.0', message('one more')), { code: 'DSM_ERR_PORT_RELAYS' });
});

test('relay ids from another node that are not a list of strings are a frame error; an id is registered once', () => {
  const routes = new PortRoutes<string, string>();
  assert.throws(() => routes.received('thread B', 'abc', 1), { code: 'DSM_ERR_FRAME' });
  assert.throws(() => routes.received('thread B', [7], 1), { code: 'DSM_ERR_FRAME' });
  routes.received('thread B', undefined, 1);
  routes.received('thread B', ['1.0.0'], 1);
  assert.throws(() => routes.received('thread B', ['1.0.0'], 1), { code: 'DSM_ERR_INTERNAL' });
});

test(`at most portRelayCountMax (${portRelayCountMax}) relay ends per node: a post that sends more is DSM_ERR_PORT_RELAYS, and registers none`, () => {
  const routes = new PortRoutes<string, string>();
  assert.throws(() => routes.sent('thread A', Array.from({ length: portRelayCountMax + 1 }, (_, index) => `0.0.${index}`), 1), { code: 'DSM_ERR_PORT_RELAYS' });
  assert.equal(routes.size, 0);
});
