// A node's atomic line table (issue 12.2): which synchronization lines the
// node holds, shared by the manager (which writes it for the protocol layer,
// src/protocol/lines.ts) and the app threads (which read it and run Atomics
// natively on held lines, src/threads/atomics.ts).
//
// One SharedArrayBuffer of Int32 words:
//   [0..headerWords)            header: slot count, then 1 if pins are plain stores (asymmetric barrier)
//   keys[slotCount]             line + 1 of each slot (0: never used); a slot is only re-keyed, never emptied
//   states[slotCount]           stateInvalid | stateHeld | stateRevoking | stateShared
//   used[slotCount]             since the manager last looked: bit 0 read, bits 1.. writes (saturating at
//                               lineUseWritesMax; plain read-modify-writes, so approximate)
//   held[slotCount]             line + 1 while the slot's line is held (stateHeld), else 0: the one
//                               word an app thread's fast path loads
//   readable[slotCount]         line + 1 while the slot's line is held or the node has a read copy of it
//                               (stateShared, session 34), else 0: the word Atomics.load's fast path loads
//   pins[atomicLinePinCountMax] per app thread: line + 1 while the thread runs an op on it, else 0
//   watch[slotCount]            1 while the manager waits for an op on the slot's line to end (a revoke
//                               that found a pin, or lineWatch): the thread that ends
//                               one clears it and posts 'unpinned', so the manager looks again at once
//                               instead of at its next timer (a missed post only costs that timer)
//   quiet[slotCount]            session 36: bits 0-15, bit k set while a notify on the line's Int32 word
//                               k (byte 4k; a BigInt64 element's first word) wakes nobody: an app
//                               thread's notify on a held line answers 0 natively, with no call to the
//                               manager; bits 16-30, the waiters between their check and their
//                               registration. The manager writes the mask (count 0) before the held
//                               word at each grant (lineGranted); a waiter clears its address's bit and
//                               counts itself in one compareExchange before its value check, and the
//                               count goes down once the wait is registered (lineCheckDone) or not
//                               made; the directory clears the bit before it checks a shipped wait
//                               (lineQuietClear). So a notifier whose store came after a check that saw
//                               the old value sees the bit clear (all sequentially consistent) and asks
//                               the manager. Within a tenure the manager sets bits again only with a
//                               compareExchange that finds the count 0 (lineRequiet): a waiter that
//                               counted itself since it read the word makes it fail.
//   notified[atomicLinePinCountMax] per app thread (by its pin): notifies it answered from a quiet word, for
//                               the stats (the thread's own plain increments; summed by the manager)
//
// An app thread's op on line L: store pins[me] = L + 1, then load the
// slot's held word (its readable word for Atomics.load): if it is still
// L + 1, run the op natively, then store pins[me] = 0. A read copy's drop
// (lineUnshare) clears the readable word and checks the pins the same way. The manager revokes L by storing stateRevoking (and
// clearing the held word), then
// loading every pin: one of the two sees the other (sequentially consistent
// stores then loads), so either the thread sees the revoke and asks the
// manager, or the manager sees the pin and tries again later (it never
// waits for a thread, which may itself wait for a fault the manager serves).
//
// Where the kernel has a private expedited membarrier, the app thread's pin
// is a plain store (no locked instruction on the fast path) and the manager
// runs the barrier between its revoking store and its loads: the barrier
// makes every running app thread pass a full fence, so the store-then-load
// pairs still see each other (the asymmetric Dekker of userspace RCU).

import { DsmError, assert } from '../errors.js';
import { atomicLinePinCountMax, atomicLineSlotCount } from '../constants.js';
import type { LineHost, LineUse } from '../protocol/types.js';

export const lineHeaderWords = 4;
export const lineStateInvalid = 0;
export const lineStateHeld = 1;
export const lineStateRevoking = 2;
export const lineStateShared = 3;
/** A used word counts writes up to this many, times 2 (bit 0 is the read mark). */
export const lineUseWordMax = 0x40000000;

/** Word offsets of the table's parts, for a table of `slotCount` slots. */
export function lineTableLayout(slotCount: number): { keys: number; states: number; used: number; held: number; readable: number; pins: number; watch: number; quiet: number; notified: number; words: number } {
  const keys = lineHeaderWords;
  const states = keys + slotCount;
  const used = states + slotCount;
  const held = used + slotCount;
  const readable = held + slotCount;
  const pins = readable + slotCount;
  const watch = pins + atomicLinePinCountMax;
  const quiet = watch + slotCount;
  const notified = quiet + slotCount;
  return { keys, states, used, held, readable, pins, watch, quiet, notified, words: notified + atomicLinePinCountMax };
}

/** One waiter in its check, in a quiet word (its bits 16-30). */
export const lineQuietCheckOne = 0x10000;

/** The bit of a line's quiet word (its `quiet` slot) for a notify or a wait at byte `address` of the region. */
export function lineQuietBit(address: number): number {
  return 1 << ((address >>> 2) & 15);
}

/** The first slot a line probes (Fibonacci hashing); the app side uses the same. */
export function lineSlotHash(line: number, slotMask: number): number {
  return (Math.imul(line | 0, 0x9e3779b1) >>> 0) & slotMask;
}

export class LineTable implements LineHost {
  readonly buffer: SharedArrayBuffer;
  private readonly words: Int32Array;
  private readonly slotCount: number;
  private readonly layout: ReturnType<typeof lineTableLayout>;
  /** Pin words handed out to app threads (index -> in use). */
  private readonly pinsInUse = new Uint8Array(atomicLinePinCountMax);
  private pinHigh = 0;
  /** lineNotifiesInThread's count of the threads whose pins were given back. */
  private notifiedByEnded = 0;
  /** Slots not invalid (held, revoking or shared): the rest may be re-keyed. */
  private occupied = 0;
  /** Slots by line for the lines the manager has keyed (a cache of the probe). */
  private readonly slotOf = new Map<number, number>();

  /** Whether app threads pin with plain stores (the manager runs `barrier` before reading pins). */
  readonly asymmetric: boolean;
  private readonly barrier: (() => boolean) | null;

  constructor(slotCount = atomicLineSlotCount, barrier: (() => boolean) | null = null) {
    assert((slotCount & (slotCount - 1)) === 0 && slotCount > 0, 'slot count is a power of two');
    this.slotCount = slotCount;
    this.layout = lineTableLayout(slotCount);
    this.buffer = new SharedArrayBuffer(this.layout.words * 4);
    this.words = new Int32Array(this.buffer);
    this.words[0] = slotCount;
    this.asymmetric = barrier !== null && barrier();
    this.barrier = this.asymmetric ? barrier : null;
    this.words[1] = this.asymmetric ? 1 : 0;
  }

  /** A pin word for a new app thread. */
  takePin(): number {
    for (let k = 0; k < atomicLinePinCountMax; k++) {
      if (this.pinsInUse[k] === 1) continue;
      this.pinsInUse[k] = 1;
      this.pinHigh = Math.max(this.pinHigh, k + 1);
      Atomics.store(this.words, this.layout.pins + k, 0);
      Atomics.store(this.words, this.layout.notified + k, 0);
      return k;
    }
    throw new DsmError('DSM_ERR_ATOMIC_LINES', `a node runs Atomics from at most ${atomicLinePinCountMax} app threads at once`);
  }

  /** The thread behind a pin ended (or its lineWait reached the engine): its pin, if any, is gone. */
  clearPin(pin: number): void {
    assert(pin >= 0 && pin < this.pinHigh, 'a pin word handed out');
    Atomics.store(this.words, this.layout.pins + pin, 0);
  }

  releasePin(pin: number): void {
    this.clearPin(pin);
    // Its thread ended: its count joins the total, as the word may go to another thread.
    this.notifiedByEnded += Atomics.exchange(this.words, this.layout.notified + pin, 0);
    this.pinsInUse[pin] = 0;
  }

  /** Notifies answered in app threads from a quiet word (session 36), those of ended threads included. */
  lineNotifiesInThread(): number {
    let sum = this.notifiedByEnded;
    for (let k = 0; k < this.pinHigh; k++) sum += Atomics.load(this.words, this.layout.notified + k);
    return sum;
  }

  /**
   * The slot of `line`, keying one if it has none: the first re-usable slot of its probe chain. Only this
   * method keys slots, and slotOf names every keyed slot, so a line not in it has no slot: the probe stops at
   * the first empty or invalid slot (session 35: walking on to an empty one to look for the key, across the
   * invalid slots a large scan leaves behind, took a probe of most of the table a line, 2 s of a 5 MiB scan).
   */
  private slotFor(line: number, create: boolean): number {
    const cached = this.slotOf.get(line);
    if (cached !== undefined) return cached;
    if (!create) return -1;
    const { keys, states } = this.layout;
    const mask = this.slotCount - 1;
    const key = line + 1;
    let reusable = -1;
    let slot = lineSlotHash(line, mask);
    for (let probe = 0; probe < this.slotCount; probe++, slot = (slot + 1) & mask) {
      const current = this.words[keys + slot]!;
      assert(current !== key, 'a keyed slot is in slotOf');
      if (current === 0 || Atomics.load(this.words, states + slot) === lineStateInvalid) { reusable = slot; break; }
    }
    if (reusable < 0) throw new DsmError('DSM_ERR_ATOMIC_LINES', `a node holds at most ${this.slotCount} atomic lines at once`);
    const old = this.words[keys + reusable]!;
    if (old !== 0) this.slotOf.delete(old - 1);
    // Re-keyed while invalid: a thread that pinned the old line sees the new key and backs off.
    Atomics.store(this.words, keys + reusable, key);
    this.slotOf.set(line, reusable);
    return reusable;
  }

  lineRoom(): { free: number; slots: number } {
    return { free: this.slotCount - this.occupied, slots: this.slotCount };
  }

  /** Counts a slot taken out of the invalid state (it can no longer be re-keyed). */
  private occupy(slot: number): void {
    if (Atomics.load(this.words, this.layout.states + slot) === lineStateInvalid) this.occupied++;
  }

  lineGranted(line: number, quietMask?: number): void {
    assert(line >= 0 && line + 1 <= 0x7fffffff, 'a line number fits the table key');
    assert(quietMask === undefined || (quietMask >= 0 && quietMask <= 0xffff), 'a quiet mask has a bit a word of the line');
    const slot = this.slotFor(line, true);
    this.occupy(slot);
    Atomics.store(this.words, this.layout.used + slot, 0);
    Atomics.store(this.words, this.layout.watch + slot, 0);
    // Before the held word: a thread that finds the line held reads this tenure's mask. None: the tenure goes on
    // (a revoke that found a pin), and so do its mask and its waiters in their checks.
    if (quietMask !== undefined) Atomics.store(this.words, this.layout.quiet + slot, quietMask);
    Atomics.store(this.words, this.layout.states + slot, lineStateHeld);
    Atomics.store(this.words, this.layout.readable + slot, line + 1);
    Atomics.store(this.words, this.layout.held + slot, line + 1);
  }

  lineQuietClear(line: number, address: number): void {
    const slot = this.slotFor(line, false);
    if (slot >= 0) Atomics.and(this.words, this.layout.quiet + slot, ~lineQuietBit(address));
  }

  lineCheckDone(line: number): void {
    const slot = this.slotFor(line, false);
    assert(slot >= 0, 'a wait registered on a line held here has a slot');
    Atomics.sub(this.words, this.layout.quiet + slot, lineQuietCheckOne);
  }

  lineRequiet(line: number, bits: number): boolean {
    const slot = this.slotFor(line, false);
    if (slot < 0) return false;
    const at = this.layout.quiet + slot;
    const word = Atomics.load(this.words, at);
    if (word >> 16 !== 0) return false;
    if ((word & bits) === bits) return true;
    return Atomics.compareExchange(this.words, at, word, word | bits) === word;
  }

  /** The slot's quiet mask (for tests). */
  quietMask(line: number): number {
    const slot = this.slotFor(line, false);
    return slot < 0 ? 0 : Atomics.load(this.words, this.layout.quiet + slot) & 0xffff;
  }

  /** The waiters of the node in their check on `line` (for tests). */
  quietChecks(line: number): number {
    const slot = this.slotFor(line, false);
    return slot < 0 ? 0 : Atomics.load(this.words, this.layout.quiet + slot) >> 16;
  }

  lineShared(line: number): void {
    assert(line >= 0 && line + 1 <= 0x7fffffff, 'a line number fits the table key');
    const slot = this.slotFor(line, true);
    this.occupy(slot);
    Atomics.store(this.words, this.layout.used + slot, 0);
    Atomics.store(this.words, this.layout.watch + slot, 0);
    Atomics.store(this.words, this.layout.states + slot, lineStateShared);
    Atomics.store(this.words, this.layout.held + slot, 0);
    Atomics.store(this.words, this.layout.readable + slot, line + 1);
  }

  lineRevoke(line: number): boolean {
    return this.stopUse(line, true, true, lineStateInvalid);
  }

  lineDowngrade(line: number): boolean {
    return this.stopUse(line, true, false, lineStateShared);
  }

  lineUnshare(line: number): boolean {
    return this.stopUse(line, false, true, lineStateInvalid);
  }

  lineUnshareMany(lines: readonly number[]): number[] {
    const slots = lines.map((line) => {
      const slot = this.slotFor(line, false);
      assert(slot >= 0, 'a read copy dropped has a slot');
      Atomics.store(this.words, this.layout.readable + slot, 0);
      Atomics.store(this.words, this.layout.watch + slot, 1);
      return slot;
    });
    // One barrier for all: a thread that pinned a line before its readable word was cleared is seen pinned below.
    if (this.barrier !== null) assert(this.barrier(), 'the process-wide barrier keeps working once it worked');
    const dropped: number[] = [];
    lines.forEach((line, k) => {
      if (this.pinnedNow(line)) return;
      this.settle(slots[k]!, lineStateInvalid);
      dropped.push(line);
    });
    return dropped;
  }

  /**
   * Clears the slot's held word (`held`) and its readable word (`readable`),
   * then answers whether no thread is inside an op on the line: if none is,
   * the slot is left in `settled`; else it stays as it is, and the caller asks
   * again later.
   */
  private stopUse(line: number, held: boolean, readable: boolean, settled: number): boolean {
    const slot = this.slotFor(line, false);
    assert(slot >= 0, 'a revoked line has a slot');
    // (A slot revoked already stays invalid: it is counted free.)
    if (held && Atomics.load(this.words, this.layout.states + slot) !== lineStateInvalid) {
      Atomics.store(this.words, this.layout.states + slot, lineStateRevoking);
      Atomics.store(this.words, this.layout.held + slot, 0);
    }
    if (readable) Atomics.store(this.words, this.layout.readable + slot, 0);
    // A thread found pinned below says when its op ends (it loads the watch word after its unpin).
    Atomics.store(this.words, this.layout.watch + slot, 1);
    if (this.barrier !== null) assert(this.barrier(), 'the process-wide barrier keeps working once it worked');
    if (this.pinnedNow(line)) return false;
    this.settle(slot, settled);
    return true;
  }

  /** Whether an app thread's pin word names `line` (the caller ran the process-wide barrier first where pins are plain stores). */
  private pinnedNow(line: number): boolean {
    const key = line + 1;
    for (let k = 0; k < this.pinHigh; k++) if (Atomics.load(this.words, this.layout.pins + k) === key) return true;
    return false;
  }

  /** Leaves `slot` in `state` (no thread inside an op on it), counting a slot freed. */
  private settle(slot: number, state: number): void {
    if (state === lineStateInvalid && Atomics.load(this.words, this.layout.states + slot) !== lineStateInvalid) {
      assert(this.occupied > 0, 'a slot freed was counted');
      this.occupied--;
    }
    Atomics.store(this.words, this.layout.watch + slot, 0);
    Atomics.store(this.words, this.layout.states + slot, state);
  }

  lineWatch(line: number): void {
    const slot = this.slotFor(line, false);
    if (slot >= 0) Atomics.store(this.words, this.layout.watch + slot, 1);
  }

  linePinned(line: number): boolean {
    if (this.barrier !== null) assert(this.barrier(), 'the process-wide barrier keeps working once it worked');
    return this.pinnedNow(line);
  }

  lineUsed(line: number): LineUse {
    const slot = this.slotFor(line, false);
    if (slot < 0) return 0;
    const word = Atomics.exchange(this.words, this.layout.used + slot, 0);
    return word <= 1 ? Math.max(0, word) : 1 + (word >>> 1);
  }
}
