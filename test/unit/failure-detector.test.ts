// The phi-accrual failure detector: the floor holds, the timeout grows when a
// peer's messages have come late or irregularly, and a node's own stalled
// loop is not held against its peers.

import assert from 'node:assert/strict';
import { test } from 'node:test';
import { FailureDetector, LoopLateness } from '../../src/transport/failure-detector.js';

test('with regular heartbeats the timeout is the floor', () => {
  const detector = new FailureDetector(4000, 500, 0);
  for (let t = 500; t <= 50_000; t += 500) detector.heard(t);
  assert.equal(detector.timeoutMs(), 4000);
  assert.equal(detector.dead(50_000 + 4000), false);
  assert.equal(detector.dead(50_000 + 4001), true);
});

test('no peer is dead sooner than the floor, whatever the samples', () => {
  const detector = new FailureDetector(4000, 500, 0);
  for (let t = 1; t <= 1000; t += 1) detector.heard(t);
  assert.equal(detector.timeoutMs(), 4000);
  assert.equal(detector.dead(1000 + 3999), false);
});

test('late and irregular heartbeats (a busy machine) raise the timeout above the floor', () => {
  const detector = new FailureDetector(4000, 500, 0);
  let t = 0;
  // Gaps of 500 ms and, every fourth beat, 3500 ms: what a heavily loaded machine shows.
  for (let beat = 0; beat < 100; beat += 1) {
    t += beat % 4 === 3 ? 3500 : 500;
    detector.heard(t);
  }
  const timeout = detector.timeoutMs();
  assert.ok(timeout > 4000, `timeout ${timeout} above the floor`);
  assert.equal(detector.dead(t + 4500), false, 'a 4.5 s silence is within what this peer has shown');
  assert.equal(detector.dead(t + timeout + 1), true);
});

test('a stall of this node\'s own loop is excused', () => {
  const detector = new FailureDetector(4000, 500, 0);
  const lateness = new LoopLateness(500, 0);
  detector.heard(0);
  assert.equal(lateness.tick(500), 0, 'an on-time tick is not late');
  // The loop stood still for 5 s: the next tick fires at 5500.
  const late = lateness.tick(5500);
  assert.equal(late, 4500);
  detector.excuse(late);
  assert.equal(detector.dead(5500), false, 'the peer\'s beats are unread, not missing');
  assert.equal(detector.dead(5500 + 4001), true, 'silence after the stall still counts');
});

test('the floor must span more than one heartbeat', () => {
  assert.throws(() => new FailureDetector(500, 500, 0), /DSM_ERR_INTERNAL|heartbeat/);
});
