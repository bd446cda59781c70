// The runtime's engine host (src/runtime/engine-host.ts) under the seeded
// simulation: the random data-race-free programs of programs.ts, run by N
// hosts over simulated memory and a reordering network, must end with the
// sequential result; a thread that ends while parked has its requests
// withdrawn, and nothing answers it afterwards.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { pageBytes } from '../../src/constants.js';
import type { SyncRequest, SyncResult } from '../../src/protocol/engine.js';
import { HostCluster } from './host-sim.js';
import { expectedCounts, generateProgram, ownedValue, threadProgram } from './programs.js';
import { Prng, readU32, type ThreadOp, type ThreadProgram } from './sim.js';

const seedCount = 60;

/** Runs one seed's program on hosts; throws naming what went wrong. Returns the messages sent. */
function runHostSeed(seed: number, protocol: 'hlrc' | 'sc'): number {
  const prng = new Prng(seed ^ 0x4057);
  const nodeCount = 1 + prng.int(4);
  const spec = generateProgram(prng, nodeCount);
  const cluster = new HostCluster({
    seed, nodeCount, pageCount: spec.pageCount, protocol,
    placement: prng.chance(0.5) ? 'roundRobin' : 'block',
    deliverBias: 0.2 + prng.next() * 0.7,
    trace: seed % 3 === 0,
  });
  for (let t = 0; t < spec.threadCount; t++) cluster.addThread(t % nodeCount, (index) => threadProgram(spec, index));
  cluster.run();
  cluster.drain();
  for (const host of cluster.hosts) {
    if (host.syncInFlight !== 0) throw new Error(`node ${host.nodeId} ends with ${host.syncInFlight} parked sync request(s)`);
    if (host.engine.tableSizes()['pending'] !== 0) throw new Error(`node ${host.nodeId} ends with pending requests`);
  }
  if (protocol === 'hlrc') {
    // Homes converge: every word's home copy holds its final value.
    const homeWord = (address: number): number => {
      const page = Math.floor(address / pageBytes);
      const home = cluster.hosts.findIndex((host) => host.engine.homeOf(page) === host.nodeId);
      return readU32(cluster.memories[home]!.data, address);
    };
    const last = spec.phaseCount - 1;
    for (const { address } of spec.owned) {
      if (homeWord(address) !== ownedValue(address, last)) throw new Error(`home copy of word @${address} is ${homeWord(address)}, expected ${ownedValue(address, last)}`);
    }
    const expect = expectedCounts(spec);
    spec.counters.forEach((c, k) => {
      if (homeWord(c.address) !== expect.counters[k]) throw new Error(`home copy of counter ${k} is ${homeWord(c.address)}, expected ${expect.counters[k]}`);
    });
  }
  return cluster.network.messageCount;
}

for (const protocol of ['hlrc', 'sc'] as const) {
  test(`engine hosts, ${protocol}: ${seedCount} seeded programs end with the sequential result`, () => {
    let messages = 0;
    for (let seed = 1; seed <= seedCount; seed++) {
      try {
        messages += runHostSeed(seed, protocol);
      } catch (error) {
        assert.fail(`seed ${seed} (${protocol}): ${(error as Error).stack ?? String(error)}`);
      }
    }
    assert.ok(messages > seedCount, 'the programs talk across nodes');
  });
}

function* sync(request: SyncRequest): Generator<ThreadOp, SyncResult, unknown> {
  const result = (yield { op: 'sync', request }) as SyncResult;
  if (!result.ok) throw new Error(`${request.kind} failed: ${result.message}`);
  return result;
}

test('engine hosts: a thread that ends while parked on a lock is withdrawn; the lock goes to the next thread', () => {
  for (let seed = 1; seed <= 20; seed++) {
    try {
      const lockId = 5;
      const cluster = new HostCluster({ seed, nodeCount: 3, pageCount: 4 });
      let holderLocked = false;
      let holderMayUnlock = false;
      let lastGotIt = false;
      // Thread 0 (node 0) takes the lock and holds it until told.
      cluster.addThread(0, (thread): ThreadProgram => (function* () {
        yield* sync({ kind: 'lock', lockId, threadId: thread });
        holderLocked = true;
        yield { op: 'store', address: 0, value: 41 };
        while (!holderMayUnlock) yield { op: 'load', address: 0 };
        yield* sync({ kind: 'unlock', lockId, threadId: thread });
      })());
      // Thread 1 (node 1) waits for the lock and is killed while parked.
      const victim = cluster.addThread(1, (thread): ThreadProgram => (function* () {
        while (!holderLocked) yield { op: 'load', address: pageBytes };
        yield* sync({ kind: 'lock', lockId, threadId: thread });
        throw new Error('the killed thread got the lock');
      })());
      // Thread 2 (node 2) locks after the victim ended, sees thread 0's write.
      cluster.addThread(2, (thread): ThreadProgram => (function* () {
        while (!cluster.threads[victim]!.done) yield { op: 'load', address: 2 * pageBytes };
        holderMayUnlock = true;
        yield* sync({ kind: 'lock', lockId, threadId: thread });
        const value = (yield { op: 'load', address: 0 }) as number;
        if (value !== 41) throw new Error(`the next holder reads ${value}, expected 41`);
        lastGotIt = true;
        yield* sync({ kind: 'unlock', lockId, threadId: thread });
      })());
      // Kill the victim once it is parked on the lock (its thread terminated), then run to the end.
      const victimThread = cluster.threads[victim]!;
      cluster.run(() => victimThread.blocked && victimThread.current?.op === 'sync');
      assert.ok(!victimThread.done, 'the victim parks on the lock');
      assert.equal(cluster.hosts[1]!.syncInFlight, 1, 'its request is parked in its node\'s host');
      cluster.kill(victim);
      cluster.run();
      cluster.drain();
      assert.ok(lastGotIt, 'the thread after the victim gets the lock');
      for (const host of cluster.hosts) assert.equal(host.syncInFlight, 0, `node ${host.nodeId} has no parked request left`);
    } catch (error) {
      assert.fail(`seed ${seed}: ${(error as Error).stack ?? String(error)}`);
    }
  }
});
