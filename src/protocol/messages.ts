// Messages between protocol engines. Plain objects (numbers, strings,
// booleans, arrays, Uint8Array) so msgpackr encodes them without help.
// Every message has a `type`; the engine dispatches on it in one switch.

/** One closed interval of a node: the pages it wrote (its write notices). */
export interface IntervalRecord {
  node: number;
  /** 1-based interval number of `node`. */
  index: number;
  pages: number[];
}

/** What a sync message carries for lazy release consistency (hlrc). */
export interface ConsistencyInfo {
  /** The sender's applied vector timestamp: what the receiver must acquire. */
  vc: number[];
  /** The sender's known-interval vector (its log extent per node). */
  known: number[];
  /** Intervals the sender believes the receiver lacks. */
  intervals: IntervalRecord[];
}

export type AtomicOp =
  | 'load' | 'store' | 'add' | 'sub' | 'and' | 'or' | 'xor' | 'exchange' | 'compareExchange'
  | 'wait' | 'notify';

export type ProtocolMessage =
  // hlrc: pages and diffs
  | { type: 'pageRequest'; page: number; need: number[] }
  | { type: 'pageReply'; page: number; version: number[]; bytes: Uint8Array }
  /** Diffs for pages homed at the receiver; `interval` is the writer's interval they complete. */
  | { type: 'diffs'; interval: number; pages: number[]; diffs: Uint8Array[] }
  // sc: Li-Hudak fixed distributed manager
  | { type: 'scRequest'; page: number; requester: number; isWrite: boolean }
  | { type: 'scForward'; page: number; requester: number; isWrite: boolean; copyset: number[] }
  | { type: 'scPage'; page: number; isWrite: boolean; bytes: Uint8Array; copyset: number[] }
  | { type: 'scInvalidate'; page: number; requester: number }
  | { type: 'scInvalidateAck'; page: number }
  | { type: 'scConfirm'; page: number; isWrite: boolean }
  // sync: mutex, barrier, condition, atomics
  | { type: 'lockRequest'; lockId: number; requestId: number; tryOnly: boolean; info: ConsistencyInfo }
  /** `granted` false answers a tryOnly request for a lock that was not free (the requester acquires nothing). */
  | { type: 'lockGrant'; lockId: number; requestId: number; granted: boolean; info: ConsistencyInfo }
  | { type: 'lockRelease'; lockId: number; info: ConsistencyInfo }
  | { type: 'barrierArrive'; barrierId: number; parties: number; requestId: number; info: ConsistencyInfo }
  /** `serial` is true for exactly one arrival per round (the last to arrive). */
  | { type: 'barrierDepart'; barrierId: number; requestId: number; error: string; serial: boolean; floor: number[]; info: ConsistencyInfo }
  | { type: 'condWait'; condId: number; lockId: number; requestId: number; info: ConsistencyInfo }
  | { type: 'condSignal'; condId: number; all: boolean; info: ConsistencyInfo }
  | {
    type: 'atomicRequest'; requestId: number; op: AtomicOp; address: number; width: number;
    operands: string[]; timeoutMs: number; info: ConsistencyInfo;
  }
  | { type: 'atomicReply'; requestId: number; result: string; info: ConsistencyInfo }
  // hlrc log reclamation without barriers
  /** The sender's log is long: the receiver learns `info`, acquires all it knows and reports its applied vc. */
  | { type: 'vcQuery'; info: ConsistencyInfo }
  | { type: 'vcReport'; vc: number[] };

export type ProtocolMessageType = ProtocolMessage['type'];
