// Expected failures are DsmError instances with a stable code from one table.
// Users match on `err.code`; the message says what was wrong and what to do.

export const errorCodes = {
  DSM_ERR_INVALID_OPTION: 'an option is missing, malformed or out of range',
  DSM_ERR_PROGRAM_NOT_FOUND: 'the program file does not exist',
  DSM_ERR_PLATFORM: 'this platform is not supported',
  DSM_ERR_ADDON: 'the native addon is missing or failed to load',
  DSM_ERR_REGION_EXHAUSTED: 'the global region has no room for an allocation',
  DSM_ERR_ALLOC: 'an allocation request is invalid',
  DSM_ERR_FREE: 'a free does not match a live allocation',
  DSM_ERR_GROWABLE: 'a growable SharedArrayBuffer cannot cross nodes',
  DSM_ERR_NOT_DSM_MEMORY: 'a SharedArrayBuffer that is not dsm memory cannot cross nodes',
  DSM_ERR_PROTOCOL: 'an unknown protocol name',
  DSM_ERR_FRAME: 'a malformed or foreign frame arrived',
  DSM_ERR_HANDSHAKE: 'a peer failed the handshake',
  DSM_ERR_SECRET: 'a peer proved a different shared secret',
  DSM_ERR_VERSION: 'a peer runs another dsm version or protocol',
  DSM_ERR_CONFIG_MISMATCH: 'a peer has another page size, region size or cluster id',
  DSM_ERR_PORT_IN_USE: 'the listen address is in use',
  DSM_ERR_UNREACHABLE: 'a host could not be reached',
  DSM_ERR_JOIN_TIMEOUT: 'not every node joined in time',
  DSM_ERR_NODE_DIED: 'a node crashed or stopped answering',
  DSM_ERR_NOT_OWNER: 'a mutex was unlocked by a thread that does not hold it',
  DSM_ERR_BARRIER_PARTIES: 'a barrier was used with a different party count',
  DSM_ERR_STALE_OBJECT: 'a dsm object outlived the run that created it',
  DSM_ERR_CHANNEL: 'the channel between an app thread and its manager failed',
  DSM_ERR_BENCH: 'a benchmark run failed, timed out or printed no result',
  DSM_ERR_TRACE: 'a trace file is missing, unreadable or not a dsm trace',
  DSM_ERR_WEAK_SECRET: 'the shared secret is too short or too simple to resist guessing',
  DSM_ERR_INTERNAL: 'an invariant of dsm itself failed (a bug: please report it)',
  DSM_ERR_LAUNCHER: 'the environment Slurm, an MPI launcher or Kubernetes gave is missing, inconsistent or ambiguous',
  DSM_ERR_USAGE: 'the command line does not parse: an unknown command or option, a missing argument, or options that conflict',
  DSM_ERR_MANAGER_FAILED: 'a node\'s manager (its main thread) threw an uncaught exception; the node ended',
  DSM_ERR_FORCED_EXIT: 'a node did not end within the grace period after SIGTERM or SIGINT and was ended by its watchdog',
  DSM_ERR_SYNC_OBJECTS: 'a program uses more distinct Mutex or Barrier objects than one node\'s lock or barrier manager keeps state for',
  DSM_ERR_SYNC_REQUESTS: 'more synchronization requests (pending Atomics.waitAsync calls and waiting threads) are in flight on one node than it keeps',
  DSM_ERR_ATOMIC_LINES: 'more Atomics locations are in use at once than a node\'s line tables hold',
  DSM_ERR_PORT_RELAYS: 'more MessagePorts are relayed across nodes, or more messages wait for an unopened relayed port, than a node keeps',
  DSM_ERR_BROADCAST_CHANNELS: 'more BroadcastChannel names are open at once on one node than its relay keeps',
  DSM_ERR_WEB_LOCKS: 'more Web Locks requests are held or waiting at once than the cluster\'s lock service keeps',
  DSM_ERR_THREAD_POSTS: 'more postMessageToThread calls to threads on other nodes (or questions to workers there: getHeapSnapshot, getHeapStatistics, cpuUsage) wait for their answers, or more such messages wait for a node\'s threads, than a node keeps',
  DSM_ERR_MESSAGE_TOO_LARGE: 'a message or workerData for a thread on another node is larger than one frame carries',
  DSM_ERR_STALLED: 'a node\'s manager loop stopped turning for longer than its limit; the node ended',
} as const;

export type ErrorCode = keyof typeof errorCodes;

export class DsmError extends Error {
  readonly code: ErrorCode;
  constructor(code: ErrorCode, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'DsmError';
    this.code = code;
  }
}

export function isDsmError(value: unknown): value is DsmError {
  return value instanceof DsmError ||
    (typeof value === 'object' && value !== null && typeof (value as { code?: unknown }).code === 'string' &&
      ((value as { code: string }).code in errorCodes));
}

/** An invariant of dsm's own; a failure is a bug in dsm, so it throws rather than being handled. */
export function assert(condition: unknown, message: string): asserts condition {
  if (!condition) throw new DsmError('DSM_ERR_INTERNAL', `invariant failed: ${message}`);
}

/** Exit codes of the `dsm` command. The program's own exit code passes through unchanged. */
export const exitCodeUsage = 2;
/** Exit code when a node died or stopped answering and the run was ended. */
export const exitCodeNodeDied = 70;
/** `dsm run --race` found data races (the program itself ended 0). */
export const exitCodeRaces = 66;
