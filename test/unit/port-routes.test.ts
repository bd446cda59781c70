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

test('a thread ending with two relay ends of one local channel: held, then joined; each far end then talks to the other\'s, in order, and a close ends both', () => {
  const routes = new PortRoutes<string, string>();
  // Thread M on node 1 received relay 0.0.0 from node 0 and posted its port on as relay 1.5.0 to node 2.
  routes.received('thread M', ['0.0.0'], 0);
  assert.deepEqual(routes.opened('thread M', '0.0.0'), []);
  routes.sent('thread M', ['1.5.0'], 2);
  assert.equal(routes.spliced('0.0.0'), false);
  routes.hold('thread M', [['0.0.0', '1.5.0']]);
  assert.equal(routes.spliced('0.0.0'), true);
  // What comes meanwhile waits for the join (the thread forwards what reached it first).
  assert.deepEqual(routes.passOn('0.0.0', 0, message('from 0')), []);
  assert.deepEqual(routes.passOn('1.5.0', 2, message('from 2')), []);
  assert.deepEqual(routes.join('thread M', [['0.0.0', '1.5.0']]), [
    { fromNode: 0, toNode: 2, id: '1.5.0', delivery: message('from 0') },
    { fromNode: 2, toNode: 0, id: '0.0.0', delivery: message('from 2') },
  ]);
  // The thread's end no longer closes them.
  assert.deepEqual(routes.threadEnded('thread M'), []);
  assert.deepEqual(routes.passOn('0.0.0', 0, message('later')), [{ fromNode: 0, toNode: 2, id: '1.5.0', delivery: message('later') }]);
  // Ports inside a message pass through when the far nodes differ, both ways, until closed.
  assert.equal(routes.throughAdded(['0.0.7'], 0, 2), true);
  assert.equal(routes.spliced('0.0.7'), true);
  assert.deepEqual(routes.passOn('0.0.7', 2, message('back')), [{ fromNode: 2, toNode: 0, id: '0.0.7', delivery: message('back') }]);
  assert.deepEqual(routes.passOn('0.0.7', 0, { kind: 'close' }), [{ fromNode: 0, toNode: 2, id: '0.0.7', delivery: { kind: 'close' } }]);
  assert.equal(routes.throughAdded(['0.0.8'], 0, 0), false);
  assert.deepEqual(routes.passOn('1.5.0', 2, { kind: 'close' }), [{ fromNode: 2, toNode: 0, id: '0.0.0', delivery: { kind: 'close' } }]);
  assert.equal(routes.size, 0);
});

test('a splice one of whose ends closed before the join ends the other (its far end sees close); ids not a thread\'s are left alone', () => {
  const routes = new PortRoutes<string, string>();
  routes.sent('thread M', ['1.5.0', '1.5.1'], 0);
  routes.sent('thread N', ['1.6.0'], 2);
  routes.hold('thread M', [['1.5.0', '1.5.1'], ['1.6.0', '1.9.9']]);
  assert.equal(routes.spliced('1.6.0'), false);
  assert.equal(routes.closedHere('1.5.1'), 0);
  assert.deepEqual(routes.join('thread M', [['1.5.0', '1.5.1']]), [{ fromNode: 0, toNode: 0, id: '1.5.0', delivery: { kind: 'close' } }]);
  assert.equal(routes.size, 1);
  assert.throws(() => routes.hold('thread M', [['1.5.0']]), /DSM_ERR_INTERNAL|pairs of relay ids/);
});
