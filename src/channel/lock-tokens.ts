// A node's lock token table (issue 12.3): which mutex tokens rest at this
// node for its app threads to take and give back with no message. Shared by
// the manager (which writes it for the sync layer, src/protocol/sync.ts) and
// the app threads (src/sync/mutex.ts), like the atomic line table
// (src/channel/atomic-lines.ts) and, like it, a SharedArrayBuffer made by
// the manager, never dsm memory.
//
// One SharedArrayBuffer of Int32 words:
//   [0..headerWords)    header: slot count
//   keys[slotCount]     lock id + 1 of each slot (0: never used); a slot is only re-keyed, never emptied
//   states[slotCount]   0: the manager keeps the token (or it is not here): ask it
//                       here | 0:     the token rests here, free
//                       here | owner: held by the thread whose owner field (lockOwnerField) that is
//   uses[slotCount]     times threads took the lock here since the manager last looked
//                       (a plain increment made while holding the lock, which orders it)
//   limits[slotCount]   0: no limit; n: a thread that finds uses >= n asks the manager
//                       instead of taking (a token kept for this node's threads after
//                       another node asked: its keep's take budget, src/protocol/lock-keep.ts)
//
// An app thread locks with one compareExchange(here -> here | me) and
// unlocks with one compareExchange(here | me -> here). The manager takes a
// token back (a remote node wants it, or a thread of this node must wait for
// it) with a compareExchange of the state to 0, remembering the holder it
// saw: that holder's unlock then fails its compareExchange and goes to the
// manager (the existing unlock request), which hands the token on.
//
// A slot is re-keyed only when the token of its old lock has left the node,
// so the key of a lock whose token is here (held or not) never changes. A
// thread that read a key, was overtaken by a re-key, and took the slot's new
// lock sees so when it reads the key again after its compareExchange, and
// gives that lock back (see takeLock).

import { DsmError, assert } from '../errors.js';
import { lockTokenProbeCountMax, lockTokenSlotCount } from '../constants.js';
import type { LockTokenHost } from '../protocol/types.js';
import { nativeCompareExchange, nativeLoad } from './doorbell.js';

export const lockTokenHeaderWords = 4;
/** A state's bit that says the token rests at this node and the app threads keep it. */
export const lockTokenHere = 0x40000000;
/** The owner field's bits: 1..ownerFieldMax. */
const ownerFieldMask = 0x1fffff;
const ownerFieldMax = 0x100000;

export function lockTokenLayout(slotCount: number): { keys: number; states: number; uses: number; limits: number; words: number } {
  const keys = lockTokenHeaderWords;
  const states = keys + slotCount;
  const uses = states + slotCount;
  const limits = uses + slotCount;
  return { keys, states, uses, limits, words: limits + slotCount };
}

/** The first slot a lock probes (Fibonacci hashing), the same on both sides. */
export function lockTokenSlotHash(lockId: number, slotMask: number): number {
  return (Math.imul(lockId | 0, 0x9e3779b1) >>> 0) & slotMask;
}

/** The node's part of its threads' owner tokens (src/sync/handle.ts). */
export function ownerNodeBase(nodeId: number): number {
  return (nodeId & 0x3ff) << 20;
}

/**
 * The owner field of a thread at its node: its owner token (src/sync/handle.ts,
 * node id << 20 plus thread id + 1) less the node's part; `nodeBase` is that
 * part (node id << 20 in a run; a simulation may use 0).
 */
export function lockOwnerField(ownerToken: number, nodeBase: number): number {
  const field = ownerToken - nodeBase;
  assert(field >= 1 && field <= ownerFieldMax, 'an owner token belongs to the node of the table');
  return field;
}

/** The manager's side: implements the sync layer's LockTokenHost. */
export class LockTokenTable implements LockTokenHost {
  readonly buffer: SharedArrayBuffer;
  private readonly words: Int32Array;
  private readonly slotCount: number;
  private readonly layout: ReturnType<typeof lockTokenLayout>;
  /** The slot of every keyed lock id. */
  private readonly slotOf = new Map<number, number>();
  /** Locks whose token is at this node since it was first delegated (their slots keep their keys). */
  private readonly present = new Set<number>();
  /** Takes counted by the reclaims so far. */
  private reclaimedUses = 0;

  /** `nodeBase`: the node's part of its threads' owner tokens (see lockOwnerField). */
  constructor(private readonly nodeBase: number, slotCount = lockTokenSlotCount) {
    assert((slotCount & (slotCount - 1)) === 0 && slotCount > 0, 'slot count is a power of two');
    this.slotCount = slotCount;
    this.layout = lockTokenLayout(slotCount);
    this.buffer = new SharedArrayBuffer(this.layout.words * 4);
    this.words = new Int32Array(this.buffer);
    this.words[0] = slotCount;
  }

  /** The slot of `lockId`, keying one if it has none; -1 when its probe has no room. */
  private slotFor(lockId: number): number {
    const cached = this.slotOf.get(lockId);
    if (cached !== undefined) return cached;
    const { keys } = this.layout;
    const mask = this.slotCount - 1;
    let reusable = -1;
    let slot = lockTokenSlotHash(lockId, mask);
    for (let probe = 0; probe < Math.min(lockTokenProbeCountMax, this.slotCount); probe++, slot = (slot + 1) & mask) {
      const current = this.words[keys + slot]!;
      if (current === 0) { if (reusable < 0) reusable = slot; break; }
      // Keyed with another lock id (this one has no slot: slotOf says so): re-usable once that token left.
      if (reusable < 0 && !this.present.has(current - 1)) reusable = slot;
    }
    if (reusable < 0) return -1;
    const old = this.words[keys + reusable]!;
    assert(old === 0 || Atomics.load(this.words, this.layout.states + reusable) === 0, 'a slot is re-keyed only with no token in it');
    if (old !== 0) this.slotOf.delete(old - 1);
    Atomics.store(this.words, this.layout.uses + reusable, 0);
    Atomics.store(this.words, keys + reusable, lockId + 1);
    this.slotOf.set(lockId, reusable);
    return reusable;
  }

  tokenDelegate(lockId: number, holder: number | null, takeLimit = 0): boolean {
    assert(lockId >= 0 && lockId + 1 <= 0x7fffffff, 'a lock id fits the table key');
    assert(Number.isInteger(takeLimit) && takeLimit >= 0 && takeLimit <= 0x7fffffff, 'a take limit is a count');
    const slot = this.slotFor(lockId);
    if (slot < 0) return false;
    this.present.add(lockId);
    // Before the state: a thread that sees the token here sees its limit (uses are 0 since the last reclaim or the keying).
    Atomics.store(this.words, this.layout.limits + slot, takeLimit);
    const state = lockTokenHere | (holder === null ? 0 : lockOwnerField(holder, this.nodeBase));
    const previous = Atomics.compareExchange(this.words, this.layout.states + slot, 0, state);
    assert(previous === 0, 'a token is delegated only while the manager keeps it');
    return true;
  }

  tokenReclaim(lockId: number): { holder: number | null; uses: number } {
    const slot = this.slotOf.get(lockId);
    assert(slot !== undefined, 'a delegated token has a slot');
    const at = this.layout.states + slot;
    for (;;) {
      const state = Atomics.load(this.words, at);
      assert((state & lockTokenHere) !== 0, 'a delegated token is marked here');
      if (Atomics.compareExchange(this.words, at, state, 0) !== state) continue;
      const uses = Atomics.exchange(this.words, this.layout.uses + slot, 0);
      this.reclaimedUses += uses;
      const field = state & ownerFieldMask;
      return { holder: field === 0 ? null : field + this.nodeBase, uses };
    }
  }

  /** Locks app threads took in the table so far (for --stats: acquires that never reached the manager). */
  takes(): number {
    let pending = 0;
    for (let slot = 0; slot < this.slotCount; slot++) pending += Atomics.load(this.words, this.layout.uses + slot);
    return this.reclaimedUses + pending;
  }

  tokenGone(lockId: number): void {
    const slot = this.slotOf.get(lockId);
    if (slot !== undefined) assert(Atomics.load(this.words, this.layout.states + slot) === 0, 'a token leaves the node from the manager');
    this.present.delete(lockId);
  }
}

/** The outcome of takeLock. */
export const takeTaken = 1;
/** Held by another thread of this node. */
export const takeHeldHere = 0;
/** The manager keeps the token, or it is not at this node: ask the manager. */
export const takeAsk = -1;

/** The app threads' side: one per thread and table. */
export class LockTokenView {
  private readonly words: Int32Array;
  private readonly mask: number;
  private readonly probeCount: number;
  private readonly keysAt: number;
  private readonly statesAt: number;
  private readonly usesAt: number;
  private readonly limitsAt: number;
  private cachedLock = -1;
  private cachedSlot = -1;

  /** `owner`: this thread's owner field (lockOwnerField). */
  constructor(buffer: SharedArrayBuffer, readonly owner: number) {
    this.words = new Int32Array(buffer);
    const slotCount = this.words[0]!;
    if (!(slotCount > 0 && (slotCount & (slotCount - 1)) === 0)) throw new DsmError('DSM_ERR_CHANNEL', 'the lock token table has no valid header');
    const layout = lockTokenLayout(slotCount);
    this.mask = slotCount - 1;
    this.probeCount = Math.min(lockTokenProbeCountMax, slotCount);
    this.keysAt = layout.keys;
    this.statesAt = layout.states;
    this.usesAt = layout.uses;
    this.limitsAt = layout.limits;
    assert(owner >= 1 && owner <= ownerFieldMax, 'an owner field in range');
  }

  /** The slot keyed with `lockId`, or -1. */
  private slotOf(lockId: number): number {
    const key = lockId + 1;
    if (this.cachedLock === lockId && this.words[this.keysAt + this.cachedSlot] === key) return this.cachedSlot;
    let slot = lockTokenSlotHash(lockId, this.mask);
    for (let probe = 0; probe < this.probeCount; probe++, slot = (slot + 1) & this.mask) {
      const current = this.words[this.keysAt + slot]!;
      if (current === key) { this.cachedLock = lockId; this.cachedSlot = slot; return slot; }
      if (current === 0) return -1;
    }
    return -1;
  }

  /**
   * Takes the lock if its token rests here free. A thread overtaken by a
   * re-key of the slot between its key check and its compareExchange took
   * the slot's new lock: it gives that back (`giveBack` is told the lock id
   * when the manager has taken that token meanwhile and so must be asked) and
   * asks the manager for its own.
   */
  take(lockId: number, giveBack: (otherLockId: number) => void): number {
    const slot = this.slotOf(lockId);
    if (slot < 0) return takeAsk;
    // A kept token's take budget is spent: the manager decides (it hands the token on, see lock-keep.ts).
    const limit = this.words[this.limitsAt + slot]!;
    if (limit !== 0 && this.words[this.usesAt + slot]! >= limit) return takeAsk;
    const at = this.statesAt + slot;
    const mine = lockTokenHere | this.owner;
    const previous = nativeCompareExchange(this.words, at, lockTokenHere, mine);
    if (previous !== lockTokenHere) {
      return (previous & lockTokenHere) !== 0 && previous !== mine ? takeHeldHere : takeAsk;
    }
    const key = nativeLoad(this.words, this.keysAt + slot);
    if (key !== lockId + 1) {
      // The slot's key cannot change while its (new) lock's token is here, held by this thread.
      if (nativeCompareExchange(this.words, at, mine, lockTokenHere) !== mine) giveBack(key - 1);
      return takeAsk;
    }
    this.words[this.usesAt + slot] = this.words[this.usesAt + slot]! + 1;
    return takeTaken;
  }

  /** Gives the lock back if the token rests here in this thread's hands; false: ask the manager (it took the token back). */
  give(lockId: number): boolean {
    const slot = this.slotOf(lockId);
    if (slot < 0) return false;
    const mine = lockTokenHere | this.owner;
    return nativeCompareExchange(this.words, this.statesAt + slot, mine, lockTokenHere) === mine;
  }
}
