// Read copies of a line (issue 12, session 34, src/protocol/lines.ts "Read
// copies of a line") in the simulation: Atomics.load on any number of nodes
// at once from a read copy, a writer that waits until every other copy is
// dropped. Every grant and every read copy is checked against every node's
// table (SimLineTable: no node holds a line, or reads it, while another holds
// it). Litmus tests over many seeds (store buffering, IRIW, message passing),
// a read-mostly walk, a monotone spin, a thread killed while it waits for a copy.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { SimCluster, type ThreadOp, type ThreadProgram } from './sim.js';
import { loadOp as load, syncOk } from './thread-ops.js';
import type { LineEngine } from '../../src/protocol/lines.js';
import { atomicLineBytes, pageBytes } from '../../src/constants.js';

function* atomic(op: 'add' | 'load' | 'store', address: number, operands: string[]): Generator<ThreadOp, string, unknown> {
  const result = yield* syncOk({ kind: 'atomic', op, address, width: 4, operands, timeoutMs: -1 });
  assert.ok(result.ok);
  return result.value!;
}

function cluster(seed: number, nodeCount: number, extra: Partial<ConstructorParameters<typeof SimCluster>[0]> = {}): SimCluster {
  return new SimCluster({ seed, nodeCount, pageCount: 6, protocol: 'hlrc', atomicLines: true, ...extra });
}

function counter(sim: SimCluster, name: string): number {
  return sim.engines.reduce((sum, engine) => sum + ((engine.counters() as unknown as Record<string, number>)[name] ?? 0), 0);
}

function assertNothingLeft(sim: SimCluster, seed: number): void {
  for (const engine of sim.engines) {
    const sizes = engine.tableSizes();
    assert.equal(sizes['linePending'], 0, `seed ${seed}: node ${engine.nodeId} has no pending line request`);
    assert.equal(sizes['lineWaiters'], 0, `seed ${seed}: node ${engine.nodeId} keeps no waiter`);
  }
}

/** Runs `body` for seeds first..last; a failure names its seed. */
function forSeeds(first: number, last: number, body: (seed: number) => void): void {
  for (let seed = first; seed <= last; seed++) {
    try {
      body(seed);
    } catch (error) {
      assert.fail(`seed ${seed}: ${(error as Error).message}`);
    }
  }
}

test('store buffering on two lines of two nodes\' directories: never both loads 0 (sequential consistency), over 300 seeds', () => {
  let shares = 0;
  forSeeds(1, 300, (seed) => {
    const sim = cluster(seed, 2 + (seed % 3), { concurrentStepsMax: seed % 4, lineRefuseChance: (seed % 5) / 10 });
    // x on page 0 (directory node 0), y on page 1 (directory node 1): each thread's store and the other's load.
    const x = 64;
    const y = pageBytes + 64;
    const seen: string[] = [];
    // Both loads first, so that each node has a read copy of the line the other stores to.
    for (const [node, mine, other] of [[0, x, y], [1, y, x]] as const) {
      sim.addThread(node, function* (): ThreadProgram {
        yield* atomic('load', other, []);
        yield* atomic('load', mine, []);
        yield* atomic('store', mine, ['1']);
        seen.push(yield* atomic('load', other, []));
      });
    }
    sim.run();
    sim.drain();
    assert.ok(seen.length === 2 && !(seen[0] === '0' && seen[1] === '0'), `store buffering saw ${seen.join(', ')}`);
    assertNothingLeft(sim, seed);
    shares += counter(sim, 'lineShareGrants');
  });
  assert.ok(shares >= 300, `${shares} read copies over the seeds`);
});

test('IRIW on atomics: two readers on two nodes never see two independent stores in opposite orders, over 300 seeds', () => {
  let invalidations = 0;
  forSeeds(1, 300, (seed) => {
    const nodeCount = 2 + (seed % 3);
    const sim = cluster(seed, nodeCount, { concurrentStepsMax: seed % 3, lineRefuseChance: (seed % 4) / 8 });
    const x = 2 * pageBytes + 8;
    const y = 3 * pageBytes + 8;
    sim.addThread(0 % nodeCount, function* (): ThreadProgram { yield* atomic('store', x, ['1']); });
    sim.addThread(1 % nodeCount, function* (): ThreadProgram { yield* atomic('store', y, ['1']); });
    const reads: string[][] = [];
    for (const [node, first, second] of [[2 % nodeCount, x, y], [3 % nodeCount, y, x]] as const) {
      sim.addThread(node, function* (): ThreadProgram {
        // Spin until the first store is seen (from a read copy, dropped when it is written), then the other.
        let a = '0';
        for (let k = 0; k < 200 && a === '0'; k++) a = yield* atomic('load', first, []);
        const b = yield* atomic('load', second, []);
        reads.push([a, b]);
      });
    }
    sim.run();
    sim.drain();
    const [r1, r2] = reads;
    assert.ok(!(r1![0] === '1' && r1![1] === '0' && r2![0] === '1' && r2![1] === '0'), `IRIW saw ${JSON.stringify(reads)}`);
    assertNothingLeft(sim, seed);
    invalidations += counter(sim, 'lineShareInvalidations');
  });
  assert.ok(invalidations >= 100, `${invalidations} read copies dropped for a writer over the seeds`);
});

test('message passing: readers spinning on read copies of a flag see every plain write made before its store', () => {
  forSeeds(1, 80, (seed) => {
    const nodeCount = 2 + (seed % 4);
    const sim = cluster(seed, nodeCount, { concurrentStepsMax: seed % 3, lineRefuseChance: 0.2 });
    const flag = 5 * pageBytes + 4 * atomicLineBytes;
    const data = (k: number): number => (k % 4) * pageBytes + 16 * k;
    sim.addThread(seed % nodeCount, function* (): ThreadProgram {
      for (let round = 1; round <= 3; round++) {
        for (let k = 0; k < 12; k++) yield { op: 'store', address: data(k), value: 100 * round + k };
        yield* atomic('store', flag, [String(round)]);
        // The next round's writes wait until every reader has seen this round (their acks count on another line).
        while (Number(yield* atomic('load', flag + atomicLineBytes, [])) < round * (nodeCount - 1)) { /* spin */ }
      }
    });
    for (let node = 0; node < nodeCount; node++) {
      if (node === seed % nodeCount) continue;
      sim.addThread(node, function* (): ThreadProgram {
        for (let round = 1; round <= 3; round++) {
          while (Number(yield* atomic('load', flag, [])) < round) { /* spin on the read copy */ }
          for (let k = 0; k < 12; k++) assert.equal(yield* load(data(k)), 100 * round + k, `node ${node} round ${round} reads data ${k}`);
          yield* atomic('add', flag + atomicLineBytes, ['1']);
        }
      });
    }
    sim.run();
    sim.drain();
    assertNothingLeft(sim, seed);
  });
});

test('a counter added on one node and watched from every other: each watcher sees it never go back, and its last value', () => {
  forSeeds(1, 60, (seed) => {
    const nodeCount = 2 + (seed % 3);
    const sim = cluster(seed, nodeCount, { concurrentStepsMax: seed % 4, lineRefuseChance: (seed % 3) / 6 });
    const count = pageBytes + 3 * atomicLineBytes;
    const adds = 60;
    sim.addThread(0, function* (): ThreadProgram { for (let k = 0; k < adds; k++) yield* atomic('add', count, ['1']); });
    for (let node = 1; node < nodeCount; node++) {
      sim.addThread(node, function* (): ThreadProgram {
        let last = 0;
        while (last < adds) {
          const now = Number(yield* atomic('load', count, []));
          assert.ok(now >= last, `node ${node} saw ${now} after ${last}`);
          last = now;
        }
      });
    }
    sim.run();
    sim.drain();
    assertNothingLeft(sim, seed);
  });
});

test('a read-mostly walk (a sorted list\'s links, read by every node, written now and then): loads read copies, with far fewer messages than without them', () => {
  const links = 64; // one word a link, 16 a line: 4 lines
  const base = 2 * pageBytes;
  const run = (seed: number, shareLoads: boolean): { messages: number; shares: number } => {
    const nodeCount = 3;
    const sim = cluster(seed, nodeCount, { concurrentStepsMax: seed % 3, lineShareLoads: shareLoads });
    sim.addThread(0, function* (): ThreadProgram {
      for (let k = 0; k < links; k++) yield* atomic('store', base + 4 * k, [String(k + 1)]);
      yield* atomic('store', base - 4, ['1']);
    });
    for (let node = 0; node < nodeCount; node++) {
      sim.addThread(node, function* (): ThreadProgram {
        while ((yield* atomic('load', base - 4, [])) === '0') { /* spin */ }
        for (let pass = 0; pass < 8; pass++) {
          // Walk every link; one write in eight passes, on this node's own link.
          let sum = 0;
          for (let k = 0; k < links; k++) sum += Number(yield* atomic('load', base + 4 * k, []));
          assert.ok(sum >= (links * (links + 1)) / 2, `a walk sums ${sum}`);
          if (pass === 4) yield* atomic('add', base + 4 * (node * 20), ['1000']);
        }
      });
    }
    sim.run();
    sim.drain();
    assertNothingLeft(sim, seed);
    return { messages: sim.messageCount, shares: counter(sim, 'lineShareGrants') };
  };
  let withCopies = 0;
  let without = 0;
  forSeeds(1, 20, (seed) => {
    const shared = run(seed, true);
    const moved = run(seed, false);
    assert.ok(shared.shares > 0, 'loads took read copies');
    withCopies += shared.messages;
    without += moved.messages;
  });
  assert.ok(withCopies * 2 < without, `${withCopies} messages with read copies, ${without} without`);
});

test('a thread killed while it waits for a read copy leaves no stale request, and the copy still serves the others', () => {
  let killedCount = 0;
  forSeeds(1, 40, (seed) => {
    const sim = cluster(seed, 3, { lineRefuseChance: 0.3, concurrentStepsMax: seed % 3 });
    const word = pageBytes + 8;
    const reader = function* (): ThreadProgram {
      for (let k = 0; k < 40; k++) yield* atomic('load', word, []);
    };
    sim.addThread(0, function* (): ThreadProgram { for (let k = 0; k < 30; k++) yield* atomic('add', word, ['1']); });
    sim.addThread(1, reader);
    sim.addThread(2, reader);
    const victim = sim.addThread(2, reader);
    let killed = false;
    const sims = sim as unknown as { threads: Array<{ blocked: boolean; done: boolean; shipping?: boolean }> };
    sim.options.afterStep = (s) => {
      const thread = sims.threads[victim]!;
      if (!killed && thread.blocked && thread.shipping === true) {
        killed = true;
        s.kill(victim);
      }
    };
    sim.run();
    sim.drain();
    if (killed) killedCount++;
    assertNothingLeft(sim, seed);
    const engines = sim.engines as unknown as LineEngine[];
    const line = Math.floor(word / atomicLineBytes);
    assert.ok(engines.filter((engine) => engine.holds(line)).length <= 1);
  });
  assert.ok(killedCount >= 20, `${killedCount} seeds killed a thread waiting for a read copy or the line`);
});

test('a node\'s line table of 64 slots: loads and adds over 300 lines on 3 nodes make room by giving unused lines and copies back, and every value is right', () => {
  let evictions = 0;
  forSeeds(1, 40, (seed) => {
    const sim = cluster(seed, 3, { lineSlotCount: 64, concurrentStepsMax: seed % 3, lineRefuseChance: (seed % 3) / 10 });
    const lines = 300;
    const word = (k: number): number => k * atomicLineBytes + 4 * (k % 16);
    // Node 0 stores each line's value once; the others wait for the last one, then walk them all, twice.
    sim.addThread(0, function* (): ThreadProgram {
      for (let k = 0; k < lines; k++) yield* atomic('store', word(k), [String(k + 1)]);
      yield* atomic('store', word(lines), ['1']);
    });
    for (let node = 0; node < 3; node++) {
      sim.addThread(node, function* (): ThreadProgram {
        while ((yield* atomic('load', word(lines), [])) === '0') { /* spin */ }
        for (let pass = 0; pass < 2; pass++) {
          for (let k = 0; k < lines; k++) assert.equal(Number(yield* atomic('load', word(k), [])), k + 1, `node ${node} pass ${pass} line ${k}`);
        }
        // And adds on a few lines, every node.
        for (let k = 0; k < lines; k += 25) yield* atomic('add', word(k) + 0, ['0']);
      });
    }
    sim.run();
    sim.drain();
    assertNothingLeft(sim, seed);
    evictions += counter(sim, 'lineEvictions');
  });
  assert.ok(evictions > 1000, `${evictions} lines and copies given back to make room`);
});

test('scans with Atomics.load ask for the rest of a page\'s copies ahead: every value right beside a writer on the scanned lines, far fewer messages than a copy at a time, over 40 seeds', () => {
  const pages = 3;
  const linesPerPage = pageBytes / atomicLineBytes;
  const lines = pages * linesPerPage;
  const base = 2 * pageBytes;
  const word = (k: number): number => base + k * atomicLineBytes + 4 * (k % 16);
  const flag = pageBytes - 4;
  const run = (seed: number, ahead: boolean): { messages: number; aheadGrants: number; unused: number } => {
    const nodeCount = 2 + (seed % 3);
    const sim = cluster(seed, nodeCount, { pageCount: 8, lineShareAhead: ahead, concurrentStepsMax: seed % 3, lineRefuseChance: (seed % 4) / 10 });
    // Node 0 writes every line's value with plain stores (as a main thread fills an array), then stores the flag; the
    // last node's second thread keeps adding to every 37th line's word while the others scan (each value only grows:
    // a scan sees at least the stored value, never an older one).
    sim.addThread(0, function* (): ThreadProgram {
      for (let k = 0; k < lines; k++) yield { op: 'store', address: word(k), value: k + 1 };
      yield* atomic('store', flag, ['1']);
    });
    sim.addThread(nodeCount - 1, function* (): ThreadProgram {
      while ((yield* atomic('load', flag, [])) === '0') { /* spin */ }
      for (let round = 0; round < 3; round++) for (let k = 5; k < lines; k += 37) yield* atomic('add', word(k), ['1000']);
    });
    for (let node = 0; node < nodeCount; node++) {
      sim.addThread(node, function* (): ThreadProgram {
        while ((yield* atomic('load', flag, [])) === '0') { /* spin */ }
        for (let pass = 0; pass < 2; pass++) {
          const seen: number[] = [];
          for (let k = 0; k < lines; k++) {
            const value = Number(yield* atomic('load', word(k), []));
            assert.ok(value >= k + 1 && (value - (k + 1)) % 1000 === 0 && (value === k + 1 || (k - 5) % 37 === 0), `node ${node} pass ${pass} line ${k}: ${value}`);
            seen.push(value);
          }
        }
      });
    }
    sim.run();
    sim.drain();
    assertNothingLeft(sim, seed);
    for (const engine of sim.engines) assert.equal(engine.tableSizes()['lineSharesAhead'] ?? 0, 0, `seed ${seed}: node ${engine.nodeId} waits for no answer ahead`);
    return { messages: sim.messageCount, aheadGrants: counter(sim, 'lineShareAheadGrants'), unused: counter(sim, 'lineShareAheadUnused') };
  };
  let withAhead = 0;
  let without = 0;
  let aheadGrants = 0;
  forSeeds(1, 40, (seed) => {
    const ahead = run(seed, true);
    const one = run(seed, false);
    withAhead += ahead.messages;
    without += one.messages;
    aheadGrants += ahead.aheadGrants;
    assert.equal(one.aheadGrants, 0);
  });
  assert.ok(aheadGrants > 40 * lines, `${aheadGrants} copies granted ahead; ${withAhead} messages with copies ahead, ${without} a copy at a time`);
  assert.ok(withAhead * 4 < without, `${withAhead} messages with copies ahead, ${without} a copy at a time`);
});
