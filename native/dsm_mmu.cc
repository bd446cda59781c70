// dsm's native MMU: the global region, its two views, SharedArrayBuffers over
// the app view, page protections, twins and diffs, and the SIGSEGV path.
//
// Everything that decides anything lives in TypeScript; this file only does
// what JavaScript cannot: map memory, change protections, catch faults, and
// park and resume the faulting thread. The signal handler is async-signal-safe:
// no malloc, no locks, no JS — atomics, memcpy and system calls only.

#include "dsm_addon.h"
#include "generated/dsm_constants.h"

#include <node.h>
#include <uv.h>
#include <v8.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <limits>
#include <csignal>
#include <cstdint>
#include <cstring>
#include <cstdlib>
#include <map>
#include <memory>
#include <mutex>
#include <condition_variable>
#include <thread>
#include <utility>
#include <vector>

#include <fcntl.h>
#if defined(__GLIBC__)
#include <malloc.h>
#endif
#include <linux/futex.h>
#include <linux/membarrier.h>
#include <sched.h>
#include <poll.h>
#include <time.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <time.h>
#include <ucontext.h>
#include <unistd.h>

namespace dsm {
namespace {

using v8::Array;
using v8::Context;
using v8::Function;
using v8::FunctionCallbackInfo;
using v8::Global;
using v8::HandleScope;
using v8::Isolate;
using v8::Local;
using v8::Number;
using v8::Object;
using v8::Value;

// Limits, protections and page state bits (kPageBytes, kFaultSlotCount,
// kProtRead, kFastWrite ...) come from src/constants.ts through the generated
// header. Twins come first from a pool of kTwinPoolSlotCount pre-touched
// slots, so the fast path does not take a second (kernel) page fault on fresh
// twin memory; when the pool is empty a page's twin goes to its own place in
// the twin area. A parked thread spins kParkSpinCount pause instructions
// (yielding the CPU every 32) before it sleeps on its futex. The page state byte: the protection
// (kProtMask), kFastWrite, kHasTwin, kTwinless (a page whose writes never need
// a diff, hlrc: a page of this node's own, its home copy is the master: the
// fast path upgrades it and reports it dirty, without a twin), kBusy.
using namespace dsm_constants;

// How long a parked thread polls (yielding) after its pause spin, before it sleeps on its futex
// (parkYieldUs; setParkYield changes it, 0: sleep at once after the spin).
std::atomic<int64_t> g_park_yield_ns{static_cast<int64_t>(kParkYieldUs) * 1000};

// madvise advice that faults a range in, writable (Linux 5.14; older headers lack the name).
#ifdef MADV_POPULATE_WRITE
constexpr int kMadvPopulateWrite = MADV_POPULATE_WRITE;
#else
constexpr int kMadvPopulateWrite = 23;
#endif

inline int64_t MonotonicNs() {
  struct timespec now;
  clock_gettime(CLOCK_MONOTONIC, &now);
  return static_cast<int64_t>(now.tv_sec) * 1000000000 + now.tv_nsec;
}

// Fault slot states.
constexpr uint32_t kSlotFree = 0;
constexpr uint32_t kSlotFilling = 1;
constexpr uint32_t kSlotPending = 2;
constexpr uint32_t kSlotServing = 3;

// A parked thread's futex word: waiting (spinning), sleeping on the futex, served.
constexpr uint32_t kParkWaiting = 0;
constexpr uint32_t kParkServed = 1;
constexpr uint32_t kParkSleeping = 2;

struct FaultSlot {
  std::atomic<uint32_t> state{kSlotFree};
  std::atomic<uint32_t> futex{0};
  // Set by the manager once the fault's page was asked of another node (Prefault): the answer is a network
  // round trip away, so the parked thread ends its pause spin and sleeps rather than burn a CPU its managers need.
  std::atomic<uint32_t> remote{0};
  uint32_t page = 0;
  uint32_t flags = 0;
};

struct Region {
  int memfd = -1;
  size_t bytes = 0;
  size_t page_count = 0;
  uint8_t* app = nullptr;
  uint8_t* manager = nullptr;
  uint8_t* twin = nullptr;
  std::atomic<uint8_t>* state = nullptr;
  uint8_t* twin_pool = nullptr;
  std::atomic<uint32_t>* twin_slot = nullptr;  // per page: pool slot + 1, or 0
  uint8_t* installed = nullptr;  // per page: 1 once a copy was installed (WritePageFrom; manager thread only)
  // per page: diffs ApplyDiff wrote through the memfd (pwrite), kDiffPwriteCountMax and up: through the manager
  // view, mapped there (manager thread only)
  uint8_t* diff_pwrites = nullptr;
};

std::atomic<uint64_t> g_twin_pool_bits[kTwinPoolSlotCount / 64];

Region g_region;
std::mutex g_init_mutex;
// Set while init's helper thread makes the twin pool's first slots resident (its page faults count in the
// process's minor faults: Stats says so, for tests that count faults).
std::atomic<bool> g_twin_pool_pretouching{false};
std::atomic<bool> g_ready{false};

FaultSlot g_slots[kFaultSlotCount];
// One past the highest slot index a thread ever parked in (the slots are taken lowest first): the manager's scans
// (OnWake, MarkRemote) stop there, instead of reading all kFaultSlotCount slots on every fault.
std::atomic<uint32_t> g_slots_used{0};
// A lock-free ring of page numbers that app threads' signal handlers push and the manager drains (one reader).
// Entries hold page + 1 (0: empty, or reserved and being stored).
template <uint64_t Capacity>
struct PageRing {
  static_assert((Capacity & (Capacity - 1)) == 0, "a ring indexes by a mask");
  std::atomic<uint64_t> entries[Capacity];
  std::atomic<uint64_t> head{0};
  std::atomic<uint64_t> tail{0};

  // Async-signal-safe; false when the ring is full.
  bool Push(uint32_t page) {
    uint64_t at = tail.load(std::memory_order_relaxed);
    do {
      if (at - head.load(std::memory_order_acquire) >= Capacity) return false;
    } while (!tail.compare_exchange_weak(at, at + 1, std::memory_order_acq_rel));
    entries[at & (Capacity - 1)].store(uint64_t(page) + 1, std::memory_order_release);
    return true;
  }

  bool Empty() const { return tail.load(std::memory_order_acquire) == head.load(std::memory_order_relaxed); }

  // The manager thread: every page pushed so far, in push order, as a Uint32Array.
  Local<v8::Uint32Array> Drain(Isolate* isolate) {
    uint64_t from = head.load(std::memory_order_relaxed);
    uint64_t to = tail.load(std::memory_order_acquire);
    size_t count = static_cast<size_t>(to - from);
    Local<v8::ArrayBuffer> buffer = v8::ArrayBuffer::New(isolate, count * 4);
    auto* out = static_cast<uint32_t*>(buffer->Data());
    for (size_t i = 0; i < count; i += 1) {
      std::atomic<uint64_t>& entry = entries[(from + i) & (Capacity - 1)];
      uint64_t value;
      // A writer reserved this entry and is storing it right now.
      while ((value = entry.load(std::memory_order_acquire)) == 0) sched_yield();
      out[i] = static_cast<uint32_t>(value - 1);
      entry.store(0, std::memory_order_relaxed);
    }
    head.store(to, std::memory_order_release);
    return v8::Uint32Array::New(buffer, 0, count);
  }
};

PageRing<kDirtyRingCapacity> g_dirty_ring;
// Entries pushed so far (mod 2^32), counted after each entry is stored: the
// manager reads it as a word of a SharedArrayBuffer (dirtyPushCounter) and
// drains only when it moved, instead of a native call and an empty array at
// every flow-control admission. Its own cache line: the handlers write it.
alignas(64) std::atomic<uint32_t> g_dirty_pushed[16];
// The touch ring: tracked read-ahead copies (kTouchAhead) the handler made readable on their first touch
// (TryFastTouch), for the engine to count as used (drainTouched). Entries as the dirty ring's, and a push counter
// on its own cache line (touchPushCounter).
PageRing<kTouchRingCapacity> g_touch_ring;
alignas(64) std::atomic<uint32_t> g_touch_pushed[16];
std::atomic<uint64_t> g_fast_touches{0};

std::atomic<uint64_t> g_read_faults{0};
std::atomic<uint64_t> g_write_faults{0};
std::atomic<uint64_t> g_fast_write_faults{0};
// While set, no write takes the fast path: every first store to a read-only
// page faults to the manager, which can make the writer wait (flow control:
// twins pile up faster than their diffs can leave).
std::atomic<bool> g_fast_write_paused{false};
std::atomic<uint64_t> g_slow_waits{0};
// Faults outside the app view handed to the previous handler (V8's wasm trap
// handler, or the default action); counted so a test can see the chain ran.
std::atomic<uint64_t> g_chained_faults{0};
// Twins alive (pool slots and twin-area pages), and the most the fast path may
// make: past it a write fault goes to the manager, which flushes the oldest
// dirty pages early (src/protocol/hlrc.ts, --twin-bytes). Concurrent fast
// paths may each pass the check, so the count can exceed the limit by at most
// the number of app threads.
std::atomic<uint64_t> g_twin_count{0};
std::atomic<uint64_t> g_twin_limit{~uint64_t(0)};
std::atomic<uint64_t> g_twin_limit_faults{0};

struct sigaction g_previous_action;
std::atomic<bool> g_handler_installed{false};

// The manager's wake-up, created on the manager thread's loop.
std::atomic<uv_async_t*> g_wake{nullptr};
// The manager thread (set when its fault service starts). A fault it takes in
// the app view would park the one thread that serves faults: a deadlock, so
// the handler ends the process with a message instead.
std::atomic<long> g_manager_tid{0};
Isolate* g_manager_isolate = nullptr;
Global<Function> g_on_faults;
Global<Function> g_on_freed;
Global<Context> g_manager_context;

// Backing stores: one per (offset, length), shared by every isolate.
std::mutex g_store_mutex;
// One entry per range with a backing store alive or not yet deleted. A range's
// last holder can die (its weak_ptr expires) and a new store for the same
// range be made before the old store's deleter runs; counting stores whose
// deleter has not run yet reports the range freed exactly once, when the
// count drops to zero, never while a newer store still maps it.
struct StoreEntry {
  std::weak_ptr<v8::BackingStore> store;
  uint32_t undeletedCount = 0;
  // The live store was made for memory this node allocated (sharedArrayBuffer's `made`): every buffer over it in
  // this process is over a range live at this node, whose owner it is (isMadeHere; src/threads/setup.ts).
  bool made = false;
};
std::map<std::pair<uint64_t, uint64_t>, StoreEntry> g_stores;
std::mutex g_freed_mutex;
std::vector<std::pair<uint64_t, uint64_t>> g_freed;
// How many times each range is in g_freed: a lookup without a scan (a thread's
// end asks about every block of its allocation cache while its stores die, and
// a scan per block made that quadratic: seconds for 100,000 blocks).
std::map<std::pair<uint64_t, uint64_t>, uint32_t> g_freed_counts;

// Per app-thread isolate: what V8 is told about dsm memory, and a way to ask it
// to collect. V8 counts no external memory for a shared backing store, so a
// thread dropping dsm buffers would otherwise see no reason to collect them.
// An account outlives its isolate (deleters of its stores may still run), so
// accounts are never freed: one small struct per app thread ever started.
struct IsolateAccount {
  Isolate* isolate = nullptr;
  bool alive = true;  // under g_accounts_mutex
  // Bytes of stores this isolate made whose deleters ran: told to V8 on its own thread later.
  std::atomic<int64_t> freedBytes{0};
  // A collection was asked for and has not run yet (kCollectMinor or
  // kCollectFull; the larger wins; kCollectNone: none): by an interrupt (a
  // thread running JavaScript or in Atomics.wait) or by a wake-up of its event
  // loop (an idle thread), whichever comes first.
  std::atomic<int> collectPending{0};
  uv_async_t* wake = nullptr;  // closed at the environment's cleanup
};
std::mutex g_accounts_mutex;
std::vector<IsolateAccount*> g_accounts;
thread_local IsolateAccount* t_account = nullptr;

// Floor benchmark: a private page the handler just unprotects.
std::atomic<uint8_t*> g_bench_page{nullptr};

inline void Wake() {
  uv_async_t* wake = g_wake.load(std::memory_order_acquire);
  if (wake != nullptr) uv_async_send(wake);
}

inline long Futex(std::atomic<uint32_t>* word, int op, uint32_t value) {
  return syscall(SYS_futex, reinterpret_cast<uint32_t*>(word), op, value, nullptr, nullptr, 0);
}

inline int ProtFlags(uint8_t prot) {
  return prot == kProtReadWrite ? (PROT_READ | PROT_WRITE) : prot == kProtRead ? PROT_READ : PROT_NONE;
}

// ---- page locks (BUSY bit) ------------------------------------------------

inline uint8_t LockPage(size_t page) {
  std::atomic<uint8_t>& cell = g_region.state[page];
  for (;;) {
    uint8_t state = cell.load(std::memory_order_acquire);
    if ((state & kBusy) == 0 &&
        cell.compare_exchange_weak(state, state | kBusy, std::memory_order_acq_rel)) {
      return state;
    }
    sched_yield();
  }
}

inline void UnlockPage(size_t page, uint8_t state) {
  g_region.state[page].store(state & ~kBusy, std::memory_order_release);
}

// ---- whole-region changes before any app thread can touch the region ------
//
// A node's engine starts by setting every page's protection and flags (a
// 4 GiB region is 2^20 pages): locking each page cost two locked instructions
// a page, 5-12 ms a walk, two or three walks on every node's start path. No
// page can fault and no other thread can change a page's state before the
// region's first buffer exists (SharedArrayBufferAt), so until then a bulk
// change writes the states with plain stores. A Dekker handshake keeps that
// true if a buffer is made meanwhile: the bulk writer announces itself and
// then looks for a buffer; the buffer maker announces the buffer and then
// waits for a bulk writer to finish.
std::atomic<bool> g_region_exposed{false};
std::atomic<bool> g_bulk_writing{false};

// True: the caller may change states without page locks; it must call
// EndUnlockedBulk after. False: it locks each page.
bool BeginUnlockedBulk() {
  g_bulk_writing.store(true, std::memory_order_seq_cst);
  if (!g_region_exposed.load(std::memory_order_seq_cst)) return true;
  g_bulk_writing.store(false, std::memory_order_release);
  return false;
}

void EndUnlockedBulk() { g_bulk_writing.store(false, std::memory_order_release); }

// Called before an app thread's first buffer over the region is made.
void ExposeRegion() {
  if (g_region_exposed.load(std::memory_order_acquire)) return;
  g_region_exposed.store(true, std::memory_order_seq_cst);
  while (g_bulk_writing.load(std::memory_order_seq_cst)) sched_yield();
}

// ---- dirty ring (written by the handler, drained by the manager) -----------

bool DirtyPush(uint32_t page) {
  if (!g_dirty_ring.Push(page)) return false;
  g_dirty_pushed[0].fetch_add(1, std::memory_order_release);
  return true;
}

// ---- twin pool ------------------------------------------------------------------

// Takes a free pool slot (lock-free, async-signal-safe); -1 when the pool is empty.
int64_t TwinPoolTake() {
  for (uint32_t word = 0; word < kTwinPoolSlotCount / 64; word += 1) {
    uint64_t bits = g_twin_pool_bits[word].load(std::memory_order_relaxed);
    while (bits != ~uint64_t(0)) {
      int bit = __builtin_ctzll(~bits);
      if (g_twin_pool_bits[word].compare_exchange_weak(bits, bits | (uint64_t(1) << bit), std::memory_order_acq_rel)) {
        return int64_t(word) * 64 + bit;
      }
    }
  }
  return -1;
}

void TwinPoolGive(uint32_t slot) {
  g_twin_pool_bits[slot / 64].fetch_and(~(uint64_t(1) << (slot % 64)), std::memory_order_acq_rel);
}

// Where to read a page whose app-view protection is `prot`: the app view where it is readable there (mapped
// already where the node's threads touched the page; the manager view maps each page afresh at its first touch,
// a fault and, with shadow page tables, a trip through the hypervisor), else the manager view. The caller holds
// the page's BUSY bit or is the manager thread (the only one that takes protections away), so a page readable
// now stays readable through the read.
inline const uint8_t* ReadView(size_t page, uint8_t prot) {
  return (prot != kProtNone && g_region.app != g_region.manager ? g_region.app : g_region.manager) + (page << kPageShift);
}

inline uint8_t ProtOf(size_t page) { return g_region.state[page].load(std::memory_order_acquire) & kProtMask; }

// Copies a page's bytes out without touching the manager view where another
// way is cheaper (session 26): through the app view where it is readable
// there, else from the region's memfd (pread), else through the manager
// view. A page installed with pwrite (WritePageFrom) was never mapped in the
// manager view, and a first touch there is a fault and, with shadow page
// tables, a trip through the hypervisor; the app view is mapped already where
// the node's threads touched the page, and would be at their next access.
// The caller holds the page's BUSY bit (or is the manager thread, the only
// one that takes protections away), so a page readable now stays readable
// through the copy. Async-signal-safe (pread is), as the handler's twins need.
void CopyOut(size_t page, uint8_t* into) {
  const size_t offset = page << kPageShift;
  const uint8_t* view = ReadView(page, ProtOf(page));
  if (view != g_region.manager + offset || g_region.memfd < 0) {
    memcpy(into, view, kPageBytes);
    return;
  }
  size_t done = 0;
  while (done < kPageBytes) {
    const ssize_t got = pread(g_region.memfd, into + done, kPageBytes - done, static_cast<off_t>(offset + done));
    if (got > 0) {
      done += static_cast<size_t>(got);
      continue;
    }
    if (got < 0 && errno == EINTR) continue;
    // Should the file refuse (it never has): the rest through the manager view.
    memcpy(into + done, g_region.manager + offset + done, kPageBytes - done);
    return;
  }
}

// Copies the page's current contents into a twin; the caller holds the page's BUSY bit.
void TakeTwin(size_t page) {
  int64_t slot = TwinPoolTake();
  uint8_t* twin;
  if (slot >= 0) {
    g_region.twin_slot[page].store(static_cast<uint32_t>(slot) + 1, std::memory_order_relaxed);
    twin = g_region.twin_pool + static_cast<size_t>(slot) * kPageBytes;
  } else {
    g_region.twin_slot[page].store(0, std::memory_order_relaxed);
    twin = g_region.twin + (page << kPageShift);
  }
  g_twin_count.fetch_add(1, std::memory_order_relaxed);
  CopyOut(page, twin);
}

const uint8_t* TwinOf(size_t page) {
  uint32_t slot = g_region.twin_slot[page].load(std::memory_order_relaxed);
  return slot != 0 ? g_region.twin_pool + static_cast<size_t>(slot - 1) * kPageBytes : g_region.twin + (page << kPageShift);
}

// Drops the page's twin; the caller holds the page's BUSY bit.
void DropTwin(size_t page) {
  g_twin_count.fetch_sub(1, std::memory_order_relaxed);
  uint32_t slot = g_region.twin_slot[page].load(std::memory_order_relaxed);
  if (slot != 0) {
    g_region.twin_slot[page].store(0, std::memory_order_relaxed);
    TwinPoolGive(slot - 1);
  } else {
    madvise(g_region.twin + (page << kPageShift), kPageBytes, MADV_DONTNEED);
  }
}

// ---- the signal handler -----------------------------------------------------

inline bool IsWriteFault(void* context) {
#if defined(__x86_64__)
  auto* uc = static_cast<ucontext_t*>(context);
  return (uc->uc_mcontext.gregs[REG_ERR] & 0x2) != 0;
#elif defined(__aarch64__)
  // ESR_EL1 is in the esr_context record of the signal frame (untested here).
  auto* uc = static_cast<ucontext_t*>(context);
  auto* header = reinterpret_cast<_aarch64_ctx*>(uc->uc_mcontext.__reserved);
  while (header->magic != 0) {
    if (header->magic == ESR_MAGIC) {
      uint64_t esr = reinterpret_cast<esr_context*>(header)->esr;
      return (esr & (1u << 6)) != 0;  // WnR
    }
    header = reinterpret_cast<_aarch64_ctx*>(reinterpret_cast<uint8_t*>(header) + header->size);
  }
  return true;
#else
#error "dsm supports x86-64 and aarch64"
#endif
}

// Pages written ahead of a stream (by WriteAhead, not by their own fault), and the most WriteAhead takes after one
// fault over other homes' pages (setWriteAhead; 0, the default: off) and over our own (setOwnWriteAhead; 0: off).
std::atomic<uint64_t> g_write_ahead_pages{0};
std::atomic<uint32_t> g_write_ahead_max{0};
std::atomic<uint32_t> g_own_write_ahead_max{0};

// Whether `page` is read-write and, with `own`, one of ours (twinless: written in the open interval, or
// exclusive), else twinned (written in the open interval through a twin).
inline bool WrittenAhead(size_t page, bool own) {
  uint8_t state = g_region.state[page].load(std::memory_order_acquire);
  return (state & kBusy) == 0 && (state & kProtMask) == kProtReadWrite && (state & (own ? kTwinless : kHasTwin)) != 0;
}

// Whether the page at `bytes` (readable) holds only zeros; stops at the first word that is not.
bool PageIsZero(const uint8_t* bytes) {
  const uint64_t* words = reinterpret_cast<const uint64_t*>(bytes);
  for (size_t k = 0; k < kPageBytes / sizeof(uint64_t); k++) if (words[k] != 0) return false;
  return true;
}

// The region memfd's next data at or after `from` (lseek SEEK_DATA), for pages asked in increasing order.
struct HoleScan {
  off_t from = -1;
  off_t data = 0;
};

// Whether page `page` holds only zeros: a hole of the region's memfd (never written on this node, or punched; no
// read, so no memory is allocated for it: a SEEK_DATA, one per run of holes), else its bytes at `view` (readable),
// read. A swapped-out page is data to SEEK_DATA (shmem). Async-signal-safe; errno kept.
bool PageHoldsZeros(size_t page, const uint8_t* view, HoleScan* scan) {
  if (g_region.memfd >= 0) {
    const off_t start = static_cast<off_t>(page << kPageShift);
    if (scan->from < 0 || start > scan->data) {
      const int saved = errno;
      const off_t data = lseek(g_region.memfd, start, SEEK_DATA);
      // ENXIO: no data from `start` to the end of the file. Any other failure: read the page.
      scan->data = data >= 0 ? data : (errno == ENXIO ? std::numeric_limits<off_t>::max() : start);
      scan->from = start;
      errno = saved;
    }
    if (start + static_cast<off_t>(kPageBytes) <= scan->data) return true;
  }
  return PageIsZero(view);
}

// Write-ahead for a fast write to `page` (the caller holds its BUSY bit, and has twinned it unless `own`, a page of
// our own): when at least writeAheadRunPagesMin pages just before it were written in a row (twinned ones, or with
// `own` our own ones), the store continues a sequential write stream, so the next pages will be written too. Up to
// as many as that run (at most writeAheadPageCountMax), each read-only, fast-write, not twinned and twinless
// exactly when `own`, are locked and reported dirty here, twinned unless `own`; the caller upgrades them with
// `page` in one mprotect and unlocks them.
// - Other homes' pages (DSM_WRITE_AHEAD=1; a stencil band before it is lent): to the engine a page twinned ahead is
//   a page written with the bytes it held (a silent store): its diff is empty if no store follows.
// - Our own pages (a thread filling memory it allocated: each page's first store after its allocation, or after
//   a copy of it left, faults once): no twin and no diff; the entry is tagged dirtyAheadTag, and the engine names
//   the page in its write notice (if no store follows, other nodes' copies refetch the same bytes) without counting
//   this node as its writer for home migration. A page that held only zeros (a hole of the memfd, or read here: it
//   is read-only) is tagged kDirtyAheadZeroTag too: if it still does at the interval's close, the engine leaves it
//   out of the notice.
// Stops at the first page not in that state, busy, over the twin limit, or when the dirty ring is full. Returns how
// many pages after `page` it took.
size_t WriteAhead(size_t page, bool own) {
  const size_t most = (own ? g_own_write_ahead_max : g_write_ahead_max).load(std::memory_order_relaxed);
  size_t behind = 0;
  while (behind < most && behind < page && WrittenAhead(page - behind - 1, own)) behind += 1;
  if (behind < kWriteAheadRunPagesMin) return 0;
  size_t ahead = 0;
  HoleScan holes;
  while (ahead < behind && page + ahead + 1 < g_region.page_count) {
    size_t next = page + ahead + 1;
    std::atomic<uint8_t>& cell = g_region.state[next];
    uint8_t state = cell.load(std::memory_order_acquire);
    if ((state & (kBusy | kHasTwin)) != 0 || ((state & kTwinless) != 0) != own || (state & kProtMask) != kProtRead || (state & kFastWrite) == 0) break;
    if (g_fast_write_paused.load(std::memory_order_acquire)) break;
    if (!own && g_twin_count.load(std::memory_order_relaxed) >= g_twin_limit.load(std::memory_order_relaxed)) break;
    if (!cell.compare_exchange_strong(state, state | kBusy, std::memory_order_acq_rel)) break;
    const uint32_t entry = own ? static_cast<uint32_t>(next) | kDirtyAheadTag |
                                     (PageHoldsZeros(next, g_region.app + (next << kPageShift), &holes) ? kDirtyAheadZeroTag : 0)
                               : static_cast<uint32_t>(next);
    if (!DirtyPush(entry)) {
      UnlockPage(next, state);
      break;
    }
    if (!own) TakeTwin(next);
    ahead += 1;
  }
  if (ahead > 0) g_write_ahead_pages.fetch_add(ahead, std::memory_order_relaxed);
  return ahead;
}

// A write to a read-only page whose fast-write flag is set: twin it (unless
// it is twinless) and upgrade it here, without a round trip through the
// manager. With the twin limit reached, the manager takes the fault.
bool TryFastWrite(size_t page) {
  std::atomic<uint8_t>& cell = g_region.state[page];
  uint8_t state;
  for (;;) {
    state = cell.load(std::memory_order_acquire);
    if (state & kBusy) {
      sched_yield();
      continue;
    }
    if ((state & kProtMask) == kProtReadWrite) return true;  // upgraded meanwhile: retry the store
    if (g_fast_write_paused.load(std::memory_order_acquire)) return false;
    if ((state & kProtMask) != kProtRead || (state & kFastWrite) == 0) return false;
    if (cell.compare_exchange_weak(state, state | kBusy, std::memory_order_acq_rel)) break;
  }
  bool twinless = (state & kTwinless) != 0;
  if (!twinless && g_twin_count.load(std::memory_order_relaxed) >= g_twin_limit.load(std::memory_order_relaxed)) {
    g_twin_limit_faults.fetch_add(1, std::memory_order_relaxed);
    UnlockPage(page, state);
    return false;
  }
  if (!DirtyPush(static_cast<uint32_t>(page))) {
    UnlockPage(page, state);
    return false;
  }
  size_t offset = page << kPageShift;
  if (!twinless) TakeTwin(page);
  // A page continuing a run of pages written behind it is a sequential write stream: the next ones are
  // upgraded with it (one mprotect, one signal, for up to writeAheadPageCountMax + 1 pages), twinned if they
  // are other homes' copies, reported dirty only if they are our own (WriteAhead).
  size_t ahead = WriteAhead(page, twinless);
  mprotect(g_region.app + offset, (ahead + 1) * kPageBytes, PROT_READ | PROT_WRITE);
  g_fast_write_faults.fetch_add(1, std::memory_order_relaxed);
  for (size_t k = 1; k <= ahead; k += 1) {
    UnlockPage(page + k, static_cast<uint8_t>((g_region.state[page + k].load(std::memory_order_relaxed) & ~kProtMask) | kProtReadWrite | (twinless ? 0 : kHasTwin)));
  }
  UnlockPage(page, static_cast<uint8_t>((state & ~kProtMask) | kProtReadWrite | (twinless ? 0 : kHasTwin)));
  return true;
}

// The first touch of a tracked read-ahead copy (kTouchAhead: valid, installed, kept at no access so that its use
// is seen): made read-only here with the fast write flag, as the engine's protectValid would, and queued on the
// touch ring, where the engine learns that it was used; the manager is woken, but the thread does not wait for it
// (before: a round trip through the manager for each such page, 0.1-0.5 ms on a busy 2-vCPU machine). Returns
// false, and the manager takes the fault, for any other page or when the ring is full. The flag is set only at no
// access, and every protection change clears it (ProtectRun).
bool TryFastTouch(size_t page) {
  std::atomic<uint8_t>& cell = g_region.state[page];
  uint8_t state;
  for (;;) {
    state = cell.load(std::memory_order_acquire);
    if ((state & kTouchAhead) == 0) return false;
    if (state & kBusy) {
      sched_yield();
      continue;
    }
    if (cell.compare_exchange_weak(state, state | kBusy, std::memory_order_acq_rel)) break;
  }
  if ((state & kProtMask) != kProtNone) {
    // Cannot happen (a protection change clears the flag): drop it, the access is retried.
    UnlockPage(page, static_cast<uint8_t>(state & ~(kTouchAhead | kTouchWake)));
    return true;
  }
  if (!g_touch_ring.Push(static_cast<uint32_t>(page))) {
    UnlockPage(page, state);
    return false;
  }
  mprotect(g_region.app + (page << kPageShift), kPageBytes, PROT_READ);
  UnlockPage(page, static_cast<uint8_t>((state & ~(kProtMask | kTouchAhead | kTouchWake)) | kProtRead | kFastWrite));
  g_touch_pushed[0].fetch_add(1, std::memory_order_release);
  g_fast_touches.fetch_add(1, std::memory_order_relaxed);
  // Only a touch that may issue read-ahead windows wakes the manager; it drains the others at its next event.
  if ((state & kTouchWake) != 0) Wake();
  return true;
}

// flags: kFaultFlagWrite; from kFaultFlagOffsetShift up, the faulting byte's offset in its page
// (race mode reads it: the first byte an interval read of a page).
void ParkUntilServed(size_t page, bool is_write, uint32_t offset_in_page) {
  FaultSlot* slot = nullptr;
  for (;;) {
    for (uint32_t index = 0; index < kFaultSlotCount; index += 1) {
      uint32_t expected = kSlotFree;
      if (g_slots[index].state.compare_exchange_strong(expected, kSlotFilling, std::memory_order_acq_rel)) {
        slot = &g_slots[index];
        // Raised before the slot is marked pending (and the manager woken), so its scan reaches the slot.
        uint32_t used = g_slots_used.load(std::memory_order_relaxed);
        while (used < index + 1 && !g_slots_used.compare_exchange_weak(used, index + 1, std::memory_order_acq_rel)) {
        }
        break;
      }
    }
    if (slot != nullptr) break;
    sched_yield();  // every slot holds a parked thread: wait for one to leave
  }
  slot->page = static_cast<uint32_t>(page);
  slot->flags = (is_write ? kFaultFlagWrite : 0u) | (offset_in_page << kFaultFlagOffsetShift);
  slot->futex.store(kParkWaiting, std::memory_order_relaxed);
  slot->remote.store(0, std::memory_order_relaxed);
  slot->state.store(kSlotPending, std::memory_order_release);
  (is_write ? g_write_faults : g_read_faults).fetch_add(1, std::memory_order_relaxed);
  Wake();
  // Rounds: spin (and poll), then sleep; a thread the manager prewakes (the reply for its page is being installed:
  // Prewake) spins again, so that its wake-up overlaps the install instead of following the resume.
  bool slept = false;
  for (;;) {
    // Spin briefly first: the manager usually answers within tens of
    // microseconds, and a futex sleep and wake-up costs about as much again.
    // At most kParkSpinCount pauses and kParkSpinUsMax microseconds (a pause
    // costs 10 to 150 cycles by CPU; clock_gettime is async-signal-safe).
    struct timespec spin_start;
    clock_gettime(CLOCK_MONOTONIC, &spin_start);
    // A fault its manager sent to the network (FaultSlot::remote) ends the spin: its answer is a round trip away.
    for (uint32_t spin = 0; spin < kParkSpinCount && slot->futex.load(std::memory_order_acquire) == kParkWaiting &&
                            slot->remote.load(std::memory_order_relaxed) == 0; spin += 1) {
  #if defined(__x86_64__)
      __builtin_ia32_pause();
  #elif defined(__aarch64__)
      asm volatile("yield");
  #endif
      if ((spin & 31u) == 31u) {
        struct timespec now;
        clock_gettime(CLOCK_MONOTONIC, &now);
        const int64_t elapsed_us = (static_cast<int64_t>(now.tv_sec) - spin_start.tv_sec) * 1000000 + (now.tv_nsec - spin_start.tv_nsec) / 1000;
        if (elapsed_us >= kParkSpinUsMax) break;
        // While the manager has not taken the fault, let a runnable thread of
        // this CPU go first: it may be that manager (on 2 vCPUs it often is,
        // preempted by this very thread when it resumed it, and queued behind
        // the spin, which then delayed it by the whole spin). Once the manager
        // has the fault, yielding would only hand this CPU to others for a
        // whole time slice (a resume coming meanwhile waits for it).
        // A prewoken thread yields too: woken on its manager's CPU, it preempted the install it waits for.
        if (slot->state.load(std::memory_order_acquire) == kSlotPending || slept) sched_yield();
      }
    }
    // Then poll, yielding the CPU between looks, up to g_park_yield_ns: a remote
    // page arrives within a few hundred microseconds, and a thread still awake
    // sees it at once, where a sleeping one waits for its wake-up (on a virtual
    // machine, an idle vCPU halts and its wake-up costs tens of microseconds).
    // Yielding lets whatever else is runnable on this CPU (its own manager) go first.
    // A yield that kept this thread off the CPU for kParkYieldContendedUs or more
    // means a thread that does not sleep soon (a computing one) shares the CPU:
    // polling behind it would see the page only when the scheduler comes back
    // to this thread (after a whole time slice, since each yield pushed it
    // back), while a futex wake-up is scheduled at once, so the thread sleeps.
    const int64_t yield_ns = g_park_yield_ns.load(std::memory_order_relaxed);
    if (yield_ns > 0 && slot->futex.load(std::memory_order_acquire) == kParkWaiting) {
      int64_t now = MonotonicNs();
      const int64_t deadline = now + yield_ns;
      while (slot->futex.load(std::memory_order_acquire) == kParkWaiting && now < deadline) {
        sched_yield();
        const int64_t before = now;
        now = MonotonicNs();
        if (now - before >= kParkYieldContendedUs * 1000) break;
      }
    }
    // Going to sleep is announced (kParkSleeping), so a resume that comes while
    // the thread still spins costs its manager no futex system call.
    uint32_t waiting = kParkWaiting;
    // Failing, it found kParkServed (only the resume sets it; a prewake only turns kParkSleeping back to kParkWaiting).
    if (!slot->futex.compare_exchange_strong(waiting, kParkSleeping, std::memory_order_acq_rel)) break;
    if (!slept) g_slow_waits.fetch_add(1, std::memory_order_relaxed);
    slept = true;
    uint32_t now_word;
    while ((now_word = slot->futex.load(std::memory_order_acquire)) == kParkSleeping) {
      Futex(&slot->futex, FUTEX_WAIT_PRIVATE, kParkSleeping);
    }
    if (now_word == kParkServed) break;
    // Prewoken (kParkWaiting again, `remote` cleared before): spin for the resume that follows the install.
  }
  slot->state.store(kSlotFree, std::memory_order_release);
}

void ChainToPrevious(int signal, siginfo_t* info, void* context) {
  const struct sigaction& previous = g_previous_action;
  if (previous.sa_flags & SA_SIGINFO) {
    if (previous.sa_sigaction != nullptr) {
      previous.sa_sigaction(signal, info, context);
      return;
    }
  } else if (previous.sa_handler != SIG_DFL && previous.sa_handler != SIG_IGN) {
    previous.sa_handler(signal);
    return;
  }
  // Default action: restore it and return; the instruction faults again and
  // the process dies by SIGSEGV, as it would without dsm.
  struct sigaction fallback;
  memset(&fallback, 0, sizeof fallback);
  fallback.sa_handler = SIG_DFL;
  sigemptyset(&fallback.sa_mask);
  sigaction(signal, &fallback, nullptr);
}

void OnSegv(int signal, siginfo_t* info, void* context) {
  int saved_errno = errno;
  uint8_t* address = static_cast<uint8_t*>(info->si_addr);
  uint8_t* bench = g_bench_page.load(std::memory_order_relaxed);
  if (bench != nullptr && address >= bench && address < bench + kPageBytes) {
    mprotect(bench, kPageBytes, PROT_READ | PROT_WRITE);
    errno = saved_errno;
    return;
  }
  if (g_ready.load(std::memory_order_acquire) && address >= g_region.app &&
      address < g_region.app + g_region.bytes) {
    size_t page = static_cast<size_t>(address - g_region.app) >> kPageShift;
    bool is_write = IsWriteFault(context);
    uint32_t offset_in_page = static_cast<uint32_t>(address - g_region.app) & static_cast<uint32_t>(kPageBytes - 1);
    // A tracked read-ahead copy's first touch: readable now; a store goes on to the write fast path.
    const bool touched = TryFastTouch(page);
    if ((touched && !is_write) || (is_write && TryFastWrite(page))) {
      errno = saved_errno;
      return;
    }
    long manager = g_manager_tid.load(std::memory_order_relaxed);
    if (manager != 0 && syscall(SYS_gettid) == manager) {
      static const char message[] =
          "dsm: " DSM_ERR_INTERNAL ": the manager thread touched dsm memory through the app view (a fault only it could serve); the node ends (a bug in dsm: please report it)\n";
      ssize_t ignored = write(STDERR_FILENO, message, sizeof message - 1);
      (void)ignored;
      _exit(kExitCodeNodeDied);
    }
    ParkUntilServed(page, is_write, offset_in_page);
    errno = saved_errno;
    return;
  }
  g_chained_faults.fetch_add(1, std::memory_order_relaxed);
  errno = saved_errno;
  ChainToPrevious(signal, info, context);
}

// ---- helpers for the bindings ------------------------------------------------

using dsm_addon::SetMethod;
using dsm_addon::Throw;
using dsm_addon::ViewData;

bool RequireReady(Isolate* isolate) {
  if (g_ready.load(std::memory_order_acquire)) return true;
  Throw(isolate, DSM_ERR_INTERNAL, "dsm native: the region is not initialized (call init first)");
  return false;
}

bool ReadIndex(const FunctionCallbackInfo<Value>& args, int index, uint64_t* out) {
  if (index >= args.Length() || !args[index]->IsNumber()) {
    Throw(args.GetIsolate(), DSM_ERR_INTERNAL, "dsm native: expected a number argument");
    return false;
  }
  double value = args[index].As<Number>()->Value();
  if (!(value >= 0) || value > 9007199254740991.0 || value != static_cast<double>(static_cast<uint64_t>(value))) {
    Throw(args.GetIsolate(), DSM_ERR_INTERNAL, "dsm native: expected a non-negative integer");
    return false;
  }
  *out = static_cast<uint64_t>(value);
  return true;
}

bool ReadPage(const FunctionCallbackInfo<Value>& args, int index, uint64_t* page) {
  if (!ReadIndex(args, index, page)) return false;
  if (*page >= g_region.page_count) {
    Throw(args.GetIsolate(), DSM_ERR_INTERNAL, "dsm native: page index outside the region");
    return false;
  }
  return true;
}

bool ReadPages(const FunctionCallbackInfo<Value>& args, int index, const uint32_t** pages, size_t* count) {
  if (index >= args.Length() || !args[index]->IsUint32Array()) {
    Throw(args.GetIsolate(), DSM_ERR_INTERNAL, "dsm native: expected a Uint32Array of pages");
    return false;
  }
  Local<v8::Uint32Array> array = args[index].As<v8::Uint32Array>();
  uint8_t* base = ViewData(array);
  *pages = reinterpret_cast<const uint32_t*>(base);
  *count = array->Length();
  for (size_t i = 0; i < *count; i += 1) {
    if ((*pages)[i] >= g_region.page_count) {
      Throw(args.GetIsolate(), DSM_ERR_INTERNAL, "dsm native: page index outside the region");
      return false;
    }
  }
  return true;
}

bool ReadBytes(const FunctionCallbackInfo<Value>& args, int index, uint8_t** data, size_t* length) {
  if (index >= args.Length() || !args[index]->IsArrayBufferView()) {
    Throw(args.GetIsolate(), DSM_ERR_INTERNAL, "dsm native: expected a Uint8Array");
    return false;
  }
  Local<v8::ArrayBufferView> view = args[index].As<v8::ArrayBufferView>();
  *data = ViewData(view);
  *length = view->ByteLength();
  return true;
}

// ---- region -----------------------------------------------------------------

// A node of several nodes allocates and frees a buffer of up to 1 MiB for every
// page fetch's reply it serves and receives (src/protocol/hlrc.ts servedExtras,
// src/transport/frame.ts FrameDecoder). glibc maps such buffers afresh, or
// trims its heap under them, so that each page of each buffer costs a page
// fault and a zeroing when first touched (on this VM, ~3 µs a page). Keeping
// them in the heap makes them memory the process touched before. Best effort:
// other C libraries keep their own policy.
std::atomic<bool> g_malloc_heap_kept{false};

// keepMallocHeap(): called by a node's manager (several nodes; DSM_MALLOC_KEEP=0 skips it).
// Returns whether the allocator took the setting (false on another C library).
void KeepMallocHeap(const FunctionCallbackInfo<Value>& args) {
  bool kept = false;
#if defined(__GLIBC__)
  kept = mallopt(M_MMAP_THRESHOLD, kMallocMmapThresholdBytes) == 1 && mallopt(M_TRIM_THRESHOLD, kMallocTrimThresholdBytes) == 1;
  g_malloc_heap_kept.store(kept, std::memory_order_relaxed);
#endif
  args.GetReturnValue().Set(kept);
}

void Init(const FunctionCallbackInfo<Value>& args) {
  Isolate* isolate = args.GetIsolate();
  uint64_t bytes;
  if (!ReadIndex(args, 0, &bytes)) return;
  if (sysconf(_SC_PAGESIZE) != static_cast<long>(kPageBytes)) {
    Throw(isolate, DSM_ERR_PLATFORM, "dsm needs " + std::to_string(kPageBytes) + "-byte pages; this system uses " + std::to_string(sysconf(_SC_PAGESIZE)));
    return;
  }
  if (bytes == 0 || bytes % kPageBytes != 0) {
    Throw(isolate, DSM_ERR_INVALID_OPTION, "dsm native: the region size must be a positive multiple of " + std::to_string(kPageBytes));
    return;
  }
  // One node (issue 17): the app view never changes protection and no other
  // view is needed, so the region is private anonymous memory, read-write,
  // exactly what V8 gives a plain SharedArrayBuffer (a shared memfd page costs
  // about 1.5x as much to first touch), and the manager view is the app view.
  bool anonymous = args.Length() > 1 && args[1]->IsTrue();
  std::lock_guard<std::mutex> lock(g_init_mutex);
  if (g_ready.load(std::memory_order_acquire)) {
    if (g_region.bytes != bytes) {
      Throw(isolate, DSM_ERR_INVALID_OPTION, "dsm native: the region is already mapped with another size");
    }
    return;
  }
  int fd = -1;
  void* app;
  void* manager;
  if (anonymous) {
    app = mmap(nullptr, bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    manager = app;
  } else {
    fd = static_cast<int>(syscall(SYS_memfd_create, "dsm-region", 1u /* MFD_CLOEXEC */));
    if (fd < 0 || ftruncate(fd, static_cast<off_t>(bytes)) != 0) {
      Throw(isolate, DSM_ERR_PLATFORM, std::string("dsm native: memfd for the region failed: ") + strerror(errno));
      if (fd >= 0) close(fd);
      return;
    }
    app = mmap(nullptr, bytes, PROT_NONE, MAP_SHARED | MAP_NORESERVE, fd, 0);
    manager = mmap(nullptr, bytes, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_NORESERVE, fd, 0);
  }
  void* twin = mmap(nullptr, bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
  size_t page_count = bytes / kPageBytes;
  void* state = mmap(nullptr, page_count, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
  void* twin_slot = mmap(nullptr, page_count * 4, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
  void* installed = mmap(nullptr, page_count, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
  void* diff_pwrites = mmap(nullptr, page_count, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
  void* twin_pool = mmap(nullptr, size_t(kTwinPoolSlotCount) * kPageBytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (app == MAP_FAILED || manager == MAP_FAILED || twin == MAP_FAILED || state == MAP_FAILED ||
      twin_slot == MAP_FAILED || twin_pool == MAP_FAILED) {
    Throw(isolate, DSM_ERR_PLATFORM, std::string("dsm native: mapping the region failed: ") + strerror(errno) +
                                           " (try a smaller --region-bytes)");
    return;
  }
  g_region.memfd = fd;
  g_region.bytes = bytes;
  g_region.page_count = page_count;
  g_region.app = static_cast<uint8_t*>(app);
  g_region.manager = static_cast<uint8_t*>(manager);
  g_region.twin = static_cast<uint8_t*>(twin);
  g_region.state = static_cast<std::atomic<uint8_t>*>(state);
  g_region.twin_slot = static_cast<std::atomic<uint32_t>*>(twin_slot);
  g_region.installed = installed == MAP_FAILED ? nullptr : static_cast<uint8_t*>(installed);
  g_region.diff_pwrites = diff_pwrites == MAP_FAILED ? nullptr : static_cast<uint8_t*>(diff_pwrites);
  g_region.twin_pool = static_cast<uint8_t*>(twin_pool);
  // Every page's state byte is written at start (the engine's first pass sets every page's
  // protection): one populate instead of a fault per 4096 pages. Best effort, as below.
  madvise(state, page_count, kMadvPopulateWrite);
  // One node never twins: its pool stays untouched (no resident memory). Otherwise the first
  // kTwinPoolPretouchCount slots are made resident now, in one call where the kernel has
  // MADV_POPULATE_WRITE (Linux 5.14): a page fault each costs 40-50 times as much, and this is
  // every node's start-up. Older kernels: one write per page.
  // MADV_POPULATE_WRITE runs on a thread of its own (2-4 ms of page zeroing off the start's path): it
  // never changes a byte, so a twin written into the pool meanwhile is safe.
  if (!anonymous) {
    size_t pretouch_bytes = size_t(kTwinPoolPretouchCount) * kPageBytes;
    uint8_t* pool = g_region.twin_pool;
    if (madvise(pool, kPageBytes, kMadvPopulateWrite) != 0) {
      for (size_t slot = 0; slot < kTwinPoolPretouchCount; slot += 1) g_region.twin_pool[slot * kPageBytes] = 0;
    } else {
      g_twin_pool_pretouching.store(true, std::memory_order_release);
      std::thread([pool, pretouch_bytes]() {
        madvise(pool, pretouch_bytes, kMadvPopulateWrite);
        g_twin_pool_pretouching.store(false, std::memory_order_release);
      }).detach();
    }
  }
  g_ready.store(true, std::memory_order_release);
}

void IsInitialized(const FunctionCallbackInfo<Value>& args) {
  args.GetReturnValue().Set(g_ready.load(std::memory_order_acquire));
}

void RegionBytes(const FunctionCallbackInfo<Value>& args) {
  args.GetReturnValue().Set(static_cast<double>(g_region.bytes));
}

void OnBackingStoreDeleted(void* data, size_t length, void* deleter_data) {
  if (deleter_data != nullptr) {
    static_cast<IsolateAccount*>(deleter_data)->freedBytes.fetch_add(static_cast<int64_t>(length), std::memory_order_relaxed);
  }
  uint64_t offset = static_cast<uint64_t>(static_cast<uint8_t*>(data) - g_region.app);
  {
    std::lock_guard<std::mutex> lock(g_store_mutex);
    auto found = g_stores.find(std::make_pair(offset, static_cast<uint64_t>(length)));
    if (found != g_stores.end()) {
      found->second.undeletedCount -= 1;
      if (found->second.undeletedCount > 0) return;  // a newer store maps the range
      g_stores.erase(found);
    }
    // Queued under the store lock (lock order: store, then freed): a thread
    // that makes a new store for the range after this point finds the report
    // already queued, so a manager that drains the queue before it records a
    // new holder of the range (a buffer received from another node) never
    // takes this report for the new store's.
    std::lock_guard<std::mutex> freed_lock(g_freed_mutex);
    g_freed.emplace_back(offset, static_cast<uint64_t>(length));
    g_freed_counts[std::make_pair(offset, static_cast<uint64_t>(length))] += 1;
  }
  Wake();
}

// Tells V8 the external memory this isolate's dropped stores no longer hold.
void SettleAccount(Isolate* isolate) {
  if (t_account == nullptr) return;
  int64_t freed = t_account->freedBytes.exchange(0, std::memory_order_relaxed);
  if (freed != 0) isolate->AdjustAmountOfExternalAllocatedMemory(-freed);
}

constexpr int kCollectNone = 0;
constexpr int kCollectMinor = 1;
constexpr int kCollectFull = 2;

// A minor collection (a scavenge: well under a millisecond for a small young
// generation) frees the buffers a thread dropped since its last collection,
// which are most of them; a full one frees the rest, at tens of milliseconds
// a thread when several run at once on a loaded machine (issue 13: a small
// region nearly full asked for one every 50 ms, and a one-node run took 18 s).
// V8 runs a collection an embedder asks for (a scavenge above all) only with
// --expose-gc set, and a context made while that flag is set gets a global
// `gc` (plain node has none: a worker made after memory pressure saw one).
// So the flag is set only around the request, under a process-wide lock
// (recursive: a thread's interrupt may ask while it holds it), unless the
// program's own node options set it (g_user_expose_gc, read at the first
// RegisterCollector: nothing of dsm set it before).
std::recursive_mutex g_gc_flag_mutex;
std::atomic<bool> g_user_expose_gc{false};
std::once_flag g_user_expose_gc_read;

void RequestCollection(Isolate* isolate, Isolate::GarbageCollectionType type) {
  std::lock_guard<std::recursive_mutex> lock(g_gc_flag_mutex);
  const bool user = g_user_expose_gc.load(std::memory_order_relaxed);
  if (!user) v8::V8::SetFlagsFromString("--expose-gc");
  isolate->RequestGarbageCollectionForTesting(type);
  if (!user) v8::V8::SetFlagsFromString("--no-expose-gc");
}

void CollectNow(Isolate* isolate, IsolateAccount* account) {
  int kind = account->collectPending.exchange(kCollectNone, std::memory_order_acq_rel);
  if (kind == kCollectNone) return;
  SettleAccount(isolate);
  if (kind == kCollectMinor) {
    RequestCollection(isolate, Isolate::kMinorGarbageCollection);
  } else {
    isolate->LowMemoryNotification();
  }
}

// A collection in the calling thread, now (its own retry after a failed
// allocation): a scavenge when the argument is true, else a full one.
void CollectHere(const FunctionCallbackInfo<Value>& args) {
  Isolate* isolate = args.GetIsolate();
  if (t_account != nullptr) SettleAccount(isolate);
  const bool minor = args.Length() > 0 && args[0]->IsTrue();
  RequestCollection(isolate, minor ? Isolate::kMinorGarbageCollection : Isolate::kFullGarbageCollection);
}

// A full collection of the manager's own heap (its isolate registers no
// collector): Node routes a postMessageToThread between threads of one node
// through the process's main thread, whose heap then holds the buffers it
// deserialized until it collects. LowMemoryNotification needs no
// --expose-gc: the manager must not set that flag, which a thread whose
// context is being made at that moment would see (a `gc` global) and, as a
// node's first collector, take for the program's own flag (RegisterCollector):
// later scavenges then ran without it, a V8 fatal error (session 40).
void CollectManager(const FunctionCallbackInfo<Value>& args) {
  args.GetIsolate()->LowMemoryNotification();
}

// storeOrReport(offset, length): whether a SharedArrayBuffer over exactly
// [offset, +length) lives in this process, or its end is reported and not yet
// drained. The manager asks it for the blocks a thread's allocation cache held
// when the thread ends: a block with neither was never made into a buffer
// (session 40). Both looks under their locks (store, then freed: the deleter's
// order), so a store deleted between them is seen by the second.
void StoreOrReport(const FunctionCallbackInfo<Value>& args) {
  uint64_t offset, length;
  if (!ReadIndex(args, 0, &offset) || !ReadIndex(args, 1, &length)) return;
  const auto key = std::make_pair(offset, length);
  std::lock_guard<std::mutex> lock(g_store_mutex);
  auto found = g_stores.find(key);
  bool lives = found != g_stores.end() && found->second.undeletedCount > 0;
  if (!lives) {
    std::lock_guard<std::mutex> freed_lock(g_freed_mutex);
    lives = g_freed_counts.count(key) != 0;
  }
  args.GetReturnValue().Set(lives);
}

// How many registered app threads have a collection asked but not run yet
// (the manager waits for them before it decides the region is full).
void CollectsPending(const FunctionCallbackInfo<Value>& args) {
  std::lock_guard<std::mutex> lock(g_accounts_mutex);
  uint32_t pending = 0;
  for (IsolateAccount* account : g_accounts) {
    if (account->alive && account->collectPending.load(std::memory_order_acquire) != kCollectNone) pending += 1;
  }
  args.GetReturnValue().Set(pending);
}

// Whether the program's node options expose `gc` (then dsm leaves the flag set).
void UserExposesGc(const FunctionCallbackInfo<Value>& args) {
  args.GetReturnValue().Set(g_user_expose_gc.load(std::memory_order_relaxed));
}

void OnAccountCleanup(void* data) {
  auto* account = static_cast<IsolateAccount*>(data);
  {
    std::lock_guard<std::mutex> lock(g_accounts_mutex);
    account->alive = false;
    g_accounts.erase(std::remove(g_accounts.begin(), g_accounts.end(), account), g_accounts.end());
  }
  uv_close(reinterpret_cast<uv_handle_t*>(account->wake), [](uv_handle_t* handle) { delete reinterpret_cast<uv_async_t*>(handle); });
  account->wake = nullptr;
}

// Called once by each app thread: its buffers are accounted to V8 and it
// collects when collectEverywhere asks.
void RegisterCollector(const FunctionCallbackInfo<Value>& args) {
  Isolate* isolate = args.GetIsolate();
  std::call_once(g_user_expose_gc_read, [isolate] {
    Local<Context> context = isolate->GetCurrentContext();
    Local<Value> gc;
    const bool has = context->Global()->Get(context, v8::String::NewFromUtf8Literal(isolate, "gc")).ToLocal(&gc) && gc->IsFunction();
    g_user_expose_gc.store(has, std::memory_order_relaxed);
  });
  if (t_account != nullptr) return;
  auto* account = new IsolateAccount;
  account->isolate = isolate;
  account->wake = new uv_async_t;
  account->wake->data = account;
  uv_async_init(node::GetCurrentEventLoop(isolate), account->wake, [](uv_async_t* handle) {
    auto* woken = static_cast<IsolateAccount*>(handle->data);
    v8::HandleScope scope(woken->isolate);
    CollectNow(woken->isolate, woken);
  });
  // The wake-up must not keep the thread's loop alive.
  uv_unref(reinterpret_cast<uv_handle_t*>(account->wake));
  {
    std::lock_guard<std::mutex> lock(g_accounts_mutex);
    g_accounts.push_back(account);
  }
  t_account = account;
  node::AddEnvironmentCleanupHook(isolate, OnAccountCleanup, account);
}

void CollectInterrupt(Isolate* isolate, void* data) { CollectNow(isolate, static_cast<IsolateAccount*>(data)); }

// Asks every registered app thread of this process to run a collection at its
// next interrupt check (also from inside Atomics.wait or a long loop), so dead
// dsm buffers held in any thread's heap return their memory: a minor one when
// the argument is true, else a full one. Returns how many threads were asked.
void CollectEverywhere(const FunctionCallbackInfo<Value>& args) {
  const int kind = args.Length() > 0 && args[0]->IsTrue() ? kCollectMinor : kCollectFull;
  std::lock_guard<std::mutex> lock(g_accounts_mutex);
  uint32_t asked = 0;
  for (IsolateAccount* account : g_accounts) {
    if (!account->alive) continue;
    int pending = account->collectPending.load(std::memory_order_acquire);
    while (pending < kind && !account->collectPending.compare_exchange_weak(pending, kind, std::memory_order_acq_rel)) {
    }
    account->isolate->RequestInterrupt(CollectInterrupt, account);
    uv_async_send(account->wake);
    asked += 1;
  }
  args.GetReturnValue().Set(asked);
}

void SharedArrayBufferAt(const FunctionCallbackInfo<Value>& args) {
  Isolate* isolate = args.GetIsolate();
  if (!RequireReady(isolate)) return;
  uint64_t offset, length;
  if (!ReadIndex(args, 0, &offset) || !ReadIndex(args, 1, &length)) return;
  if (length == 0 || offset + length > g_region.bytes) {
    Throw(isolate, DSM_ERR_INTERNAL, "dsm native: buffer range outside the region");
    return;
  }
  // made: the range was just allocated by this node (a fresh range has no live store to share).
  const bool made = args.Length() > 2 && args[2]->IsTrue();
  ExposeRegion();
  std::shared_ptr<v8::BackingStore> store;
  int64_t fresh_bytes = 0;
  {
    std::lock_guard<std::mutex> lock(g_store_mutex);
    auto key = std::make_pair(offset, length);
    StoreEntry& entry = g_stores[key];
    store = entry.store.lock();
    if (!store) {
      if (entry.undeletedCount == 0) {
        // The range's last store may have been deleted a moment ago and its
        // report not yet taken by the manager: this store maps the range
        // again, so that report is stale. Taken after this thread's 'hold' of
        // a received buffer (which comes after this call), it would tell the
        // manager no buffer over the range lives here, and the range could be
        // reused under this one (alloc-escape-churn on 3 nodes under load: a
        // fresh buffer read a worker's bytes). A report the manager took
        // before this point it took before the hold, which is right.
        std::lock_guard<std::mutex> freed_lock(g_freed_mutex);
        if (g_freed_counts.erase(key) != 0) g_freed.erase(std::remove(g_freed.begin(), g_freed.end(), key), g_freed.end());
      }
      std::unique_ptr<v8::BackingStore> fresh = v8::SharedArrayBuffer::NewBackingStore(
          g_region.app + offset, length, OnBackingStoreDeleted, t_account);
      store = std::move(fresh);
      entry.store = store;
      entry.undeletedCount += 1;
      entry.made = made;
      fresh_bytes = static_cast<int64_t>(length);
    }
    // The map stays bounded by live buffers: each deleter erases its entry
    // when the last store of the range is deleted.
  }
  SettleAccount(isolate);
  // Only a registered thread's stores carry its account, so only they are counted.
  if (fresh_bytes != 0 && t_account != nullptr) isolate->AdjustAmountOfExternalAllocatedMemory(fresh_bytes);
  args.GetReturnValue().Set(v8::SharedArrayBuffer::New(isolate, store));
}

// A SharedArrayBuffer over a range of the manager view (always read-write):
// the manager runs a line's shipped Atomics op on it with V8's own Atomics, a
// locked instruction on the same physical bytes the app threads' native ops
// use through the app view, so both are atomic against each other (issue 12,
// session 9). Never handed to an app thread; the mapping outlives every such
// buffer (it is unmapped only at process exit), so the deleter does nothing.
void ManagerBufferAt(const FunctionCallbackInfo<Value>& args) {
  Isolate* isolate = args.GetIsolate();
  if (!RequireReady(isolate)) return;
  uint64_t offset, length;
  if (!ReadIndex(args, 0, &offset) || !ReadIndex(args, 1, &length)) return;
  if (length == 0 || offset + length > g_region.bytes || g_region.manager == nullptr) {
    Throw(isolate, DSM_ERR_INTERNAL, "dsm native: manager buffer range outside the region");
    return;
  }
  std::unique_ptr<v8::BackingStore> store = v8::SharedArrayBuffer::NewBackingStore(
      g_region.manager + offset, length, [](void*, size_t, void*) {}, nullptr);
  args.GetReturnValue().Set(v8::SharedArrayBuffer::New(isolate, std::move(store)));
}

// A SharedArrayBuffer over the dirty ring's push counter (word 0 of 16, one
// cache line): a counter read before a drain that has not moved since means
// nothing was pushed that the drain would return. Static storage: the deleter does nothing.
void DirtyPushCounter(const FunctionCallbackInfo<Value>& args) {
  Isolate* isolate = args.GetIsolate();
  static_assert(sizeof(std::atomic<uint32_t>) == 4 && std::atomic<uint32_t>::is_always_lock_free, "the counter is a plain lock-free word");
  std::unique_ptr<v8::BackingStore> store = v8::SharedArrayBuffer::NewBackingStore(
      static_cast<void*>(g_dirty_pushed), sizeof(g_dirty_pushed), [](void*, size_t, void*) {}, nullptr);
  args.GetReturnValue().Set(v8::SharedArrayBuffer::New(isolate, std::move(store)));
}

// touchPushCounter(): the touch ring's push counter as a word of a SharedArrayBuffer (as dirtyPushCounter).
void TouchPushCounter(const FunctionCallbackInfo<Value>& args) {
  Isolate* isolate = args.GetIsolate();
  std::unique_ptr<v8::BackingStore> store = v8::SharedArrayBuffer::NewBackingStore(
      static_cast<void*>(g_touch_pushed), sizeof(g_touch_pushed), [](void*, size_t, void*) {}, nullptr);
  args.GetReturnValue().Set(v8::SharedArrayBuffer::New(isolate, std::move(store)));
}

// isMadeHere(buffer): whether the buffer's backing store is the live store of a range this node allocated
// (sharedArrayBuffer with `made`): the range is live at this node, its owner, while the buffer lives.
void IsMadeHere(const FunctionCallbackInfo<Value>& args) {
  if (args.Length() < 1 || !args[0]->IsSharedArrayBuffer() || !g_ready.load(std::memory_order_acquire)) {
    args.GetReturnValue().Set(false);
    return;
  }
  Local<v8::SharedArrayBuffer> buffer = args[0].As<v8::SharedArrayBuffer>();
  auto* data = static_cast<uint8_t*>(buffer->Data());
  const size_t length = buffer->ByteLength();
  if (data == nullptr || data < g_region.app || data + length > g_region.app + g_region.bytes) {
    args.GetReturnValue().Set(false);
    return;
  }
  const std::shared_ptr<v8::BackingStore> mine = buffer->GetBackingStore();
  std::lock_guard<std::mutex> lock(g_store_mutex);
  auto found = g_stores.find(std::make_pair(static_cast<uint64_t>(data - g_region.app), static_cast<uint64_t>(length)));
  args.GetReturnValue().Set(found != g_stores.end() && found->second.made && found->second.store.lock() == mine);
}

void RangeOf(const FunctionCallbackInfo<Value>& args) {
  Isolate* isolate = args.GetIsolate();
  if (args.Length() < 1 || !args[0]->IsSharedArrayBuffer() || !g_ready.load(std::memory_order_acquire)) {
    args.GetReturnValue().SetNull();
    return;
  }
  Local<v8::SharedArrayBuffer> buffer = args[0].As<v8::SharedArrayBuffer>();
  auto* data = static_cast<uint8_t*>(buffer->Data());
  size_t length = buffer->ByteLength();
  if (data == nullptr || data < g_region.app || data + length > g_region.app + g_region.bytes) {
    args.GetReturnValue().SetNull();
    return;
  }
  Local<Context> context = isolate->GetCurrentContext();
  Local<Object> range = Object::New(isolate);
  range->Set(context, v8::String::NewFromUtf8Literal(isolate, "offset"),
             Number::New(isolate, static_cast<double>(data - g_region.app))).Check();
  range->Set(context, v8::String::NewFromUtf8Literal(isolate, "byteLength"),
             Number::New(isolate, static_cast<double>(length))).Check();
  args.GetReturnValue().Set(range);
}

// ---- protections ---------------------------------------------------------------

void ProtectRun(size_t first, size_t count, uint8_t prot) {
  if (count > 1 && BeginUnlockedBulk()) {
    mprotect(g_region.app + (first << kPageShift), count << kPageShift, ProtFlags(prot));
    for (size_t i = 0; i < count; i += 1) {
      std::atomic<uint8_t>& cell = g_region.state[first + i];
      cell.store(static_cast<uint8_t>((cell.load(std::memory_order_relaxed) & ~(kProtMask | kTouchAhead | kTouchWake)) | prot), std::memory_order_relaxed);
    }
    EndUnlockedBulk();
    return;
  }
  std::vector<uint8_t> states(count);
  for (size_t i = 0; i < count; i += 1) states[i] = LockPage(first + i);
  mprotect(g_region.app + (first << kPageShift), count << kPageShift, ProtFlags(prot));
  for (size_t i = 0; i < count; i += 1) {
    UnlockPage(first + i, static_cast<uint8_t>((states[i] & ~(kProtMask | kTouchAhead | kTouchWake)) | prot));
  }
}

bool ReadProt(const FunctionCallbackInfo<Value>& args, int index, uint8_t* prot) {
  uint64_t value;
  if (!ReadIndex(args, index, &value)) return false;
  if (value > kProtReadWrite) {
    Throw(args.GetIsolate(), DSM_ERR_INTERNAL, "dsm native: protection must be 0, 1 or 2");
    return false;
  }
  *prot = static_cast<uint8_t>(value);
  return true;
}

void Protect(const FunctionCallbackInfo<Value>& args) {
  if (!RequireReady(args.GetIsolate())) return;
  uint64_t first, count;
  uint8_t prot;
  if (!ReadPage(args, 0, &first) || !ReadIndex(args, 1, &count) || !ReadProt(args, 2, &prot)) return;
  if (first + count > g_region.page_count) {
    Throw(args.GetIsolate(), DSM_ERR_INTERNAL, "dsm native: page range outside the region");
    return;
  }
  if (count > 0) ProtectRun(first, count, prot);
}

void ProtectPages(const FunctionCallbackInfo<Value>& args) {
  if (!RequireReady(args.GetIsolate())) return;
  const uint32_t* pages;
  size_t count;
  uint8_t prot;
  if (!ReadPages(args, 0, &pages, &count) || !ReadProt(args, 1, &prot)) return;
  size_t index = 0;
  while (index < count) {
    size_t run = 1;
    while (index + run < count && pages[index + run] == pages[index] + run) run += 1;
    ProtectRun(pages[index], run, prot);
    index += run;
  }
}

void SetFastWrite(const FunctionCallbackInfo<Value>& args) {
  if (!RequireReady(args.GetIsolate())) return;
  const uint32_t* pages;
  size_t count;
  if (!ReadPages(args, 0, &pages, &count)) return;
  bool enabled = args.Length() > 1 && args[1]->IsTrue();
  for (size_t i = 0; i < count; i += 1) {
    uint8_t state = LockPage(pages[i]);
    // Turning the fast path off drops a read-ahead touch mark too: the handler's touch would turn it on again.
    UnlockPage(pages[i], enabled ? (state | kFastWrite) : (state & ~(kFastWrite | kTouchAhead | kTouchWake)));
  }
}

void SetTwinless(const FunctionCallbackInfo<Value>& args) {
  if (!RequireReady(args.GetIsolate())) return;
  const uint32_t* pages;
  size_t count;
  if (!ReadPages(args, 0, &pages, &count)) return;
  bool enabled = args.Length() > 1 && args[1]->IsTrue();
  for (size_t i = 0; i < count; i += 1) {
    uint8_t state = LockPage(pages[i]);
    UnlockPage(pages[i], enabled ? (state | kTwinless) : (state & ~kTwinless));
  }
}

// setTouchAhead(pages, wake): tracked read-ahead copies just installed (valid, at no access): their first touch is
// served in the handler (TryFastTouch), which wakes the manager only for pages marked with `wake`. A page not at no
// access is left alone.
void SetTouchAhead(const FunctionCallbackInfo<Value>& args) {
  if (!RequireReady(args.GetIsolate())) return;
  const uint32_t* pages;
  size_t count;
  if (!ReadPages(args, 0, &pages, &count)) return;
  const uint8_t flags = args.Length() > 1 && args[1]->IsTrue() ? (kTouchAhead | kTouchWake) : kTouchAhead;
  for (size_t i = 0; i < count; i += 1) {
    uint8_t state = LockPage(pages[i]);
    UnlockPage(pages[i], (state & kProtMask) == kProtNone ? static_cast<uint8_t>((state & ~kTouchWake) | flags) : state);
  }
}

// A page flag over pages first, first + step, ... (count pages): an engine's start sets the fast
// write flag on the whole region and the twinless flag on its own pages (every nodeCount-th page
// with round-robin homes) in one call each. As page lists these cost ~50 ms of CPU a node on a
// 4 GiB region (2^20 pages), in the JavaScript that makes the lists; here the loop is ~3 ms.
void SetFlagRange(const FunctionCallbackInfo<Value>& args, uint8_t flag) {
  if (!RequireReady(args.GetIsolate())) return;
  uint64_t first, count, step;
  if (!ReadIndex(args, 0, &first) || !ReadIndex(args, 1, &count) || !ReadIndex(args, 2, &step)) return;
  if (step == 0 || (count > 0 && (first >= g_region.page_count || (count - 1) > (g_region.page_count - 1 - first) / step))) {
    Throw(args.GetIsolate(), DSM_ERR_INTERNAL, "dsm native: page range outside the region (or a step of 0)");
    return;
  }
  bool enabled = args.Length() > 3 && args[3]->IsTrue();
  // As SetFastWrite: the fast path off drops a read-ahead touch mark.
  const uint8_t cleared = flag == kFastWrite ? static_cast<uint8_t>(kFastWrite | kTouchAhead | kTouchWake) : flag;
  if (count > 1 && BeginUnlockedBulk()) {
    for (uint64_t i = 0, page = first; i < count; i += 1, page += step) {
      std::atomic<uint8_t>& cell = g_region.state[page];
      const uint8_t state = cell.load(std::memory_order_relaxed);
      cell.store(enabled ? (state | flag) : (state & ~cleared), std::memory_order_relaxed);
    }
    EndUnlockedBulk();
    return;
  }
  for (uint64_t i = 0, page = first; i < count; i += 1, page += step) {
    uint8_t state = LockPage(page);
    UnlockPage(page, enabled ? (state | flag) : (state & ~cleared));
  }
}

void SetFastWriteRange(const FunctionCallbackInfo<Value>& args) { SetFlagRange(args, kFastWrite); }
void SetTwinlessRange(const FunctionCallbackInfo<Value>& args) { SetFlagRange(args, kTwinless); }

// The most twins the fast path makes (a page count); 0 = no limit.
void SetTwinLimit(const FunctionCallbackInfo<Value>& args) {
  uint64_t limit;
  if (!ReadIndex(args, 0, &limit)) return;
  g_twin_limit.store(limit == 0 ? ~uint64_t(0) : limit, std::memory_order_relaxed);
}

// setWriteAhead(pages): the most pages one fast write twins ahead of a
// sequential write stream (at most writeAheadPageCountMax; 0 turns it off).
void SetWriteAhead(const FunctionCallbackInfo<Value>& args) {
  uint64_t pages;
  if (!ReadIndex(args, 0, &pages)) return;
  g_write_ahead_max.store(static_cast<uint32_t>(pages < kWriteAheadPageCountMax ? pages : kWriteAheadPageCountMax), std::memory_order_relaxed);
}

// setOwnWriteAhead(pages): the most of this node's own (twinless) pages one fast write upgrades ahead of a
// sequential write stream (at most writeAheadPageCountMax; 0 turns it off).
void SetOwnWriteAhead(const FunctionCallbackInfo<Value>& args) {
  uint64_t pages;
  if (!ReadIndex(args, 0, &pages)) return;
  g_own_write_ahead_max.store(static_cast<uint32_t>(pages < kWriteAheadPageCountMax ? pages : kWriteAheadPageCountMax), std::memory_order_relaxed);
}

void PauseFastWrite(const FunctionCallbackInfo<Value>& args) {
  g_fast_write_paused.store(args.Length() > 0 && args[0]->IsTrue(), std::memory_order_release);
}

// A memory barrier on every thread of this process that runs now (the
// asymmetric half of the atomic line table's pin protocol, src/channel/atomic-lines.ts:
// app threads pin with a plain store, the manager revokes with a store, this
// barrier, then loads). Registers the process on first use. Returns false
// where the kernel offers no private expedited membarrier (the app side then
// pins with a locked store).
//
// Registering a process that already runs threads waits for an RCU grace
// period in the kernel (5-15 ms measured here, no CPU): PrepareMembarrier
// starts it on a thread of its own as the runtime loads, so that the first
// Membarrier (a node's atomic line table, at its start) finds it done
// instead of waiting on the start's path.
std::mutex g_membarrier_mutex;
std::condition_variable g_membarrier_done;
bool g_membarrier_started = false;
std::atomic<int> g_membarrier_registered{-1};

void StartMembarrierRegistration() {
  std::lock_guard<std::mutex> lock(g_membarrier_mutex);
  if (g_membarrier_started) return;
  g_membarrier_started = true;
  // Detached: a process may end before it is needed (nothing to join at exit).
  std::thread([] {
    int registered = syscall(__NR_membarrier, MEMBARRIER_CMD_REGISTER_PRIVATE_EXPEDITED, 0, 0) == 0 ? 1 : 0;
    std::lock_guard<std::mutex> lock(g_membarrier_mutex);
    g_membarrier_registered.store(registered, std::memory_order_release);
    g_membarrier_done.notify_all();
  }).detach();
}

int MembarrierRegistered() {
  int registered = g_membarrier_registered.load(std::memory_order_acquire);
  if (registered >= 0) return registered;
  StartMembarrierRegistration();
  std::unique_lock<std::mutex> lock(g_membarrier_mutex);
  g_membarrier_done.wait(lock, [] { return g_membarrier_registered.load(std::memory_order_acquire) >= 0; });
  return g_membarrier_registered.load(std::memory_order_acquire);
}

void PrepareMembarrier(const FunctionCallbackInfo<Value>& args) {
  StartMembarrierRegistration();
}

void Membarrier(const FunctionCallbackInfo<Value>& args) {
  bool done = MembarrierRegistered() == 1 && syscall(__NR_membarrier, MEMBARRIER_CMD_PRIVATE_EXPEDITED, 0, 0) == 0;
  args.GetReturnValue().Set(done);
}

void PageState(const FunctionCallbackInfo<Value>& args) {
  if (!RequireReady(args.GetIsolate())) return;
  uint64_t page;
  if (!ReadPage(args, 0, &page)) return;
  args.GetReturnValue().Set(static_cast<uint32_t>(g_region.state[page].load(std::memory_order_acquire)));
}

// ---- twins and diffs --------------------------------------------------------------

void MakeTwin(const FunctionCallbackInfo<Value>& args) {
  if (!RequireReady(args.GetIsolate())) return;
  uint64_t page;
  if (!ReadPage(args, 0, &page)) return;
  uint8_t state = LockPage(page);
  if ((state & kHasTwin) == 0) TakeTwin(page);
  UnlockPage(page, state | kHasTwin);
}

// Diff encoding: a sequence of runs, each a header [u16 offset][u16 word],
// little-endian, then its body; runs ascending (src/protocol/diff-codec.ts
// mirrors this byte for byte, docs/PROTOCOL.md "Diffs" gives the format).
// Two kinds of run:
//   - exact (bit 15 of word clear): `word` changed bytes at `offset`;
//   - masked (bit 15 set): `word & 0x7fff` groups of 8 bytes from `offset` (a
//     multiple of 8): a mask byte per group (bit i: byte i of the group
//     changed), then the changed bytes of all its groups, ascending. The masks
//     come first so that the applier checks a run's length 8 masks at a time
//     (a popcount of a 64-bit word), not one mask after another.
// Both carry only changed bytes: two nodes may legally write neighbouring
// bytes of one word between synchronizations (false sharing of adjacent
// Int8/Int16/Int32 elements), and a diff that carried a whole word would
// overwrite the other node's bytes with stale ones at the home. The pages are
// compared 8 bytes at a time: a word's XOR gives a bit per byte that differs
// (DiffByteMask), and the exact runs' boundaries inside the word are found by
// counting trailing zeros, not byte by byte (a page of random ints half of
// which a partition swapped, QuickSort's, has a boundary every few bytes; 25%
// less time a page than the byte loop, session 14). Runs less than
// kMaskGapGroups unchanged groups apart make a cluster; a cluster whose exact
// runs cost more headers (4 bytes a run) than one masked run costs (4 bytes
// and a mask byte a group) is written as the masked run. An Int32 below 2^24
// written over zeros (3 changed bytes of 4) is one exact run a word, 7 bytes
// a word; masked, 7 bytes per 2 words.
constexpr size_t kDiffBytesMax = (kPageBytes / 2) * 5;  // worst case: every other byte changed (masked only when smaller)
constexpr uint16_t kMaskedRunFlag = 0x8000;
constexpr size_t kMaskGapGroups = 4;  // unchanged groups cost a masked run as much as a new run's header
static_assert(kPageBytes % 8 == 0, "pages are compared a word at a time");
static_assert(kPageBytes < kMaskedRunFlag, "an exact run's length stays below the masked-run flag");

// Bits set in x (no popcnt instruction without -mpopcnt: __builtin_popcount is a call).
inline uint32_t BitsSet(uint64_t x) {
  x = x - ((x >> 1) & 0x5555555555555555ULL);
  x = (x & 0x3333333333333333ULL) + ((x >> 2) & 0x3333333333333333ULL);
  x = (x + (x >> 4)) & 0x0f0f0f0f0f0f0f0fULL;
  return static_cast<uint32_t>((x * 0x0101010101010101ULL) >> 56);
}

// Bit i set iff byte i (little-endian) of x is not zero.
inline uint32_t DiffByteMask(uint64_t x) {
  constexpr uint64_t kLow7 = 0x7f7f7f7f7f7f7f7fULL;
  const uint64_t high = (((x & kLow7) + kLow7) | x) & ~kLow7;  // the high bit of each non-zero byte
  return static_cast<uint32_t>(((high >> 7) * 0x0102040810204080ULL) >> 56);
}

constexpr size_t kGroups = kPageBytes / 8;

// Writes the masked run of groups first..last (their masks in `masks`) at
// `out`; returns its bytes. A group's changed bytes go a stretch (of set mask
// bits) at a time, as one 8-byte store of the group shifted to the stretch's
// first byte; the next stretch overwrites the store's tail: `out` has 8 bytes
// of slack past the run for that.
size_t EncodeMasked(const uint8_t* masks, const uint8_t* page, size_t first, size_t last, uint8_t* out) {
  const uint16_t offset = static_cast<uint16_t>(first * 8);
  const uint16_t word = static_cast<uint16_t>((last - first + 1) | kMaskedRunFlag);
  memcpy(out, &offset, 2);
  memcpy(out + 2, &word, 2);
  const size_t groups = last - first + 1;
  memcpy(out + 4, masks + first, groups);
  size_t written = 4 + groups;
  for (size_t group = first; group <= last; group += 1) {
    uint32_t mask = masks[group];
    if (mask == 0) continue;
    uint64_t b;
    memcpy(&b, page + group * 8, 8);
    if (mask == 0xffu) {
      memcpy(out + written, &b, 8);
      written += 8;
      continue;
    }
    while (mask != 0) {
      const uint32_t start = static_cast<uint32_t>(__builtin_ctz(mask));
      const uint32_t length = static_cast<uint32_t>(__builtin_ctz(~(mask >> start)));
      const uint64_t bytes = b >> (8 * start);
      memcpy(out + written, &bytes, 8);
      written += length;
      mask &= ~(((1u << length) - 1) << start);
    }
  }
  return written;
}

// Writes groups first..last as exact runs at `out`; returns their bytes.
size_t EncodeExact(const uint8_t* masks, const uint8_t* page, size_t first, size_t last, uint8_t* out) {
  size_t written = 0;
  bool in_run = false;
  size_t start = 0;
  auto end_run = [&](size_t end) {
    const uint16_t offset = static_cast<uint16_t>(start);
    const uint16_t length = static_cast<uint16_t>(end - start);
    memcpy(out + written, &offset, 2);
    memcpy(out + written + 2, &length, 2);
    memcpy(out + written + 4, page + start, length);
    written += 4 + length;
    in_run = false;
  };
  for (size_t group = first; group <= last; group += 1) {
    uint64_t eight;
    if (group + 8 <= last + 1 && (memcpy(&eight, masks + group, 8), eight == (in_run ? ~0ULL : 0ULL))) {
      group += 7;  // eight words a run goes on through, or none starts in (a rewritten page)
      continue;
    }
    const uint32_t mask = masks[group];
    if (mask == (in_run ? 0xffu : 0u)) continue;  // a run goes on through the word, or none starts in it
    const size_t at = group * 8;
    // Each boundary in the word: the first differing byte at or after `from`
    // (outside a run), or the first equal one (inside a run).
    uint32_t from = 0;
    for (;;) {
      const uint32_t rest = (in_run ? ~mask : mask) & (0xffu << from) & 0xffu;
      if (rest == 0) break;
      const uint32_t bit = static_cast<uint32_t>(__builtin_ctz(rest));
      if (in_run) {
        end_run(at + bit);
      } else {
        start = at + bit;
        in_run = true;
      }
      from = bit;
    }
  }
  if (in_run) end_run((last + 1) * 8);
  return written;
}

// The diff of `page` against `twin` at `out` (kDiffBytesMax and 8 bytes of
// slack); returns its bytes. Three passes: the changed-byte mask of each
// group; clusters of groups (runs less than kMaskGapGroups unchanged groups
// apart) and their exact runs counted from the masks; each cluster written
// masked or exact, whichever is smaller. Eight masks at a time are skipped
// when all are unchanged (between clusters), counted when no cluster ends
// among them, and written as exact runs when all are wholly changed.
size_t EncodeDiff(const uint8_t* twin, const uint8_t* page, uint8_t* out) {
  alignas(8) uint8_t masks[kGroups];
  for (size_t group = 0; group < kGroups; group += 2) {
    uint64_t a0, b0, a1, b1;
    memcpy(&a0, twin + group * 8, 8);
    memcpy(&b0, page + group * 8, 8);
    memcpy(&a1, twin + group * 8 + 8, 8);
    memcpy(&b1, page + group * 8 + 8, 8);
    const uint64_t x0 = a0 ^ b0, x1 = a1 ^ b1;
    if ((x0 | x1) == 0) {
      masks[group] = 0;
      masks[group + 1] = 0;
      continue;
    }
    masks[group] = static_cast<uint8_t>(x0 == 0 ? 0 : DiffByteMask(x0));
    masks[group + 1] = static_cast<uint8_t>(x1 == 0 ? 0 : DiffByteMask(x1));
  }
  size_t written = 0;
  size_t group = 0;
  for (;;) {
    uint64_t eight;
    while (group + 8 <= kGroups && (memcpy(&eight, masks + group, 8), eight == 0)) group += 8;
    while (group < kGroups && masks[group] == 0) group += 1;
    if (group == kGroups) break;
    const size_t first = group;
    size_t last = group;
    size_t runs = 0;
    uint32_t previous = 0;  // the mask of the group before, 0 if unchanged
    while (group < kGroups) {
      if (group + 8 <= kGroups) {
        // Eight groups at once when no cluster ends among them: their run
        // starts are the set bits whose lower neighbour (across groups too:
        // the 64-bit shift) is clear.
        memcpy(&eight, masks + group, 8);
        if (eight == ~0ULL && previous == 0xffu) {  // a run goes on through them (a rewritten page)
          last = group + 7;
          group += 8;
          continue;
        }
        const uint32_t changed = DiffByteMask(eight);  // bit k: group + k changed
        const uint32_t unchanged = ~changed & 0xffu;
        const uint32_t leading = changed == 0 ? 8 : static_cast<uint32_t>(__builtin_ctz(changed));
        if ((unchanged & (unchanged >> 1) & (unchanged >> 2) & (unchanged >> 3)) == 0 && group + leading < last + 1 + kMaskGapGroups) {
          runs += BitsSet(eight & ~((eight << 1) | (previous >> 7)));
          previous = static_cast<uint32_t>(eight >> 56);
          last = group + 31 - static_cast<uint32_t>(__builtin_clz(changed));
          group += 8;
          continue;
        }
      }
      const uint32_t mask = masks[group];
      if (mask == 0) {
        if (group - last >= kMaskGapGroups) break;  // the next changed group starts a cluster
        previous = 0;
        group += 1;
        continue;
      }
      runs += BitsSet(mask & ~((mask << 1) | (previous >> 7)) & 0xffu);  // bytes that start a run
      previous = mask;
      last = group;
      group += 1;
    }
    if (4 + (last - first + 1) < 4 * runs) {
      written += EncodeMasked(masks, page, first, last, out + written);
    } else {
      written += EncodeExact(masks, page, first, last, out + written);
    }
  }
  return written;
}

void Flush(const FunctionCallbackInfo<Value>& args) {
  Isolate* isolate = args.GetIsolate();
  if (!RequireReady(isolate)) return;
  const uint32_t* pages;
  size_t count;
  if (!ReadPages(args, 0, &pages, &count)) return;
  Local<Context> context = isolate->GetCurrentContext();
  Local<Array> result = Array::New(isolate);
  // The diffs of one call are encoded back to back into `encoded` and handed
  // to JavaScript in one ArrayBuffer, each record's `diff` a view of its part:
  // one allocation a call, not one a page (a 256-page early flush made 256
  // ArrayBuffers, each zeroed, then filled by a copy). The views are read
  // (sent, applied) and dropped; none is transferred or detached.
  static thread_local uint8_t scratch[kDiffBytesMax + 8];  // EncodeDiff's 8 bytes of slack
  static thread_local std::vector<uint8_t> encoded;
  struct Made { uint32_t page; size_t offset; size_t length; };
  std::vector<Made> made;
  encoded.clear();
  std::vector<uint32_t> pages_copy(pages, pages + count);
  std::vector<uint8_t> states;
  // A run of consecutive pages (a release names them sorted) is locked in
  // ascending order, as ProtectRun does, and its writable twinned pages lose
  // write access in one mprotect per stretch, not one per page: an mprotect
  // that takes rights away costs a TLB shootdown (tens of µs on a virtual
  // machine), and a line release after a node's run of rows flushed 45-123
  // consecutive pages one mprotect each.
  size_t index = 0;
  while (index < count) {
    size_t run = 1;
    while (index + run < count && pages_copy[index + run] == pages_copy[index] + run) run += 1;
    const uint32_t first = pages_copy[index];
    states.assign(run, 0);
    for (size_t i = 0; i < run; i += 1) states[i] = LockPage(first + i);
    // Protect first: once mprotect returns no thread can store to the pages,
    // so the diffs below see every store and none is lost.
    for (size_t i = 0; i < run;) {
      if ((states[i] & kHasTwin) == 0 || (states[i] & kProtMask) != kProtReadWrite) { i += 1; continue; }
      size_t stretch = 1;
      while (i + stretch < run && (states[i + stretch] & kHasTwin) != 0 && (states[i + stretch] & kProtMask) == kProtReadWrite) stretch += 1;
      mprotect(g_region.app + (static_cast<size_t>(first + i) << kPageShift), stretch << kPageShift, PROT_READ);
      i += stretch;
    }
    for (size_t i = 0; i < run; i += 1) {
      const uint32_t page = first + static_cast<uint32_t>(i);
      const uint8_t state = states[i];
      if ((state & kHasTwin) == 0) {
        UnlockPage(page, state);
        continue;
      }
      const size_t at = encoded.size();
      uint8_t prot = (state & kProtMask) == kProtReadWrite ? kProtRead : (state & kProtMask);
      // Through the app view where the page is readable (this thread holds its lock): the threads that wrote
      // it mapped it there, where the manager view may never have been.
      const size_t length = EncodeDiff(TwinOf(page), ReadView(page, prot), scratch);
      encoded.insert(encoded.end(), scratch, scratch + length);
      DropTwin(page);
      UnlockPage(page, static_cast<uint8_t>((state & ~(kProtMask | kHasTwin)) | prot));
      made.push_back({page, at, length});
    }
    index += run;
  }
  Local<v8::ArrayBuffer> bytes = v8::ArrayBuffer::New(isolate, encoded.size());
  if (!encoded.empty()) memcpy(bytes->Data(), encoded.data(), encoded.size());
  // Property names made once a call (each NewFromUtf8Literal looks the name up in V8's string table).
  Local<v8::String> page_key = v8::String::NewFromUtf8Literal(isolate, "page");
  Local<v8::String> diff_key = v8::String::NewFromUtf8Literal(isolate, "diff");
  for (uint32_t k = 0; k < made.size(); k += 1) {
    Local<Object> entry = Object::New(isolate);
    entry->Set(context, page_key, Number::New(isolate, made[k].page)).Check();
    entry->Set(context, diff_key, v8::Uint8Array::New(bytes, made[k].offset, made[k].length)).Check();
    result->Set(context, k, entry).Check();
  }
  // A flush of a whole dirty set can encode megabytes: do not keep that much per thread.
  if (encoded.capacity() > (static_cast<size_t>(1) << 22)) std::vector<uint8_t>().swap(encoded);
  args.GetReturnValue().Set(result);
}

// Copies `length` bytes, sizeof(Word) <= length <= 2 * sizeof(Word), as two
// overlapping word copies (the head and the tail): no byte outside the range.
template <typename Word>
inline void CopyHeadTail(uint8_t* to, const uint8_t* from, size_t length) {
  Word head, tail;
  memcpy(&head, from, sizeof(Word));
  memcpy(&tail, from + length - sizeof(Word), sizeof(Word));
  memcpy(to, &head, sizeof(Word));
  memcpy(to + length - sizeof(Word), &tail, sizeof(Word));
}

// Copies one run of a diff. Most runs are short (QuickSort's half-rewritten
// pages: runs of 4-16 bytes, ~290 a page), where a call to memcpy costs more
// than the bytes: up to 16 bytes go as two overlapping word copies.
inline void CopyRun(uint8_t* to, const uint8_t* from, size_t length) {
  if (length >= 8 && length <= 16) {
    CopyHeadTail<uint64_t>(to, from, length);
  } else if (length >= 4 && length < 8) {
    CopyHeadTail<uint32_t>(to, from, length);
  } else {
    memcpy(to, from, length);
  }
}

// Copies 1-7 bytes of a masked run's group, exactly those bytes: two
// overlapping copies of 4 or 2 bytes within the stretch, or one byte.
inline void CopyStretch(uint8_t* to, const uint8_t* from, uint32_t length) {
  if (length >= 4) {
    CopyHeadTail<uint32_t>(to, from, length);
  } else if (length >= 2) {
    CopyHeadTail<uint16_t>(to, from, length);
  } else {
    *to = *from;
  }
}

bool PwriteInstalls();
bool PwriteAll(const uint8_t* data, size_t bytes, size_t offset, size_t* done);
// Diffs applied through the region's memfd (ApplyDiff): stats().diffPwrites.
std::atomic<uint64_t> g_diff_pwrites{0};

// applyDiff(page, diff): writes a diff's runs into the page (EncodeDiff's format), whatever its protection. A
// page the manager view never mapped (a home's page: its threads wrote it through the app view) costs a fault
// and, with shadow page tables, a trip through the hypervisor at the first touch there (10-11 µs a page on the
// 2-vCPU VM, against 1.8 µs for a 4 KiB pwrite and 0.17 µs for a memcpy once mapped: session 29). So a diff of
// at most kDiffPwriteRunsMax plain runs (a page rewritten whole, or in a few stretches) goes through the memfd,
// one pwrite a run, for the page's first kDiffPwriteCountMax diffs; after them, or for any other diff, through
// the manager view, which then stays mapped. Each run is exactly its bytes either way, so stores of the node's
// threads to other bytes of the page meanwhile are kept.
void ApplyDiff(const FunctionCallbackInfo<Value>& args) {
  Isolate* isolate = args.GetIsolate();
  if (!RequireReady(isolate)) return;
  uint64_t page;
  uint8_t* diff;
  size_t length;
  if (!ReadPage(args, 0, &page) || !ReadBytes(args, 1, &diff, &length)) return;
  uint8_t* target = g_region.manager + (page << kPageShift);
  size_t at = 0;
  // Validate the whole diff before writing any of it (EncodeDiff gives the format).
  while (at < length) {
    uint16_t offset, word;
    if (at + 4 > length) break;
    memcpy(&offset, diff + at, 2);
    memcpy(&word, diff + at + 2, 2);
    if ((word & kMaskedRunFlag) == 0) {
      if (static_cast<size_t>(offset) + word > kPageBytes || at + 4 + word > length) break;
      at += 4 + word;
      continue;
    }
    const size_t groups = word & ~kMaskedRunFlag;
    if (groups == 0 || offset % 8 != 0 || static_cast<size_t>(offset) + groups * 8 > kPageBytes || at + 4 + groups > length) break;
    const uint8_t* masks = diff + at + 4;
    size_t changed = 0;
    size_t g = 0;
    for (; g + 8 <= groups; g += 8) {
      uint64_t eight;
      memcpy(&eight, masks + g, 8);
      changed += BitsSet(eight);
    }
    for (; g < groups; g += 1) changed += BitsSet(masks[g]);
    if (at + 4 + groups + changed > length) break;
    at += 4 + groups + changed;
  }
  if (at != length) {
    Throw(isolate, DSM_ERR_FRAME, "dsm native: a malformed diff (a run leaves the page or the buffer)");
    return;
  }
  uint8_t* pwrites = g_region.diff_pwrites;
  if (pwrites != nullptr && pwrites[page] < kDiffPwriteCountMax && PwriteInstalls()) {
    // Plain runs only, and few of them.
    size_t runs = 0;
    bool plain = true;
    for (at = 0; at < length && plain && runs <= kDiffPwriteRunsMax; runs += 1) {
      uint16_t word;
      memcpy(&word, diff + at + 2, 2);
      if ((word & kMaskedRunFlag) != 0) plain = false;
      at += 4 + word;
    }
    if (plain && runs <= kDiffPwriteRunsMax) {
      for (at = 0; at < length;) {
        uint16_t offset, word;
        memcpy(&offset, diff + at, 2);
        memcpy(&word, diff + at + 2, 2);
        size_t done = 0;
        if (word > 0 && !PwriteAll(diff + at + 4, word, (page << kPageShift) + offset, &done)) {
          // Should the file refuse: the rest of the run through the manager view.
          memcpy(target + offset + done, diff + at + 4 + done, word - done);
        }
        at += 4 + word;
      }
      pwrites[page] += 1;
      g_diff_pwrites.fetch_add(1, std::memory_order_relaxed);
      return;
    }
  }
  if (pwrites != nullptr) pwrites[page] = kDiffPwriteCountMax;
  at = 0;
  while (at < length) {
    uint16_t offset, word;
    memcpy(&offset, diff + at, 2);
    memcpy(&word, diff + at + 2, 2);
    at += 4;
    if ((word & kMaskedRunFlag) == 0) {
      CopyRun(target + offset, diff + at, word);
      at += word;
      continue;
    }
    uint8_t* to = target + offset;
    const size_t groups = word & ~kMaskedRunFlag;
    const uint8_t* masks = diff + at;
    at += groups;
    for (size_t g = 0; g < groups; g += 1, to += 8) {
      uint32_t mask = masks[g];
      if (mask == 0xffu) {
        memcpy(to, diff + at, 8);
        at += 8;
        continue;
      }
      // A stretch of set bits at a time, each exactly its bytes (CopyStretch).
      while (mask != 0) {
        const uint32_t start = static_cast<uint32_t>(__builtin_ctz(mask));
        const uint32_t stretch = static_cast<uint32_t>(__builtin_ctz(~(mask >> start)));
        CopyStretch(to + start, diff + at, stretch);
        at += stretch;
        mask &= ~(((1u << stretch) - 1) << start);
      }
    }
  }
}

void DrainDirty(const FunctionCallbackInfo<Value>& args) {
  args.GetReturnValue().Set(g_dirty_ring.Drain(args.GetIsolate()));
}

// Pages whose read-ahead copy the handler made readable since the last call (TryFastTouch), in touch order.
void DrainTouched(const FunctionCallbackInfo<Value>& args) {
  args.GetReturnValue().Set(g_touch_ring.Drain(args.GetIsolate()));
}

// Pages readPage copied through the app view (CopyPage): stats().appViewCopies.
std::atomic<uint64_t> g_app_view_copies{0};

// A page copy's arguments (page, a buffer of one page), checked; false (with a JS exception) when not.
bool ReadPageCopyArgs(const FunctionCallbackInfo<Value>& args, uint64_t* page, uint8_t** data) {
  Isolate* isolate = args.GetIsolate();
  if (!RequireReady(isolate)) return false;
  size_t length;
  if (!ReadPage(args, 0, page) || !ReadBytes(args, 1, data, &length)) return false;
  if (length != kPageBytes) {
    Throw(isolate, DSM_ERR_INTERNAL, "dsm native: a page buffer must be " + std::to_string(kPageBytes) + " bytes");
    return false;
  }
  return true;
}

// readPage(page, bytes): copies the page out. Through the app view where it is readable (session 25): there the
// page is mapped already when this node's threads touched it (a home serving pages its threads wrote), where the
// manager view maps each page afresh at its first copy: a page fault and, on a virtual machine with shadow page
// tables, a trip through the hypervisor (5-6 µs a page on the 2-vCPU VM; a home serving a 64 MiB stream paid it
// per page). Only this thread (the manager's) takes protections away, so a page readable now stays readable
// during the copy; the fast path only upgrades (ReadView). (Installs: InstallRun below.)
// Whether a page holds only zeros, read as ReadPageInto reads it (src/protocol/hlrc.ts: an own page upgraded
// ahead of a write stream and still all zeros at its interval's close was not changed).
void IsZeroPage(const FunctionCallbackInfo<Value>& args) {
  Isolate* isolate = args.GetIsolate();
  if (!RequireReady(isolate)) return;
  uint64_t page;
  if (!ReadIndex(args, 0, &page)) return;
  if (page >= g_region.page_count) {
    Throw(isolate, DSM_ERR_INTERNAL, "dsm native: isZeroPage past the region");
    return;
  }
  HoleScan holes;
  args.GetReturnValue().Set(PageHoldsZeros(page, ReadView(page, ProtOf(page)), &holes));
}

void ReadPageInto(const FunctionCallbackInfo<Value>& args) {
  uint64_t page;
  uint8_t* data;
  if (!ReadPageCopyArgs(args, &page, &data)) return;
  const uint8_t* view = ReadView(page, ProtOf(page));
  if (view != g_region.manager + (page << kPageShift)) g_app_view_copies.fetch_add(1, std::memory_order_relaxed);
  memcpy(data, view, kPageBytes);
}

// Installs through the region's memfd (session 26): pwrite copies into the
// shared page itself through the kernel's own mapping, so the manager view is
// never touched. A page this node never held was mapped afresh in the manager
// view at its install's memcpy: a page fault, an allocation, a zeroing and, on
// a virtual machine with shadow page tables, a trip through the hypervisor
// (12-17 µs a page on the 2-vCPU VM, 6.6-9.9 µs with the prefault helper's
// populate before it, which cost as much CPU again on another thread), against
// 1.0-1.3 µs for the pwrite (0.6 µs for a page held before, where the memcpy
// is 0.2). The copy is the same copy as memcpy's (no atomicity either way),
// into the same physical page the app view maps. DSM_PWRITE_INSTALL=0 turns it
// off (to compare); one node's region (anonymous) has no memfd.
std::atomic<bool> g_pwrite_installs{true};
std::atomic<uint64_t> g_pwrite_installed{0};

bool PwriteInstalls() { return g_region.memfd >= 0 && g_pwrite_installs.load(std::memory_order_relaxed); }

// Writes `bytes` bytes into the region's memfd at `offset` (pwrite, retried where it wrote part); false where the
// file refused (it never has), with *done the bytes written.
bool PwriteAll(const uint8_t* data, size_t bytes, size_t offset, size_t* done) {
  *done = 0;
  while (*done < bytes) {
    const ssize_t wrote = pwrite(g_region.memfd, data + *done, bytes - *done, static_cast<off_t>(offset + *done));
    if (wrote > 0) {
      *done += static_cast<size_t>(wrote);
      continue;
    }
    if (wrote < 0 && errno == EINTR) continue;
    return false;
  }
  return true;
}

// Installs `count` pages from `first` (their copies one after another in `data`): a page installed before is
// installed again through the manager view (a memcpy, mapped there at its second install), and each run of pages
// installed for the first time is one pwrite (session 27: a 256-page window's copies in one system call, 0.7-0.8
// µs a page on the 2-vCPU VM against 2.75 µs for a pwrite a page). Without pwrite installs: memcpy through the
// manager view. The caller (the manager thread) checked the range.
void InstallRun(size_t first, size_t count, const uint8_t* data) {
  if (!PwriteInstalls()) {
    memcpy(g_region.manager + (first << kPageShift), data, count << kPageShift);
    return;
  }
  uint8_t* installed = g_region.installed;  // null (its map failed): every install a pwrite
  size_t k = 0;
  while (k < count) {
    const size_t page = first + k;
    if (installed != nullptr && installed[page] != 0) {
      memcpy(g_region.manager + (page << kPageShift), data + (k << kPageShift), kPageBytes);
      k++;
      continue;
    }
    size_t run = 1;
    while (k + run < count && (installed == nullptr || installed[page + run] == 0)) run++;
    if (installed != nullptr) memset(installed + page, 1, run);
    size_t done = 0;
    const uint8_t* from = data + (k << kPageShift);
    if (!PwriteAll(from, run << kPageShift, page << kPageShift, &done)) {
      // Should the file refuse: the rest through the manager view, as before.
      memcpy(g_region.manager + (page << kPageShift) + done, from + done, (run << kPageShift) - done);
    }
    g_pwrite_installed.fetch_add(done >> kPageShift, std::memory_order_relaxed);
    k += run;
  }
}

// writePage(page, bytes): installs one page's copy (InstallRun). A page installed before is installed again (a
// boundary page pushed at every barrier): through the manager view, mapped there at its second install once, then
// a plain memcpy (0.2 µs, where a pwrite is a system call: 0.6 µs idle, several under load). A first install (a
// stream of pages read once) is a pwrite.
void WritePageFrom(const FunctionCallbackInfo<Value>& args) {
  uint64_t page;
  uint8_t* data;
  if (!ReadPageCopyArgs(args, &page, &data)) return;
  InstallRun(page, 1, data);
}

// writePages(first, bytes): installs the pages from `first` whose copies `bytes` holds one after another (a
// whole number of pages, within the region), as writePage installs each.
void WritePagesFrom(const FunctionCallbackInfo<Value>& args) {
  Isolate* isolate = args.GetIsolate();
  if (!RequireReady(isolate)) return;
  uint64_t first;
  uint8_t* data;
  size_t length;
  if (!ReadPage(args, 0, &first) || !ReadBytes(args, 1, &data, &length)) return;
  if (length == 0 || length % kPageBytes != 0 || first + length / kPageBytes > g_region.page_count) {
    Throw(isolate, DSM_ERR_INTERNAL, "dsm native: writePages needs whole pages within the region");
    return;
  }
  InstallRun(first, length / kPageBytes, data);
}

void SetPwriteInstalls(const FunctionCallbackInfo<Value>& args) {
  g_pwrite_installs.store(args.Length() > 0 && args[0]->IsTrue(), std::memory_order_relaxed);
}

void Zero(const FunctionCallbackInfo<Value>& args) {
  if (!RequireReady(args.GetIsolate())) return;
  uint64_t offset, length;
  if (!ReadIndex(args, 0, &offset) || !ReadIndex(args, 1, &length)) return;
  if (offset + length > g_region.bytes) {
    Throw(args.GetIsolate(), DSM_ERR_INTERNAL, "dsm native: range outside the region");
    return;
  }
  memset(g_region.manager + offset, 0, length);
}

// Makes the manager view's pages resident (MADV_POPULATE_WRITE, one call per
// run of consecutive pages) while a fetch's request is out, so that installing
// the reply's copies takes no page fault. A fresh shared page costs a fault, an
// allocation and a zeroing on first touch (~3 µs on the VM, 9.7 µs p50 of a
// one-page install in place). Contents are unchanged (the advice faults pages
// in, it writes nothing), so it may race with anything: a copy written
// meanwhile, a range released. Best effort: where the kernel lacks the advice
// nothing happens and the copies fault in as before. One node's region
// (anonymous, the app view itself) never fetches.
//
// prefault(page, rest): `page` (the one a thread waits for) here and now, ~3 µs
// of time the manager would spend waiting for the reply; `rest` (a window's
// other pages, ascending) by a helper thread, as runs: a 256-page window took
// the manager 0.65-1.4 ms done here, time in which it served nothing else.
struct PrefaultRun {
  uint64_t first;
  uint64_t count;
};
// Never destroyed: the helper thread waits on them until the process ends, and destroying a
// condition variable with a waiter blocks (glibc), which hung the process's exit.
std::mutex& g_prefault_mutex = *new std::mutex;
std::condition_variable& g_prefault_wake = *new std::condition_variable;
PrefaultRun g_prefault_runs[kPrefaultQueueRunCountMax];
size_t g_prefault_head = 0;
size_t g_prefault_size = 0;
bool g_prefault_started = false;
std::atomic<uint64_t> g_prefaulted_pages{0};
std::atomic<uint64_t> g_prefault_dropped_runs{0};

// In calls of at most kPrefaultChunkPages: each holds the process's mmap lock (for reading) while
// it populates, and an mprotect (the manager's, an app thread's fault handler's) waits for it to end.
void PopulateRun(uint64_t first, uint64_t count) {
  for (uint64_t done = 0; done < count; done += kPrefaultChunkPages) {
    const uint64_t chunk = std::min<uint64_t>(kPrefaultChunkPages, count - done);
    madvise(g_region.manager + ((first + done) << kPageShift), chunk << kPageShift, kMadvPopulateWrite);
  }
  g_prefaulted_pages.fetch_add(count, std::memory_order_relaxed);
}

void PrefaultLoop() {
  for (;;) {
    PrefaultRun run;
    {
      std::unique_lock<std::mutex> lock(g_prefault_mutex);
      g_prefault_wake.wait(lock, [] { return g_prefault_size > 0; });
      run = g_prefault_runs[g_prefault_head];
      g_prefault_head = (g_prefault_head + 1) % kPrefaultQueueRunCountMax;
      g_prefault_size -= 1;
    }
    PopulateRun(run.first, run.count);
  }
}

// The threads parked on `page` (slots being served) learn that its fetch went to the network: they stop
// spinning and sleep (ParkUntilServed). A remote page takes a round trip and more (150-300 µs on the 2-vCPU
// VM), far past the spin's kParkSpinUsMax, so the spin could only take a CPU from the managers serving it.
void MarkRemote(uint64_t page) {
  const uint32_t used = g_slots_used.load(std::memory_order_acquire);
  for (uint32_t index = 0; index < used; index += 1) {
    FaultSlot& slot = g_slots[index];
    if (slot.state.load(std::memory_order_acquire) == kSlotServing && slot.page == page) slot.remote.store(1, std::memory_order_relaxed);
  }
}

// prewake(page): the reply for `page` reached its manager, which installs it now (a few µs: the copy written,
// the protection set) and then resumes the threads parked on it. A thread asleep on its futex takes ~15-20 µs
// to run again once woken (on the 2-vCPU VM); woken now, it spins (ParkUntilServed, at most kParkSpinUsMax)
// while the manager installs, and sees the resume at once. Threads still spinning are left alone. `remote` is
// cleared before the futex word is set back to waiting, so the woken thread's spin does not end at once.
std::atomic<uint64_t> g_prewakes{0};

void Prewake(const FunctionCallbackInfo<Value>& args) {
  uint64_t page;
  if (!ReadIndex(args, 0, &page)) return;
  const uint32_t used = g_slots_used.load(std::memory_order_acquire);
  for (uint32_t index = 0; index < used; index += 1) {
    FaultSlot& slot = g_slots[index];
    if (slot.state.load(std::memory_order_acquire) != kSlotServing || slot.page != page) continue;
    if (slot.futex.load(std::memory_order_acquire) != kParkSleeping) continue;
    slot.remote.store(0, std::memory_order_relaxed);
    uint32_t sleeping = kParkSleeping;
    if (slot.futex.compare_exchange_strong(sleeping, kParkWaiting, std::memory_order_acq_rel)) {
      Futex(&slot.futex, FUTEX_WAKE_PRIVATE, 1);
      g_prewakes.fetch_add(1, std::memory_order_relaxed);
    }
  }
}

void Prefault(const FunctionCallbackInfo<Value>& args) {
  if (!RequireReady(args.GetIsolate())) return;
  uint64_t page;
  const uint32_t* pages;
  size_t count;
  if (!ReadPage(args, 0, &page) || !ReadPages(args, 1, &pages, &count)) return;
  if (g_region.manager == g_region.app) return;
  MarkRemote(page);
  // Installs that pwrite never touch the manager view: making it resident would only add a fault per page.
  if (PwriteInstalls()) return;
  PopulateRun(page, 1);
  if (count == 0) return;
  bool queued = false;
  {
    std::lock_guard<std::mutex> lock(g_prefault_mutex);
    if (!g_prefault_started) {
      // Lives as long as the process, asleep when there is nothing to do.
      std::thread(PrefaultLoop).detach();
      g_prefault_started = true;
    }
    size_t index = 0;
    while (index < count) {
      const uint64_t first = pages[index];
      uint64_t run = 1;
      while (index + run < count && pages[index + run] == first + run) run += 1;
      index += run;
      // A full queue drops the run: the copies then fault in as they are written (the queue's limit bounds it).
      if (g_prefault_size == kPrefaultQueueRunCountMax) {
        g_prefault_dropped_runs.fetch_add(1, std::memory_order_relaxed);
        continue;
      }
      g_prefault_runs[(g_prefault_head + g_prefault_size) % kPrefaultQueueRunCountMax] = PrefaultRun{first, run};
      g_prefault_size += 1;
      queued = true;
    }
  }
  if (queued) g_prefault_wake.notify_one();
}

void Release(const FunctionCallbackInfo<Value>& args) {
  if (!RequireReady(args.GetIsolate())) return;
  uint64_t first, count;
  if (!ReadPage(args, 0, &first) || !ReadIndex(args, 1, &count)) return;
  if (first + count > g_region.page_count) {
    Throw(args.GetIsolate(), DSM_ERR_INTERNAL, "dsm native: page range outside the region");
    return;
  }
  if (g_region.memfd < 0) {
    // The anonymous one-node region: dropped pages read as zero again.
    madvise(g_region.app + (first << kPageShift), count << kPageShift, MADV_DONTNEED);
    return;
  }
  fallocate(g_region.memfd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, static_cast<off_t>(first << kPageShift),
            static_cast<off_t>(count << kPageShift));
}

// ---- the fault service ----------------------------------------------------------------

void InstallHandler(const FunctionCallbackInfo<Value>& args) {
  if (g_handler_installed.exchange(true)) return;
  struct sigaction action;
  memset(&action, 0, sizeof action);
  action.sa_sigaction = OnSegv;
  action.sa_flags = SA_SIGINFO | SA_ONSTACK | SA_RESTART;
  sigemptyset(&action.sa_mask);
  if (sigaction(SIGSEGV, &action, &g_previous_action) != 0) {
    g_handler_installed.store(false);
    Throw(args.GetIsolate(), DSM_ERR_PLATFORM, std::string("dsm native: sigaction failed: ") + strerror(errno));
  }
}

void CallManager(Local<Function> callback, int argc, Local<Value>* argv) {
  Isolate* isolate = g_manager_isolate;
  Local<Context> context = g_manager_context.Get(isolate);
  node::MakeCallback(isolate, context->Global(), callback, argc, argv, {0, 0});
}

// Faults taken by the manager (OnWake): activity for its poll (OnPreparePoll, below).
std::atomic<uint32_t> g_poll_activity{0};

void OnWake(uv_async_t* handle) {
  g_poll_activity.fetch_add(1, std::memory_order_relaxed);
  Isolate* isolate = g_manager_isolate;
  HandleScope scope(isolate);
  Local<Context> context = g_manager_context.Get(isolate);
  Context::Scope context_scope(context);

  std::vector<std::pair<uint64_t, uint64_t>> freed;
  {
    std::lock_guard<std::mutex> lock(g_freed_mutex);
    freed.swap(g_freed);
    g_freed_counts.clear();
  }
  if (!freed.empty() && !g_on_freed.IsEmpty()) {
    Local<Function> on_freed = g_on_freed.Get(isolate);
    for (auto& range : freed) {
      Local<Value> argv[2] = {Number::New(isolate, static_cast<double>(range.first)),
                              Number::New(isolate, static_cast<double>(range.second))};
      CallManager(on_freed, 2, argv);
    }
  }

  // A plain load first: a compare-exchange is a locked instruction even where it fails, and one per slot
  // (1024) cost the manager ~7 µs a fault (perf, 2-node page fetch).
  std::vector<uint32_t> records;
  const uint32_t used = g_slots_used.load(std::memory_order_acquire);
  for (uint32_t index = 0; index < used; index += 1) {
    if (g_slots[index].state.load(std::memory_order_relaxed) != kSlotPending) continue;
    uint32_t expected = kSlotPending;
    if (g_slots[index].state.compare_exchange_strong(expected, kSlotServing, std::memory_order_acq_rel)) {
      records.push_back(index);
      records.push_back(g_slots[index].page);
      records.push_back(g_slots[index].flags);
    }
  }
  if (g_on_faults.IsEmpty()) return;
  // Touches of read-ahead copies alone (TryFastTouch) call the engine too, with no fault records.
  if (records.empty() && g_touch_ring.Empty()) return;
  Local<v8::ArrayBuffer> buffer = v8::ArrayBuffer::New(isolate, records.size() * 4);
  memcpy(buffer->Data(), records.data(), records.size() * 4);
  Local<Value> argv[1] = {v8::Uint32Array::New(buffer, 0, records.size())};
  CallManager(g_on_faults.Get(isolate), 1, argv);
}

void OnManagerCleanup(void*);

// Hands the freed ranges queued so far to the caller at once (flat
// [offset, byteLength, ...]), without waiting for the wake-up to run.
void DrainFreed(const FunctionCallbackInfo<Value>& args) {
  std::vector<std::pair<uint64_t, uint64_t>> freed;
  {
    std::lock_guard<std::mutex> lock(g_freed_mutex);
    freed.swap(g_freed);
    g_freed_counts.clear();
  }
  Isolate* isolate = args.GetIsolate();
  Local<v8::ArrayBuffer> buffer = v8::ArrayBuffer::New(isolate, freed.size() * 16);
  auto* out = static_cast<double*>(buffer->Data());
  for (size_t i = 0; i < freed.size(); i += 1) {
    out[2 * i] = static_cast<double>(freed[i].first);
    out[2 * i + 1] = static_cast<double>(freed[i].second);
  }
  args.GetReturnValue().Set(v8::Float64Array::New(buffer, 0, freed.size() * 2));
}

// The manager's poll before its loop sleeps (setManagerPoll). On a virtual machine an idle vCPU halts, and an
// event for a manager asleep in epoll (a reply from another node, a fault, a doorbell ring) must wake it: tens of
// µs each time, two or more times in every remote fault or synchronization. A manager that polls instead sees
// the event at once. It polls:
// - while an app thread of this node waits for it (a fault being served, or a doorbell call: the doorbell
//   addon counts its parked threads in the gate's word 0), up to g_poll_ns: the answer is usually a round trip
//   away, and the thread waits for it anyway;
// - after a turn of the loop that saw activity (a socket read or a doorbell ring bumps the gate's word 1; a
//   fault wakes OnWake, which counts in g_poll_activity), up to g_linger_ns: more often follows at once (the
//   next request of a burst, the next fault of a scan).
// It polls the loop's own epoll descriptor (readable when any event is ready) and yields the CPU between looks,
// so a runnable thread of this CPU (an app thread that computes) goes first; it stops at its limit, at the
// loop's next timer, when the waiting thread is answered, or when a yield kept it off the CPU for
// kParkYieldContendedUs (the CPU is shared: sleep, and be woken, rather than come back a time slice late).
std::atomic<int64_t> g_poll_ns{0};
std::atomic<int64_t> g_linger_ns{0};
std::atomic<uint64_t> g_poll_hits{0};
std::atomic<uint64_t> g_poll_misses{0};
std::atomic<uint64_t> g_poll_skips{0};
std::atomic<int32_t>* g_poll_gate = nullptr;  // [0] threads parked in a doorbell call, [1] activity
// Never destroyed (as g_prefault_mutex): a BackingStore freed by a static destructor at exit would run after V8 is gone.
std::shared_ptr<v8::BackingStore>& g_poll_gate_store = *new std::shared_ptr<v8::BackingStore>;
uv_prepare_t* g_poll_prepare = nullptr;
uint32_t g_poll_activity_seen = 0;  // the manager's thread only

bool AppThreadWaits() {
  if (g_poll_gate != nullptr && g_poll_gate[0].load(std::memory_order_relaxed) > 0) return true;
  const uint32_t used = g_slots_used.load(std::memory_order_acquire);
  for (uint32_t index = 0; index < used; index += 1) {
    const uint32_t state = g_slots[index].state.load(std::memory_order_relaxed);
    if (state == kSlotPending || state == kSlotServing) return true;
  }
  return false;
}

uint32_t PollActivity() {
  const uint32_t gate = g_poll_gate != nullptr ? static_cast<uint32_t>(g_poll_gate[1].load(std::memory_order_relaxed)) : 0;
  return gate + g_poll_activity.load(std::memory_order_relaxed);
}

int64_t g_poll_wait_since_ns = 0;  // the manager's thread only: when its threads began to wait (0: none waits)
int g_loadavg_fd = -2;              // the manager's thread only: /proc/loadavg, open (-1: not readable here)
long g_cpu_count = 0;

// Whether a CPU of this machine is idle (so polling takes no thread's time): the runnable tasks now, the 4th field
// of /proc/loadavg ("running/total", the reader itself counted), fewer than the CPUs this process may use plus one.
// Where it cannot be read, true (the yields still hand the CPU to whoever needs it).
bool IdleCpuNow() {
  if (g_loadavg_fd == -2) {
    g_loadavg_fd = open("/proc/loadavg", O_RDONLY | O_CLOEXEC);
    cpu_set_t set;
    CPU_ZERO(&set);
    g_cpu_count = sched_getaffinity(0, sizeof set, &set) == 0 ? CPU_COUNT(&set) : sysconf(_SC_NPROCESSORS_ONLN);
  }
  if (g_loadavg_fd < 0 || g_cpu_count <= 0) return true;
  char text[128];
  const ssize_t length = pread(g_loadavg_fd, text, sizeof text - 1, 0);
  if (length <= 0) return true;
  text[length] = 0;
  // "0.70 1.95 2.63 3/412 12345": the field after the third space, up to '/'.
  const char* at = text;
  for (int spaces = 0; spaces < 3 && at != nullptr; spaces++) {
    at = strchr(at, ' ');
    if (at != nullptr) at++;
  }
  if (at == nullptr) return true;
  const long running = strtol(at, nullptr, 10);
  return running <= g_cpu_count + 1;
}

void OnPreparePoll(uv_prepare_t* handle) {
  const bool waits = AppThreadWaits();
  const uint32_t activity = PollActivity();
  const bool active = activity != g_poll_activity_seen;
  g_poll_activity_seen = activity;
  int64_t now = MonotonicNs();
  if (!waits) g_poll_wait_since_ns = 0;
  else if (g_poll_wait_since_ns == 0) g_poll_wait_since_ns = now;
  // A wait older than kManagerPollFreshUs is not a round trip (a lock held elsewhere, a long barrier, an
  // Atomics.wait with no notify): the manager polls then only after activity, not at every timer of its loop.
  const bool fresh = waits && now - g_poll_wait_since_ns < kManagerPollFreshUs * 1000;
  const int64_t limit_ns = fresh ? g_poll_ns.load(std::memory_order_relaxed) : active ? g_linger_ns.load(std::memory_order_relaxed) : 0;
  if (limit_ns <= 0) return;
  uv_loop_t* loop = handle->loop;
  const int timeout_ms = uv_backend_timeout(loop);
  if (timeout_ms == 0) return;  // the loop will not sleep anyway
  // Every CPU busy (threads of this node or others compute): polling would take a CPU from one of them.
  if (!IdleCpuNow()) {
    g_poll_skips.fetch_add(1, std::memory_order_relaxed);
    return;
  }
  struct pollfd poll_fd;
  poll_fd.fd = uv_backend_fd(loop);
  poll_fd.events = POLLIN;
  poll_fd.revents = 0;
  int64_t deadline = now + limit_ns;
  if (timeout_ms > 0) deadline = std::min(deadline, now + int64_t{timeout_ms} * 1000000);
  for (uint32_t look = 1; now < deadline; look++) {
    if (poll(&poll_fd, 1, 0) > 0) {
      g_poll_hits.fetch_add(1, std::memory_order_relaxed);
      return;
    }
    if (look % 8 == 0 && !IdleCpuNow()) break;  // a thread began to compute meanwhile
    sched_yield();
    const int64_t before = now;
    now = MonotonicNs();
    if (now - before >= kParkYieldContendedUs * 1000) break;
    if (fresh && !AppThreadWaits()) break;  // answered (by a resume from another thread): nobody waits now
  }
  g_poll_misses.fetch_add(1, std::memory_order_relaxed);
}

void StartFaultService(const FunctionCallbackInfo<Value>& args) {
  Isolate* isolate = args.GetIsolate();
  if (args.Length() < 1 || !args[0]->IsFunction()) {
    Throw(isolate, DSM_ERR_INTERNAL, "dsm native: startFaultService needs a callback");
    return;
  }
  if (g_wake.load() != nullptr) {
    Throw(isolate, DSM_ERR_INTERNAL, "dsm native: the fault service is already running");
    return;
  }
  g_manager_isolate = isolate;
  g_manager_tid.store(syscall(SYS_gettid), std::memory_order_relaxed);
  g_manager_context.Reset(isolate, isolate->GetCurrentContext());
  g_on_faults.Reset(isolate, args[0].As<Function>());
  auto* wake = new uv_async_t;
  uv_async_init(node::GetCurrentEventLoop(isolate), wake, OnWake);
  // Parked threads are resumed from JavaScript, which keeps its own handles
  // alive; the wake-up itself must not keep the process running.
  uv_unref(reinterpret_cast<uv_handle_t*>(wake));
  g_wake.store(wake, std::memory_order_release);
  static bool cleanup_registered = false;
  if (!cleanup_registered) {
    cleanup_registered = true;
    node::AddEnvironmentCleanupHook(isolate, OnManagerCleanup, nullptr);
  }
  uv_async_send(wake);  // serve faults that arrived before the service started
}

void CloseWake() {
  if (g_poll_prepare != nullptr) {
    uv_close(reinterpret_cast<uv_handle_t*>(g_poll_prepare), [](uv_handle_t* handle) { delete reinterpret_cast<uv_prepare_t*>(handle); });
    g_poll_prepare = nullptr;
  }
  uv_async_t* wake = g_wake.exchange(nullptr, std::memory_order_acq_rel);
  g_on_faults.Reset();
  g_on_freed.Reset();
  g_manager_context.Reset();
  if (wake != nullptr) {
    uv_close(reinterpret_cast<uv_handle_t*>(wake), [](uv_handle_t* handle) { delete reinterpret_cast<uv_async_t*>(handle); });
  }
}

// Runs when the manager's environment ends, before its loop closes: backing
// stores freed during teardown must not signal a handle that is gone.
void OnManagerCleanup(void*) { CloseWake(); }

void StopFaultService(const FunctionCallbackInfo<Value>& args) {
  // Threads parked in a fault would never wake after this; the caller stops
  // the service only when no app thread runs.
  CloseWake();
}

void OnBackingStoreFreed(const FunctionCallbackInfo<Value>& args) {
  if (args.Length() < 1 || !args[0]->IsFunction()) {
    Throw(args.GetIsolate(), DSM_ERR_INTERNAL, "dsm native: onBackingStoreFreed needs a callback");
    return;
  }
  g_on_freed.Reset(args.GetIsolate(), args[0].As<Function>());
}

// setParkYield(us): how long a parked thread polls before it sleeps (process-wide; the manager sets it at start).
void SetParkYield(const FunctionCallbackInfo<Value>& args) {
  uint64_t micros;
  if (!ReadIndex(args, 0, &micros)) return;
  if (micros > 1000000) {
    Throw(args.GetIsolate(), DSM_ERR_INTERNAL, "dsm native: a park poll of at most a second");
    return;
  }
  g_park_yield_ns.store(static_cast<int64_t>(micros) * 1000, std::memory_order_relaxed);
}

// setManagerPoll(pollUs, lingerUs, gate): how long the manager polls before its loop sleeps while an app thread
// waits for it, and after a turn with activity (0, 0: never; see OnPreparePoll); gate: a SharedArrayBuffer of two
// Int32 (src/util/manager-poll.ts). The manager's thread calls it, once its fault service runs.
void SetManagerPoll(const FunctionCallbackInfo<Value>& args) {
  Isolate* isolate = args.GetIsolate();
  uint64_t poll_us;
  uint64_t linger_us;
  if (!ReadIndex(args, 0, &poll_us) || !ReadIndex(args, 1, &linger_us)) return;
  if (poll_us > 1000000 || linger_us > 1000000 || args.Length() < 3 || !args[2]->IsSharedArrayBuffer()) {
    Throw(isolate, DSM_ERR_INTERNAL, "dsm native: setManagerPoll(pollUs <= 1 s, lingerUs <= 1 s, gate SharedArrayBuffer)");
    return;
  }
  std::shared_ptr<v8::BackingStore> store = args[2].As<v8::SharedArrayBuffer>()->GetBackingStore();
  if (store->ByteLength() < 8) {
    Throw(isolate, DSM_ERR_INTERNAL, "dsm native: the manager's poll gate holds two Int32");
    return;
  }
  g_poll_gate_store = store;
  g_poll_gate = reinterpret_cast<std::atomic<int32_t>*>(store->Data());
  g_poll_ns.store(static_cast<int64_t>(poll_us) * 1000, std::memory_order_relaxed);
  g_linger_ns.store(static_cast<int64_t>(linger_us) * 1000, std::memory_order_relaxed);
  if ((poll_us > 0 || linger_us > 0) && g_poll_prepare == nullptr) {
    g_poll_prepare = new uv_prepare_t;
    uv_prepare_init(node::GetCurrentEventLoop(isolate), g_poll_prepare);
    uv_prepare_start(g_poll_prepare, OnPreparePoll);
    // Polling must not keep the manager's loop alive.
    uv_unref(reinterpret_cast<uv_handle_t*>(g_poll_prepare));
  }
}

void ResumeSlot(uint32_t index) {
  FaultSlot& slot = g_slots[index];
  // A thread still spinning sees kParkServed by itself; only a sleeping one needs the system call.
  if (slot.futex.exchange(kParkServed, std::memory_order_acq_rel) == kParkSleeping) Futex(&slot.futex, FUTEX_WAKE_PRIVATE, 1);
}

void Resume(const FunctionCallbackInfo<Value>& args) {
  uint64_t index;
  if (!ReadIndex(args, 0, &index)) return;
  if (index >= kFaultSlotCount || g_slots[index].state.load() != kSlotServing) {
    Throw(args.GetIsolate(), DSM_ERR_INTERNAL, "dsm native: resume of a slot that is not being served");
    return;
  }
  ResumeSlot(static_cast<uint32_t>(index));
}

void ResumeMany(const FunctionCallbackInfo<Value>& args) {
  if (args.Length() < 1 || !args[0]->IsUint32Array()) {
    Throw(args.GetIsolate(), DSM_ERR_INTERNAL, "dsm native: resumeMany needs a Uint32Array");
    return;
  }
  Local<v8::Uint32Array> array = args[0].As<v8::Uint32Array>();
  auto* slots = reinterpret_cast<uint32_t*>(ViewData(array));
  for (size_t i = 0; i < array->Length(); i += 1) {
    if (slots[i] >= kFaultSlotCount || g_slots[slots[i]].state.load() != kSlotServing) {
      Throw(args.GetIsolate(), DSM_ERR_INTERNAL, "dsm native: resume of a slot that is not being served");
      return;
    }
    ResumeSlot(slots[i]);
  }
}

void Stats(const FunctionCallbackInfo<Value>& args) {
  Isolate* isolate = args.GetIsolate();
  Local<Context> context = isolate->GetCurrentContext();
  Local<Object> stats = Object::New(isolate);
  auto set = [&](const char* name, uint64_t value) {
    stats->Set(context, v8::String::NewFromUtf8(isolate, name).ToLocalChecked(),
               Number::New(isolate, static_cast<double>(value))).Check();
  };
  set("readFaults", g_read_faults.load());
  set("writeFaults", g_write_faults.load());
  set("fastWriteFaults", g_fast_write_faults.load());
  set("fastTouches", g_fast_touches.load());
  set("diffPwrites", g_diff_pwrites.load());
  set("slowWaits", g_slow_waits.load());
  set("chainedFaults", g_chained_faults.load());
  set("twins", g_twin_count.load());
  set("twinLimitFaults", g_twin_limit_faults.load());
  set("writeAheadPages", g_write_ahead_pages.load());
  set("mallocHeapKept", g_malloc_heap_kept.load() ? 1 : 0);
  set("prefaultedPages", g_prefaulted_pages.load());
  set("prefaultDroppedRuns", g_prefault_dropped_runs.load());
  set("twinPoolPretouching", g_twin_pool_pretouching.load(std::memory_order_acquire) ? 1 : 0);
  set("prewakes", g_prewakes.load(std::memory_order_relaxed));
  set("appViewCopies", g_app_view_copies.load(std::memory_order_relaxed));
  set("pwriteInstalls", g_pwrite_installed.load(std::memory_order_relaxed));
  set("managerPollHits", g_poll_hits.load(std::memory_order_relaxed));
  set("managerPollMisses", g_poll_misses.load(std::memory_order_relaxed));
  set("managerPollSkips", g_poll_skips.load(std::memory_order_relaxed));
  args.GetReturnValue().Set(stats);
}

// ---- test and benchmark helpers --------------------------------------------------------

uint64_t NowNs() {
  struct timespec now;
  clock_gettime(CLOCK_MONOTONIC, &now);
  return static_cast<uint64_t>(now.tv_sec) * 1000000000ull + static_cast<uint64_t>(now.tv_nsec);
}

// The floor of a fault: signal delivery, an mprotect in the handler, and the
// return to the faulting store, with nothing else. Returns nanoseconds per sample.
void BenchFloor(const FunctionCallbackInfo<Value>& args) {
  Isolate* isolate = args.GetIsolate();
  uint64_t iterations;
  if (!ReadIndex(args, 0, &iterations)) return;
  void* page = mmap(nullptr, kPageBytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (page == MAP_FAILED) return;
  g_bench_page.store(static_cast<uint8_t*>(page));
  Local<v8::ArrayBuffer> buffer = v8::ArrayBuffer::New(isolate, iterations * 8);
  auto* out = static_cast<double*>(buffer->Data());
  volatile uint8_t* target = static_cast<uint8_t*>(page);
  for (uint64_t i = 0; i < iterations; i += 1) {
    mprotect(page, kPageBytes, PROT_READ);
    uint64_t start = NowNs();
    target[0] = static_cast<uint8_t>(i);
    out[i] = static_cast<double>(NowNs() - start);
  }
  g_bench_page.store(nullptr);
  munmap(page, kPageBytes);
  args.GetReturnValue().Set(v8::Float64Array::New(buffer, 0, iterations));
}

// ---- page packing (src/runtime/page-pack.ts) --------------------------------

// The same format and the same bytes as page-pack.ts's packWords and
// unpackWords (its comment has the format; test/unit/page-pack.test.ts checks
// the two byte for byte). Natively because a fetch's copies are packed and
// unpacked in code that never gets hot in a short run: Jacobi's start packed
// 2,044 pages in ~30 ms of the home manager's CPU and unpacked them in ~20 ms
// on the reader (session 14, jac21), ~1-3 ms once warm.
constexpr size_t kPackWordBytes = 8;
constexpr uint32_t kPackRunCountMax = 255;
constexpr size_t kPackedCopyBytesMin = 128;

// x86-64 with BMI2 (every x86-64 CPU since 2013-2015, checked at run time): a word of mixed zero and non-zero
// bytes packs with one pext and unpacks with one pdep, where the byte loop took a branch a byte (a page of
// doubles of small integers: pack 2.8 -> 1.0 µs, unpack 3.8 -> 1.1 µs on the 2-vCPU EPYC VM). Elsewhere, and
// on a CPU without BMI2, the byte loops; both write the same bytes (test/unit/page-pack.test.ts).
#if defined(__x86_64__)
#define DSM_PACK_TARGET __attribute__((target("bmi2,popcnt")))
#include <immintrin.h>
DSM_PACK_TARGET inline uint64_t Pdep(uint64_t value, uint64_t mask) { return _pdep_u64(value, mask); }
DSM_PACK_TARGET inline uint64_t Pext(uint64_t value, uint64_t mask) { return _pext_u64(value, mask); }
// Initialized when the addon loads (a constructor: the CPU model must be read first).
const bool g_bmi2 = (__builtin_cpu_init(), __builtin_cpu_supports("bmi2"));
#else
#define DSM_PACK_TARGET
inline uint64_t Pdep(uint64_t, uint64_t) { return 0; }
inline uint64_t Pext(uint64_t, uint64_t) { return 0; }
const bool g_bmi2 = false;
#endif

// Per tag (a bit per byte of a word), the mask of those bytes: tag 0b101 -> 0x0000000000ff00ff.
struct TagMasks {
  uint64_t mask[256];
  constexpr TagMasks() : mask() {
    for (uint32_t tag = 0; tag < 256; tag++) {
      uint64_t m = 0;
      for (uint32_t b = 0; b < 8; b++) if ((tag >> b) & 1) m |= uint64_t{0xff} << (8 * b);
      mask[tag] = m;
    }
  }
  constexpr uint64_t operator[](uint32_t tag) const { return mask[tag]; }
};
constexpr TagMasks g_tag_masks;

// A bit per non-zero byte of the word (bit b for byte b, as the tag).
DSM_PACK_TARGET inline uint32_t NonZeroBytes(uint64_t word) {
  constexpr uint64_t kLow7 = 0x7f7f7f7f7f7f7f7fULL;
  const uint64_t high = (((word & kLow7) + kLow7) | word) & ~kLow7;
  return static_cast<uint32_t>(Pext(high, 0x8080808080808080ULL));
}

inline uint64_t LoadWord(const uint8_t* at) {
  uint64_t word;
  memcpy(&word, at, sizeof word);
  return word;
}

// Whether a word has at most one zero byte (copied raw in a dense run).
template <bool kBmi2>
DSM_PACK_TARGET inline bool DenseWord(uint64_t word) {
  // A byte's high bit of `nonzero` is set where the byte is not zero.
  constexpr uint64_t kLow7 = 0x7f7f7f7f7f7f7f7fULL;
  uint64_t nonzero = (((word & kLow7) + kLow7) | word) & ~kLow7;
  return __builtin_popcountll(nonzero) >= 7;
}

// Returns where the packed bytes end, or -1 (packing saves too little, or
// the copy is too small); `out` from out_at must have room for `length` bytes.
template <bool kBmi2>
DSM_PACK_TARGET int64_t PackWordsAs(const uint8_t* src, size_t length, uint8_t* out, size_t out_at) {
  if (length < kPackedCopyBytesMin) return -1;
  const size_t end = out_at + length;
  const size_t limit = out_at + length - length / kPagePackGainDivisor;
  const size_t probe_end = std::min<size_t>(length, kPagePackProbeBytes);
  const size_t probe_limit = out_at + probe_end - probe_end / kPagePackGainDivisor;
  bool probed = false;
  size_t o = out_at;
  size_t i = 0;
  while (i < length) {
    if (!probed && i >= probe_end) {
      if (o > probe_limit) return -1;
      probed = true;
    }
    // At most 10 bytes are written before the next look (a dense run stops short of `end`), and limit + 10 <= end.
    if (o > limit) return -1;
    const size_t tag_at = o++;
    uint32_t tag = 0;
    if constexpr (kBmi2) {
      // The word's non-zero bytes, gathered (pext) and stored as one word: `o` + 8 stays within `end` (above).
      const uint64_t word = LoadWord(src + i);
      tag = NonZeroBytes(word);
      const uint64_t packed = Pext(word, g_tag_masks[tag]);
      memcpy(out + o, &packed, sizeof packed);
      o += static_cast<size_t>(__builtin_popcount(tag));
    } else {
      for (size_t b = 0; b < kPackWordBytes; b++) {
        const uint8_t v = src[i + b];
        if (v != 0) { tag |= 1u << b; out[o++] = v; }
      }
    }
    out[tag_at] = static_cast<uint8_t>(tag);
    i += kPackWordBytes;
    if (tag == 0) {
      uint32_t run = 0;
      while (run < kPackRunCountMax && i < length && LoadWord(src + i) == 0) { run++; i += kPackWordBytes; }
      out[o++] = static_cast<uint8_t>(run);
    } else if (tag == 0xff) {
      // A dense run stops at the probe's end until the probe has looked (pages of doubles are one long run).
      const size_t run_end = probed ? length : probe_end;
      uint32_t run = 0;
      size_t j = i;
      while (run < kPackRunCountMax && j < run_end && o + 1 + kPackWordBytes * (run + 1) <= end && DenseWord<kBmi2>(LoadWord(src + j))) { run++; j += kPackWordBytes; }
      out[o++] = static_cast<uint8_t>(run);
      if (run > 0) { memcpy(out + o, src + i, j - i); o += j - i; }
      i = j;
    }
  }
  return o > limit ? -1 : static_cast<int64_t>(o);
}

// Unpacks into `out` (every byte written; `zeroed`: out is all zeros already).
// False when `packed` does not hold exactly `length` bytes' worth: the caller
// then says why (page-pack.ts's checks, so a peer's bad bytes are one error).
template <bool kBmi2>
DSM_PACK_TARGET bool UnpackWordsAs(const uint8_t* packed, size_t packed_length, uint8_t* out, size_t length, bool zeroed) {
  if (length % kPackWordBytes != 0) return false;
  if (!zeroed) memset(out, 0, length);
  size_t p = 0;
  size_t o = 0;
  while (o < length) {
    if (p >= packed_length) return false;
    const uint8_t tag = packed[p++];
    if (tag == 0) {
      if (p >= packed_length) return false;
      const size_t bytes = (1 + size_t{packed[p++]}) * kPackWordBytes;
      if (o + bytes > length) return false;
      o += bytes;
    } else if (tag == 0xff) {
      if (p + kPackWordBytes + 1 > packed_length) return false;
      const size_t bytes = kPackWordBytes * (1 + size_t{packed[p + kPackWordBytes]});
      if (o + bytes > length || p + bytes + 1 > packed_length) return false;
      memcpy(out + o, packed + p, kPackWordBytes);
      if (bytes > kPackWordBytes) memcpy(out + o + kPackWordBytes, packed + p + kPackWordBytes + 1, bytes - kPackWordBytes);
      p += bytes + 1;
      o += bytes;
    } else {
      const size_t count = static_cast<size_t>(__builtin_popcount(tag));
      if (p + count > packed_length) return false;
      if (kBmi2 && p + kPackWordBytes <= packed_length) {
        // The tag's bytes scattered to their places (pdep), zeros between: the whole word written at once.
        const uint64_t word = Pdep(LoadWord(packed + p), g_tag_masks[tag]);
        memcpy(out + o, &word, sizeof word);
        p += count;
      } else {
        for (size_t b = 0; b < kPackWordBytes; b++) {
          if ((tag >> b) & 1) out[o + b] = packed[p++];
        }
      }
      o += kPackWordBytes;
    }
  }
  return p == packed_length;
}

int64_t PackWordsInto(const uint8_t* src, size_t length, uint8_t* out, size_t out_at) {
  return g_bmi2 ? PackWordsAs<true>(src, length, out, out_at) : PackWordsAs<false>(src, length, out, out_at);
}

bool UnpackWordsInto(const uint8_t* packed, size_t packed_length, uint8_t* out, size_t length, bool zeroed) {
  return g_bmi2 ? UnpackWordsAs<true>(packed, packed_length, out, length, zeroed) : UnpackWordsAs<false>(packed, packed_length, out, length, zeroed);
}

// packWords(src: Uint8Array, out: Uint8Array, outAt): the end of the packed
// bytes in `out`, or -1. src.length a multiple of 8, room for src.length from outAt.
void PackWords(const FunctionCallbackInfo<Value>& args) {
  Isolate* isolate = args.GetIsolate();
  uint8_t* src;
  size_t length;
  uint8_t* out;
  size_t out_length;
  if (!ReadBytes(args, 0, &src, &length) || !ReadBytes(args, 1, &out, &out_length)) return;
  if (args.Length() < 3 || !args[2]->IsUint32()) {
    Throw(isolate, DSM_ERR_INTERNAL, "dsm native: packWords takes a byte offset into out");
    return;
  }
  const size_t out_at = args[2].As<v8::Uint32>()->Value();
  if (length % kPackWordBytes != 0 || out_at > out_length || out_length - out_at < length) {
    Throw(isolate, DSM_ERR_INTERNAL, "dsm native: packWords packs whole words into room for them raw");
    return;
  }
  args.GetReturnValue().Set(static_cast<double>(PackWordsInto(src, length, out, out_at)));
}

// unpackWords(packed: Uint8Array, out: Uint8Array, zeroed: boolean): true, or
// false when `packed` is malformed for out's length (out then holds garbage).
void UnpackWords(const FunctionCallbackInfo<Value>& args) {
  uint8_t* packed;
  size_t packed_length;
  uint8_t* out;
  size_t length;
  if (!ReadBytes(args, 0, &packed, &packed_length) || !ReadBytes(args, 1, &out, &length)) return;
  const bool zeroed = args.Length() > 2 && args[2]->IsTrue();
  args.GetReturnValue().Set(UnpackWordsInto(packed, packed_length, out, length, zeroed));
}

// A genuine invalid access outside the region, for the test that a real
// segfault still kills the process by SIGSEGV.
void CrashForTest(const FunctionCallbackInfo<Value>& args) {
  // Through a volatile integer so the compiler neither warns nor folds it.
  volatile uintptr_t bad_address = 16;
  *reinterpret_cast<volatile uint8_t*>(bad_address) = 1;
}

}  // namespace
}  // namespace dsm

NODE_MODULE_INIT(/* exports, module, context */) {
  using namespace dsm;
  SetMethod(context, exports, "init", Init);
  SetMethod(context, exports, "isInitialized", IsInitialized);
  SetMethod(context, exports, "regionBytes", RegionBytes);
  SetMethod(context, exports, "sharedArrayBuffer", SharedArrayBufferAt);
  SetMethod(context, exports, "managerBuffer", ManagerBufferAt);
  SetMethod(context, exports, "rangeOf", RangeOf);
  SetMethod(context, exports, "isMadeHere", IsMadeHere);
  SetMethod(context, exports, "protect", Protect);
  SetMethod(context, exports, "protectPages", ProtectPages);
  SetMethod(context, exports, "setFastWrite", SetFastWrite);
  SetMethod(context, exports, "setTwinless", SetTwinless);
  SetMethod(context, exports, "setFastWriteRange", SetFastWriteRange);
  SetMethod(context, exports, "setTwinlessRange", SetTwinlessRange);
  SetMethod(context, exports, "setTwinLimit", SetTwinLimit);
  SetMethod(context, exports, "pauseFastWrite", PauseFastWrite);
  SetMethod(context, exports, "setWriteAhead", SetWriteAhead);
  SetMethod(context, exports, "setOwnWriteAhead", SetOwnWriteAhead);
  SetMethod(context, exports, "membarrier", Membarrier);
  SetMethod(context, exports, "prepareMembarrier", PrepareMembarrier);
  SetMethod(context, exports, "pageState", PageState);
  SetMethod(context, exports, "makeTwin", MakeTwin);
  SetMethod(context, exports, "flush", Flush);
  SetMethod(context, exports, "applyDiff", ApplyDiff);
  SetMethod(context, exports, "drainDirty", DrainDirty);
  SetMethod(context, exports, "dirtyPushCounter", DirtyPushCounter);
  SetMethod(context, exports, "drainTouched", DrainTouched);
  SetMethod(context, exports, "touchPushCounter", TouchPushCounter);
  SetMethod(context, exports, "setTouchAhead", SetTouchAhead);
  SetMethod(context, exports, "readPage", ReadPageInto);
  SetMethod(context, exports, "isZeroPage", IsZeroPage);
  SetMethod(context, exports, "writePage", WritePageFrom);
  SetMethod(context, exports, "writePages", WritePagesFrom);
  SetMethod(context, exports, "packWords", PackWords);
  SetMethod(context, exports, "unpackWords", UnpackWords);
  SetMethod(context, exports, "zero", Zero);
  SetMethod(context, exports, "release", Release);
  SetMethod(context, exports, "prefault", Prefault);
  SetMethod(context, exports, "keepMallocHeap", KeepMallocHeap);
  SetMethod(context, exports, "installHandler", InstallHandler);
  SetMethod(context, exports, "startFaultService", StartFaultService);
  SetMethod(context, exports, "stopFaultService", StopFaultService);
  SetMethod(context, exports, "onBackingStoreFreed", OnBackingStoreFreed);
  SetMethod(context, exports, "drainFreed", DrainFreed);
  SetMethod(context, exports, "registerCollector", RegisterCollector);
  SetMethod(context, exports, "collectEverywhere", CollectEverywhere);
  SetMethod(context, exports, "collectHere", CollectHere);
  SetMethod(context, exports, "collectManager", CollectManager);
  SetMethod(context, exports, "storeOrReport", StoreOrReport);
  SetMethod(context, exports, "collectsPending", CollectsPending);
  SetMethod(context, exports, "setPwriteInstalls", SetPwriteInstalls);
  SetMethod(context, exports, "userExposesGc", UserExposesGc);
  SetMethod(context, exports, "resume", Resume);
  SetMethod(context, exports, "resumeMany", ResumeMany);
  SetMethod(context, exports, "prewake", Prewake);
  SetMethod(context, exports, "setParkYield", SetParkYield);
  SetMethod(context, exports, "setManagerPoll", SetManagerPoll);
  SetMethod(context, exports, "stats", Stats);
  SetMethod(context, exports, "benchFloor", BenchFloor);
  SetMethod(context, exports, "crashForTest", CrashForTest);
}
