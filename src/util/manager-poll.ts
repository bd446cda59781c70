// The manager's poll gate: two Int32 words in shared memory that tell the
// native poll before the manager's loop sleeps (native/dsm_mmu.cc,
// OnPreparePoll) whether polling is worth it.
//
// Word 0 counts the app threads parked in a doorbell call (the doorbell addon
// adds and subtracts around its futex wait); word 1 is bumped for every socket
// read and doorbell ring (activity: more may follow at once). The faults
// parked in the fault service's slots the native side sees by itself.
// One gate per process (a node: one manager); app threads reach it through
// the doorbell addon, which holds it process-wide once the manager sets it.

/** Word 1: a counter bumped by every socket read and doorbell ring (word 0 only the native side writes). */
const pollGateActivity = 1;

/** The gate's words (a SharedArrayBuffer the native addons keep). */
export const pollGate = new Int32Array(new SharedArrayBuffer(8));

/** Something came in (a socket read): the manager's poll lingers after it. Costs one store. */
export function noteActivity(): void {
  pollGate[pollGateActivity] = (pollGate[pollGateActivity]! + 1) | 0;
}
