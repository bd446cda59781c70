// dsm's watchdog: a thread of its own that ends the process when the
// JavaScript side cannot.
//
// A node's manager runs on Node's main thread. When that thread is stuck (a
// busy loop, a futex wait in process.exit joining an app thread parked on a
// fault, a deadlock), nothing written in JavaScript runs: not the SIGTERM
// listener, not the heartbeat check, not the exit. This thread does not
// depend on the event loop. It watches:
//
// - signals: SIGTERM/SIGINT are recorded by a handler chained in front of
//   libuv's (which still runs, so JavaScript ends the run normally when it
//   can); if the process still lives `grace` ms later, the thread prints a
//   one-line "forced exit" message, SIGKILLs the registered child nodes and
//   calls _exit(128 + signal);
// - the loop: JavaScript bumps a counter in a shared Int32Array while its
//   loop turns; a counter that stays still for `stall` ms means the manager
//   stalled: one line naming the node and what it was doing, then exit;
// - an exit in progress: exitSoon(code, ms) makes a JavaScript exit that
//   hangs (process.exit waits for app threads, and one parked on a fault
//   never returns) end with _exit(code) after ms;
// - the parent (a local child node): a changed parent pid ends the process.
//
// Everything the thread does is a read of atomics, write(2), kill(2) and
// _exit(2); the signal handler only stores atomics and chains.

#include "generated/dsm_constants.h"

#include <node_api.h>

#include <atomic>
#include <cerrno>
#include <csignal>
#include <cstdio>
#include <cstring>
#include <ctime>
#include <fcntl.h>
#include <pthread.h>
#include <string>
#include <sys/types.h>
#include <unistd.h>
#include <vector>

namespace {

// Limits (kChildCountMax, kActivityCountMax, kActivityNameBytes, kPollMs,
// kOversleepExcusedMs, kSignalGraceMs) and exit codes come from src/constants.ts
// and src/errors.ts through the generated header.
using namespace dsm_constants;

std::atomic<int> g_pending_signal{0};
std::atomic<int64_t> g_signal_at_ms{0};
struct sigaction g_previous_term;
struct sigaction g_previous_int;
bool g_signals_installed = false;

std::atomic<bool> g_started{false};
std::atomic<int> g_node_id{-1};
std::atomic<int64_t> g_grace_ms{kSignalGraceMs};
std::atomic<int64_t> g_stall_ms{0};
std::atomic<int64_t> g_exit_at_ms{0};
std::atomic<int> g_exit_code{0};
std::atomic<int> g_parent_pid{0};
std::atomic<int> g_children[kChildCountMax];
// [0] = turns of the loop, [1] = current activity index (JavaScript writes both).
std::atomic<int32_t>* g_loop_state = nullptr;
napi_ref g_loop_state_ref = nullptr;
char g_activity_names[kActivityCountMax][kActivityNameBytes];
std::atomic<int> g_activity_count{0};

int64_t NowMs() {
  timespec now;
  clock_gettime(CLOCK_MONOTONIC, &now);
  return static_cast<int64_t>(now.tv_sec) * 1000 + now.tv_nsec / 1000000;
}

void WriteAll(const char* text, size_t length) {
  while (length > 0) {
    ssize_t written = write(STDERR_FILENO, text, length);
    if (written < 0) {
      if (errno == EINTR) continue;
      return;
    }
    text += written;
    length -= static_cast<size_t>(written);
  }
}

void KillChildren() {
  for (int index = 0; index < kChildCountMax; ++index) {
    int pid = g_children[index].load();
    if (pid > 0) kill(pid, SIGKILL);
  }
}

const char* ActivityName() {
  if (g_loop_state == nullptr) return "unknown";
  int index = g_loop_state[1].load();
  if (index < 0 || index >= g_activity_count.load()) return "unknown";
  return g_activity_names[index];
}

// Milliseconds the main thread has spent runnable but waiting for a CPU, or -1 if unknown.
int64_t MainThreadRunQueueWaitMs() {
  char path[64];
  snprintf(path, sizeof path, "/proc/self/task/%d/schedstat", static_cast<int>(getpid()));
  int fd = open(path, O_RDONLY | O_CLOEXEC);
  if (fd < 0) return -1;
  char text[128];
  ssize_t length = read(fd, text, sizeof text - 1);
  close(fd);
  if (length <= 0) return -1;
  text[length] = '\0';
  unsigned long long run_ns = 0, wait_ns = 0;
  if (sscanf(text, "%llu %llu", &run_ns, &wait_ns) != 2) return -1;
  return static_cast<int64_t>(wait_ns / 1000000);
}

[[noreturn]] void EndProcess(const char* message, int code) {
  if (message != nullptr) WriteAll(message, strlen(message));
  KillChildren();
  _exit(code);
}

void ChainTo(const struct sigaction& previous, int signal, siginfo_t* info, void* context) {
  if ((previous.sa_flags & SA_RESETHAND) != 0) {
    // A one-shot handler (Node's own SignalExit when JavaScript does not listen: it resets the
    // terminal and re-raises): the kernel would have reset the disposition before calling it.
    struct sigaction fallback;
    memset(&fallback, 0, sizeof fallback);
    fallback.sa_handler = SIG_DFL;
    sigemptyset(&fallback.sa_mask);
    sigaction(signal, &fallback, nullptr);
  }
  if ((previous.sa_flags & SA_SIGINFO) != 0) {
    if (previous.sa_sigaction != nullptr) previous.sa_sigaction(signal, info, context);
    return;
  }
  if (previous.sa_handler == SIG_IGN) return;
  if (previous.sa_handler == SIG_DFL) {
    // Nobody in JavaScript listens: the default action (termination) is what the user asked for.
    struct sigaction fallback;
    memset(&fallback, 0, sizeof fallback);
    fallback.sa_handler = SIG_DFL;
    sigemptyset(&fallback.sa_mask);
    sigaction(signal, &fallback, nullptr);
    raise(signal);
    return;
  }
  previous.sa_handler(signal);
}

void OnSignal(int signal, siginfo_t* info, void* context) {
  int saved_errno = errno;
  int expected = 0;
  if (g_pending_signal.compare_exchange_strong(expected, signal)) g_signal_at_ms.store(NowMs());
  ChainTo(signal == SIGTERM ? g_previous_term : g_previous_int, signal, info, context);
  errno = saved_errno;
}

void* WatchLoop(void*) {
  int32_t last_turns = g_loop_state == nullptr ? 0 : g_loop_state[0].load();
  int64_t last_turn_at_ms = NowMs();
  int64_t previous_poll_ms = last_turn_at_ms;
  int64_t previous_wait_ms = MainThreadRunQueueWaitMs();
  char message[512];
  for (;;) {
    timespec pause = {0, kPollMs * 1000000};
    while (nanosleep(&pause, &pause) != 0 && errno == EINTR) {}
    int64_t now_ms = NowMs();
    // Time the main thread was ready to run but got no CPU (a loaded machine) is no stall of
    // its loop: the kernel's per-thread run-queue wait says how much, and that much is excused.
    // Without schedstat, a watchdog that overslept (the whole process starved) is the sign.
    int64_t wait_ms = MainThreadRunQueueWaitMs();
    if (wait_ms >= 0) {
      if (previous_wait_ms >= 0 && wait_ms > previous_wait_ms) last_turn_at_ms += wait_ms - previous_wait_ms;
      previous_wait_ms = wait_ms;
    } else {
      int64_t overslept_ms = now_ms - previous_poll_ms - kPollMs;
      if (overslept_ms > kOversleepExcusedMs) last_turn_at_ms += overslept_ms;
    }
    if (last_turn_at_ms > now_ms) last_turn_at_ms = now_ms;
    previous_poll_ms = now_ms;
    int node = g_node_id.load();
    if (g_loop_state != nullptr) {
      int32_t turns = g_loop_state[0].load();
      if (turns != last_turns) {
        last_turns = turns;
        last_turn_at_ms = now_ms;
      }
    }
    int64_t exit_at_ms = g_exit_at_ms.load();
    if (exit_at_ms != 0 && now_ms >= exit_at_ms) EndProcess(nullptr, g_exit_code.load());
    int signal = g_pending_signal.load();
    if (signal != 0 && now_ms - g_signal_at_ms.load() >= g_grace_ms.load()) {
      snprintf(message, sizeof message,
               "dsm: " DSM_ERR_FORCED_EXIT ": node %d did not end within %lld ms of %s (its manager loop last turned %lld ms ago, doing: %s); forced exit%s\n",
               node, static_cast<long long>(g_grace_ms.load()), signal == SIGTERM ? "SIGTERM" : "SIGINT",
               static_cast<long long>(now_ms - last_turn_at_ms), ActivityName(),
               node == 0 ? ", its child nodes killed" : "");
      EndProcess(message, 128 + signal);
    }
    int64_t stall_ms = g_stall_ms.load();
    if (stall_ms > 0 && exit_at_ms == 0 && g_loop_state != nullptr && now_ms - last_turn_at_ms > stall_ms) {
      snprintf(message, sizeof message,
               "dsm: " DSM_ERR_STALLED ": node %d: its manager loop (the main thread) has not turned for %lld ms (time waiting for a CPU not counted; limit %lld ms), doing: %s; node %d is ending\n",
               node, static_cast<long long>(now_ms - last_turn_at_ms), static_cast<long long>(stall_ms), ActivityName(), node);
      EndProcess(message, kExitCodeNodeDied);
    }
    int parent = g_parent_pid.load();
    if (parent > 0 && getppid() != parent) EndProcess(nullptr, kExitCodeNodeDied);
  }
  return nullptr;
}

// ---- JavaScript bindings --------------------------------------------------

napi_value Undefined(napi_env env) {
  napi_value result;
  napi_get_undefined(env, &result);
  return result;
}

bool ArgInt64(napi_env env, napi_callback_info info, size_t index, int64_t* out) {
  size_t argc = 4;
  napi_value argv[4];
  napi_get_cb_info(env, info, &argc, argv, nullptr, nullptr);
  if (index >= argc || napi_get_value_int64(env, argv[index], out) != napi_ok) {
    napi_throw_type_error(env, DSM_ERR_INTERNAL, "dsm watchdog: expected an integer argument");
    return false;
  }
  return true;
}

// start(nodeId, loopState: SharedArrayBuffer (>= 8 bytes), activityNames: string[])
napi_value Start(napi_env env, napi_callback_info info) {
  size_t argc = 3;
  napi_value argv[3];
  napi_get_cb_info(env, info, &argc, argv, nullptr, nullptr);
  int32_t node_id = -1;
  if (argc < 3 || napi_get_value_int32(env, argv[0], &node_id) != napi_ok) {
    napi_throw_type_error(env, DSM_ERR_INTERNAL, "dsm watchdog: start(nodeId, loopState, activityNames)");
    return nullptr;
  }
  g_node_id.store(node_id);
  if (g_started.load()) return Undefined(env);
  bool is_buffer = false;
  void* data = nullptr;
  size_t length = 0;
  napi_is_arraybuffer(env, argv[1], &is_buffer);
  if (!is_buffer || napi_get_arraybuffer_info(env, argv[1], &data, &length) != napi_ok || length < 8) {
    // SharedArrayBuffer is not an ArrayBuffer to napi_is_arraybuffer on every Node version: accept a typed array too.
    napi_typedarray_type type;
    size_t element_count = 0;
    napi_value array_buffer;
    size_t byte_offset = 0;
    bool is_typed = false;
    napi_is_typedarray(env, argv[1], &is_typed);
    if (!is_typed || napi_get_typedarray_info(env, argv[1], &type, &element_count, &data, &array_buffer, &byte_offset) != napi_ok ||
        type != napi_int32_array || element_count < 2) {
      napi_throw_type_error(env, DSM_ERR_INTERNAL, "dsm watchdog: loopState must be an Int32Array of 2 over a SharedArrayBuffer");
      return nullptr;
    }
  }
  napi_create_reference(env, argv[1], 1, &g_loop_state_ref);
  g_loop_state = reinterpret_cast<std::atomic<int32_t>*>(data);
  uint32_t name_count = 0;
  napi_get_array_length(env, argv[2], &name_count);
  int count = 0;
  for (uint32_t index = 0; index < name_count && count < kActivityCountMax; ++index) {
    napi_value name;
    size_t copied = 0;
    napi_get_element(env, argv[2], index, &name);
    if (napi_get_value_string_utf8(env, name, g_activity_names[count], kActivityNameBytes, &copied) != napi_ok) continue;
    ++count;
  }
  g_activity_count.store(count);
  pthread_t thread;
  pthread_attr_t attributes;
  pthread_attr_init(&attributes);
  pthread_attr_setdetachstate(&attributes, PTHREAD_CREATE_DETACHED);
  pthread_attr_setstacksize(&attributes, 64 * 1024);
  // Signals belong to the main thread's handlers; this thread never takes one.
  sigset_t all, previous;
  sigfillset(&all);
  pthread_sigmask(SIG_SETMASK, &all, &previous);
  int failed = pthread_create(&thread, &attributes, WatchLoop, nullptr);
  pthread_sigmask(SIG_SETMASK, &previous, nullptr);
  pthread_attr_destroy(&attributes);
  if (failed != 0) {
    napi_throw_error(env, DSM_ERR_PLATFORM, "dsm watchdog: pthread_create failed");
    return nullptr;
  }
  g_started.store(true);
  return Undefined(env);
}

// watchSignals(graceMs): chains a handler for SIGTERM and SIGINT in front of the current ones.
napi_value WatchSignals(napi_env env, napi_callback_info info) {
  int64_t grace_ms = 0;
  if (!ArgInt64(env, info, 0, &grace_ms)) return nullptr;
  g_grace_ms.store(grace_ms);
  if (g_signals_installed) return Undefined(env);
  struct sigaction action;
  memset(&action, 0, sizeof action);
  action.sa_sigaction = OnSignal;
  action.sa_flags = SA_SIGINFO | SA_ONSTACK | SA_RESTART;
  sigemptyset(&action.sa_mask);
  if (sigaction(SIGTERM, &action, &g_previous_term) != 0 || sigaction(SIGINT, &action, &g_previous_int) != 0) {
    napi_throw_error(env, DSM_ERR_PLATFORM, "dsm watchdog: sigaction failed");
    return nullptr;
  }
  g_signals_installed = true;
  return Undefined(env);
}

napi_value SetStallMs(napi_env env, napi_callback_info info) {
  int64_t stall_ms = 0;
  if (!ArgInt64(env, info, 0, &stall_ms)) return nullptr;
  g_stall_ms.store(stall_ms);
  return Undefined(env);
}

napi_value SetParent(napi_env env, napi_callback_info info) {
  int64_t pid = 0;
  if (!ArgInt64(env, info, 0, &pid)) return nullptr;
  g_parent_pid.store(static_cast<int>(pid));
  return Undefined(env);
}

napi_value AddChild(napi_env env, napi_callback_info info) {
  int64_t pid = 0;
  if (!ArgInt64(env, info, 0, &pid)) return nullptr;
  for (int index = 0; index < kChildCountMax; ++index) {
    int expected = 0;
    if (g_children[index].compare_exchange_strong(expected, static_cast<int>(pid))) return Undefined(env);
  }
  napi_throw_error(env, DSM_ERR_INTERNAL, "dsm watchdog: too many child nodes");
  return nullptr;
}

napi_value RemoveChild(napi_env env, napi_callback_info info) {
  int64_t pid = 0;
  if (!ArgInt64(env, info, 0, &pid)) return nullptr;
  for (int index = 0; index < kChildCountMax; ++index) {
    int expected = static_cast<int>(pid);
    g_children[index].compare_exchange_strong(expected, 0);
  }
  return Undefined(env);
}

// exitSoon(code, ms): if the process still lives in ms, _exit(code). The earliest deadline wins.
napi_value ExitSoon(napi_env env, napi_callback_info info) {
  int64_t code = 0, delay_ms = 0;
  if (!ArgInt64(env, info, 0, &code) || !ArgInt64(env, info, 1, &delay_ms)) return nullptr;
  int64_t at_ms = NowMs() + delay_ms;
  int64_t current = g_exit_at_ms.load();
  if (current == 0 || at_ms < current) {
    g_exit_code.store(static_cast<int>(code));
    g_exit_at_ms.store(at_ms);
  }
  return Undefined(env);
}

// hardExit(code): _exit now (stdio writes are synchronous on Linux, so nothing written is lost).
napi_value HardExit(napi_env env, napi_callback_info info) {
  int64_t code = 0;
  if (!ArgInt64(env, info, 0, &code)) return nullptr;
  _exit(static_cast<int>(code));
}

napi_value PendingSignal(napi_env env, napi_callback_info info) {
  napi_value result;
  napi_create_int32(env, g_pending_signal.load(), &result);
  return result;
}

// signalTaken(): the program took the pending signal (its own listener: src/threads/signals.ts); the process
// goes on, so the grace period is not counted. A later signal starts it again.
napi_value SignalTaken(napi_env env, napi_callback_info info) {
  g_pending_signal.store(0);
  return nullptr;
}

napi_value Init(napi_env env, napi_value exports) {
  const napi_property_descriptor methods[] = {
    {"start", nullptr, Start, nullptr, nullptr, nullptr, napi_default, nullptr},
    {"watchSignals", nullptr, WatchSignals, nullptr, nullptr, nullptr, napi_default, nullptr},
    {"setStallMs", nullptr, SetStallMs, nullptr, nullptr, nullptr, napi_default, nullptr},
    {"setParent", nullptr, SetParent, nullptr, nullptr, nullptr, napi_default, nullptr},
    {"addChild", nullptr, AddChild, nullptr, nullptr, nullptr, napi_default, nullptr},
    {"removeChild", nullptr, RemoveChild, nullptr, nullptr, nullptr, napi_default, nullptr},
    {"exitSoon", nullptr, ExitSoon, nullptr, nullptr, nullptr, napi_default, nullptr},
    {"hardExit", nullptr, HardExit, nullptr, nullptr, nullptr, napi_default, nullptr},
    {"pendingSignal", nullptr, PendingSignal, nullptr, nullptr, nullptr, napi_default, nullptr},
    {"signalTaken", nullptr, SignalTaken, nullptr, nullptr, nullptr, napi_default, nullptr},
  };
  napi_define_properties(env, exports, sizeof methods / sizeof methods[0], methods);
  return exports;
}

}  // namespace

NAPI_MODULE(NODE_GYP_MODULE_NAME, Init)
