// dsm's doorbell: an app thread wakes its node's manager without a message.
//
// A synchronous request travels through a block of shared memory that the app
// thread and the manager both see (src/channel/doorbell.ts: binary fields in a
// SharedArrayBuffer private to the pair). This addon does what JavaScript
// cannot do, or does slowly:
// - ring(): from any thread, a uv_async_send on the manager's loop. The
//   manager's callback runs once per wake-up however many threads rang (libuv
//   coalesces sends until the callback has run), so it drains every ready slot.
// - park()/unpark(): a raw futex on a word of the block. V8's Atomics.wait and
//   notify take a process-wide lock and a condition variable around the same
//   futex. park sleeps at most the time it is given: worker.terminate stops
//   JavaScript but interrupts only Atomics.wait, so a parked thread returns to
//   JavaScript now and then (where the termination takes effect).
//
// Process-wide: one manager per process (a node), one bell. Nothing here has a
// fixed size or layout shared with JavaScript.

#include <node.h>
#include <uv.h>
#include <v8.h>

#include <atomic>
#include <cerrno>
#include <cstdint>
#include <memory>
#include <mutex>
#include <string>

#include <linux/futex.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>
#include "dsm_addon.h"
#include "generated/dsm_constants.h"

namespace dsm_doorbell {
namespace {

using v8::Context;
using v8::Function;
using v8::FunctionCallbackInfo;
using v8::Global;
using v8::HandleScope;
using v8::Isolate;
using v8::Local;
using v8::Object;
using v8::Value;

// Guards g_bell against being closed while another thread rings it. Held only
// for a uv_async_send (an atomic exchange and, at most, one eventfd write).
std::mutex g_bell_mutex;
uv_async_t* g_bell = nullptr;
Isolate* g_manager_isolate = nullptr;
Global<Context> g_manager_context;
Global<Function> g_on_ring;
bool g_cleanup_registered = false;

std::atomic<uint64_t> g_rings{0};
// The manager's poll gate (setGate; src/util/manager-poll.ts): park() counts its sleepers in word 0, ring()
// bumps word 1 (activity: native/dsm_mmu.cc, OnPreparePoll).
std::atomic<std::atomic<int32_t>*> g_gate{nullptr};
// Never destroyed: a BackingStore freed by a static destructor at exit would run after V8 is gone.
std::shared_ptr<v8::BackingStore>& g_gate_store = *new std::shared_ptr<v8::BackingStore>;
std::atomic<uint64_t> g_wakes{0};

using dsm_addon::SetMethod;
using dsm_addon::Throw;

void OnBell(uv_async_t* handle) {
  g_wakes.fetch_add(1, std::memory_order_relaxed);
  if (g_on_ring.IsEmpty()) return;
  Isolate* isolate = g_manager_isolate;
  HandleScope scope(isolate);
  Local<Context> context = g_manager_context.Get(isolate);
  Context::Scope context_scope(context);
  // As a MessagePort's message would: ticks and microtasks run after the callback,
  // and an exception it throws is the process's uncaught exception (the run ends).
  node::MakeCallback(isolate, context->Global(), g_on_ring.Get(isolate), 0, nullptr, {0, 0});
}

void CloseBell() {
  uv_async_t* bell;
  {
    std::lock_guard<std::mutex> lock(g_bell_mutex);
    bell = g_bell;
    g_bell = nullptr;
  }
  g_on_ring.Reset();
  g_manager_context.Reset();
  g_manager_isolate = nullptr;
  if (bell != nullptr) {
    uv_close(reinterpret_cast<uv_handle_t*>(bell), [](uv_handle_t* handle) { delete reinterpret_cast<uv_async_t*>(handle); });
  }
}

// Runs when the manager's environment ends, before its loop closes: a thread
// ringing during teardown finds no bell rather than a handle that is gone.
void OnManagerCleanup(void*) { CloseBell(); }

// open(onRing): the calling thread (a node's manager) is the one rung; onRing()
// runs on its loop after one or more rings.
void Open(const FunctionCallbackInfo<Value>& args) {
  Isolate* isolate = args.GetIsolate();
  if (args.Length() < 1 || !args[0]->IsFunction()) {
    Throw(isolate, DSM_ERR_INTERNAL, "dsm doorbell: open needs a callback");
    return;
  }
  {
    std::lock_guard<std::mutex> lock(g_bell_mutex);
    if (g_bell != nullptr) {
      Throw(isolate, DSM_ERR_INTERNAL, "dsm doorbell: the bell is already open");
      return;
    }
  }
  g_manager_isolate = isolate;
  g_manager_context.Reset(isolate, isolate->GetCurrentContext());
  g_on_ring.Reset(isolate, args[0].As<Function>());
  auto* bell = new uv_async_t;
  uv_async_init(node::GetCurrentEventLoop(isolate), bell, OnBell);
  // A parked app thread is kept alive by its own handles; the bell must not keep the manager's loop running.
  uv_unref(reinterpret_cast<uv_handle_t*>(bell));
  {
    std::lock_guard<std::mutex> lock(g_bell_mutex);
    g_bell = bell;
  }
  if (!g_cleanup_registered) {
    g_cleanup_registered = true;
    node::AddEnvironmentCleanupHook(isolate, OnManagerCleanup, nullptr);
  }
}

// ring(): from any thread of the process. True if the bell is open (the manager
// will run its callback), false if there is none (not opened, or closed).
void Ring(const FunctionCallbackInfo<Value>& args) {
  bool rung = false;
  {
    std::lock_guard<std::mutex> lock(g_bell_mutex);
    if (g_bell != nullptr) {
      uv_async_send(g_bell);
      rung = true;
    }
  }
  if (rung) {
    g_rings.fetch_add(1, std::memory_order_relaxed);
    std::atomic<int32_t>* gate = g_gate.load(std::memory_order_acquire);
    if (gate != nullptr) gate[1].fetch_add(1, std::memory_order_relaxed);
  }
  args.GetReturnValue().Set(rung);
}

void IsOpen(const FunctionCallbackInfo<Value>& args) {
  std::lock_guard<std::mutex> lock(g_bell_mutex);
  args.GetReturnValue().Set(g_bell != nullptr);
}

// close(): the manager's; later rings return false.
void Close(const FunctionCallbackInfo<Value>& args) { CloseBell(); }

// stats(): { rings, wakes } since the process started (wakes <= rings: sends coalesce).
void Stats(const FunctionCallbackInfo<Value>& args) {
  Isolate* isolate = args.GetIsolate();
  Local<Context> context = isolate->GetCurrentContext();
  Local<Object> result = Object::New(isolate);
  result->Set(context, v8::String::NewFromUtf8Literal(isolate, "rings"),
              v8::Number::New(isolate, static_cast<double>(g_rings.load(std::memory_order_relaxed)))).Check();
  result->Set(context, v8::String::NewFromUtf8Literal(isolate, "wakes"),
              v8::Number::New(isolate, static_cast<double>(g_wakes.load(std::memory_order_relaxed)))).Check();
  args.GetReturnValue().Set(result);
}

// The Int32 word at `byteOffset` of a SharedArrayBuffer, or null (an exception is thrown).
std::atomic<int32_t>* WordOf(const FunctionCallbackInfo<Value>& args) {
  return reinterpret_cast<std::atomic<int32_t>*>(dsm_addon::SharedWordArg(args, 0, 1, DSM_ERR_INTERNAL, "dsm doorbell"));
}

// park(buffer, byteOffset, expected, timeoutMs): sleeps on the word while it
// holds `expected`, at most timeoutMs; returns at once if it does not.
void Park(const FunctionCallbackInfo<Value>& args) {
  std::atomic<int32_t>* word = WordOf(args);
  if (word == nullptr) return;
  int32_t expected = args[2]->Int32Value(args.GetIsolate()->GetCurrentContext()).FromMaybe(0);
  double timeout_ms = args[3]->NumberValue(args.GetIsolate()->GetCurrentContext()).FromMaybe(0);
  struct timespec timeout;
  timeout.tv_sec = static_cast<time_t>(timeout_ms / 1000);
  timeout.tv_nsec = static_cast<long>((timeout_ms - timeout.tv_sec * 1000.0) * 1e6);
  if (word->load(std::memory_order_acquire) == expected) {
    std::atomic<int32_t>* gate = g_gate.load(std::memory_order_acquire);
    if (gate != nullptr) gate->fetch_add(1, std::memory_order_relaxed);
    syscall(SYS_futex, reinterpret_cast<int32_t*>(word), FUTEX_WAIT_PRIVATE, expected, &timeout, nullptr, 0);
    if (gate != nullptr) gate->fetch_sub(1, std::memory_order_relaxed);
  }
}

// unpark(buffer, byteOffset): wakes the thread parked on the word.
void Unpark(const FunctionCallbackInfo<Value>& args) {
  std::atomic<int32_t>* word = WordOf(args);
  if (word == nullptr) return;
  syscall(SYS_futex, reinterpret_cast<int32_t*>(word), FUTEX_WAKE_PRIVATE, INT32_MAX, nullptr, nullptr, 0);
}

// setGate(buffer): the manager's poll gate, process-wide (two Int32: threads parked, activity).
void SetGate(const FunctionCallbackInfo<Value>& args) {
  if (args.Length() < 1 || !args[0]->IsSharedArrayBuffer() || args[0].As<v8::SharedArrayBuffer>()->ByteLength() < 8) {
    Throw(args.GetIsolate(), DSM_ERR_INTERNAL, "dsm doorbell: setGate needs a SharedArrayBuffer of two Int32");
    return;
  }
  std::shared_ptr<v8::BackingStore> store = args[0].As<v8::SharedArrayBuffer>()->GetBackingStore();
  g_gate_store = store;
  g_gate.store(reinterpret_cast<std::atomic<int32_t>*>(store->Data()), std::memory_order_release);
}

}  // namespace
}  // namespace dsm_doorbell

// Context-aware: app threads (workers) load it too, to ring.
NODE_MODULE_INIT(/* exports, module, context */) {
  using namespace dsm_doorbell;
  SetMethod(context, exports, "open", Open);
  SetMethod(context, exports, "ring", Ring);
  SetMethod(context, exports, "isOpen", IsOpen);
  SetMethod(context, exports, "close", Close);
  SetMethod(context, exports, "stats", Stats);
  SetMethod(context, exports, "park", Park);
  SetMethod(context, exports, "unpark", Unpark);
  SetMethod(context, exports, "setGate", SetGate);
}
