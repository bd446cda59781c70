// Every limit dsm has, named in one place. Relations between them are asserted
// at the bottom so a bad edit fails at import time, not in production.

/** Size of one coherence unit. Must equal the OS page size (checked by the native addon). */
export const pageBytes = 4096;
/** log2(pageBytes): the native addon shifts page indexes by it. */
export const pageShift = 12;

/** Default size of the global region (virtual address space, lazily backed). */
export const regionBytesDefault = 4 * 1024 * 1024 * 1024;
export const regionBytesMin = 16 * 1024 * 1024;
export const regionBytesMax = 64 * 1024 * 1024 * 1024;

/**
 * Concurrent page faults the native fault queue can hold (one per parked thread). A thread that
 * faults while every slot is taken yields until one frees: more app threads than this on one
 * node is allowed (dsm sets no thread limit of its own, as plain node sets none), they queue.
 */
export const faultSlotCount = 1024;
/** Pages a write fault may make dirty through the native fast path before a release drains them. */
export const dirtyRingCapacity = 65536;
/**
 * Touches of read-ahead pages the signal handler queued for the engine (pageStateTouchAhead), at most: past it a
 * touch faults into the manager as before. A power of two.
 */
export const touchRingCapacity = 4096;
/**
 * Native applyDiff (session 29): a diff of at most diffPwriteRunsMax plain runs, to a page that has had fewer than
 * diffPwriteCountMax diffs so applied, is written through the region's memfd (one pwrite a run), not through the
 * manager view, whose first touch of a page costs 10-11 µs on a VM with shadow page tables (a pwrite 1.8 µs).
 */
export const diffPwriteRunsMax = 4;
export const diffPwriteCountMax = 4;

// Native addons (native/dsm_mmu.cc, native/dsm_watchdog.cc). scripts/native-constants.mjs writes the
// constants the addons use (listed there) into native/generated/dsm_constants.h, with the error codes
// and exit codes of src/errors.ts; `npm run build:native` regenerates it and
// test/unit/native-constants.test.ts fails when the committed header and these values differ.
/** Page protections: PageMemory.protect's argument and the low bits of the native page state. */
export const protNone = 0;
export const protRead = 1;
export const protReadWrite = 2;
export type PageProt = typeof protNone | typeof protRead | typeof protReadWrite;
/** Native page state bits (as the addon's pageState reports them): the protection, then flags. */
export const pageStateProtMask = 0x03;
export const pageStateFastWrite = 0x04;
export const pageStateHasTwin = 0x08;
/** The fast path upgrades such a page without a twin (hlrc: this node's own pages, whose writes need no diff). */
export const pageStateTwinless = 0x10;
/**
 * A valid read-ahead copy kept at no access so that its first touch is seen (hlrc's tracked read-ahead): the
 * signal handler makes it read-only (with the fast write flag) on that touch and queues the page on the touch
 * ring for the engine, without parking the thread (docs/PROTOCOL.md, "Read-ahead touches in the handler").
 * Any protection change clears it.
 */
export const pageStateTouchAhead = 0x20;
/** With pageStateTouchAhead: the touch also wakes the manager (a touch that may issue read-ahead windows at once). */
export const pageStateTouchWake = 0x40;
/** Set while one thread changes the page's state (the others wait). */
export const pageStateBusy = 0x80;
/**
 * A fault record's flags word (startFaultService's (slot, page, flags) triples): the write bit,
 * and above it, from this shift, the faulting byte's offset in its page.
 */
export const faultFlagWrite = 0x1;
export const faultFlagOffsetShift = 1;
/** Native: twins come first from a pool of this many pre-touched page slots (so the fast path takes no kernel fault on fresh twin memory), this many of them touched at init. */
export const twinPoolSlotCount = 8192;
export const twinPoolPretouchCount = 2048;
/**
 * Native (glibc only), unless DSM_MALLOC_KEEP=0: in a node process of a cluster of several nodes, the C allocator
 * keeps buffers of up to this size in its heap instead of mapping each one afresh (M_MMAP_THRESHOLD, glibc's own
 * maximum). Opt-in until session 25: a 128 MiB remote read took ~10% less CPU with it, a 12 MiB one up to ~10% more
 * (a reused buffer is zeroed by calloc where a fresh mapping came zeroed: docs/EVALUATION.md, session 14); on the
 * session 25 machine (a fresh page costs a trip through the hypervisor) it is faster at every size. A page
 * fetch's reply buffer (up to 256 pages), the received frame's payload and the socket's read chunks are then
 * memory the process used before: on a virtual machine a freshly mapped page costs a fault and a zeroing
 * (clear_page: 13% of the cluster's CPU in a 128 MiB remote read, session 14) each time it is first touched.
 */
export const mallocMmapThresholdBytes = 32 * 1024 * 1024;
/**
 * Native (glibc only): free memory at the top of the C heap that the allocator keeps rather than giving back to
 * the system (M_TRIM_THRESHOLD). glibc's dynamic default follows the largest buffer freed (twice it): a node's
 * 1 MiB replies came and went faster than that, so the heap kept shrinking and growing again, page by page.
 */
export const mallocTrimThresholdBytes = 128 * 1024 * 1024;
/**
 * Native: a fast write to a page whose preceding pages were twinned and written in a row (a sequential write
 * stream over read-only copies of other homes' pages, e.g. a band of a stencil grid before it is lent) also
 * twins and upgrades up to this many following pages that are in the same state, in one mprotect: as many as
 * the run behind it (1, 2, 4, ... up to this), so a stream of N pages takes about N / this faults, not N.
 * A page twinned ahead and never written closes with an empty diff (named in the write notice, like an
 * early-flushed page); the run rule keeps such pages to the tail of a stream.
 */
export const writeAheadPageCountMax = 15;
/**
 * Native: write-ahead starts only once this many pages before the faulting one were twinned and written in a
 * row (the third page of a stream): a row of a matrix that spans two pages, written by one node among others
 * (matmul's C), is no stream, and a page twinned past its end would be named in the write notice and
 * invalidate the other writers' copies (the simulated 16-node matmul: 1,442 -> 1,486 messages with 1).
 */
export const writeAheadRunPagesMin = 2;
/**
 * Native: the bit the fast path sets on a dirty-ring entry for one of the node's own pages it upgraded ahead of a
 * write stream (WriteAhead) rather than for a store: the engine names such a page in its write notice but does not
 * count the home as its writer for home migration until a store of its own is seen (src/protocol/hlrc.ts
 * drainDirty). Page numbers stay below it (a region holds at most 2^31 pages).
 */
export const dirtyAheadTag = 0x80000000;
/**
 * Native: with dirtyAheadTag, the bit the fast path also sets on such an entry when the page held only zeros as it
 * was upgraded (fresh memory: a buffer nobody has written yet). If no store of the home's own is seen on it and it
 * still holds only zeros when the interval closes, its bytes did not change: the engine protects it again and leaves
 * it out of the write notice (src/protocol/hlrc.ts closeInterval), so other nodes keep their copies, or write the
 * page with no fetch (session 44: a row-counter render's node 1 fetched about half the rows it wrote, pages node 0's
 * stream had upgraded ahead). Page numbers stay below it (a region holds at most 2^24 pages).
 */
export const dirtyAheadZeroTag = 0x40000000;
/**
 * Native: pause instructions a faulting thread spins before it sleeps on its futex (the manager usually answers
 * within tens of microseconds); every 32 pauses it looks at the clock and, until the manager has taken the fault,
 * yields the CPU, so a manager queued on the same CPU (on 2 vCPUs, often) serves the fault during the spin
 * instead of after it.
 */
export const parkSpinCount = 4000;
/**
 * Native: and for at most this many microseconds. A pause costs 10 to 150 cycles
 * by CPU (about 100 ns on the EPYC of the 2-vCPU test machine: 4000 were 0.3 to
 * 0.5 ms of spinning a remote fetch, CPU taken from the manager that serves it).
 * A fault its manager sends to another node ends the spin at once (the native prefault marks its slot): a
 * remote page is a round trip away, and the spin would take a CPU from the managers serving it.
 */
export const parkSpinUsMax = 30;
/**
 * Native: microseconds a faulting thread then polls its slot, yielding the CPU between looks, before it sleeps
 * (DSM_PARK_YIELD_US sets it). A remote page takes a few hundred microseconds and waking a sleeping thread costs
 * tens more, so on a machine with idle cores polling saves the last wake-up of a remote fault; on a loaded
 * machine a polling thread is scheduled behind the others each time it yields (measured on the 2-vCPU VM
 * under load: no gain, some far worse faults), so the default is 0: spin, then sleep, as before.
 */
export const parkYieldUs = 0;
/**
 * Native: a poll's yield that kept the thread off its CPU this long (µs) ends the polling: a thread that
 * computes shares the CPU, and the faulting thread sleeps instead, since a futex wake-up is scheduled at once
 * where a thread that yielded waits for the scheduler to come back to it.
 */
export const parkYieldContendedUs = 200;
/** The most DSM_PARK_YIELD_US may ask (one second). */
export const parkYieldUsMax = 1_000_000;
/**
 * Microseconds a node's manager polls for its next event, before its loop sleeps, while an app thread of its
 * node waits for it (a fault being served, a doorbell call: native/dsm_mmu.cc, OnPreparePoll). On a VM an idle
 * vCPU halts, and each event for a manager asleep in epoll must wake it (tens of µs; a remote fault or lock has
 * two or more such wake-ups). Polling yields the CPU between looks and stops when a yield kept it off the CPU
 * for parkYieldContendedUs (a computing thread shares the CPU); it is skipped while the machine's runnable tasks
 * (/proc/loadavg) exceed its CPUs plus one. Several nodes only (DSM_MANAGER_POLL_US; 0: off).
 * Measured on the 2-vCPU VM (bench/programs/page-fetch.mjs, quiet): pageFetchUsP50 240-250 µs without polling.
 */
export const managerPollUs = 300;
/**
 * Microseconds the manager polls after a turn of its loop that had activity (a socket read, a doorbell ring, a
 * fault), with no thread waiting: the next request of a burst or the next fault of a scan comes at once, and a
 * home that polls after its reply takes the next request without a wake-up (DSM_MANAGER_LINGER_US; 0: off).
 */
export const managerLingerUs = 150;
/**
 * Native: a wait older than this (µs) is not a round trip (a lock held elsewhere, a long barrier, an Atomics.wait
 * nobody notifies): the manager then polls only after activity, not at every timer of its loop (a 3 s remote
 * Atomics.wait polled 646 times, ~0.2 s of CPU, without this bound).
 */
export const managerPollFreshUs = 2000;
/** The most DSM_MANAGER_POLL_US and DSM_MANAGER_LINGER_US may ask (10 ms). */
export const managerPollUsMax = 10_000;
/**
 * V8's interrupt budget (bytecode bytes a function runs between tier-up checks) set in a node process when
 * its manager starts, or 0 to leave V8's own (67584). A synchronization runs each function of the manager's
 * path (channel, engine, msgpack, streams) about once, so with V8's budget that path reaches optimized code
 * only after ~3000 barriers (2-node barrier p50 by 1000-round window on the 2-vCPU VM: 725, 455, 223, 198,
 * 190 µs); with 8192, after ~1000 (495, 175, 179, 194, 198 µs). But V8's flags are process-wide: app threads
 * then tier up on partial feedback, deoptimize and compile again (~0.25-0.5 s of background compile CPU per
 * node process early in a run). Session 12's A/B on a quiet machine (docs/EVALUATION.md, "Session 12: the
 * interrupt budget") found programs faster with V8's own budget (Jacobi 2 nodes 3 of 3 pairs, median 1.65 ->
 * 1.21 s; the large render 1.83-1.96 -> 1.54-1.56x plain, its CPU 1.79-1.92 -> 1.48-1.52x; TSP and QuickSort
 * 2 of 2) and only the first thousands of sync rounds slower (bench sync's 2000-round p50s ~30-60% higher),
 * so the default is now V8's own. DSM_INTERRUPT_BUDGET=8192 brings the old warm-up back for programs that are
 * short and all synchronization. Only on V8 11 and earlier (Node 20): later V8s have no such flag.
 */
export const interruptBudgetBytes = 0;
/** The most DSM_INTERRUPT_BUDGET may ask. */
export const interruptBudgetBytesMax = 1 << 24;
/** Watchdog: child node processes it can register (it SIGKILLs them when it forces its own exit). */
export const watchdogChildCountMax = 1024;
/** Watchdog: names of manager-loop activities it can report, and the bytes of each name (with its NUL). */
export const watchdogActivityCountMax = 64;
export const watchdogActivityNameBytes = 64;
/** Watchdog: its thread looks this often; an oversleep of more than watchdogOversleepExcusedMs (a starved process) is not a stall of the loop. */
export const watchdogPollMs = 50;
export const watchdogOversleepExcusedMs = 500;

/** Bytes of a synchronous channel reply (app thread <- manager). */
export const channelReplyBytesMax = 64 * 1024;
/**
 * Requests an app thread may have queued in its doorbell slot (src/channel/doorbell.ts)
 * before the manager takes them: a call waits for its answer, so only posted
 * requests (an unlock, an Atomics.waitAsync, a small cross-node postMessage)
 * pile up; a full ring makes the thread wait until half of it is free.
 */
export const channelRingEntries = 256;
/**
 * Bytes of an app thread's doorbell block that hold its small posts' clones
 * (a ring of bytes beside the ring of entries; a power of two).
 */
export const channelPostBytes = 32 * 1024;
/**
 * A cross-node postMessage whose clone (with a relayed port's id or a
 * BroadcastChannel's name) is at most this many bytes, and that carries no
 * MessagePort, goes through the doorbell ring; a larger one by the thread's
 * MessagePort (at most channelPostBytes / 4).
 */
export const ringPostBytesMax = 4 * 1024;
/**
 * Message events (cross-node posts) a manager gathers for one app thread
 * while it reads frames, sent to it as one MessagePort message (a batch the
 * thread delivers one message a turn, as Node's port); one more sends the
 * batch at once.
 */
export const channelEventBatchMax = 256;
/**
 * Small posts to one node a manager serves in one run and sends as one
 * rtPosts message (src/runtime/remote-workers.ts); one more sends the batch at once.
 */
export const lanePostBatchMax = 256;
/**
 * Message posts to other nodes (worker/parentPort/MessagePort/BroadcastChannel
 * postMessage) an app thread may have in its manager, sent without waiting and
 * not yet admitted within the link limit (src/runtime/flow.ts) and served: one
 * more makes the thread wait until one is (ChannelClient.postMessageRequest).
 */
export const postsInFlightMax = 256;
/**
 * What a post that goes by the thread's MessagePort (larger than
 * ringPostBytesMax) counts against postsInFlightMax: postsInFlightMax /
 * portPostUnits of them may be in flight (a small post counts one).
 */
export const portPostUnits = 8;
/**
 * An app thread parked on a call wakes this often to let a termination
 * (worker.terminate) take effect: the longest a terminated thread takes to end.
 */
export const channelParkSliceMs = 50;

/** Allocator: blocks at most this size come from size classes that share pages. */
export const smallBlockBytesMax = 2048;
/** Allocator: a node's arena takes chunks of this size from the global region. */
export const arenaChunkBytes = 1024 * 1024;
/** Allocation: chunks a node whose slice is full asks another node for at once (at least what the allocation needs). */
export const chunkBorrowCountMin = 4;
/**
 * Allocation: the region is really full (DSM_ERR_REGION_EXHAUSTED) when a
 * failed allocation's node asked its threads for a full collection and every
 * other node to collect, and for this long after both nothing was freed or
 * borrowed there and no node lent (src/runtime/heap-service.ts, allocOrWait).
 * Until then the thread collects and retries.
 */
export const allocSettleMs = 500;
/**
 * Allocation: how long after a full collection was asked a failed
 * allocation's node waits for threads that have not run it yet (one blocked in
 * a system call) before it decides without them.
 */
export const allocCollectWaitMsMax = 5000;
/**
 * Allocation: how often a node asked by another to collect (rtRangeCollect)
 * looks whether its threads have run the collection, to answer
 * (rtRangeCollected: src/runtime/heap-service.ts, answerCollectAsks).
 */
export const collectAnswerPollMs = 10;
/**
 * Allocation: the longest a thread retries a failed allocation while its node
 * still frees or borrows memory (progress, but never room enough) before it
 * throws DSM_ERR_REGION_EXHAUSTED: so that no allocation waits for ever.
 */
export const allocWaitMsMax = 60_000;
/**
 * Allocation: a thread that allocates buffers of one small size again and
 * again (at most allocCacheBlockBytesMax bytes) asks its manager for them in
 * batches (2, 4, … up to allocBatchCountMax) and makes the next ones with no
 * call, holding at most allocCacheBytesMax bytes of such blocks not yet made
 * into buffers (session 40: each call is a round trip of ~46 µs on this
 * machine's VM, against 2 µs for a SharedArrayBuffer under node; session 44:
 * a batch of 64 still cost 3.6 µs a buffer, the cap is now what the bytes
 * allow, 1,024 blocks of 64 bytes). The blocks a
 * thread held when it ends go back (src/runtime/heap-service.ts, allocBatch).
 */
export const allocCacheBlockBytesMax = 1024;
export const allocBatchCountMax = 1024;
export const allocCacheBytesMax = 64 * 1024;
/** Allocation: how many different sizes a thread's allocation cache tracks (a size past them is never batched). */
export const allocCacheSizeCountMax = 64;
/**
 * Allocation: a node whose free memory falls under this fraction of its
 * share of the region (region / nodes, at least two chunks) asks its threads,
 * and every other node's, to collect (src/runtime/heap-service.ts, checkPressure).
 */
export const heapPressureFreeFraction = 0.25;
/**
 * Allocation: a gather (a run of chunks free in several nodes' tables, asked
 * of each lender in turn) takes at most this many segments, each one ask.
 */
export const chunkGatherSegmentCountMax = 32;
/** Allocation: free-chunk runs a node reports to a gather's survey at most (its longest). */
export const chunkSurveyRunCountMax = 4096;

/** Transport: largest frame accepted on a connection (header + body). */
export const frameBytesMax = 8 * 1024 * 1024;
/**
 * Page copies on the wire (src/runtime/page-pack.ts): a copy is packed (zero
 * bytes left out) only where that saves at least 1 / pagePackGainDivisor of
 * it, and a copy whose first pagePackProbeBytes do not is sent raw without
 * packing the rest (pages of doubles, random bytes).
 */
export const pagePackGainDivisor = 8;
export const pagePackProbeBytes = 1024;
/**
 * Largest body written in the compact layout (src/transport/compact.ts: the atomic lines' small messages);
 * a larger one (a release bundling many diffs) goes as msgpack. The encoder's one scratch buffer is this size.
 */
export const compactBodyBytesMax = 16 * 1024;
/**
 * Runs of pages (a fetch's window, less its first page) queued for the native helper thread that makes them
 * resident in the manager view while the request is out (src/runtime/engine-host.ts, prefault in
 * native/dsm_mmu.cc). A full queue drops a run: its copies then fault in as they are written.
 */
export const prefaultQueueRunCountMax = 64;
/** Pages populated by one call of the prefault helper (each call holds the mmap lock an mprotect waits for). */
export const prefaultChunkPages = 16;
/**
 * Bytes of the slab compact frames are written into (src/transport/compact.ts): each frame is a view of it,
 * a new slab is taken when the room left could not hold a whole body: about 15 one-page replies a slab, unless
 * the socket took each frame whole (its queue empty after the write): that frame's room is then given back to
 * the next one (compactFrameDone). Under glibc's default mmap threshold (128 KiB), so a slab comes from the heap
 * in any process.
 */
export const compactSlabBytes = 64 * 1024;
/** Transport: bytes queued on one connection before senders see backpressure. */
export const sendQueueBytesMax = 32 * 1024 * 1024;
/**
 * Frames to one peer after the first in an event-loop turn are held (the
 * socket corked) and written together at the turn's end: at most this many
 * bytes, past which they are written at once (src/transport/connection.ts).
 */
export const frameHeldBytesMax = 256 * 1024;
/**
 * Transport: the buffer each plain TCP connection reads into (src/transport/frame-reader.ts), one per
 * connection, reused by every read: Node's own reads were 64 KiB as well (a fresh buffer each).
 */
export const receiveBufferBytes = 64 * 1024;
/**
 * Transport: a frame spanning reads that still needs this many bytes or more is read straight into its own
 * buffers (no copy); less, and it is copied out of the read buffer, where the next frame's bytes may come in the same read.
 */
export const receiveDirectBytesMin = 32 * 1024;
/**
 * The largest page reply's payload a connection reads into its reusable
 * reply buffer (src/transport/frame-reader.ts, session 26); larger ones get a
 * buffer of their own. A read-ahead window's reply: up to 256 pages.
 */
export const replyPayloadBytesMax = 2 * 1024 * 1024;
/** Transport: handshake must complete within this many milliseconds. */
export const handshakeTimeoutMs = 5000;

/** Cluster: heartbeat period and the silence after which a node is declared dead. */
export const heartbeatIntervalMs = 500;
export const heartbeatTimeoutMs = 4000;
/** Cluster: default time to wait for all nodes to join. */
export const joinTimeoutMsDefault = 30000;
/**
 * Runtime: the signals a program's main thread may take with process.on (src/threads/signals.ts): node 0's process
 * hands each to it while it listens. SIGINT and SIGTERM otherwise end the run (exit 130, 143); the others, not
 * listened for, act as on any process (SIGHUP ends it, SIGWINCH is ignored). SIGUSR1 stays Node's (the inspector).
 */
export const programSignalNames = ['SIGINT', 'SIGTERM', 'SIGHUP', 'SIGQUIT', 'SIGUSR2', 'SIGWINCH', 'SIGCONT'] as const;
/** One of programSignalNames. */
export type ProgramSignal = typeof programSignalNames[number];
export const nodeCountMax = 64;

/** Cluster: a joiner retries a refused connection to node 0 this often, until its join timeout. */
export const joinRetryIntervalMs = 250;
/** Cluster: after asking the other nodes to stop, the launcher waits this long before SIGKILL. */
export const shutdownGraceMs = 3000;
/** Cluster: a child checks that its parent is alive this often (besides watching its pipe). */
export const parentCheckIntervalMs = 500;
/** Cluster: when a local child's connection closes, wait this long for its exit status before reporting. */
export const childExitWaitMs = 500;
/** Cluster: time the onFailure callbacks get before the run ends anyway. */
export const failureReportMsMax = 2000;
/** Cluster: parked requests of app threads (Atomics waits, locks, barriers) a node names when the run is interrupted by SIGINT or SIGTERM. */
export const parkedReportCountMax = 8;
/**
 * Cluster: a node other than 0 that received SIGTERM, its parked requests named, waits this long for node 0's stop
 * (the whole process group was signalled, as `timeout` does) before it ends by the signal as without a handler.
 */
export const signalledNodeStopWaitMs = 500;
/** Cluster: bytes of relayed output node 0 buffers per remote node before dropping (then says so). */
export const outputRelayBytesMax = 4 * 1024 * 1024;

/** Supervision: after SIGTERM/SIGINT a process has this long to end before its watchdog forces it (and kills its child nodes). */
export const signalGraceMs = 4000;
/** Supervision: an exit that hangs this long (process.exit waits for app threads parked on faults) is forced. */
export const exitDeadlineMs = 1000;
/** Supervision: the manager loop tells the watchdog it turns this often. */
export const loopPetIntervalMs = 100;
/**
 * Supervision: a manager loop standing still this many times the heartbeat timeout (the floor) is a stalled
 * node, which ends itself (DSM_ERR_STALLED). Above 1: heartbeats come from a thread of their own
 * (src/transport/beacon.ts), so a loop busy for longer than the floor is not declared dead by its peers; only
 * a loop stuck this long is.
 */
export const loopStallFactor = 3;
/**
 * Hardening: lines about unauthenticated connections that were refused (anyone who can reach a port can cause
 * them) are printed at most refusalLinesMax per refusalWindowMs; one summary line counts the rest.
 */
export const refusalLinesMax = 10;
/** Failure detection: how long after a mesh's start a peer whose heartbeat thread (src/transport/beacon.ts) was never heard is not declared dead by TCP silence alone (its beacon may still be booting); also the longest wait for a beacon's `ready`. */
export const beaconStartMsMax = 5000;
/** Failure detection: a node starts its heartbeat thread this long after its mesh starts (a shorter run never pays its boot). */
export const beaconDelayMs = 2000;
export const refusalWindowMs = 10_000;
/**
 * A handshake whose peer vanished (its socket reset or closed before the hello) is reported this long after,
 * not at once: when the peer was a node of this cluster that died, its death is the run's line, and the process
 * that ends for it drops the held lines (src/transport/refusals.ts). A stranger's is printed then, rate-limited.
 */
export const refusalVanishedHoldMs = 500;
/** Failure detection: range of --heartbeat-timeout (the floor under the adaptive timeout), ms. */
export const heartbeatTimeoutMsMin = 1500;
export const heartbeatTimeoutMsMax = 600_000;
/** Failure detection: inter-arrival samples kept per peer, and the suspicion (phi) at which a silent peer is dead. */
export const heartbeatSampleCount = 100;
export const phiThreshold = 8;

/** Transport: a refused or unreachable connect is retried this many times, this far apart. */
export const connectRetryCountMax = 8;
export const connectRetryIntervalMs = 100;

function assert(condition: boolean, message: string): asserts condition {
  if (!condition) throw new Error(`dsm constants: ${message}`);
}

assert(pageBytes > 0 && (pageBytes & (pageBytes - 1)) === 0, 'pageBytes is a power of two');
assert(1 << pageShift === pageBytes, 'pageShift is log2(pageBytes)');
assert((dirtyRingCapacity & (dirtyRingCapacity - 1)) === 0, 'the dirty ring indexes by a mask');
assert((touchRingCapacity & (touchRingCapacity - 1)) === 0, 'the touch ring indexes by a mask');
assert(regionBytesMax / pageBytes <= dirtyAheadZeroTag, 'page numbers stay below the dirty ring tags');
// A batch's JSON reply ([offset, zero, …]: at most 17 digits and a comma, then a digit and a comma, a block) fits the reply block.
assert(allocBatchCountMax * 20 + 64 <= channelReplyBytesMax, 'an alloc-batch reply fits the reply block');
assert(twinPoolSlotCount % 64 === 0 && twinPoolPretouchCount <= twinPoolSlotCount, 'the twin pool is whole 64-slot words, partly pre-touched');
assert(faultFlagWrite < 1 << faultFlagOffsetShift && pageBytes << faultFlagOffsetShift <= 2 ** 32, 'a fault record flags word holds the write bit and the offset');
assert(protNone < protRead && protRead < protReadWrite && protReadWrite <= pageStateProtMask, 'protections fit the state mask in order');
assert(watchdogChildCountMax >= nodeCountMax, 'the watchdog can register every local child node');
assert(watchdogPollMs < loopPetIntervalMs * 2 && watchdogOversleepExcusedMs >= watchdogPollMs, 'the watchdog looks more often than the loop is petted');
assert(regionBytesDefault % pageBytes === 0, 'region is whole pages');
assert(regionBytesMin <= regionBytesDefault && regionBytesDefault <= regionBytesMax, 'default region within range');
assert(arenaChunkBytes % pageBytes === 0, 'arena chunks are whole pages');
assert(smallBlockBytesMax * 2 <= pageBytes, 'a small block is at most half a page');
assert(heartbeatTimeoutMs > 2 * heartbeatIntervalMs, 'a timeout spans several heartbeats');
assert(beaconDelayMs * 2 <= beaconStartMsMax, 'a beacon started late still boots within the grace its peers give it');
assert(frameBytesMax >= 2 * pageBytes, 'a frame holds a page with room to spare');
assert(sendQueueBytesMax >= frameBytesMax, 'a send queue holds a maximal frame');
assert(receiveBufferBytes >= 16 && receiveDirectBytesMin <= receiveBufferBytes, 'a read buffer holds a frame header, and a frame needing more than it holds is read straight into its own buffers');
assert(signalGraceMs + exitDeadlineMs <= 5000, 'a signalled node ends within 5 s');
assert(heartbeatTimeoutMsMin > 2 * heartbeatIntervalMs, 'the smallest timeout spans several heartbeats');
assert(shutdownGraceMs < heartbeatTimeoutMs * 4 && joinRetryIntervalMs < joinTimeoutMsDefault, 'cluster timeouts are ordered');

/** Protocol: write-notice intervals one node keeps in its log before a barrier must reclaim them. */
export const intervalLogCountMax = 1 << 20;
/**
 * Protocol: sync requests (locks, barriers, atomics, fetches) one node can have in flight: each a parked thread
 * or a pending Atomics.waitAsync, which parks nothing (a program may keep tens of thousands: users12
 * promise-table.mjs). As many as Atomics.wait waiters one home or line directory keeps.
 */
export const syncInFlightCountMax = 65536;
/**
 * App threads: how long after its last notify a thread with Atomics.waitAsync promises pending keeps its loop alive
 * for the 'atomic-done' events that notify may have caused here (src/threads/atomics.ts afterNotify); it lets go as
 * soon as they came.
 */
export const waitAsyncNotifyHoldMs = 50;
/** Protocol: threads parked in Atomics.wait at one synchronization home. */
export const atomicWaiterCountMax = 65536;
/**
 * Protocol: waiters queued on one mutex, condition or barrier (at most every thread of the
 * cluster: as many as may wait in Atomics.wait at one home).
 */
export const syncQueueCountMax = 65536;
/** Protocol: distinct barrier ids one barrier manager remembers (with their party counts). */
export const barrierIdCountMax = 65536;
/**
 * Protocol: nodes that send their combined barrier arrivals to one node of the
 * round's tree (the manager at its root), issue 12.3: the manager hears from at
 * most this many nodes per round instead of every node.
 */
export const barrierTreeFanIn = 4;
/** Protocol: distinct mutex ids one lock manager keeps state for (a used lock keeps its release vector). */
export const lockIdCountMax = 1 << 20;
/**
 * Protocol: a node whose interval log holds this many records asks every node
 * for its applied vector timestamp (vcQuery/vcReport) and reclaims the records
 * every node has applied, so lock-only programs stay bounded without barriers.
 */
export const intervalLogReclaimCount = 1024;
/**
 * Protocol: pages one hlrc fetch may bring from their home in one reply (the
 * faulting page and the following ones). The window starts at
 * prefetchPageCountInitial and doubles while faults keep going forward past
 * the previous window and its pages were touched (adaptive read-ahead,
 * src/protocol/readahead.ts, which also shrinks it where read-ahead pages are
 * invalidated untouched), so a sequential scan of n pages costs
 * about log2 + n / (the window limit) round trips, and an isolated fault
 * brings few pages.
 */
export const prefetchPageCountDefault = 64;
export const prefetchPageCountInitial = 16;
/**
 * Protocol: the most pages one fetch may ask for (EngineOptions.prefetchPageCount's limit; a page request with more
 * extras is refused). The engine's window limit is prefetchPageCountDefault unless its options say otherwise.
 */
export const prefetchPageCountMax = 256;
/**
 * Transport: the reused payload buffers of a node's manager (src/transport/payload-slabs.ts): each holds a
 * fetch's largest reply (prefetchPageCountMax pages and the faulting one), and at most this many are in use at
 * once (a stream's replies queued on a slow socket: past it, a reply gets a buffer of its own).
 */
export const payloadSlabBytes = (prefetchPageCountMax + 1) * pageBytes;
export const payloadSlabCountMax = 4;
/**
 * Runtime: the read-ahead window limit cluster nodes run with (DSM_READAHEAD_PAGES overrides it). Larger than the
 * engine's default since session 13: a remote fetch's cost on two loaded cores is mostly per message (a manager
 * woken on each side, about 2 ms a 64-page window at load 2-9), so QuickSort's partition of a 3,072-page remote
 * range took 57 fetches with 64-page windows and 25 with 256, 20-35% less time (docs/EVALUATION.md, "Session 13:
 * QuickSort on 2 nodes"). A stream still starts at prefetchPageCountInitial and doubles only while used.
 */
export const prefetchPageCountRuntime = 256;
/** Protocol: read-ahead streams tracked per home (interleaved scans of different arrays each keep their window). */
export const prefetchStreamCountMax = 4;
/**
 * Protocol: streaming read-ahead (src/protocol/readahead.ts). A stream whose
 * windows are used issues its next window when a thread first touches the
 * first page of its current one, so the transfer overlaps the sweep: at most
 * prefetchAheadWindowCountMax windows issued past the one being read per
 * stream, and at most prefetchAheadFetchCountMax such fetches in flight per node.
 */
export const prefetchAheadWindowCountMax = 1;
export const prefetchAheadFetchCountMax = 8;
/**
 * Protocol: read-ahead history (src/protocol/readahead.ts): start pages whose
 * last extent is remembered, and regions with a learned window (each table at
 * most this many entries, least recently set evicted).
 */
export const prefetchHistoryCountMax = 4096;
/** Protocol: the largest stride (pages) read-ahead detects between a stream's faults. */
export const prefetchStridePagesMax = 64;
/** Protocol: read-ahead learns a window per region of this many pages (log2: 256 pages, 1 MiB) and home. */
export const prefetchRegionPagesLog2 = 8;
/**
 * Protocol: pages a lockGrant may carry: those written in the previous holder's
 * critical section, homed at the manager (migratory data moves with its lock).
 */
export const grantPagePushCountMax = 16;
/**
 * hlrc: pages of other homes whose last own diffs a node keeps after sending them, so that a pushed copy lacking
 * the last of them can be completed here (HlrcCoherence.keptDiffs). Past it the oldest is dropped
 * (such a push is then refused and the page fetched, as before).
 */
export const ownDiffPageCountMax = 256;
/**
 * hlrc: this node's last diffs per page kept for completing a pushed copy (HlrcCoherence.keptDiffs): a line's grant
 * may leave its home before the diffs this node flushed early since its request arrive there (session 41: one or
 * two of them, on a page written through its lines by two nodes). Past it the oldest is dropped.
 */
export const keptDiffCountMax = 4;
/**
 * Protocol: a lock's manager predicts the pages a grant's acquirer will write
 * (src/protocol/push-predict.ts) from offsets to where its last critical
 * section wrote: at most pushOffsetCountMax offsets per node, each within
 * pushOffsetPagesMax pages; at each release of a node its offsets' weights are
 * multiplied by pushOffsetWeightKept (an offset seen every time weighs 8).
 */
export const pushOffsetCountMax = 64;
export const pushOffsetPagesMax = 1024;
export const pushOffsetWeightKept = 7 / 8;
/**
 * Protocol: barrier pushes a node receives of a page it fetched once, before
 * it must fetch the page again to keep receiving it (a reader that stopped
 * reading stops costing the home copies). At most grantPagePushCountMax pages
 * ride one barrier message. 32 (8 until session 23: Jacobi's boundary rows were
 * fetched again every 8, 16, 32, 64 pushes, a fault round trip in a sweep each).
 */
export const barrierPushRenewCount = 32;
/**
 * Protocol: the most barrier pushes one subscription grants. A reader that
 * fetches a page again right after its subscription ran out (the page's next
 * write found it lapsed) reads it steadily: its next subscription doubles, up
 * to this many pushes. So a boundary read every iteration is re-fetched a few
 * times in a long run, and a reader that stops reading receives at most this
 * many more copies of the page.
 */
export const barrierPushRenewCountMax = 128;
/**
 * Protocol (hlrc home migration): the barrier windows, counting only windows
 * that wrote the page, in which one other node must have been a page's sole
 * writer before its static home lends it there, on more than two nodes. Two
 * keep data written once (input matrices filled by node 0 under round-robin
 * homes, then read by every node) at their static homes, where third nodes
 * ask for them without a forwarding hop.
 */
export const lendSoleWriterWindowCount = 2;
/**
 * The same on two nodes, where a lend adds no forwarding hop (the lender is
 * the only other node, and knows): the first departure after one such
 * window (Jacobi's bands then go as diffs once, not twice).
 */
export const lendSoleWriterWindowCountTwoNodes = 1;
/**
 * The same for windows ended at atomic lines (a program that synchronizes
 * with Atomics and no barrier: every acquire of another node's release
 * through a line ends one at this node, several a round of an Atomics-made
 * barrier), on any number of nodes. Three such windows in a row that wrote
 * the page: a row written once between two shipped ops (the render's
 * output) never moves, a band rewritten every round does after three rounds
 * (docs/PROTOCOL.md "Windows at atomic lines").
 */
export const lendSoleWriterLineWindowCount = 3;
/**
 * The same on two nodes (session 22): two windows that wrote the page. The
 * Atomics-made Jacobi of `bench atomics` (two grids, each rewritten every
 * other round) sent node 1's 1 MiB band home as diffs for about twelve rounds
 * with three (5-11 MB of diffs in 200 rounds), 2.3-2.6 MB with one or two; one
 * also lent the render's rows (79 pages, 36 fetches in `render.mjs 2 300`),
 * two none.
 */
export const lendSoleWriterLineWindowCountTwoNodes = 2;
/**
 * Acquires through atomic lines a node makes, with no barrier departure,
 * before they start to end home-migration windows: a program that uses
 * barriers usually reaches its first one within a few synchronizations (a
 * start counter or flag written with Atomics comes first), and its pages then
 * move by the barrier rules alone, its start (the main thread's fill)
 * counting as initialization as before.
 */
export const lendLineAcquiresBeforeWindows = 16;
/** Protocol: pages one homeLend message carries (each a whole page: 64 pages = 256 KiB, well within a frame). */
export const lendPageCountMax = 64;

// Observability (src/runtime/observe.ts)
/** Trace events one node keeps; later events are counted as dropped. */
export const traceEventCountMax = 1_000_000;
/** Trace events per report message from a node to node 0 (keeps frames well under frameBytesMax). */
export const traceEventsPerMessage = 20_000;
/** How long node 0 waits for every node's report at the end of a run. */
export const reportTimeoutMs = 10_000;
/**
 * A message's diffs of at most this many bytes in all stay in its body (src/runtime/envelope.ts); more go as the
 * frame's payload, in one piece, their lengths in the body (a compact body holds at most compactBodyBytesMax).
 */
export const diffsInlineBytesMax = 8 * 1024;
assert(diffsInlineBytesMax <= compactBodyBytesMax / 2, 'inline diffs leave a compact body room for the rest of the message');
/** A release's diffs for one home travel in messages of at most this many diff bytes. */
export const diffsMessageBytesMax = 1024 * 1024;
assert(diffsMessageBytesMax + 64 * 1024 < frameBytesMax, 'a diffs message fits a frame with room for its header');

/**
 * Remote workers: largest message (its clone's bytes, or a typed array's) a
 * thread may post to a thread on another node, and largest workerData. One
 * larger than remoteMessagePartBytes travels in parts, a frame each
 * (src/runtime/message-parts.ts), joined by the receiving manager before it
 * is delivered; a larger one than this throws DSM_ERR_MESSAGE_TOO_LARGE in
 * the posting thread. The bound is what a receiving manager joins for one
 * sender at a time (it holds the whole message until its last part).
 */
export const remoteMessageBytesMax = 1024 * 1024 * 1024;
/** Remote workers: a message's bytes past this travel in parts of this many bytes (each a frame of its own). */
export const remoteMessagePartBytes = 4 * 1024 * 1024;
assert(remoteMessagePartBytes + 64 * 1024 < frameBytesMax, 'a message part fits a frame with room for its header and the rest of its message');
assert(lanePostBatchMax * (ringPostBytesMax + 256) + 1024 * 1024 < frameBytesMax, 'a batch of small posts (rtPosts) fits a frame with room for its release');
assert(prefetchPageCountInitial >= 1 && prefetchPageCountInitial <= prefetchPageCountDefault, 'the read-ahead window starts within its limit');
assert(prefetchPageCountDefault <= prefetchPageCountMax && prefetchPageCountRuntime <= prefetchPageCountMax, 'read-ahead window limits within what one fetch may ask for');
assert(prefetchPageCountMax * pageBytes < frameBytesMax, 'a full read-ahead reply fits one frame');

// dsm plot (src/plot)
/** Marks one access-pattern figure draws at most; larger traces are sampled evenly (and the figure says so). */
export const plotPointCountMax = 40_000;
/** Trace files dsm plot reads at most (a full trace of 16 nodes is about 1.5 GB; plot a shorter run). */
export const plotTraceBytesMax = 512 * 1024 * 1024;

// Twins (issue 17: src/protocol/hlrc.ts, --twin-bytes)
/** --twin-bytes at least this: room for a few pages of each kind of early flush batch. */
export const twinBytesMin = 64 * 1024;
/**
 * --twin-bytes by default: a sixteenth of RAM, at most this. A release sends
 * the diffs of every twinned page at once, so the limit also bounds that
 * burst: at most 12 MiB of twins (2.5x in the worst-case diff encoding, about
 * 1x for real data) stays inside one peer's send queue (sendQueueBytesMax).
 * Past the limit the oldest dirty pages go home early in batches of a quarter
 * of it, one engine round trip per batch, and a store to a page flushed early
 * twins it again: a thread that keeps writing past the limit diffs pages
 * twice and waits for a batch every quarter. 12 MiB (3,072 pages, 8 MiB
 * before session 13) holds QuickSort's first pushed range of 4 M ints between
 * two releases: node 1's partition of its kept half then took 6-9 ms instead
 * of 45-56 (docs/EVALUATION.md, "Session 13: QuickSort on 2 nodes").
 */
export const twinBytesDefaultMax = 12 * 1024 * 1024;
export const twinBytesDefaultShareOfMemory = 1 / 16;
/** At the twin limit, the oldest 1/this of the limit's pages go home early (one engine round trip per batch). */
export const twinLimitFlushDivisor = 4;
assert(twinBytesDefaultMax * 2.5 < sendQueueBytesMax, 'a release of a full twin set fits a send queue');
assert(twinBytesMin >= 4 * pageBytes && twinBytesMin <= twinBytesDefaultMax, 'twin limits are ordered');
// Launchers (src/cluster/launchers): Slurm, MPI launchers and Kubernetes start every node with one command.
/** Node 0's control port under Kubernetes (a pod has addresses of its own), and the base of Slurm's. */
export const launcherPortDefault = 7400;
/**
 * Slurm: node 0 listens on launcherPortDefault + hash(job id, step id) mod this,
 * so two jobs (or steps) whose first node is the same machine rarely meet on one port.
 */
export const slurmPortSpan = 1000;
/** Hosts a Slurm host list may expand to: a malformed range must fail, not exhaust memory. */
export const hostlistHostCountMax = 65536;
/** MPI rendezvous: a joiner that cannot reach the published node 0 rereads the file this often (a stale file is replaced). */
export const rendezvousRetrySliceMs = 2000;
/** A secret file holds one line; anything longer is not a secret file. */
export const secretFileBytesMax = 4096;
assert(launcherPortDefault + slurmPortSpan <= 65535, 'Slurm\'s derived ports are valid ports');
assert(rendezvousRetrySliceMs > joinRetryIntervalMs, 'a rendezvous slice spans several join attempts');
// Thread ids (src/runtime/manager.ts 'thread-id')
/**
 * Worker thread ids node n hands out start at n * threadIdNodeStride + 1, so
 * they are unique across the cluster and node 0's are 1, 2, 3... as under plain
 * node; src/sync/handle.ts keeps the low 20 bits as a per-node owner token.
 */
export const threadIdNodeStride = 2 ** 20;
/**
 * Warm app threads a node keeps (src/runtime/remote-workers.ts), and the
 * program's main thread for its local workers (src/threads/worker.ts):
 * booted up to the program's module and waiting, so that a worker starts at
 * once. Nodes other than 0 and the main thread (on a cluster of 2 or more
 * nodes) make one at their start; once a worker found none ready, a node makes one again
 * at the end of each worker it hosts, a main thread once the workers it started
 * since have come online. An unused one costs its boot (CPU: about what a worker's start
 * costs) and its memory (an isolate, ~10 MiB) until warmThreadIdleMsMax.
 */
export const warmThreadCountMax = 1;
/**
 * Local warm threads the program's main thread makes before it waits at its
 * start gate (src/runtime/program.ts prestartMainThread, src/threads/worker.ts
 * prewarmLocalThread): one on a cluster of two or more nodes; on one node, when
 * the program's entry names worker_threads, as many as the machine has CPUs, at
 * most this many. Two workers on one node started 95-108 ms after `new Worker`
 * against 130-147 with one (session 31, 6 pairs); a program that starts only
 * one pays the other's boot (~18 ms of its wall time on 2 vCPUs). Taken in turn
 * by the first workers, then the refills of warmThreadCountMax go on.
 */
export const mainThreadPrewarmCountMax = 2;
/**
 * BroadcastChannel names a node's relay keeps with an open instance in one of
 * its threads (src/runtime/remote-workers.ts): a thread that opens a channel
 * of one more name fails with DSM_ERR_BROADCAST_CHANNELS. Messages from other
 * nodes go to the threads of those names.
 */
export const broadcastChannelNameCountMax = 1 << 16;
/**
 * Web Locks requests (navigator.locks, Node 24) held or waiting at once in
 * a cluster's lock service (node 0, src/runtime/web-locks-service.ts): one
 * more is refused (its request rejects with DSM_ERR_WEB_LOCKS). The per-name
 * queues are plain arrays: a grant or release costs time in its name's
 * requests, so the bound keeps those bounded too.
 */
export const webLockRequestCountMax = 1 << 16;
/**
 * MessagePorts relayed across nodes (src/runtime/remote-workers.ts) whose
 * relay end is in a thread of one node: a postMessage that sends one more
 * port to another node fails with DSM_ERR_PORT_RELAYS. A relay goes when
 * either end closes or its thread ends.
 */
export const portRelayCountMax = 1 << 16;
/**
 * Messages (and a close) a node's manager keeps for one relayed MessagePort
 * that its receiving thread has not opened yet (the message that carries the
 * port waits unread, e.g. in a parentPort nobody listens to): one more ends
 * the run with DSM_ERR_PORT_RELAYS (plain node would keep them all).
 */
export const portRelayPendingMax = 1 << 14;
/**
 * postMessageToThread across nodes (src/runtime/remote-workers.ts, "Posts to
 * a thread"): a node's threads' posts waiting for their answers, and the
 * messages handed to its threads not yet read; one more throws
 * DSM_ERR_THREAD_POSTS (in the poster) or ends the run (at the receiver).
 */
export const threadPostsInFlightMax = 1 << 14;
/**
 * Messages a thread's relay ends may still hold when the thread ends (its
 * event loop ran dry, or process.exit): posted by the program on a relayed
 * port but not yet forwarded, they are forwarded then, up to this many (the
 * rest are dropped, as a message to a port whose thread ended).
 */
export const portRelayDrainCountMax = 1 << 14;
/**
 * A warm thread not taken within this many milliseconds of its making is
 * ended, and its memory (an isolate: about 10 MiB) returned: a program that
 * places no worker there soon is not likely to; the next worker starts cold.
 */
export const warmThreadIdleMsMax = 5000;
/**
 * Kinds of worker options (execArgv flags, the types of argv, env and name,
 * an env's NODE_OPTIONS) a thread remembers as passed by Node's checks
 * (src/threads/worker.ts, checkOptionsAsNode); past it a new kind is checked
 * each time (about 0.3 ms and 27 KB Node never frees, a worker).
 */
export const workerOptionKindCountMax = 256;
/**
 * How long a thread that is ending (its 'exit' event: the program's end, process.exit, a thread whose loop ran dry)
 * waits, at most and in all, for the app threads it started that are about to start dsm's entry module (past
 * src/threads/boot-mark.ts: microseconds from it) to have started it (src/channel/thread-config.ts `trackBoot`):
 * Node 20's V8 aborts the whole process when a thread is terminated just as it starts a module with top-level
 * await, and an ending thread terminates the threads it started. Threads not yet at boot-mark stop there instead,
 * with no wait. Past this bound the thread ends anyway.
 */
export const bootWaitAtExitMsMax = 2000;
/**
 * On one node, the most bytes of the program's entry file read to see whether it names worker_threads (its main
 * thread then makes a warm thread for its first worker at its start, src/runtime/program.ts entryNamesWorkers);
 * a larger entry is not read, and its first worker starts cold.
 */
export const entryScanBytesMax = 1024 * 1024;
/**
 * A bare SharedArrayBuffer held in a named (non-index) property of an array (`parts.header = buffer`) crosses nodes
 * when the array has at most this many elements (src/channel/clone.ts: finding an array's named properties lists
 * all its indices); in a larger array only when one of its elements leads to a buffer too. Else its clone throws
 * DSM_ERR_NOT_DSM_MEMORY, naming it.
 */
export const cloneArrayNamedScanLengthMax = 1024;
/**
 * Values of a new worker's workerData the placement looks through for shared
 * memory that is not dsm memory (a WebAssembly shared Memory, a growable
 * SharedArrayBuffer), which keeps the worker on its creator's node
 * (src/threads/worker.ts). Past it the worker is placed as any other; if it is
 * then given such memory, the clone's error names it. Bounds the look at a
 * large workerData to well under a millisecond.
 */
export const placementScanValueCountMax = 10_000;
// Eventually visible (src/protocol/stale.ts, docs/PROTOCOL.md "Stale copies between synchronizations")
/**
 * hlrc, n >= 2 nodes: a node on which no acquire, release or fault happened
 * for a while sends its dirty pages' diffs home early and asks each home which
 * of its clean copies are out of date (dropped: the next read fetches), so a
 * loop polling a plain read ends. Both waits are scaled by n - 1 (the homes a
 * look asks). The first wait is the longest (staleRefreshDelayMaxMs); a look
 * that dropped a copy with no synchronization since the look before (a
 * poller's) brings it down to this many milliseconds (times n - 1), from where
 * it doubles at each look; a synchronization starts it again at its length.
 */
export const staleRefreshDelayMs = 20;
/**
 * The longest wait between two looks of a node with no synchronization, and its
 * first (times n - 1 on n nodes; see staleRefreshDelayMs), for a node holding few copies of other nodes' pages;
 * one holding more waits up to one millisecond per staleRefreshCopiesPerMs
 * copies (a look hashes each copy, about 2 µs a page: a look then costs the
 * manager about 2% of its time).
 */
export const staleRefreshDelayMaxMs = 160;
/** See staleRefreshDelayMaxMs: copies hashed per millisecond of the longest wait. */
export const staleRefreshCopiesPerMs = 10;
/**
 * Pages one staleQuery names (each with its copy's 8-byte hash: 12 bytes a
 * page), and pages one staleReply lists as written at the home. A node with
 * more clean copies of one home asks about them in turns.
 */
export const staleCheckPageCountMax = 4096;
// Flow control (src/runtime/flow.ts, docs/CLUSTER.md "Flow control")
/**
 * A release with at least this many dirty pages sends their diffs ahead of it
 * in pieces of earlyFlushPageCount pages, waiting for the links to drain
 * between pieces; a smaller one sends them with the release, as before.
 */
export const earlyFlushPageCountMin = 256;
/** Pages whose diffs one early-flush piece sends (diffs are at most a page each: at most 1 MiB of diffs). */
export const earlyFlushPageCount = 256;
/**
 * Dirty pages (each holds a twin) a node lets accumulate between releases
 * before it flushes them early in the background: twins cost a page each.
 */
export const dirtyPageCountFlushMin = 4096;
/**
 * Dirty pages past which a node's writers wait: the native write fast path is
 * paused, and first stores to clean pages are held at the manager until the
 * background flush has brought the count below dirtyPageCountFlushMin. Twins
 * (a page each) stay within this many pages whatever a program writes.
 */
export const dirtyPageCountMax = 8192;
/** Lowest link limit DSM_SEND_QUEUE_BYTES may set (sendQueueBytesMax is the default). */
export const sendQueueBytesMin = 256 * 1024;
assert(syncQueueCountMax >= atomicWaiterCountMax, 'a mutex queue holds as many threads as may wait at one Atomics home');
assert(earlyFlushPageCount * pageBytes <= diffsMessageBytesMax, 'an early-flush piece fits one diffs message');
assert(earlyFlushPageCountMin <= dirtyPageCountFlushMin && dirtyPageCountFlushMin < dirtyPageCountMax && dirtyPageCountMax <= dirtyRingCapacity, 'flush thresholds are ordered');
assert(sendQueueBytesMin <= sendQueueBytesMax, 'the lowest link limit is below the default');
assert(staleRefreshDelayMs >= 1 && staleRefreshDelayMs <= staleRefreshDelayMaxMs, 'stale refresh waits are ordered');
// System calls on dsm memory (src/threads/kernel-copies.ts)
/** A synchronous system call on a dsm range up to this size reuses one private buffer per thread (no fresh pages per call). */
export const kernelScratchReuseBytesMax = 16 * 1024 * 1024;
// Hardening against strangers (src/transport/connection.ts, msgpack-scan.ts)
/** Transport: largest frame accepted before the peer proved the secret (a hello is ~300 bytes). */
export const preAuthFrameBytesMax = 4096;
/** Transport: handshakes one listener runs at once; a new one past this evicts the oldest. */
export const unauthenticatedCountMax = 2 * nodeCountMax;
/** Transport: nesting depth of a received msgpack body (dsm's messages nest a few levels). */
export const msgpackDepthMax = 32;
/** Transport: bounds of the handshake's fields, checked before use. */
export const helloStringBytesMax = 256;
export const refusalReasonBytesMax = 1024;
export const nonceBytes = 32;
/** Cluster: a shared secret must carry at least this much entropy (estimated from its length and alphabet). */
export const secretEntropyBitsMin = 128;
assert(preAuthFrameBytesMax < frameBytesMax && preAuthFrameBytesMax >= 4 * helloStringBytesMax + refusalReasonBytesMax, 'a handshake frame fits the pre-auth limit');
assert(unauthenticatedCountMax >= nodeCountMax, 'a whole cluster can handshake with one listener at once');
/**
 * Protocol: a lock whose token, left resting at its holder's node, was not
 * re-acquired there before another node asked goes back at each unlock (as
 * before issue 12); every this many grants one is left to rest again, to see
 * whether node-local re-acquires came back.
 */
export const lockRestProbeGrantInterval = 8;
/**
 * Protocol: a lock's manager sends a free token ahead to the node predicted
 * to take it next (the node that took it after the last taker's previous
 * tenure) when that guess was right at least lockPushConfidenceMin times more
 * than wrong lately, counted in 0..lockPushConfidenceMax (session 23; sync.ts).
 */
export const lockPushConfidenceMin = 2;
export const lockPushConfidenceMax = 3;
/**
 * Protocol: the keep window of a contended lock token (src/protocol/lock-keep.ts).
 * A node whose threads still take a mutex keeps its token, after another node
 * asked, until this long after the token arrived (the window starts at the
 * initial value, doubles while batches are cut by it, halves after a keep
 * nobody used). lockKeepMsMax is the fairness bound: a node that asked waits
 * at most this plus one critical section and the hand-over.
 */
export const lockKeepMsInitial = 4;
export const lockKeepMsMin = 1;
export const lockKeepMsMax = 16;
/**
 * Takes one keep allows; past it the token goes (the node's threads then ask
 * behind the node that waits). Batches stay long for real critical sections
 * (matmul: ~25 rows in 16 ms), while threads that only poll under the lock for
 * a flag the other node must set give the token up after this many polls.
 */
export const lockKeepTakeCountMax = 32;
/** A kept token nobody at its node took for this long goes at once (the threads stopped wanting it), ms. */
export const lockKeepIdleMs = 1;
/** After a keep nobody used, recalled unlocks of that lock give the token up at once; every this many, one keeps again (a probe). */
export const lockKeepProbeInterval = 8;
/** Locks whose keep window one node remembers (dropped wholesale past it: the windows are learned again). */
export const lockKeepStateCountMax = 1 << 16;
// Race detection (src/race/, docs/RACE.md)
/** Distinct races a --race report lists; past it races are still counted (bounded report memory). */
export const raceReportCountMax = 1000;
/** Thread pairs named per distinct race (the count covers them all). */
export const raceThreadPairCountMax = 4;
/**
 * Per-page write records the race checker keeps to compare later intervals
 * with; past it the oldest are dropped (counted and said in the report: races
 * with them can no longer be seen). Records ordered before every node's
 * latest interval are dropped long before that.
 */
export const raceWindowRecordCountMax = 1 << 18;
/** Nodes `dsm run --race` separates threads on by default (each thread on a node of its own). */
export const raceNodeCountDefault = 5;
/** Race mode: Atomics locations whose own release clock the race home keeps (past it, new ones order through everything). */
export const atomicClockCountMax = 1 << 16;
/**
 * A failed allocation asks every app thread to run a collection (issue 13): at most once per
 * this many milliseconds, since the asking thread retries about 20 times over half a second.
 */
export const collectRequestGapMs = 50;
/**
 * Collections asked of every app thread are minor ones (a scavenge, well under a millisecond),
 * except after one that freed nothing and at least every this many (a full one, tens of
 * milliseconds a thread on a loaded machine): buffers that outlived a minor collection need one.
 */
export const collectMinorRunMax = 4;
/**
 * Shares of other nodes' allocations (buffers that crossed nodes, dropped
 * here) wait here until their owner runs short and asks (rtRangeCollect), so
 * a program whose memory never runs short sends no message for them; past
 * this many waiting for one owner they go at once, in one message.
 */
export const rangeReturnBatchMax = 256;
/** After an owner asked, shares of its ranges dropped here within this long go back at once. */
export const rangeReturnEagerMs = 1000;
// Atomics by ownership (issue 12.2, src/protocol/lines.ts, src/channel/atomic-lines.ts)
/** Bytes of one synchronization line: the unit a node owns for native Atomics (a power of two, within a page). */
export const atomicLineBytes = 64;
/** Lines one node's ownership table can hold at once (open addressing; a power of two). */
export const atomicLineSlotCount = 1 << 16;
/** App threads one node's ownership table has pin words for. */
export const atomicLinePinCountMax = 1024;
/** A held line that another node wants is kept at most this long after its grant at first (Mirage's window), ms. */
export const atomicLineHoldMsInitial = 1;
/** Bounds of the adaptive hold window, ms: the window doubles up to the larger of the base and a multiple of the last transfer's time, never past the max. */
export const atomicLineHoldMsMin = 0.25;
export const atomicLineHoldMsBase = 8;
export const atomicLineHoldTransferFactor = 8;
export const atomicLineHoldMsMax = 64;
/**
 * A wanted line is kept for its window only while it is hot: its node's threads
 * wrote it at least this many times per transfer time (the last transfer's, at
 * least atomicLineHoldMsMin) since the layer last looked. A line written less
 * often (a row counter taken once per row) goes at once: holding it would stall
 * the other node for nothing that a batch saves. Render of `bench atomics`, 2
 * nodes, 4 runs each alternating, lightly loaded 2-core machine: 0.30-0.41 s
 * at 16 against 0.37-0.41 s at 0 (off: the window rule alone); at load average
 * 40, 0.8-1.6 s against 7-10 s (windows grown to tens of ms stalled the other node).
 */
export const atomicLineHotWritesPerTransfer = 16;
/**
 * Shipped ops (issue 12, session 9): a node that gave a line up idle (used,
 * but not hot, while another node wanted it) sends its next ops on that line
 * to the line's directory, which runs them natively on its own mapping, instead
 * of asking for the line. Every atomicLineShipSampleOps shipped ops the node
 * looks whether the line is hot by the hold window's rule (ops per transfer
 * time, counting only the time its threads did not wait for answers, at least
 * atomicLineHotWritesPerTransfer: a counter loop): then moving pays again.
 */
export const atomicLineShipSampleOps = 4;
/**
 * Protocol: a line that a node gave up idle and then found hot in its
 * shipped ops' sample moves (is not shipped) at the node's next give-ups:
 * 1, then 2, 4, ... up to this many, each time the sample is hot again;
 * a sample that is not hot resets it (src/protocol/lines.ts, onOpDone).
 */
export const atomicLineShipBackoffMax = 64;
/**
 * Protocol (session 22): a shipped op whose thread asked for it less than
 * atomicLineShipBurstGapMs after its previous shipped op on the line returned
 * (the time it ran between them, as it reports it) continues a burst; the
 * atomicLineShipBurstOps-th such op in a row asks for the line instead (and the
 * line keeps moving by the ship backoff). An Atomics-made barrier's last
 * arrival (a load, an add, a store, an add, a notify) shipped each op, a round
 * trip each; a row counter or a lock's compareExchange and unlock never make
 * three ops in a row that close. `bench atomics` atomicsBarrier (2 200 131072),
 * 4 alternating pairs at load 11-13: 0.71-0.86 s against 0.82-2.28 s, line
 * messages 8.9 -> 4.4 a round.
 */
export const atomicLineShipBurstGapMs = 0.05;
export const atomicLineShipBurstOps = 2;
/**
 * Protocol (session 22): an op to ship on a line whose page has other lines
 * held here asks for its line (the page's lines stay together: a histogram's
 * buckets) only when one of those was written more than this many times since
 * its grant; else they go back with the op shipped (a render's done counter
 * next to its row counter went back and forth with it).
 */
export const atomicLinePageColdWritesMax = 1;
/**
 * Protocol (session 23): a node's first tenure of a line that another node
 * takes back after at most this many writes here is given up as an idle one
 * (its next ops ship): a render's row counter, taken for the start's add and
 * one row's, went back and forth 2-3 times at each run's start.
 */
export const atomicLineFirstTenureColdWritesMax = 2;
/**
 * Protocol (session 34): the bound of a line's share score at a node
 * (src/protocol/lines.ts NodeLine.shareScore): loads take a read copy of the
 * line while the score is >= 0, the line itself below. An upgrade (a write
 * or a wait after a load took a read copy) counts -2, a read copy used and
 * dropped for a writer +1, the line recalled for another node's read copy +1:
 * a CAS loop's line goes to its loads whole after one upgrade, and a line
 * read by many comes back shared.
 */
export const atomicLineShareScoreMax = 4;
/**
 * Protocol (session 34): once no more than 1/this of a node's line table is
 * free, the line layer gives back lines and read copies unused since its last
 * look, at most 1/this of the table at once (src/protocol/lines.ts makeRoom):
 * a program that loads over a large array with Atomics filled the table (4 MiB
 * of lines) and ended with DSM_ERR_ATOMIC_LINES.
 */
export const atomicLineRoomFraction = 8;
/**
 * Protocol (session 35): lines a read copy request asks for ahead, at most
 * (src/protocol/lines.ts aheadOf): a load that follows loads of the two lines
 * before it here (a scan) asks for copies of the next lines of the same
 * directory too (4 pages of lines), granted in the same answer, with their
 * pages, where nobody holds or waits for them. A scan took a round trip per
 * 64-byte line; now one per 16 KiB.
 */
export const atomicLineShareAheadLinesMax = 255;
/**
 * Protocol (session 35): read copies one lineInvalidated names at most when
 * makeRoom drops many to one directory at once (a scan's copies went back
 * one message each: 24,576 messages in a 5 MiB scan on 2 nodes).
 */
export const atomicLineDropBatchLinesMax = 512;
/**
 * Runtime (session 35): exit fences a node keeps waiting for, or answers of fences whose exit has not come yet
 * (src/runtime/remote-workers.ts, "Exit fences"): each is a thread's end, so a program meets it only by ending
 * that many threads at once.
 */
export const exitFenceCountMax = 1 << 16;
/** Runtime (session 35): how soon a node looks again whether it can answer an exit fence while its engine holds a notify back. */
export const exitFenceRetryMs = 1;
/** Shipped ops one directory keeps queued per node while it takes a line back (each waits for one grant). */
export const atomicLineShippedCountMax = 1 << 16;
/** Pages whose manager-view buffers a directory keeps for shipped ops (src/memory/manager-atomics.ts; dropped wholesale past it). */
export const managerAtomicPageCountMax = 1024;
/** Lines per app thread whose last shipped op's return time the thread keeps (its measure of use sent with the next op; dropped wholesale past it). */
export const atomicLineShipTimesCountMax = 1024;
/** Shipped ops one node has in flight at once (each is a parked app thread). */
export const atomicLineShipInFlightMax = 1 << 16;
/** Shipped Atomics.waits one node has out at once, in flight or registered at directories (each is a parked app thread). */
export const atomicLineShippedWaitCountMax = 1 << 16;
/**
 * Threads whose last shipped op's quiet answer one node's line layer remembers for their next request (a notify
 * then needs no round trip: src/protocol/lines.ts, quietAfterOp); cleared wholesale past it (threads that ended
 * right after such an op leave theirs).
 */
export const atomicLineQuietThreadCountMax = 1 << 12;
/** Lines a node's protocol layer tracks (held, requested or with a hold window), and lines a directory keeps. */
export const atomicLineStateCountMax = 1 << 20;
/**
 * Lines of one page a node's threads must have asked for before the page's
 * lines count as used together: a request for one then asks for the others
 * it asked for before (src/protocol/lines.ts requestPageLines). A row counter
 * and its done counter (2 lines) stay apart.
 */
export const atomicLinePageGroupLines = 4;
/**
 * Pulled lines (requestPageLines) a page's count needs, and the ops each must bring on average, below which a node
 * stops pulling that page's lines and asks for each line its threads want (session 31: a lock-free hash table's
 * buckets, each used now and then from three nodes, took 30 line grants an operation; a histogram's buckets bring
 * hundreds of adds each).
 */
export const atomicLinePagePullSlack = 8;
export const atomicLinePagePullUsesMin = 2;
/** Lines of a page asked for here above which its pulls may stop (above): a histogram's 16 buckets are pulled as before. */
export const atomicLinePagePullLinesMax = 16;
/** Pulls a page's count remembers before halving, and the ops one pull counts at most (recent pulls weigh most: a page whose lines turn hot is pulled again). */
export const atomicLinePagePullHistory = 32;
/** Pages whose asked-for lines a node remembers for atomicLinePageGroupLines; past it they are forgotten at once. */
export const atomicLinePageUseCountMax = 1024;
/** Atomics.wait waiters one line directory keeps (as atomicWaiterCountMax for the home path). */
export const atomicLineWaiterCountMax = 1 << 16;
/**
 * Waiters a lineGrant lists (their addresses, one each) so that the line's holder counts its notifies itself
 * (src/protocol/lines.ts, "Counted notifies"); a line with more waiters is granted without a list, and the
 * holder's notifies go to the directory for their count, as before.
 */
export const atomicLineGrantWaitingAddressesMax = 16;
/** Notifies one line directory holds back while a line is held by a node counting its own notifies (each a parked thread's). */
export const atomicLineHeldNotifyCountMax = 1 << 16;
/**
 * Longest sleep of a Condition.wait whose waiter is not counted (its mutex is not the one the condition is
 * bound to, or not engine-routed) in a multi-node run: a signal made under the bound mutex may skip it, so it
 * wakes by itself after this long (a spurious wake-up; src/sync/condition.ts).
 */
export const conditionUncountedWaitMsMax = 10;
// Lock tokens at their node (issue 12.3, src/channel/lock-tokens.ts, src/protocol/sync.ts)
/** Mutexes whose token one node's lock token table can hold at once (open addressing; a power of two). */
export const lockTokenSlotCount = 1 << 12;
/** Slots a lock's probe looks at before it gives up (the lock then goes through the manager). */
export const lockTokenProbeCountMax = 8;
assert(atomicLineBytes >= 8 && (atomicLineBytes & (atomicLineBytes - 1)) === 0 && pageBytes % atomicLineBytes === 0, 'a line is a power of two within a page');
assert((atomicLineSlotCount & (atomicLineSlotCount - 1)) === 0, 'the line table size is a power of two');
assert(lockPushConfidenceMin >= 1 && lockPushConfidenceMin <= lockPushConfidenceMax, 'a push needs a right guess first');
assert(lockKeepMsMin <= lockKeepMsInitial && lockKeepMsInitial <= lockKeepMsMax && lockKeepIdleMs < lockKeepMsMax && lockKeepProbeInterval >= 1 && lockKeepTakeCountMax >= 2, 'keep window bounds are ordered');
assert((lockTokenSlotCount & (lockTokenSlotCount - 1)) === 0 && lockTokenProbeCountMax <= lockTokenSlotCount, 'the lock token table size is a power of two');
assert(compactSlabBytes >= 0xff + compactBodyBytesMax, 'a compact slab holds the largest frame header reserve and body');
