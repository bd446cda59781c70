import assert from 'node:assert/strict';
import { test } from 'node:test';
import { diffsMessageBytesMax } from '../../src/constants.js';
import { sendingSplitDiffs, splitDiffs } from '../../src/protocol/diff-split.js';
import type { ProtocolMessage } from '../../src/protocol/messages.js';

type Diffs = Extract<ProtocolMessage, { type: 'diffs' }>;

const diffsOf = (sizes: number[], origin?: number): Diffs => ({
  type: 'diffs', interval: 7, pages: sizes.map((_, k) => 100 + k), diffs: sizes.map((size, k) => new Uint8Array(size).fill(k & 0xff)),
  ...(origin === undefined ? {} : { origin }),
});

test('a diffs message within the limit is sent as it is', () => {
  const message = diffsOf([10, 20, 30]);
  assert.deepEqual(splitDiffs(message), [message]);
});

test('an oversized diffs message is split into pieces within the limit, in page order, keeping its other fields', () => {
  const message = diffsOf([400, 400, 400, 50, 900, 10], 3);
  const pieces = splitDiffs(message, 1000);
  assert.ok(pieces.length > 1);
  for (const piece of pieces) {
    assert.equal(piece.interval, 7);
    assert.equal(piece.origin, 3, 'a forwarded message keeps its origin in every piece');
    const bytes = piece.diffs.reduce((sum, diff) => sum + diff.byteLength + 16, 0);
    assert.ok(bytes <= 1000 || piece.pages.length === 1, 'a piece is within the limit (or one diff alone)');
  }
  assert.deepEqual(pieces.flatMap((piece) => piece.pages), message.pages);
  assert.deepEqual(pieces.flatMap((piece) => piece.diffs), message.diffs);
});

test('the engine send splits only diffs messages over diffsMessageBytesMax', () => {
  const sent: ProtocolMessage[] = [];
  const send = sendingSplitDiffs((_to, message) => sent.push(message));
  send(1, { type: 'vcReport', vc: [1] });
  send(1, diffsOf([100]));
  const big = Math.ceil(diffsMessageBytesMax / 3);
  send(1, diffsOf([big, big, big, big]));
  assert.deepEqual(sent.map((message) => message.type), ['vcReport', 'diffs', 'diffs', 'diffs']);
});
