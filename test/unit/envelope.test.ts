import assert from 'node:assert/strict';
import { test } from 'node:test';
import { laneOf, route } from '../../src/runtime/envelope.js';

test('every mesh message type belongs to one lane; unknown types to none', () => {
  assert.equal(laneOf('pageRequest'), 'engine');
  assert.equal(laneOf('atomicReply'), 'engine');
  assert.equal(laneOf('rtSpawn'), 'workers');
  assert.equal(laneOf('rtEvent'), 'workers');
  assert.equal(laneOf('rtReport'), 'reports');
  assert.equal(laneOf('rtRaceAlloc'), 'reports');
  assert.equal(laneOf('rtSomethingElse'), null);
  assert.equal(laneOf('toString'), null, 'not an inherited property');
});

test('route types a message by its lane', () => {
  const routed = route({ type: 'vcQuery', info: { vc: [0], intervals: [] } });
  assert.equal(routed?.lane, 'engine');
  assert.equal(route({ type: 'rtTerminate', spawnId: '0:1' })?.lane, 'workers');
  assert.equal(route({ type: 'nonsense' }), null);
});
