// The flow gate of src/runtime/flow.ts against a fake link and engine: work is
// admitted in arrival order only while every link is below its limit, a large
// release is preceded by early flushes in pieces with a drain between them,
// and writers are held while too many pages are dirty.

import assert from 'node:assert/strict';
import { EventEmitter } from 'node:events';
import { test } from 'node:test';
import { dirtyPageCountFlushMin, dirtyPageCountMax, earlyFlushPageCount, earlyFlushPageCountMin, sendQueueBytesMax } from '../../src/constants.js';
import { FlowGate, sendQueueBytesFromEnvironment } from '../../src/runtime/flow.js';

const limit = 1 << 20;

class FakeLinks extends EventEmitter {
  queued = 0;
  /** The one link may hold bytes (a superset is all the gate needs). */
  readonly queuingPeerIds: ReadonlySet<number> = new Set([1]);
  queuedBytes(): number { return this.queued; }
  drainTo(bytes: number): void {
    this.queued = bytes;
    this.emit('drain', 1);
  }
}

class FakeEngine {
  dirty = 0;
  /** Deferred diffs (a release that closed with many dirty pages, when the engine defers). */
  deferred = 0;
  readonly flushes: number[] = [];
  readonly deferredSent: number[] = [];
  constructor(private readonly links: FakeLinks, private readonly bytesPerPage: number) {}
  dirtyPageCount(): number { return this.dirty; }
  flushDirty(pageCountMax: number): number {
    const count = Math.min(pageCountMax, this.dirty);
    this.dirty -= count;
    this.flushes.push(count);
    this.links.queued += count * this.bytesPerPage;
    return count;
  }
  deferredPageCount(): number { return this.deferred; }
  flushDeferred(pageCountMax: number): number {
    const count = Math.min(pageCountMax, this.deferred);
    this.deferred -= count;
    this.deferredSent.push(count);
    this.links.queued += count * this.bytesPerPage;
    return count;
  }
}

const turns = async (count = 5) => { for (let k = 0; k < count; k++) await new Promise((resolve) => setImmediate(resolve)); };

test('work runs at once on an idle link, waits in order on a full one, and runs after the drain', async () => {
  const links = new FakeLinks();
  const gate = new FlowGate(links, new FakeEngine(links, 0), limit, () => {});
  const ran: number[] = [];
  gate.admit(() => ran.push(1));
  assert.deepEqual(ran, [1]);
  links.queued = limit;
  gate.admit(() => ran.push(2));
  gate.admit(() => ran.push(3));
  await turns();
  assert.deepEqual(ran, [1], 'nothing runs while the link holds its limit');
  links.queued = 0;
  gate.admit(() => ran.push(4));
  await turns();
  assert.deepEqual(ran, [1], 'later work does not overtake waiting work, even on an idle link, before the drain event');
  links.drainTo(0);
  await turns();
  assert.deepEqual(ran, [1, 2, 3, 4]);
  assert.equal(gate.parkedCount, 3);
});

test('a release with many dirty pages is preceded by early flushes in pieces, a drain between pieces', async () => {
  const links = new FakeLinks();
  const engine = new FakeEngine(links, limit / earlyFlushPageCount); // a piece fills the link
  const gate = new FlowGate(links, engine, limit, () => {});
  engine.dirty = 3 * earlyFlushPageCount + 10;
  const ran: number[] = [];
  gate.admit(() => ran.push(engine.dirty));
  await turns();
  assert.deepEqual(engine.flushes, [earlyFlushPageCount], 'one piece, then a wait for the drain');
  for (let piece = 2; piece <= 4; piece++) {
    assert.deepEqual(ran, [], 'the release waits while pieces are flushed');
    links.drainTo(0);
    await turns();
    assert.equal(engine.flushes.length, piece);
  }
  assert.deepEqual(engine.flushes, [earlyFlushPageCount, earlyFlushPageCount, earlyFlushPageCount, 10]);
  // The last piece leaves the link below its limit: the release runs, every page flushed ahead.
  assert.deepEqual(ran, [0]);
  // Few dirty pages: no early flush, the release carries them.
  engine.dirty = earlyFlushPageCountMin - 1;
  gate.admit(() => ran.push(engine.dirty));
  assert.deepEqual(ran, [0, earlyFlushPageCountMin - 1]);
});

test('deferring, a release with many dirty pages runs at once and its deferred diffs stream after it, a drain between pieces, later work not held', async () => {
  const links = new FakeLinks();
  const engine = new FakeEngine(links, limit / earlyFlushPageCount); // a piece fills the link
  const gate = new FlowGate(links, engine, limit, () => {}, true);
  engine.dirty = 3 * earlyFlushPageCount + 10;
  const ran: string[] = [];
  // The release: the engine closes the interval, deferring every dirty page's diff.
  gate.admit(() => { ran.push('release'); engine.deferred = engine.dirty; engine.dirty = 0; });
  assert.deepEqual(ran, ['release'], 'no flush ahead: the sync message leaves first');
  assert.deepEqual(engine.flushes, [] as number[]);
  assert.deepEqual(engine.deferredSent, [] as number[], 'the first piece waits a turn (the sync message is sent first)');
  await turns();
  assert.deepEqual(engine.deferredSent, [earlyFlushPageCount], 'one piece, then a wait for the drain');
  // The link is full: new work waits for it, as any work.
  gate.admit(() => ran.push('next'));
  await turns();
  assert.deepEqual(ran, ['release']);
  for (let piece = 2; piece <= 4; piece++) {
    links.drainTo(0);
    await turns();
    assert.equal(engine.deferredSent.length, piece);
  }
  assert.deepEqual(engine.deferredSent, [earlyFlushPageCount, earlyFlushPageCount, earlyFlushPageCount, 10]);
  assert.deepEqual(ran, ['release', 'next'], 'work admitted after the first drain, between pieces (not after the last)');
  assert.equal(gate.streamedPageCount, 3 * earlyFlushPageCount + 10);
  assert.equal(engine.deferred, 0);
  assert.deepEqual(engine.flushes, [] as number[], 'nothing was flushed ahead');
  // Deferred diffs held twins: they count toward the writer pause.
  const paused: boolean[] = [];
  const gate2 = new FlowGate(links, engine, limit, (value) => paused.push(value), true);
  engine.deferred = dirtyPageCountMax;
  links.queued = limit;
  gate2.tick();
  assert.deepEqual(paused, [true], 'the fast path is paused while deferred twins pile up');
  for (let piece = 0; piece < dirtyPageCountMax / earlyFlushPageCount && engine.deferred > 0; piece++) {
    links.drainTo(0);
    await turns();
  }
  assert.deepEqual(paused, [true, false]);
});

test('writers are held past dirtyPageCountMax and let go below dirtyPageCountFlushMin', async () => {
  const links = new FakeLinks();
  const engine = new FakeEngine(links, 0);
  const paused: boolean[] = [];
  const gate = new FlowGate(links, engine, limit, (value) => paused.push(value));
  const served: number[] = [];
  gate.admitWriteFault(() => served.push(1));
  assert.deepEqual(served, [1]);
  engine.dirty = dirtyPageCountMax;
  links.queued = limit; // the flush must wait for the link
  gate.tick();
  assert.deepEqual(paused, [true], 'the fast path is paused');
  gate.admitWriteFault(() => served.push(2));
  gate.admitWriteFault(() => served.push(3));
  await turns();
  assert.deepEqual(served, [1], 'writers wait');
  links.drainTo(0);
  await turns(200);
  assert.ok(engine.dirty < dirtyPageCountFlushMin);
  assert.deepEqual(served, [1, 2, 3], 'held writers go on in order');
  assert.deepEqual(paused, [true, false]);
});

test('writers are held while a link is full (serving a write may flush early at the twin limit) and go on after the drain', async () => {
  const links = new FakeLinks();
  const gate = new FlowGate(links, new FakeEngine(links, 0), limit, () => {});
  const served: number[] = [];
  links.queued = limit;
  gate.admitWriteFault(() => served.push(1));
  gate.admitWriteFault(() => served.push(2));
  assert.deepEqual(served, [] as number[]);
  links.queued = 0;
  gate.admitWriteFault(() => served.push(3));
  assert.deepEqual(served, [] as number[], 'a later writer does not overtake held ones');
  links.drainTo(0);
  assert.deepEqual(served, [1, 2, 3]);
  gate.admitWriteFault(() => served.push(4));
  assert.deepEqual(served, [1, 2, 3, 4], 'an idle link serves at once');
});

test('DSM_SEND_QUEUE_BYTES sets the link limit, within its range', () => {
  assert.equal(sendQueueBytesFromEnvironment({}), sendQueueBytesMax);
  assert.equal(sendQueueBytesFromEnvironment({ DSM_SEND_QUEUE_BYTES: '4m' }), 4 * 1024 * 1024);
  assert.equal(sendQueueBytesFromEnvironment({ DSM_SEND_QUEUE_BYTES: '524288' }), 524288);
  for (const text of ['0', '1k', 'lots', '1g', '-4m']) {
    assert.throws(() => sendQueueBytesFromEnvironment({ DSM_SEND_QUEUE_BYTES: text }), { code: 'DSM_ERR_INVALID_OPTION' });
  }
});

test('admitsNow answers whether admit would run work at once (the channel direct path asks it)', async () => {
  const links = new FakeLinks();
  const engine = new FakeEngine(links, 0);
  const gate = new FlowGate(links, engine, limit, () => {});
  assert.equal(gate.admitsNow(), true, 'an idle gate');
  links.queued = limit;
  assert.equal(gate.admitsNow(), false, 'a full link');
  const ran: number[] = [];
  gate.admit(() => ran.push(1));
  links.drainTo(0);
  assert.equal(gate.admitsNow(), false, 'work still waits for its turn: nothing passes it');
  await turns();
  assert.deepEqual(ran, [1]);
  assert.equal(gate.admitsNow(), true, 'the waiting work ran');
  engine.dirty = earlyFlushPageCountMin;
  assert.equal(gate.admitsNow(), false, 'a large release would be flushed first');
  const deferring = new FlowGate(links, engine, limit, () => {}, true);
  assert.equal(deferring.admitsNow(), true, 'not when the engine defers the diffs');
});

test('the link check reads only the links the mesh names as queuing: none named, no queue is asked', () => {
  const asked: number[] = [];
  const queuing = new Set<number>();
  const links = Object.assign(new EventEmitter(), {
    queuingPeerIds: queuing as ReadonlySet<number>,
    queuedBytes(nodeId: number): number { asked.push(nodeId); return limit; },
  });
  const engine = new FakeEngine(new FakeLinks(), 0);
  const gate = new FlowGate(links, engine, limit, () => {});
  let ran = 0;
  gate.admit(() => ran++);
  assert.equal(ran, 1);
  assert.equal(gate.admitsNow(), true);
  assert.deepEqual(asked, [], 'no link named: no queue read');
  // A named link at its limit holds the work back.
  queuing.add(2);
  assert.equal(gate.admitsNow(), false);
  assert.deepEqual(asked, [2]);
  gate.admit(() => ran++);
  assert.equal(ran, 1);
});
