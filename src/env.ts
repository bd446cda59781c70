// The one module that reads (and writes) dsm's process environment. Every
// DSM_* variable is named here, parsed and validated once, and handed out as
// a typed value; the rest of dsm imports these accessors and never touches
// `process.env` (test/unit/env.test.ts fails when a file does).
//
// Three kinds of variables:
//   - what a person sets: DSM_SECRET, DSM_SECRET_FILE, DSM_LAUNCHER, DSM_PROGRESS,
//     DSM_SEND_QUEUE_BYTES, DSM_READAHEAD_STATS, DSM_TOUCH_AHEAD, DSM_DEBUG_APP_VIEW, DSM_PARK_YIELD_US, DSM_MANAGER_POLL_US, DSM_MANAGER_LINGER_US, DSM_READAHEAD,
//     DSM_READAHEAD_STREAM, DSM_PAGE_PACK, DSM_WRITE_AHEAD, DSM_PEER_BARRIERS;
//   - what a launcher hands its local children (childEnvironment / childJoinEnvironment):
//     DSM_JOIN, DSM_SECRET_FROM_STDIN, DSM_NODE_ID, DSM_CLUSTER_CONFIG, DSM_JOIN_TIMEOUT_MS,
//     DSM_PARENT_PID, DSM_SUPERVISED, DSM_HEARTBEAT_TIMEOUT_MS, DSM_NODE_RUNTIME, DSM_NODE_PREPARE, DSM_RUNTIME_CONFIG;
//   - what dsm itself publishes for its threads: DSM_RACE, DSM_TAG_OUTPUT, DSM_NODE_ID/DSM_NODE_COUNT
//     (the app's view of where it runs);
//   - test hooks (DSM_TEST_HOOK_*; never set them outside dsm's tests).
// DSM_SECRET is removed from the environment once read (takeEnvironmentSecret), so app
// threads (which share this environment) and their children never see it.

import { interruptBudgetBytes, interruptBudgetBytesMax, managerLingerUs, managerPollUs, managerPollUsMax, parkYieldUs, parkYieldUsMax, prefetchPageCountMax, prefetchPageCountRuntime, sendQueueBytesMax, sendQueueBytesMin } from './constants.js';
import { DsmError } from './errors.js';
import { existsSync, statSync } from 'node:fs';

export type Environment = Readonly<Record<string, string | undefined>>;

/** The whole environment, for code that interprets another program's variables (a launcher's SLURM_*, PMI_*, …). */
export function processEnvironment(): Environment {
  return process.env;
}

function flag(name: string, env: Environment = process.env): boolean {
  return env[name] === '1';
}

function integerOf(name: string, text: string, min: number, max: number): number {
  const value = Number(text);
  if (!/^\d+$/.test(text.trim()) || !Number.isSafeInteger(value) || value < min || value > max) {
    throw new DsmError('DSM_ERR_INVALID_OPTION', `${name}='${text}' is not an integer from ${min} to ${max}`);
  }
  return value;
}

// ---- secrets ----

/** DSM_SECRET, removed from the environment as it is read (app threads share this environment). */
export function takeEnvironmentSecret(): string | undefined {
  const secret = process.env.DSM_SECRET;
  delete process.env.DSM_SECRET;
  return secret;
}

/** DSM_SECRET_FILE and DSM_SECRET of an environment (a launched rank's; `takeEnvironmentSecret` clears this process's). */
export function secretSettings(env: Environment = process.env): { file: string | undefined; value: string | undefined } {
  return { file: env.DSM_SECRET_FILE, value: env.DSM_SECRET };
}

/** Removes DSM_SECRET from an environment handed to a child process. */
export function withoutSecret(env: Environment): Record<string, string | undefined> {
  const { DSM_SECRET: _secret, ...rest } = env;
  return rest;
}

// ---- what a person sets ----

/** DSM_LAUNCHER: the launcher engine to assume (none keeps runs ordinary inside an engine's environment). */
export function launcherSetting(env: Environment = process.env): string | undefined {
  return env.DSM_LAUNCHER;
}

/** DSM_PROGRESS: '1' always shows start-up progress, '0' never, unset: when stderr is a terminal. */
export function progressSetting(): 'always' | 'never' | 'terminal' {
  const setting = process.env.DSM_PROGRESS;
  return setting === '1' ? 'always' : setting === '0' ? 'never' : 'terminal';
}

/** DSM_SEND_QUEUE_BYTES: the per-link send queue limit (e.g. 4m), or sendQueueBytesMax. */
export function sendQueueBytesFromEnvironment(env: Environment = process.env): number {
  const text = env.DSM_SEND_QUEUE_BYTES;
  if (text === undefined || text === '') return sendQueueBytesMax;
  const match = /^(\d+)([kmg]?)$/i.exec(text.trim());
  const scale = { '': 1, k: 1024, m: 1024 ** 2, g: 1024 ** 3 }[(match?.[2] ?? '').toLowerCase() as '' | 'k' | 'm' | 'g'];
  const bytes = match === null ? Number.NaN : Number(match[1]) * scale;
  if (!Number.isSafeInteger(bytes) || bytes < sendQueueBytesMin || bytes > sendQueueBytesMax) {
    throw new DsmError('DSM_ERR_INVALID_OPTION', `DSM_SEND_QUEUE_BYTES='${text}' is not a byte count from ${sendQueueBytesMin} to ${sendQueueBytesMax} (e.g. 4m)`);
  }
  return bytes;
}

/**
 * DSM_PARK_YIELD_US: microseconds a faulting app thread polls for its page (yielding the CPU) before it sleeps
 * on its futex; 0 sleeps right after the brief spin (fewer CPU cycles, a slower remote fault). Default parkYieldUs.
 */
export function parkYieldUsFromEnvironment(env: Environment = process.env): number {
  const text = env.DSM_PARK_YIELD_US;
  if (text === undefined || text === '') return parkYieldUs;
  const micros = /^\d+$/.test(text.trim()) ? Number(text.trim()) : Number.NaN;
  if (!Number.isSafeInteger(micros) || micros > parkYieldUsMax) {
    throw new DsmError('DSM_ERR_INVALID_OPTION', `DSM_PARK_YIELD_US='${text}' is not a whole number of microseconds from 0 to ${parkYieldUsMax}`);
  }
  return micros;
}

/**
 * DSM_MANAGER_POLL_US and DSM_MANAGER_LINGER_US: microseconds a node's manager polls for its next event before
 * its loop sleeps, while an app thread waits for it and after a turn with activity (constants managerPollUs,
 * managerLingerUs; 0 turns each off).
 */
export function managerPollFromEnvironment(env: Environment = process.env): { pollUs: number; lingerUs: number } {
  const read = (name: 'DSM_MANAGER_POLL_US' | 'DSM_MANAGER_LINGER_US', fallback: number): number => {
    const text = env[name];
    if (text === undefined || text === '') return fallback;
    const micros = /^\d+$/.test(text.trim()) ? Number(text.trim()) : Number.NaN;
    if (!Number.isSafeInteger(micros) || micros > managerPollUsMax) {
      throw new DsmError('DSM_ERR_INVALID_OPTION', `${name}='${text}' is not a whole number of microseconds from 0 to ${managerPollUsMax}`);
    }
    return micros;
  };
  return { pollUs: read('DSM_MANAGER_POLL_US', managerPollUs), lingerUs: read('DSM_MANAGER_LINGER_US', managerLingerUs) };
}

/**
 * Read-ahead tracking (on unless DSM_READAHEAD_STATS=0): adaptive read-ahead learns from the first
 * touch of each read-ahead page (a local fault), and --stats shows the wasted bytes (issue 13).
 */
/** DSM_ATOMIC_LINES=0: Atomics keep the home path even where they would run by line ownership (issue 12.2). */
export function atomicLinesEnabled(): boolean {
  return process.env.DSM_ATOMIC_LINES !== '0';
}

/** DSM_LOCK_TOKENS=0: every Mutex lock and unlock asks the manager, even with the token resting at the node (issue 12.3; to compare). */
export function lockTokensEnabled(): boolean {
  return process.env.DSM_LOCK_TOKENS !== '0';
}

/** DSM_PAGE_PACK=0: page copies go on the wire raw, never packed (src/runtime/page-pack.ts; to compare). */
export function pagePackEnabled(): boolean {
  return process.env.DSM_PAGE_PACK !== '0';
}

/** DSM_NATIVE_PACK=0: page copies are packed and unpacked by the TypeScript reference, not the addon (src/runtime/page-pack.ts; to compare). */
export function nativePackEnabled(): boolean {
  return process.env.DSM_NATIVE_PACK !== '0';
}

/**
 * DSM_MALLOC_KEEP=0: a node of several nodes leaves the C allocator's thresholds alone, so that fetch buffers
 * are mapped afresh (src/runtime/manager.ts, src/constants.ts mallocMmapThresholdBytes; to compare). On by
 * default since session 25 (docs/EVALUATION.md, "Session 25": on a machine where a fresh page costs a trip
 * through the hypervisor, it cut a remote read's time 15-25% and the applications' CPU 4-6%); opt-in before.
 */
export function mallocKeepEnabled(): boolean {
  return process.env.DSM_MALLOC_KEEP !== '0';
}

/**
 * DSM_PWRITE_INSTALL=0: a fetched or pushed copy is installed with a memcpy into the manager view (and the prefault
 * helper makes that view's pages resident first), not written into the region's memfd with pwrite (native/dsm_mmu.cc
 * WritePageFrom; to compare). On by default since session 26 (docs/EVALUATION.md "Session 26").
 */
export function pwriteInstallEnabled(): boolean {
  return process.env.DSM_PWRITE_INSTALL !== '0';
}

/** DSM_STREAM_READS=1: plain TCP connections read frames through Node's stream layers, as TLS ones do, not with `onread` (src/transport/frame-reader.ts; to compare). */
export function streamReadsForced(): boolean {
  return process.env.DSM_STREAM_READS === '1';
}

/** DSM_PREFAULT=0: a fetch's pages are not made resident in the manager view while its request is out (src/runtime/engine-host.ts; to compare). */
export function prefaultEnabled(): boolean {
  return process.env.DSM_PREFAULT !== '0';
}

/**
 * DSM_PREWAKE=1: a thread asleep on a fetched page is woken when the reply reaches its manager, to spin while the page
 * is installed (src/runtime/engine-host.ts). Off by default: 5% faster remote faults on a quiet 2-vCPU machine, slower
 * under load (a woken thread that yields waits out others' time slices; session 23, docs/EVALUATION.md).
 */
export function prewakeEnabled(): boolean {
  return process.env.DSM_PREWAKE === '1';
}

/** DSM_LOCK_PUSH=0: a lock's manager never sends a free token ahead of a request (src/protocol/sync.ts, token pushes; to compare). */
export function lockPushEnabled(): boolean {
  return process.env.DSM_LOCK_PUSH !== '0';
}

/** DSM_STALE_REFRESH=0: no looks for stale copies after a while with no synchronization (src/protocol/stale.ts; to compare). */
export function staleRefreshEnabled(): boolean {
  return process.env.DSM_STALE_REFRESH !== '0';
}

/** DSM_LOCK_KEEP=0: a recalled mutex token goes at its holder's unlock, with no keep window for the node's threads (src/protocol/lock-keep.ts; to compare). */
export function lockKeepEnabled(): boolean {
  return process.env.DSM_LOCK_KEEP !== '0';
}

/**
 * DSM_DEFER_DIFFS=1: a large release sends its write notices with its sync
 * message at once and its diffs after (session 11, flush17:
 * src/runtime/flow.ts, docs/PROTOCOL.md "Deferred diffs"). Off by default:
 * it cut the lock request's wait 3-5x but made QuickSort slower (EVALUATION,
 * "Session 11: the release flush and the hand-off").
 */
export function deferDiffsEnabled(): boolean {
  return process.env.DSM_DEFER_DIFFS === '1';
}

/** DSM_PEER_BARRIERS=0: two-node barrier rounds go through the manager (arrival, then departure) as on more nodes (session 13; to compare). */
export function peerBarriersEnabled(): boolean {
  return process.env.DSM_PEER_BARRIERS !== '0';
}

/** DSM_WARM_THREADS=0: a node keeps no warm app thread; every remote worker's thread is created when it is placed (issue 13; to compare). */
export function warmThreadsEnabled(): boolean {
  return process.env.DSM_WARM_THREADS !== '0';
}

/** DSM_LINE_PUSH=0: a line grant never carries the line's page (the taker faults and fetches it; issue 12, to compare). */
export function linePagePushEnabled(): boolean {
  return process.env.DSM_LINE_PUSH !== '0';
}

/** Whether Atomics.load takes a read copy of a line, on any number of nodes at once (DSM_LINE_SHARE=0: loads take the line or ship, to compare; session 34). */
export function lineShareEnabled(): boolean {
  return process.env.DSM_LINE_SHARE !== '0';
}

/** Whether a notify on a held line that wakes nobody is answered in the app thread (DSM_LINE_NOTIFY_IN_THREAD=0: every notify asks the manager, as before session 36). */
export function lineNotifyInThreadEnabled(): boolean {
  return process.env.DSM_LINE_NOTIFY_IN_THREAD !== '0';
}

/** Whether a load that follows loads of the two lines before it asks for copies of its page's other lines too (DSM_LINE_SHARE_AHEAD=0: one copy a request, to compare; session 35). */
export function lineShareAheadEnabled(): boolean {
  return process.env.DSM_LINE_SHARE_AHEAD !== '0';
}

/** Whether a node ships Atomics ops on a line it gave up idle to the line's directory (DSM_LINE_SHIP=0: lines only move, to compare). */
export function lineShipEnabled(): boolean {
  return process.env.DSM_LINE_SHIP !== '0';
}

/**
 * Shipped ops per sample before a node looks whether moving a line would pay
 * again (DSM_LINE_SHIP_SAMPLE_OPS, to compare the ship-or-move rule in one
 * build: a large count keeps a node shipping; unset: atomicLineShipSampleOps).
 */
export function lineShipSampleOps(env: Environment = process.env): number | undefined {
  const text = env.DSM_LINE_SHIP_SAMPLE_OPS;
  if (text === undefined || text === '') return undefined;
  const ops = /^\d+$/.test(text.trim()) ? Number(text.trim()) : Number.NaN;
  if (!Number.isSafeInteger(ops) || ops < 1) {
    throw new DsmError('DSM_ERR_INVALID_OPTION', `DSM_LINE_SHIP_SAMPLE_OPS='${text}' is not a whole number of ops from 1`);
  }
  return ops;
}

/** Whether a node that ships its ops on a line ships its Atomics.waits on it too (DSM_LINE_SHIP_WAITS=0: a wait takes the line, to compare). */
export function lineShipWaitsEnabled(): boolean {
  return process.env.DSM_LINE_SHIP_WAITS !== '0';
}

/** Whether a notify from a line's holder gives the line back with it (DSM_LINE_NOTIFY_RELEASE=0: it keeps the line, to compare). */
export function lineNotifyReleaseEnabled(): boolean {
  return process.env.DSM_LINE_NOTIFY_RELEASE !== '0';
}

/** Whether an Atomics.wait that parks gives its line back with its lineWait (DSM_LINE_WAIT_RELEASE=0: it keeps the line, to compare). */
export function lineWaitReleaseEnabled(): boolean {
  return process.env.DSM_LINE_WAIT_RELEASE !== '0';
}

/** Whether a grant lists its line's waiters so that the holder counts its own notifies (DSM_LINE_COUNTED_NOTIFY=0: every notify asks the directory, to compare). */
export function lineCountedNotifyEnabled(): boolean {
  return process.env.DSM_LINE_COUNTED_NOTIFY !== '0';
}

export function readAheadStatsEnabled(): boolean {
  return process.env.DSM_READAHEAD_STATS !== '0';
}

/** Whether the signal handler serves a tracked read-ahead copy's first touch (docs/PROTOCOL.md "Read-ahead touches in the handler"; DSM_TOUCH_AHEAD=0: through the manager, to compare). */
export function touchAheadEnabled(): boolean {
  return process.env.DSM_TOUCH_AHEAD !== '0';
}

/** DSM_READAHEAD_STREAM=0: read-ahead never issues a stream's next window ahead of its threads (issue 13; to compare). */
export function readAheadStreamingEnabled(): boolean {
  return process.env.DSM_READAHEAD_STREAM !== '0';
}

/**
 * DSM_OWN_WRITE_AHEAD=0: a fast write continuing a run of this node's own pages does not upgrade the pages after
 * it (EngineOptions.ownWriteAhead; on by default: a thread filling memory it allocated faults once per 16 pages).
 */
export function ownWriteAheadEnabled(): boolean {
  return process.env.DSM_OWN_WRITE_AHEAD !== '0';
}

/**
 * DSM_WRITE_AHEAD=1: a fast write continuing a sequential write stream also twins the pages after it
 * (writeAheadPageCountMax; native setWriteAhead). Off by default: it cuts the stream's faults, but no time
 * gain was measurable on the loaded test machine (docs/EVALUATION.md, "Session 12: Jacobi on 2 nodes").
 */
export function writeAheadEnabled(): boolean {
  return process.env.DSM_WRITE_AHEAD === '1';
}

/**
 * The most pages one hlrc fetch brings on a cluster node (EngineOptions.prefetchPageCount).
 * DSM_READAHEAD=0: one page each, no read-ahead (bench rtt's page-fetch program
 * times single remote fetches: it reads pages going down, which read-ahead now
 * follows). DSM_READAHEAD_PAGES=<n>: windows of at most n pages (1..prefetchPageCountMax;
 * 64 is the limit of sessions 8-12, to compare). Default prefetchPageCountRuntime.
 */
export function readAheadPageCount(env: Environment = process.env): number {
  if (env.DSM_READAHEAD === '0') return 1;
  const text = env.DSM_READAHEAD_PAGES;
  if (text === undefined || text === '') return prefetchPageCountRuntime;
  const pages = /^\d+$/.test(text.trim()) ? Number(text.trim()) : Number.NaN;
  if (!Number.isSafeInteger(pages) || pages < 1 || pages > prefetchPageCountMax) {
    throw new DsmError('DSM_ERR_INVALID_OPTION', `DSM_READAHEAD_PAGES='${text}' is not a whole number of pages from 1 to ${prefetchPageCountMax}`);
  }
  return pages;
}

/** DSM_INTERRUPT_BUDGET: V8's interrupt budget in a node process (constants.ts interruptBudgetBytes); 0 leaves V8's own. */
export function interruptBudgetFromEnvironment(env: Environment = process.env): number {
  const text = env.DSM_INTERRUPT_BUDGET;
  if (text === undefined || text === '') return interruptBudgetBytes;
  const bytes = /^\d+$/.test(text.trim()) ? Number(text.trim()) : Number.NaN;
  if (!Number.isSafeInteger(bytes) || bytes > interruptBudgetBytesMax) {
    throw new DsmError('DSM_ERR_INVALID_OPTION', `DSM_INTERRUPT_BUDGET='${text}' is not a whole number of bytecode bytes from 0 to ${interruptBudgetBytesMax}`);
  }
  return bytes;
}

/** DSM_HOPS: a directory to stamp each hop of a synchronization into (src/util/hops.ts); '' when unset (off). */
export function hopsDirSetting(): string {
  return process.env.DSM_HOPS ?? '';
}

/**
 * Checks, before a run starts anything, the environment settings a run reads later (in a node process, a
 * thread, or at its exit), so that a wrong value is one DSM_ERR_INVALID_OPTION line at once rather than an
 * error deep in a node or at the end of the run.
 */
export function checkEnvironmentSettings(env: Environment = process.env): void {
  sendQueueBytesFromEnvironment(env);
  parkYieldUsFromEnvironment(env);
  managerPollFromEnvironment(env);
  lineShipSampleOps(env);
  readAheadPageCount(env);
  interruptBudgetFromEnvironment(env);
  const progress = env.DSM_PROGRESS ?? '';
  if (progress !== '' && progress !== '0' && progress !== '1') {
    throw new DsmError('DSM_ERR_INVALID_OPTION', `DSM_PROGRESS='${progress}' is not 0 or 1: 1 always shows start-up progress, 0 never (unset: when stderr is a terminal)`);
  }
  const hops = env.DSM_HOPS ?? '';
  if (hops !== '' && !(existsSync(hops) && statSync(hops).isDirectory())) {
    throw new DsmError('DSM_ERR_INVALID_OPTION', `DSM_HOPS='${hops}' is not a directory: it names the directory hop stamps are written to (make it first, or unset DSM_HOPS)`);
  }
}

/** DSM_DOORBELL=0 sends every app-thread request by postMessage, as before the doorbell (to compare the two). */
export function doorbellSetting(): boolean {
  return process.env.DSM_DOORBELL !== '0';
}

/**
 * DSM_DIRECT_SYNC=0: a thread's lock, unlock and barrier entries take the general request path (a request object,
 * the handlers, admission, the race wrapper) rather than the direct one (src/runtime/cluster-node.ts serveSyncEntry).
 */
export function directSyncEnabled(): boolean {
  return process.env.DSM_DIRECT_SYNC !== '0';
}

/** DSM_DEBUG_APP_VIEW=1: guard the app's view of the region (debugging aid). */
export function debugAppViewEnabled(): boolean {
  return flag('DSM_DEBUG_APP_VIEW');
}

// ---- what dsm publishes for its own threads and node processes ----

/** DSM_RACE=1: race mode (docs/RACE.md); set by `dsm run --race`, read by app threads. */
export function raceModeEnabled(): boolean {
  return flag('DSM_RACE');
}

export function setRaceMode(): void {
  process.env.DSM_RACE = '1';
}

/** DSM_TAG_OUTPUT=1: app threads prefix their lines (`dsm run --tag-output`). */
export function tagOutputEnabled(): boolean {
  return flag('DSM_TAG_OUTPUT');
}

export function setTagOutput(): void {
  process.env.DSM_TAG_OUTPUT = '1';
}

/** The node this thread runs on (DSM_NODE_ID, published for the program; 0 when unset). */
export function nodeIdOfThread(): number {
  return Number(process.env.DSM_NODE_ID ?? 0);
}

/** Tells the program's threads where they run (DSM_NODE_ID, DSM_NODE_COUNT; plain node leaves these unset). */
export function publishNodeIdentity(nodeId: number, nodeCount: number): void {
  process.env.DSM_NODE_ID = String(nodeId);
  process.env.DSM_NODE_COUNT = String(nodeCount);
}

// ---- what a launcher hands its local children ----

/** What a launcher tells a local child node (the secret goes down its stdin, never here). */
export interface ChildSettings {
  join: string;
  nodeId: number;
  clusterConfig: unknown;
  joinTimeoutMs: number;
  parentPid: number;
  heartbeatTimeoutMs: number;
  /** Module the child imports for createMesh(context)/runNode(handle). */
  nodeRuntime?: string;
  /** Module the child imports first, for prepareNode() (called before it joins). */
  nodePrepare?: string;
  /** JSON the runtime reads back with runtimeConfig(). */
  runtimeConfig?: unknown;
}

/** The environment of a local child: this one without the secret, plus its settings. */
export function childEnvironment(settings: ChildSettings, extra: Environment = {}): Record<string, string | undefined> {
  return {
    ...withoutSecret(process.env),
    ...withoutSecret(extra),
    ...(settings.nodeRuntime === undefined ? {} : { DSM_NODE_RUNTIME: settings.nodeRuntime }),
    ...(settings.nodePrepare === undefined ? {} : { DSM_NODE_PREPARE: settings.nodePrepare }),
    ...(settings.runtimeConfig === undefined ? {} : { DSM_RUNTIME_CONFIG: JSON.stringify(settings.runtimeConfig) }),
    DSM_JOIN: settings.join,
    DSM_SECRET_FROM_STDIN: '1',
    DSM_NODE_ID: String(settings.nodeId),
    DSM_CLUSTER_CONFIG: JSON.stringify(settings.clusterConfig),
    DSM_JOIN_TIMEOUT_MS: String(settings.joinTimeoutMs),
    DSM_PARENT_PID: String(settings.parentPid),
    DSM_SUPERVISED: '1',
    DSM_HEARTBEAT_TIMEOUT_MS: String(settings.heartbeatTimeoutMs),
  };
}

/**
 * The environment of a local child started before the launcher knows its settings (src/cluster/early-nodes.ts):
 * this one without the secret, DSM_EARLY_START=1, and what is known already (its node id, the launcher's pid),
 * so that a look at the process (/proc/PID/environ, a preloaded module) finds it as a late spawn's. The rest
 * comes down stdin (replaceEnvironment).
 */
export function earlyChildEnvironment(nodeId: number): Record<string, string | undefined> {
  return {
    ...withoutSecret(process.env),
    DSM_EARLY_START: '1', DSM_SECRET_FROM_STDIN: '1', DSM_NODE_ID: String(nodeId), DSM_PARENT_PID: String(process.pid), DSM_SUPERVISED: '1',
  };
}

/** Whether this process is a local child started early (earlyChildEnvironment): its settings are on stdin. */
export function isEarlyStart(): boolean {
  return flag('DSM_EARLY_START');
}

/** Makes this process's environment `env` (a child started early, given the environment a late spawn would have had). */
export function replaceEnvironment(env: Readonly<Record<string, unknown>>): void {
  for (const name of Object.keys(process.env)) if (!(name in env)) delete process.env[name];
  for (const [name, value] of Object.entries(env)) if (typeof value === 'string') process.env[name] = value;
}

/** What a local child finds in its environment (validated); DSM_SECRET_FROM_STDIN is cleared once read. */
export interface ChildJoinEnvironment {
  join: string;
  secretFromStdin: boolean;
  /** DSM_SECRET when the secret does not come down stdin (removed from the environment). */
  secret?: string;
  nodeId?: number;
  clusterConfig?: unknown;
  joinTimeoutMs?: number;
  /** The launcher's pid when supervised (DSM_SUPERVISED=1). */
  parentPid?: number;
  heartbeatTimeoutMs?: number;
  nodeRuntime?: string;
  nodePrepare?: string;
}

export function childJoinEnvironment(env: Environment = process.env): ChildJoinEnvironment {
  const join = env.DSM_JOIN;
  if (join === undefined) throw new DsmError('DSM_ERR_INVALID_OPTION', 'DSM_JOIN is not set: a local node is started by its launcher');
  const secretFromStdin = env.DSM_SECRET_FROM_STDIN === '1';
  let clusterConfig: unknown;
  if (env.DSM_CLUSTER_CONFIG !== undefined) {
    try {
      clusterConfig = JSON.parse(env.DSM_CLUSTER_CONFIG);
    } catch {
      throw new DsmError('DSM_ERR_INVALID_OPTION', 'DSM_CLUSTER_CONFIG is not JSON: a local node is started by its launcher');
    }
  }
  const result: ChildJoinEnvironment = {
    join,
    secretFromStdin,
    ...(env.DSM_NODE_ID !== undefined ? { nodeId: integerOf('DSM_NODE_ID', env.DSM_NODE_ID, 0, 2 ** 31) } : {}),
    ...(clusterConfig !== undefined ? { clusterConfig } : {}),
    ...(env.DSM_JOIN_TIMEOUT_MS !== undefined ? { joinTimeoutMs: integerOf('DSM_JOIN_TIMEOUT_MS', env.DSM_JOIN_TIMEOUT_MS, 1, 2 ** 31) } : {}),
    ...(env.DSM_SUPERVISED === '1' ? { parentPid: integerOf('DSM_PARENT_PID', env.DSM_PARENT_PID ?? '', 1, 2 ** 31) } : {}),
    ...(env.DSM_HEARTBEAT_TIMEOUT_MS !== undefined ? { heartbeatTimeoutMs: integerOf('DSM_HEARTBEAT_TIMEOUT_MS', env.DSM_HEARTBEAT_TIMEOUT_MS, 1, 2 ** 31) } : {}),
    ...(env.DSM_NODE_RUNTIME !== undefined ? { nodeRuntime: env.DSM_NODE_RUNTIME } : {}),
    ...(env.DSM_NODE_PREPARE !== undefined ? { nodePrepare: env.DSM_NODE_PREPARE } : {}),
  };
  if (env === process.env) {
    delete process.env.DSM_SECRET_FROM_STDIN;
    if (!secretFromStdin) {
      const secret = takeEnvironmentSecret();
      if (secret !== undefined) result.secret = secret;
    }
  } else if (!secretFromStdin && env.DSM_SECRET !== undefined) {
    result.secret = env.DSM_SECRET;
  }
  return result;
}

/** The launcher's pid when this process is a supervised local child (DSM_SUPERVISED=1, DSM_PARENT_PID). */
export function supervisingParentPid(): number | undefined {
  return process.env.DSM_SUPERVISED === '1' ? Number(process.env.DSM_PARENT_PID) : undefined;
}

/** DSM_RUNTIME_CONFIG: the runtime settings node 0 gave a local child ({} when unset). */
export function runtimeConfig<T extends object>(): Partial<T> {
  const text = process.env.DSM_RUNTIME_CONFIG;
  if (text === undefined || text === '') return {};
  try {
    return JSON.parse(text) as Partial<T>;
  } catch {
    throw new DsmError('DSM_ERR_INVALID_OPTION', 'DSM_RUNTIME_CONFIG is not JSON: a local node is started by its launcher');
  }
}

// ---- test hooks ----

export type TestHookName = 'MANAGER_THROW' | 'BLOCK_LOOP' | 'ARRIVALS' | 'SLOW_WORKER_START' | 'HOLD_DEFERRED' | 'THREAD_END_DELAY' | 'DELAY_SENDS';

/** Test-only hooks (never set them outside dsm's tests; see docs/CLUSTER.md): DSM_TEST_HOOK_<NAME>=<node>:<argument> (node `*`: every node). */
export function testHook(name: TestHookName, nodeId: number): string | null {
  const value = process.env[`DSM_TEST_HOOK_${name}`];
  if (value === undefined || value === '') return null;
  const [node, ...rest] = value.split(':');
  return node === '*' || Number(node) === nodeId ? rest.join(':') : null;
}

/**
 * The process environment as one string, to tell whether the program changed
 * it (a warm thread copied the environment of its making: src/threads/worker.ts).
 */
export function environmentFingerprint(): string {
  return JSON.stringify(process.env);
}
