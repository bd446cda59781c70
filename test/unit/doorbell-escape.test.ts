// A given escape in the doorbell ring (src/channel/doorbell.ts, src/channel/server.ts applyGivenEscapes): the
// manager can count it ahead of its turn, once, and it leaves the thread's held posts held.

import assert from 'node:assert/strict';
import { test } from 'node:test';
import { DoorbellBlock, blockBytes } from '../../src/channel/doorbell.js';

test('a given escape is read ahead once (then decoded as applied), a plain escape never; both keep their offsets', () => {
  const block = new DoorbellBlock(new SharedArrayBuffer(blockBytes));
  assert.ok(block.encode(0, { op: 'escape', offset: 65_536, given: true }, true, 0));
  assert.ok(block.encode(1, { op: 'escape', offset: 8_192 }, false, 0));
  assert.ok(block.encode(2, { op: 'free', offset: 4_096 }, true, 0));
  block.publish(3);
  assert.equal(block.leavesPostsHeld(0), true);
  assert.equal(block.leavesPostsHeld(1), false, 'an escape call answers a token: it waits its turn as any call');
  assert.equal(block.takeGivenEscape(1), -1);
  assert.equal(block.takeGivenEscape(2), -1);
  assert.deepEqual(block.decode(0), { op: 'escape', offset: 65_536, given: true });
  assert.equal(block.takeGivenEscape(0), 65_536);
  assert.equal(block.takeGivenEscape(0), -1, 'counted once');
  assert.deepEqual(block.decode(0), { op: 'escape', offset: 65_536, given: true, applied: true });
  assert.deepEqual(block.decode(1), { op: 'escape', offset: 8_192 });
});
