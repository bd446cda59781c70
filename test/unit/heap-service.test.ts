// The manager's allocation service: which limit an exhausted allocation names.

import assert from 'node:assert/strict';
import { test } from 'node:test';
import { allocSettleMs, arenaChunkBytes } from '../../src/constants.js';
import type { NativeMmu } from '../../src/memory/native.js';
import { HeapService, parseRangeToken, rangeEscapeWeight, rangeToken, type HeapMessage, type LendBounds } from '../../src/runtime/heap-service.js';
import type { ConsistencyInfo } from '../../src/protocol/messages.js';

const fakeNative = {
  collectEverywhere: () => 0,
  collectManager: () => {},
  storeOrReport: () => false,
  collectsPending: () => 0,
  drainFreed: () => new Float64Array(0),
  zero: () => {},
  release: () => {},
} as unknown as NativeMmu;

test('a full slice on a cluster node is named as the node slice, with what to raise', () => {
  const regionBytes = 8 * arenaChunkBytes;
  const service = new HeapService(fakeNative, regionBytes, 1, 4);
  service.alloc(2 * arenaChunkBytes - 4096);
  assert.throws(() => service.alloc(arenaChunkBytes), (error: { code: string; message: string }) =>
    error.code === 'DSM_ERR_REGION_EXHAUSTED' && /node 1's slice/.test(error.message) && /1\/4 of --region-bytes/.test(error.message)
    && /larger --region-bytes/.test(error.message));
});

test('a full region on one node names the region', () => {
  const regionBytes = 2 * arenaChunkBytes;
  const service = new HeapService(fakeNative, regionBytes, 0, 1);
  service.alloc(2 * arenaChunkBytes);
  assert.throws(() => service.alloc(4096), (error: { code: string; message: string }) =>
    error.code === 'DSM_ERR_REGION_EXHAUSTED' && /global region/.test(error.message) && !/slice/.test(error.message));
});

/** Services of a cluster wired together; messages are delivered when `deliver` is called. */
function cluster(nodeCount: number, regionBytes: number, bounds: (node: number) => LendBounds | null = () => null): { services: HeapService[]; deliver: () => number } {
  const queue: Array<{ from: number; to: number; message: HeapMessage }> = [];
  const services = Array.from({ length: nodeCount }, (_, node) => new HeapService(fakeNative, regionBytes, node, nodeCount));
  services.forEach((service, node) => service.borrowThrough((to, message) => queue.push({ from: node, to, message }), bounds(node)));
  const deliver = () => {
    let count = 0;
    while (queue.length > 0) {
      const { from, to, message } = queue.shift()!;
      services[to]!.onChunkMessage(from, message);
      count += 1;
    }
    return count;
  };
  return { services, deliver };
}

const offsetOf = (reply: number | { offset: number }) => (typeof reply === 'number' ? reply : reply.offset);

test('a node whose slice is full borrows free chunks of another node\'s slice, never one the lender used while it has never-used ones (and, with no way to synchronize a lend, never)', () => {
  const { services, deliver } = cluster(4, 32 * arenaChunkBytes);
  const [node0, node1] = services as [HeapService, HeapService];
  // Node 1 used and freed a chunk of its own (8): it may hold old bytes, so it is not lent.
  node1.free(offsetOf(node1.alloc(arenaChunkBytes)));
  for (let k = 0; k < 8; k++) node0.alloc(arenaChunkBytes);
  assert.throws(() => node0.alloc(arenaChunkBytes), /slice of the global region is full/);
  assert.ok(deliver() >= 2);
  assert.equal(node0.chunksBorrowed, 4);
  assert.equal(node1.chunksLent, 4);
  const borrowed = node0.alloc(arenaChunkBytes);
  assert.equal(typeof borrowed, 'number', 'a never-used chunk needs no zeroing');
  const offset = offsetOf(borrowed);
  assert.ok(offset >= 9 * arenaChunkBytes && offset < 13 * arenaChunkBytes, `from node 1's unused chunks 9..12 (${offset / arenaChunkBytes})`);
  // Node 1 keeps its used chunk and the rest of its slice.
  const own = offsetOf(node1.alloc(arenaChunkBytes));
  assert.ok(own === 8 * arenaChunkBytes || (own >= 13 * arenaChunkBytes && own < 16 * arenaChunkBytes), `${own / arenaChunkBytes}`);
});

test('an allocation larger than any slice grows a free run across the slices\' edges, one lender at a time (12 of 16 chunks on 3 nodes: slices of 5, 5 and 6)', () => {
  const { services, deliver } = cluster(3, 16 * arenaChunkBytes);
  const [node0, node1, node2] = services as [HeapService, HeapService, HeapService];
  const attempt = (): number | null => {
    try {
      return offsetOf(node0.alloc(12 * arenaChunkBytes));
    } catch (error) {
      assert.equal((error as { code: string }).code, 'DSM_ERR_REGION_EXHAUSTED');
      deliver();
      return null;
    }
  };
  let offset: number | null = null;
  // A round (no node has a run of 12), then node 1's 5 chunks at the run's end, a round, then node 2's first 2.
  for (let tries = 0; tries < 8 && offset === null; tries++) offset = attempt();
  assert.equal(offset, 0, 'chunks 0..11: node 0\'s slice, all of node 1\'s and two of node 2\'s');
  assert.equal(node0.chunksBorrowed, 7);
  assert.equal(node1.chunksLent + node2.chunksLent, 7);
  // Node 2 keeps the other 4 of its slice; node 1 has none left and borrows.
  assert.equal(offsetOf(node2.alloc(4 * arenaChunkBytes)), 12 * arenaChunkBytes);
  assert.throws(() => node1.alloc(arenaChunkBytes), /DSM_ERR_REGION_EXHAUSTED|full/);
});

test('with no run free in any one table, a borrower gathers one from the free chunks of several nodes, asking each lender for its segment in turn (6 of 16 chunks on 4 nodes, the first 6 taken)', () => {
  const { services, deliver } = cluster(4, 16 * arenaChunkBytes);
  const [node0, node1, node2, node3] = services as [HeapService, HeapService, HeapService, HeapService];
  const attempt = (bytes: number): number | null => {
    try {
      return offsetOf(node0.alloc(bytes));
    } catch (error) {
      assert.equal((error as { code: string }).code, 'DSM_ERR_REGION_EXHAUSTED');
      deliver();
      return null;
    }
  };
  let first: number | null = null;
  for (let tries = 0; tries < 8 && first === null; tries++) first = attempt(6 * arenaChunkBytes);
  assert.equal(first, 0, 'node 0\'s slice and 2 chunks of node 1\'s');
  // Node 0 has no free chunk; chunks 6..15 are free at nodes 1 (6, 7), 2 (8..11) and 3 (12..15).
  let second: number | null = null;
  let tries = 0;
  for (; tries < 8 && second === null; tries++) second = attempt(6 * arenaChunkBytes);
  assert.equal(second, 6 * arenaChunkBytes, 'chunks 6..11: two segments, the lowest window of the fewest asks');
  assert.equal(node1.chunksLent, 4);
  assert.equal(node2.chunksLent, 4);
  assert.equal(node3.chunksLent, 0);
  // The rest stays where it was: node 2 still has no chunk, node 3 its four.
  assert.equal(offsetOf(node3.alloc(4 * arenaChunkBytes)), 12 * arenaChunkBytes);
  assert.throws(() => node2.alloc(arenaChunkBytes), /DSM_ERR_REGION_EXHAUSTED|full/);
});

test('a node whose own free chunks are enough but apart gathers at once: its free chunk and the next node\'s first make the run (2 of 16 chunks on 4 nodes)', () => {
  const { services, deliver } = cluster(4, 16 * arenaChunkBytes);
  const [node0, node1] = services as [HeapService, HeapService];
  const blocks = [0, 1, 2, 3].map(() => offsetOf(node0.alloc(arenaChunkBytes)));
  assert.deepEqual(blocks, [0, 1, 2, 3].map((chunk) => chunk * arenaChunkBytes));
  node0.free(blocks[1]!);
  node0.free(blocks[3]!);
  // Chunks 1 and 3 free, apart: a survey, then one borrow of exactly chunk 4 (not a round of asks for 2 of a lender's own).
  assert.throws(() => node0.alloc(2 * arenaChunkBytes), /DSM_ERR_REGION_EXHAUSTED|full/);
  deliver();
  assert.equal(node0.chunksBorrowed, 1);
  assert.equal(node1.chunksLent, 1);
  assert.equal(offsetOf(node0.alloc(2 * arenaChunkBytes)), 3 * arenaChunkBytes, 'chunks 3 and 4');
});

test('a gather\'s survey answer that was not asked for, or names chunks outside the region, is refused with a clear error', () => {
  const { services, deliver } = cluster(2, 4 * arenaChunkBytes);
  const [node0, node1] = services as [HeapService, HeapService];
  assert.throws(() => node0.onChunkMessage(1, { type: 'rtChunkFree', runs: [2, 1] }),
    (error: { code: string; message: string }) => error.code === 'DSM_ERR_FRAME' && /did not ask for/.test(error.message));
  // Node 0 fills its slice and node 1 lends nothing of a run of 3: a round fails, then the next attempt surveys.
  node0.alloc(2 * arenaChunkBytes);
  node1.alloc(arenaChunkBytes);
  assert.throws(() => node0.alloc(3 * arenaChunkBytes));
  deliver();
  assert.throws(() => node0.alloc(3 * arenaChunkBytes));
  assert.throws(() => node0.onChunkMessage(1, { type: 'rtChunkFree', runs: [3, 2] }),
    (error: { code: string; message: string }) => error.code === 'DSM_ERR_FRAME' && /outside the region or malformed/.test(error.message));
});

test('a borrow for chunks at a place outside the region is refused with a clear error', () => {
  const { services } = cluster(2, 4 * arenaChunkBytes);
  assert.throws(() => services[1]!.onChunkMessage(0, { type: 'rtChunkBorrow', min: 2, count: 2, at: 3 }),
    (error: { code: string; message: string }) => error.code === 'DSM_ERR_FRAME' && /outside the region's 4 chunks/.test(error.message));
});

test('when no node has a free chunk, the error names the region as full and what to raise', () => {
  const { services, deliver } = cluster(2, 4 * arenaChunkBytes);
  const [node0, node1] = services as [HeapService, HeapService];
  node0.alloc(2 * arenaChunkBytes);
  node1.alloc(2 * arenaChunkBytes);
  assert.throws(() => node0.alloc(4096));
  deliver();
  assert.throws(() => node0.alloc(4096), (error: { code: string; message: string }) =>
    error.code === 'DSM_ERR_REGION_EXHAUSTED' && /the global region is full/.test(error.message) && /larger --region-bytes/.test(error.message));
});

test('with no never-used chunk left, a lender lends chunks it used, as a release the borrower acquires before it allocates there', () => {
  const events: string[] = [];
  const info = { vc: [7, 0] } as unknown as ConsistencyInfo;
  const bounds = (node: number): LendBounds => ({
    release: (toNode) => { events.push(`node ${node} releases to ${toNode}`); return info; },
    acquire: (fromNode, got) => { assert.equal(got, info, 'the lender\'s release is what the borrower acquires'); events.push(`node ${node} acquires from ${fromNode}`); },
  });
  const { services, deliver } = cluster(2, 4 * arenaChunkBytes, bounds);
  const [node0, node1] = services as [HeapService, HeapService];
  // Node 1 uses both chunks of its slice and frees them: every chunk it could lend was used.
  const used = [node1.alloc(arenaChunkBytes), node1.alloc(arenaChunkBytes)].map(offsetOf);
  for (const offset of used) node1.free(offset);
  node0.alloc(2 * arenaChunkBytes);
  assert.throws(() => node0.alloc(arenaChunkBytes), /slice of the global region is full/);
  deliver();
  assert.deepEqual(events, ['node 1 releases to 0', 'node 0 acquires from 1']);
  assert.equal(node1.usedChunksLent, 2);
  const reused = node0.alloc(arenaChunkBytes);
  assert.equal(typeof reused, 'object', 'memory that held the lender\'s bytes is zeroed by the allocating thread');
  assert.ok(used.includes(offsetOf(reused)));
});

test('a lend of used chunks without the lender\'s release is refused with a clear error', () => {
  const bounds = (): LendBounds => ({ release: () => ({}) as ConsistencyInfo, acquire: () => {} });
  const { services } = cluster(2, 4 * arenaChunkBytes, bounds);
  const node0 = services[0]!;
  node0.alloc(2 * arenaChunkBytes);
  assert.throws(() => node0.alloc(arenaChunkBytes));
  assert.throws(() => node0.onChunkMessage(1, { type: 'rtChunkLend', firstChunk: 2, count: 1, used: true }),
    (error: { code: string; message: string }) => error.code === 'DSM_ERR_FRAME' && /node 1 lent 1 used chunk/.test(error.message));
});

/** Two or three services with lend bounds that log each release and acquire. */
function boundCluster(nodeCount: number) {
  const events: string[] = [];
  const bounds = (node: number): LendBounds => ({
    release: (toNode) => { events.push(`${node}>${toNode}`); return {} as ConsistencyInfo; },
    acquire: (fromNode) => { events.push(`${node}<${fromNode}`); },
  });
  return { events, ...cluster(nodeCount, 8 * nodeCount * arenaChunkBytes, bounds) };
}

test('a buffer that crossed nodes is reused once every node dropped it: the share waits until the owner runs short, then goes home with a release', () => {
  const { events, services, deliver } = boundCluster(2);
  const [owner, other] = services as [HeapService, HeapService];
  const offset = offsetOf(owner.alloc(arenaChunkBytes));
  const token = owner.onEscape(offset);
  other.onHold(offset, arenaChunkBytes, token);
  // The owner's own buffers go first: the range stays, another node holds it.
  owner.onBufferCollected(offset, arenaChunkBytes);
  assert.equal(owner.rangesReclaimed, 0);
  assert.equal(owner.liveCount, 1);
  other.onBufferCollected(offset, arenaChunkBytes);
  assert.equal(deliver(), 0, 'no message while the owner has room');
  // The owner runs short: it asks, the holder returns its share with its release.
  for (let k = 0; k < 7; k += 1) owner.alloc(arenaChunkBytes);
  assert.throws(() => owner.alloc(arenaChunkBytes), /slice of the global region is full/);
  deliver();
  assert.deepEqual(events.filter((event) => event === '1>0' || event === '0<1').slice(0, 2), ['1>0', '0<1'], 'the holder releases to the owner, which acquires before it reuses');
  assert.equal(owner.rangesReclaimed, 1);
  assert.equal(other.rangesReturned, 1);
  const again = owner.alloc(arenaChunkBytes);
  assert.deepEqual(again, { offset, zero: true }, 'the reused range is zeroed by its allocating thread');
});

const ask = (holder: HeapService, owner = 0) => holder.onChunkMessage(owner, { type: 'rtRangeCollect' });

test('a weight a thread gave itself (a given escape) is counted before its buffer\'s collection is acted on, even when the manager had not come to it; the range is reused once it is back', () => {
  const { services, deliver } = boundCluster(2);
  const [owner, other] = services as [HeapService, HeapService];
  const offset = offsetOf(owner.alloc(arenaChunkBytes));
  // The thread posted the escape (unserved: the manager sees it only through beforeCollected) and its message went.
  const pending = [offset];
  owner.beforeCollected = () => { for (const each of pending.splice(0)) owner.onEscapeGiven(each); };
  other.onHold(offset, arenaChunkBytes, rangeToken(rangeEscapeWeight, 0));
  owner.onBufferCollected(offset, arenaChunkBytes);
  assert.equal(owner.rangesReclaimed, 0);
  assert.equal(owner.liveCount, 1, 'not reused while the other node holds it');
  // Served later, the entry counts nothing again (ChannelServer marks it applied; the manager skips it).
  other.onBufferCollected(offset, arenaChunkBytes);
  for (let k = 0; k < 7; k += 1) owner.alloc(arenaChunkBytes);
  assert.throws(() => owner.alloc(arenaChunkBytes), /slice of the global region is full/);
  deliver();
  assert.equal(owner.rangesReclaimed, 1);
  assert.deepEqual(owner.alloc(arenaChunkBytes), { offset, zero: true });
});

test('without beforeCollected a given escape counted late would reuse a range another node holds (what the hook prevents)', () => {
  const { services } = boundCluster(2);
  const [owner] = services as [HeapService, HeapService];
  const offset = offsetOf(owner.alloc(arenaChunkBytes));
  owner.onBufferCollected(offset, arenaChunkBytes);
  assert.equal(owner.liveCount, 0, 'released at once: the range is free for the next allocation');
});

test('a given escape for a range the program freed already keeps its weight aside: its return is taken from it, and a later allocation of the range keeps its own count', () => {
  const { services, deliver } = boundCluster(2);
  const [owner, other] = services as [HeapService, HeapService];
  const offset = offsetOf(owner.alloc(arenaChunkBytes));
  owner.free(offset);
  owner.onEscapeGiven(offset);
  other.onHold(offset, arenaChunkBytes, rangeToken(rangeEscapeWeight, 0));
  const again = offsetOf(owner.alloc(arenaChunkBytes));
  assert.equal(again, offset);
  other.onBufferCollected(offset, arenaChunkBytes);
  ask(other);
  assert.doesNotThrow(() => deliver(), 'the stray weight comes back without a DSM_ERR_FRAME');
  assert.equal(owner.liveCount, 1, 'the new allocation is untouched');
});

test('a forwarded buffer splits its weight; the owner waits for every share, and a buffer back home holds its own', () => {
  const { services, deliver } = boundCluster(3);
  const [owner, first, second] = services as [HeapService, HeapService, HeapService];
  const offset = offsetOf(owner.alloc(arenaChunkBytes));
  first.onHold(offset, arenaChunkBytes, owner.onEscape(offset));
  second.onHold(offset, arenaChunkBytes, first.onEscape(offset));
  // Sent home again from the second node (the owner holds a buffer over it once more).
  owner.onHold(offset, arenaChunkBytes, second.onEscape(offset));
  owner.onBufferCollected(offset, arenaChunkBytes);
  first.onBufferCollected(offset, arenaChunkBytes);
  ask(first);
  ask(second);
  deliver();
  assert.equal(owner.rangesReclaimed, 0, 'the second node still holds a share');
  // Within the asked window a share dropped goes back at once.
  second.onBufferCollected(offset, arenaChunkBytes);
  deliver();
  assert.equal(owner.rangesReclaimed, 1);
});

test('a share that cannot split keeps the range for good; so does an explicit free of a buffer that crossed nodes', () => {
  const { services, deliver } = boundCluster(2);
  const [owner, other] = services as [HeapService, HeapService];
  const offset = offsetOf(owner.alloc(arenaChunkBytes));
  other.onHold(offset, arenaChunkBytes, rangeToken(1, 0));
  // The owner's books: hand-made share of 1 stands for the end of a long chain of forwards.
  (owner as unknown as { escaped: Map<number, { outstanding: number; keep: boolean; localAlive: boolean }> }).escaped.set(offset, { outstanding: 1, keep: false, localAlive: true });
  const forwarded = parseRangeToken(other.onEscape(offset));
  assert.deepEqual(forwarded, { weight: 0, owner: 0 });
  other.onBufferCollected(offset, arenaChunkBytes);
  owner.onBufferCollected(offset, arenaChunkBytes);
  ask(other);
  deliver();
  assert.equal(owner.rangesReclaimed, 0, 'kept: a node may hold a buffer with no share');
  const freed = offsetOf(owner.alloc(arenaChunkBytes));
  other.onHold(freed, arenaChunkBytes, owner.onEscape(freed));
  owner.free(freed);
  other.onBufferCollected(freed, arenaChunkBytes);
  deliver();
  assert.equal(owner.rangesReclaimed, 0);
});

test('a buffer in a BroadcastChannel message goes to every other node with one token, its weight counted once a copy; each node splits its share among the threads it hands the message to, and the range is reused once every thread held and dropped it or gave its share back', () => {
  const { services, deliver } = boundCluster(4);
  const [owner, first, second, third] = services as [HeapService, HeapService, HeapService, HeapService];
  const offset = offsetOf(owner.alloc(arenaChunkBytes));
  const token = owner.onEscape(offset, 3);
  assert.equal(parseRangeToken(token)!.weight, rangeEscapeWeight);
  const held = [offset, arenaChunkBytes, token];
  // The first node hands it to two threads, the second to one that had no instance open, the third to none.
  const [a, b, c] = [{}, {}, {}];
  first.expectSharedHolds([a, b], held);
  assert.equal(first.pendingHolds, 2);
  second.expectSharedHolds([c], held);
  second.holdsUnread(c, held);
  third.expectSharedHolds([], held);
  first.onHold(offset, arenaChunkBytes, token, a);
  // a's buffer is collected before b made its own: a's share goes home, b's keeps the range.
  owner.onBufferCollected(offset, arenaChunkBytes);
  first.onBufferCollected(offset, arenaChunkBytes);
  for (const holder of [first, second, third]) ask(holder);
  deliver();
  assert.equal(owner.rangesReclaimed, 0, 'a thread on the first node has not made its buffer yet');
  first.onHold(offset, arenaChunkBytes, token, b);
  assert.equal(first.pendingHolds, 0);
  first.onBufferCollected(offset, arenaChunkBytes);
  deliver();
  assert.equal(owner.rangesReclaimed, 1, 'every share came back');
  // A thread's second instance of the channel makes no second hold (src/threads/broadcast-channel.ts); a thread
  // that ends with its share pending gives it back.
  const again = offsetOf(owner.alloc(arenaChunkBytes));
  const next = owner.onEscape(again, 3);
  first.expectSharedHolds([a, b], [again, arenaChunkBytes, next]);
  first.onHold(again, arenaChunkBytes, next, a);
  first.endpointEnded(b);
  for (const holder of [second, third]) holder.expectSharedHolds([], [again, arenaChunkBytes, next]);
  owner.onBufferCollected(again, arenaChunkBytes);
  first.onBufferCollected(again, arenaChunkBytes);
  ask(first);
  deliver();
  assert.equal(owner.rangesReclaimed, 2);
});

test('a holder that broadcasts a buffer shares its weight evenly with the copies; with too little to split, the range is kept for good', () => {
  const { services, deliver } = boundCluster(3);
  const [owner, first, second] = services as [HeapService, HeapService, HeapService];
  const offset = offsetOf(owner.alloc(arenaChunkBytes));
  first.onHold(offset, arenaChunkBytes, owner.onEscape(offset));
  const token = first.onEscape(offset, 2);
  assert.deepEqual(parseRangeToken(token), { weight: Math.floor(rangeEscapeWeight / 3), owner: 0 });
  second.onHold(offset, arenaChunkBytes, token);
  owner.expectSharedHolds([], [offset, arenaChunkBytes, token]);
  for (const service of services) service.onBufferCollected(offset, arenaChunkBytes);
  ask(first);
  ask(second);
  deliver();
  assert.equal(owner.rangesReclaimed, 1, 'the copy that came home and the other node\'s share went back');
  const other = offsetOf(owner.alloc(arenaChunkBytes));
  first.onHold(other, arenaChunkBytes, rangeToken(2, 0));
  (owner as unknown as { escaped: Map<number, { outstanding: number; keep: boolean; localAlive: boolean }> }).escaped.set(other, { outstanding: 2, keep: false, localAlive: true });
  assert.deepEqual(parseRangeToken(first.onEscape(other, 2)), { weight: 0, owner: 0 });
});

test('a malformed range token or a weight the owner never gave is refused with a clear error', () => {
  const { services } = boundCluster(2);
  const [owner, other] = services as [HeapService, HeapService];
  assert.throws(() => other.onHold(0, 4096, -3), (error: { code: string }) => error.code === 'DSM_ERR_FRAME');
  assert.throws(() => other.onHold(0, 4096, rangeToken(5, 9)), (error: { code: string }) => error.code === 'DSM_ERR_FRAME');
  const offset = offsetOf(owner.alloc(arenaChunkBytes));
  assert.throws(() => owner.onChunkMessage(1, { type: 'rtRangeRelease', ranges: [{ offset, byteLength: arenaChunkBytes, weight: 7, keep: false }], info: {} as ConsistencyInfo }),
    (error: { code: string; message: string }) => error.code === 'DSM_ERR_FRAME' && /node 1 returned a weight of 7/.test(error.message));
});

test('a node whose free memory falls under a quarter of its share asks its threads, and every other node, to collect before any allocation fails', () => {
  let collects = 0, managerCollects = 0;
  const native = { ...fakeNative, collectEverywhere: () => { collects += 1; return 0; }, collectManager: () => { managerCollects += 1; } } as unknown as NativeMmu;
  const regionBytes = 16 * arenaChunkBytes;
  const sent: Array<{ to: number; type: string }> = [];
  const service = new HeapService(native, regionBytes, 0, 2);
  service.borrowThrough((to, message) => sent.push({ to, type: message.type }));
  // Node 0's share is 8 chunks: 5 leave 3 free (not under 2), the 7th leaves 1.
  for (let k = 0; k < 5; k++) service.alloc(arenaChunkBytes);
  assert.equal(service.pressureCollects, 0);
  assert.equal(collects, 0);
  service.alloc(arenaChunkBytes);
  service.alloc(arenaChunkBytes);
  assert.ok(service.pressureCollects >= 1, 'under pressure');
  assert.equal(collects, 1, 'its threads were asked once (rate-limited)');
  assert.equal(managerCollects, 0, 'a minor collection first, in the app threads only');
  assert.deepEqual(sent, [{ to: 1, type: 'rtRangeCollect' }], 'and the other node');
});

test(`the manager decides the region is really full: a failed allocation waits until a full collection was asked and allocSettleMs (${allocSettleMs} ms) passed with nothing freed (and, on a cluster, every node asked and none lent); what is freed meanwhile starts the round again`, (t) => {
  // A fake clock: the decision is made on the manager's clock, not timed here.
  let clock = 1000;
  t.mock.method(performance, 'now', () => clock);
  let managerCollects = 0;
  const service = new HeapService({ ...fakeNative, collectManager: () => { managerCollects += 1; } } as unknown as NativeMmu, 2 * arenaChunkBytes, 0, 1);
  const first = service.alloc(arenaChunkBytes) as number;
  service.alloc(arenaChunkBytes);
  // The first ask is a minor collection: wait.
  assert.deepEqual(service.allocOrWait(4096), { wait: true });
  assert.equal(managerCollects, 0, 'a minor collection runs in the app threads only');
  clock += 60;
  // The second a full one: wait allocSettleMs after it.
  assert.deepEqual(service.allocOrWait(4096), { wait: true });
  assert.equal(managerCollects, 1, 'a full one in the manager\'s heap too (a same-node postMessageToThread passes buffers through it)');
  clock += allocSettleMs - 1;
  assert.deepEqual(service.allocOrWait(4096), { wait: true });
  // Something freed: a new round (the retry finds the room here).
  service.onBufferCollected(first, arenaChunkBytes);
  assert.equal(typeof service.allocOrWait(4096), 'number');
  service.allocOrWait(arenaChunkBytes - 4096 - 4096);
  clock += 1000;
  assert.deepEqual(service.allocOrWait(arenaChunkBytes), { wait: true });
  clock += 60;
  assert.deepEqual(service.allocOrWait(arenaChunkBytes), { wait: true });
  clock += allocSettleMs;
  assert.throws(() => service.allocOrWait(arenaChunkBytes), (error: { code: string; message: string }) =>
    error.code === 'DSM_ERR_REGION_EXHAUSTED' && /larger --region-bytes/.test(error.message));
});

test('on a cluster the region is full only once every other node answered that a full collection ran in all its threads, and a borrow round after that found no lender (however long its threads take)', (t) => {
  let clock = 1000;
  t.mock.method(performance, 'now', () => clock);
  // Node 1's threads are slow to run the collections asked of them (a loaded machine): one stays pending.
  let pending1 = 1;
  const natives = [fakeNative, { ...fakeNative, collectsPending: () => pending1 } as unknown as NativeMmu];
  const queue: Array<{ from: number; to: number; message: HeapMessage }> = [];
  const services = [0, 1].map((node) => new HeapService(natives[node]!, 4 * arenaChunkBytes, node, 2));
  services.forEach((service, node) => service.borrowThrough((to, message) => queue.push({ from: node, to, message })));
  const deliver = () => { while (queue.length > 0) { const { from, to, message } = queue.shift()!; services[to]!.onChunkMessage(from, message); } };
  const [node0, node1] = services as [HeapService, HeapService];
  node0.alloc(2 * arenaChunkBytes);
  node1.alloc(2 * arenaChunkBytes);
  assert.deepEqual(node0.allocOrWait(arenaChunkBytes), { wait: true });
  deliver();
  clock += 60;
  assert.deepEqual(node0.allocOrWait(arenaChunkBytes), { wait: true });
  deliver();
  // Long past every time the old rule waited (a refusal allocSettleMs after the ask), node 1 has not answered.
  clock += 4 * allocSettleMs;
  assert.deepEqual(node0.allocOrWait(arenaChunkBytes), { wait: true });
  deliver();
  clock += 60;
  assert.deepEqual(node0.allocOrWait(arenaChunkBytes), { wait: true }, 'no answer from node 1 yet: not full');
  deliver();
  // Its threads ran the full collection: it answers.
  pending1 = 0;
  node1.answerCollectAsks();
  assert.ok(queue.some((entry) => entry.message.type === 'rtRangeCollected'), 'node 1 answered');
  deliver();
  // The last refusal came before the answer: one more borrow round.
  assert.deepEqual(node0.allocOrWait(arenaChunkBytes), { wait: true });
  deliver();
  clock += 60;
  assert.throws(() => node0.allocOrWait(arenaChunkBytes), (error: { code: string; message: string }) =>
    error.code === 'DSM_ERR_REGION_EXHAUSTED' && /global region is full/.test(error.message));
  // An answer to an ask never made is refused with a clear error.
  assert.throws(() => node0.onChunkMessage(1, { type: 'rtRangeCollected', ask: 999 }), (error: { code: string; message: string }) =>
    error.code === 'DSM_ERR_FRAME' && /did not make/.test(error.message));
  assert.throws(() => node1.onChunkMessage(0, { type: 'rtRangeCollect', ask: -1 }), (error: { code: string; message: string }) =>
    error.code === 'DSM_ERR_FRAME' && /not a positive integer/.test(error.message));
});

test('a message no thread reads gives its buffers\' weights back when the thread ends (pending holds); one a thread read holds them as before', () => {
  const { services, deliver } = boundCluster(3);
  const [owner, first, second] = services as [HeapService, HeapService, HeapService];
  const threadA = {}, threadB = {};
  // Unread: handed to thread A on node 1, which ends without reading it.
  const offset = offsetOf(owner.alloc(arenaChunkBytes));
  const token = owner.onEscape(offset);
  first.expectHolds(threadA, [offset, arenaChunkBytes, token]);
  assert.equal(first.pendingHolds, 1);
  owner.onBufferCollected(offset, arenaChunkBytes);
  first.endpointEnded(threadA);
  assert.equal(first.pendingHolds, 0);
  assert.equal(first.holdsAbandoned, 1);
  ask(first);
  deliver();
  assert.equal(owner.rangesReclaimed, 1, 'every weight is back');
  // A hold from a thread that ended is ignored (its weight went back already), and so is what comes for it later.
  first.onHold(offset, arenaChunkBytes, token, threadA);
  first.onBufferCollected(offset, arenaChunkBytes);
  ask(first);
  assert.doesNotThrow(() => deliver());
  // Read: the thread's hold takes the pending one; its end gives nothing back while its buffer lives.
  const read = offsetOf(owner.alloc(arenaChunkBytes));
  const readToken = owner.onEscape(read);
  first.expectHolds(threadB, [read, arenaChunkBytes, readToken]);
  first.onHold(read, arenaChunkBytes, readToken, threadB);
  assert.equal(first.pendingHolds, 0);
  owner.onBufferCollected(read, arenaChunkBytes);
  first.endpointEnded(threadB);
  ask(first);
  deliver();
  assert.equal(owner.rangesReclaimed, 1, 'the buffer made from it still lives on node 1');
  first.onBufferCollected(read, arenaChunkBytes);
  ask(first);
  deliver();
  assert.equal(owner.rangesReclaimed, 2);
  // Handed to a thread that ended already: back at once. Back home unread: the owner's outstanding weight drops.
  const late = offsetOf(owner.alloc(arenaChunkBytes));
  second.expectHolds(threadA, []);
  const lateToken = owner.onEscape(late);
  const home = owner.onEscape(late);
  second.endpointEnded(threadB);
  second.expectHolds(threadB, [late, arenaChunkBytes, lateToken]);
  owner.expectHolds(threadA, [late, arenaChunkBytes, home]);
  owner.onBufferCollected(late, arenaChunkBytes);
  owner.endpointEnded(threadA);
  ask(second);
  deliver();
  assert.equal(owner.rangesReclaimed, 3);
});

test('a message dropped where a buffer over its range lives gives its weight back with that buffer\'s; a malformed list of held ranges is DSM_ERR_FRAME', () => {
  const { services, deliver } = boundCluster(2);
  const [owner, other] = services as [HeapService, HeapService];
  const offset = offsetOf(owner.alloc(arenaChunkBytes));
  other.onHold(offset, arenaChunkBytes, owner.onEscape(offset));
  other.abandonHolds([offset, arenaChunkBytes, owner.onEscape(offset)]);
  owner.onBufferCollected(offset, arenaChunkBytes);
  ask(other);
  deliver();
  assert.equal(owner.rangesReclaimed, 0, 'a buffer lives on node 1');
  other.onBufferCollected(offset, arenaChunkBytes);
  ask(other);
  deliver();
  assert.equal(owner.rangesReclaimed, 1);
  const frame = (error: { code: string }) => error.code === 'DSM_ERR_FRAME';
  assert.throws(() => other.expectHolds({}, [offset, arenaChunkBytes]), frame);
  assert.throws(() => other.expectHolds({}, [-4096, arenaChunkBytes, rangeToken(2, 0)]), frame);
  assert.throws(() => other.expectHolds({}, [offset, arenaChunkBytes, rangeToken(2, 9)]), frame);
  assert.throws(() => owner.abandonHolds([offset + arenaChunkBytes, arenaChunkBytes, rangeToken(2, 0)]), frame, 'a weight the owner never gave');
});

test('a node that received one buffer many times gives at most an owner\'s weight with each post of it (their sum is more than a token carries)', () => {
  const { services, deliver } = boundCluster(2);
  const [owner, other] = services as [HeapService, HeapService];
  const offset = offsetOf(owner.alloc(arenaChunkBytes));
  for (let k = 0; k < 40; k += 1) other.onHold(offset, arenaChunkBytes, owner.onEscape(offset));
  const back = parseRangeToken(other.onEscape(offset))!;
  assert.deepEqual(back, { weight: rangeEscapeWeight, owner: 0 });
  owner.onHold(offset, arenaChunkBytes, rangeToken(back.weight, 0));
  owner.onBufferCollected(offset, arenaChunkBytes);
  other.onBufferCollected(offset, arenaChunkBytes);
  ask(other);
  deliver();
  assert.equal(owner.rangesReclaimed, 1, 'every weight came home');
});

test('a thread\'s allocation cache: blocks come in batches, each the thread\'s until reported collected; at its end the ones it never made buffers of go back, the others wait for their collection', () => {
  const made = new Set<number>();
  const native = { ...fakeNative, storeOrReport: (offset: number) => made.has(offset) } as unknown as NativeMmu;
  const service = new HeapService(native, 8 * arenaChunkBytes, 0, 1);
  const thread = {};
  const blocks = service.allocBatch(64, 8, thread) as number[];
  assert.equal(blocks.length, 16, 'eight blocks, each with its zero flag');
  const offsets = blocks.filter((_, index) => index % 2 === 0);
  assert.equal(new Set(offsets).size, 8);
  assert.equal(service.liveCount, 8);
  // The thread made buffers of three; one of them was collected already.
  made.add(offsets[0]!);
  made.add(offsets[1]!);
  service.onBufferCollected(offsets[2]!, 64);
  assert.equal(service.liveCount, 7);
  service.endpointEnded(thread);
  assert.equal(service.cachedReturned, 5, 'the five never made went back');
  assert.equal(service.liveCount, 2, 'the two buffers alive wait for their collection');
  made.clear();
  service.onBufferCollected(offsets[0]!, 64);
  service.onBufferCollected(offsets[1]!, 64);
  assert.equal(service.liveCount, 0);
  // A batch asked by a thread that ended meanwhile goes back at once; a freed block is no longer the thread's.
  const late = {};
  service.endpointEnded(late);
  service.allocBatch(64, 4, late);
  assert.equal(service.liveCount, 0);
  const other = {};
  const kept = service.allocBatch(128, 2, other) as number[];
  service.free(kept[0]!);
  service.endpointEnded(other);
  assert.equal(service.liveCount, 0);
});
