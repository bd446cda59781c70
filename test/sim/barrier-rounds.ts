// Random barrier rounds for the barrier simulations (barrier-tree.test.ts,
// barrier-pair.test.ts): threads that come and go between rounds, a thread
// killed while it waits.
import type { ProtocolName, SyncResult } from '../../src/protocol/engine.js';
import { pageBytes } from '../../src/constants.js';
import { Prng, SimCluster, type ThreadOp, type ThreadProgram } from './sim.js';
import { syncOp } from './thread-ops.js';

const pageCount = 4;
const barrierId = 3;
/**
 * Gates a joining thread behind the thread it replaces (see randomRounds).
 * Ids past the region are managed by node id % nodeCount, and 1680 is a
 * multiple of every node count 2..8: gate ids 1680 + k are managed by node k,
 * drawn per seed. A gate managed elsewhere than the barrier lets a joiner's
 * arrival reach the barrier's manager before the leaver's node's last one.
 */
const gateIdBase = 1680;

function wordOf(slot: number): number {
  return (slot % pageCount) * pageBytes + 64 + 4 * slot;
}

export interface RandomOutcome { flushes: number; killed: boolean; peerRounds: number }

/**
 * Random threads on random nodes pass `phase1 + phase2` rounds; between the
 * phases one thread (the leaver) ends and another (the joiner, on a random
 * node) takes its place, gated by a two-party barrier so that it starts only
 * once the leaver has left. Maybe a thread is killed while waiting at the very
 * last barrier. Throws on a wrong read, a stuck cluster or leftover state.
 */
export function randomRounds(seed: number, protocol: ProtocolName, nodeCountMax = 8, peerBarriers = true): RandomOutcome {
  const prng = new Prng(seed);
  const nodeCount = 2 + prng.int(nodeCountMax - 1);
  const nodeOf: number[] = [];
  for (let node = 0; node < nodeCount; node++) {
    const count = prng.int(3) + (node === 0 ? 0 : prng.int(2));
    for (let k = 0; k < count; k++) nodeOf.push(node);
  }
  while (nodeOf.length < 2) nodeOf.push(prng.int(nodeCount));
  const parties = nodeOf.length;
  const phase1 = 1 + prng.int(4);
  const phase2 = 1 + prng.int(4);
  const leaver = prng.int(parties);
  const joinerSlot = parties;
  nodeOf.push(prng.int(nodeCount));
  const members1 = Array.from({ length: parties }, (_, s) => s);
  const members2 = [...members1.filter((s) => s !== leaver), joinerSlot];
  const victim = prng.chance(0.5) ? members2[prng.int(members2.length - 1)]! : -1;
  const gateId = gateIdBase + prng.int(nodeCount);
  const c = new SimCluster({
    seed, nodeCount, pageCount, protocol, deliverBias: 0.2 + prng.next() * 0.6, peerBarriers,
    // App threads inside engine calls, in half the seeds without a kill (a kill needs the request in the engine).
    concurrentStepsMax: victim < 0 && prng.chance(0.5) ? 3 : 0,
    afterStep: (cluster) => {
      if (victimWaiting && !killed && threadOfSlot[victim] !== undefined) {
        const thread = cluster.threads[threadOfSlot[victim]!]!;
        if (thread.blocked && !thread.done) { killed = true; cluster.kill(thread.index); }
      }
    },
  });
  let victimWaiting = false;
  let killed = false;
  const threadOfSlot: number[] = [];
  const barrier = () => ({ kind: 'barrier' as const, barrierId, parties });
  function* rounds(slot: number, first: number, count: number, members: number[]): Generator<ThreadOp, void, unknown> {
    for (let r = first; r < first + count; r++) {
      yield { op: 'store', address: wordOf(slot), value: r + 1 };
      yield* syncOp(barrier());
      for (const other of members) {
        const seen = (yield { op: 'load', address: wordOf(other) }) as number;
        if (seen !== r + 1) throw new Error(`seed ${seed} (${protocol}, ${nodeCount} nodes): slot ${slot} read slot ${other}'s word as ${seen} in round ${r}, expected ${r + 1}`);
      }
      if (slot === victim && r === phase1 + phase2 - 1) victimWaiting = true;
      const result: SyncResult = yield* syncOp(barrier());
      if (!result.ok) throw new Error(`seed ${seed}: barrier failed: ${result.message}`);
    }
  }
  for (let slot = 0; slot < parties; slot++) {
    threadOfSlot[slot] = c.addThread(nodeOf[slot]!, () => (function* () {
      if (slot === leaver) {
        yield* rounds(slot, 0, phase1, members1);
        yield* syncOp({ kind: 'barrier', barrierId: gateId, parties: 2 });
        return;
      }
      yield* rounds(slot, 0, phase1, members1);
      yield* rounds(slot, phase1, phase2, members2);
    })() as ThreadProgram);
  }
  threadOfSlot[joinerSlot] = c.addThread(nodeOf[joinerSlot]!, () => (function* () {
    yield* syncOp({ kind: 'barrier', barrierId: gateId, parties: 2 });
    yield* rounds(joinerSlot, phase1, phase2, members2);
  })() as ThreadProgram);
  try {
    c.run();
  } catch (error) {
    throw new Error(`seed ${seed} (${protocol}, ${nodeCount} nodes, threads on nodes ${nodeOf.join(',')}, leaver ${leaver}, victim ${victim}): ${String(error)}`);
  }
  c.drain();
  let flushes = 0;
  let peerRounds = 0;
  for (const [node, engine] of c.engines.entries()) {
    const sizes = engine.tableSizes();
    for (const name of ['pending', 'canceled', 'barriers', 'barrierEarly', 'barrierPeerHeld']) {
      if (sizes[name] !== 0) throw new Error(`seed ${seed} (${protocol}): node ${node} keeps ${sizes[name]} ${name} after the run`);
    }
    flushes += engine.counters().barrierFlushes ?? 0;
    peerRounds += engine.counters().barrierPeerRounds ?? 0;
  }
  return { flushes, killed, peerRounds };
}

