import assert from 'node:assert/strict';
import { test } from 'node:test';
import { deserializeValue, serializeValue, type BufferRanges } from '../../src/channel/clone.js';

// A fake region: buffers registered by offset, as the app side does with real dsm memory.
function fakeRanges(): BufferRanges & { add(offset: number, buffer: SharedArrayBuffer): void } {
  const byBuffer = new Map<SharedArrayBuffer, number>();
  const byOffset = new Map<number, SharedArrayBuffer>();
  return {
    add(offset, buffer) { byBuffer.set(buffer, offset); byOffset.set(offset, buffer); },
    rangeOf(buffer) { const offset = byBuffer.get(buffer); return offset === undefined ? null : { offset, byteLength: buffer.byteLength }; },
    bufferAt(offset, byteLength) { const buffer = byOffset.get(offset)!; assert.equal(buffer.byteLength, byteLength); return buffer; },
  };
}

test('dsm buffers and views travel by range and come back as the same memory', () => {
  const ranges = fakeRanges();
  const sab = new SharedArrayBuffer(64);
  ranges.add(4096, sab);
  const value = { sab, list: [sab, new Int32Array(sab, 8, 4)], map: new Map([['k', new DataView(sab, 2, 3)]]), n: 5, s: 'x', plain: new Uint8Array([1, 2, 3]) };
  const back = deserializeValue(serializeValue(value, ranges), ranges) as typeof value;
  assert.equal(back.sab, sab);
  assert.equal(back.list[0], sab);
  const view = back.list[1] as Int32Array;
  assert.ok(view instanceof Int32Array);
  assert.equal(view.buffer, sab);
  assert.equal(view.byteOffset, 8);
  assert.equal(view.length, 4);
  const dataView = back.map.get('k')!;
  assert.ok(dataView instanceof DataView);
  assert.equal(dataView.byteOffset, 2);
  assert.equal(dataView.byteLength, 3);
  assert.equal(back.n, 5);
  assert.deepEqual(back.plain, new Uint8Array([1, 2, 3]));
  assert.notEqual(back.plain, value.plain);
});

test('cycles and shared references survive', () => {
  const ranges = fakeRanges();
  const sab = new SharedArrayBuffer(8);
  ranges.add(0, sab);
  const node: Record<string, unknown> = { sab };
  node.self = node;
  const back = deserializeValue(serializeValue([node, node], ranges), ranges) as Array<Record<string, unknown>>;
  assert.equal(back[0], back[1]);
  assert.equal(back[0]!.self, back[0]);
  assert.equal(back[0]!.sab, sab);
});

test('a SharedArrayBuffer that is not dsm memory is a clear error', () => {
  const ranges = fakeRanges();
  assert.throws(() => serializeValue({ sab: new SharedArrayBuffer(8) }, ranges), { code: 'DSM_ERR_NOT_DSM_MEMORY' });
  assert.throws(() => serializeValue(new Int32Array(new SharedArrayBuffer(8)), ranges), { code: 'DSM_ERR_NOT_DSM_MEMORY' });
});
