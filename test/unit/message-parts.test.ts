// Messages larger than a frame travel in parts (src/runtime/message-parts.ts): cut by the sending manager, joined by
// the receiving one before anything above sees them; parts out of order are DSM_ERR_FRAME naming what was wrong.

import assert from 'node:assert/strict';
import { test } from 'node:test';
import { frameBytesMax, remoteMessageBytesMax, remoteMessagePartBytes } from '../../src/constants.js';
import type { WorkerLaneMessage } from '../../src/runtime/envelope.js';
import { MessageJoiner, cutMessage } from '../../src/runtime/message-parts.js';

const info = { vc: [0, 0], intervals: [] } as unknown as Extract<WorkerLaneMessage, { type: 'rtPost' }>['info'];

function pattern(length: number, seed: number): Uint8Array {
  const bytes = new Uint8Array(length);
  for (let i = 0; i < length; i++) bytes[i] = (i * 31 + seed + (i >> 16)) & 255;
  return bytes;
}

function post(bytes: Uint8Array): WorkerLaneMessage {
  return { type: 'rtPost', spawnId: 's1', bytes, info };
}

test('a message within one part goes as it is; a larger one in parts of remoteMessagePartBytes, its last in the message', () => {
  const small = post(pattern(remoteMessagePartBytes, 1));
  assert.deepEqual(cutMessage(small), { parts: [], last: small });
  assert.deepEqual(cutMessage({ type: 'rtTerminate', spawnId: 's1' }).parts, []);
  for (const length of [remoteMessagePartBytes + 1, 2 * remoteMessagePartBytes, 2 * remoteMessagePartBytes + 7, frameBytesMax * 3]) {
    const bytes = pattern(length, length & 255);
    const { parts, last } = cutMessage(post(bytes));
    assert.equal(parts.length, Math.ceil(length / remoteMessagePartBytes) - 1, `${length} bytes`);
    for (const part of parts) {
      assert.equal(part.total, length);
      assert.equal(part.bytes.byteLength, remoteMessagePartBytes);
      assert.equal(part.bytes.buffer, bytes.buffer, 'a part is a view: no copy');
    }
    assert.equal(last.type, 'rtPost');
    const rest = (last as Extract<WorkerLaneMessage, { type: 'rtPost' }>).bytes;
    assert.ok(rest.byteLength >= 1 && rest.byteLength <= remoteMessagePartBytes);
    const joiner = new MessageJoiner();
    for (const part of parts) joiner.addPart(2, part);
    assert.equal(joiner.heldBytes(), length);
    const joined = joiner.join(2, last) as Extract<WorkerLaneMessage, { type: 'rtPost' }>;
    assert.deepEqual(joined.bytes, bytes);
    assert.equal(joined.bytes.byteOffset, 0);
    assert.equal(joined.bytes.buffer.byteLength, length, 'whole: it can be transferred to the receiving thread');
    assert.equal(joined.spawnId, 's1');
    assert.equal(joiner.heldBytes(), 0);
  }
});

test('an rtSpawn\'s workerData is cut and joined the same way; senders are joined apart', () => {
  const workerData = pattern(remoteMessagePartBytes * 2 + 3, 5);
  const spawn = { type: 'rtSpawn', spawnId: 'w', threadIdSeen: 1, entry: 'file:///x.mjs', evalCode: false, workerData, options: {}, info } as unknown as WorkerLaneMessage;
  const other = pattern(remoteMessagePartBytes + 10, 9);
  const cutSpawn = cutMessage(spawn);
  const cutOther = cutMessage(post(other));
  const joiner = new MessageJoiner();
  // Interleaved between senders (each sender's in order).
  joiner.addPart(1, cutSpawn.parts[0]!);
  joiner.addPart(3, cutOther.parts[0]!);
  joiner.addPart(1, cutSpawn.parts[1]!);
  const joinedOther = joiner.join(3, cutOther.last) as Extract<WorkerLaneMessage, { type: 'rtPost' }>;
  const joinedSpawn = joiner.join(1, cutSpawn.last) as Extract<WorkerLaneMessage, { type: 'rtSpawn' }>;
  assert.deepEqual(joinedOther.bytes, other);
  assert.deepEqual(joinedSpawn.workerData, workerData);
  // A message with no parts ahead of it is untouched.
  const plain = post(pattern(10, 1));
  assert.equal(joiner.join(1, plain), plain);
});

test('parts out of order, of a size no sender makes, or followed by the wrong message are DSM_ERR_FRAME naming the sender', () => {
  const frame = (pattern: RegExp) => (error: unknown) => (error as { code?: string }).code === 'DSM_ERR_FRAME' && pattern.test((error as Error).message);
  const part = (total: number, length: number) => ({ type: 'rtPart' as const, total, bytes: new Uint8Array(length) });
  assert.throws(() => new MessageJoiner().addPart(4, part(remoteMessagePartBytes, 10)), frame(/node 4 .*total of/));
  assert.throws(() => new MessageJoiner().addPart(4, part(remoteMessageBytesMax + 1, 10)), frame(/remoteMessageBytesMax/));
  assert.throws(() => new MessageJoiner().addPart(4, part(2.5, 10)), frame(/total of 2\.5/));
  const total = remoteMessagePartBytes + 100;
  assert.throws(() => new MessageJoiner().addPart(4, part(total, total)), frame(/left, its last part/), 'a part must leave the message its last byte');
  assert.throws(() => new MessageJoiner().addPart(4, part(total, 0)), frame(/part of 0 bytes/));
  const mixed = new MessageJoiner();
  mixed.addPart(4, part(total, 10));
  assert.throws(() => mixed.addPart(4, part(total + 1, 10)), frame(/while one of/));
  const wrong = new MessageJoiner();
  wrong.addPart(4, part(total, 10));
  assert.throws(() => wrong.join(4, { type: 'rtTerminate', spawnId: 'x' }), frame(/'rtTerminate' message without bytes/));
  const short = new MessageJoiner();
  short.addPart(4, part(total, 10));
  assert.throws(() => short.join(4, post(new Uint8Array(5))), frame(/with 5 bytes after parts that left/));
});
