// The simulated driver's common ground: the C-ABI boundary, handle
// validation, and the initialisation flag.
//
// Handles: every opaque handle the application sees (CUcontext, CUstream,
// CUevent, CUmodule, CUfunction, ...) is the address of an Object, but it is
// never dereferenced before the Registry has confirmed that a live object of
// the expected kind sits at that address.  A random or stale pointer is thus
// an INVALID_HANDLE / INVALID_CONTEXT, never a crash.  Objects are owned by
// shared_ptr: the registry holds one reference until the object is destroyed
// through the API, queued work holds others, so destroying a stream or
// unloading a module while work is in flight is safe.
#pragma once

#include "api.h"

#include <atomic>
#include <cstdint>
#include <cstring>
#include <memory>
#include <mutex>
#include <new>
#include <shared_mutex>
#include <string>
#include <unordered_map>

namespace simgpu {

// Runs an entry point body; nothing thrown may cross the C ABI.
template <class F>
inline CUresult guard(F&& f) noexcept {
  try {
    return f();
  } catch (const std::bad_alloc&) {
    return CUDA_ERROR_OUT_OF_MEMORY;
  } catch (...) {
    return CUDA_ERROR_UNKNOWN;
  }
}

#define SIM_TRY return ::simgpu::guard([&]() -> CUresult {
#define SIM_END \
  });

#define SIM_CHECK(expr)                          \
  do {                                           \
    CUresult sim_rc_ = (expr);                   \
    if (sim_rc_ != CUDA_SUCCESS) return sim_rc_; \
  } while (0)

enum class Kind : uint8_t {
  Context,
  Stream,
  Event,
  Module,
  Function,
  Library,
  Kernel,
  MemPool,
  MemHandle,
  Graph,
  GraphNode,
  GraphExec,
  LinkState,
  UserObject,
};

struct Object {
  explicit Object(Kind k) : kind(k) {}
  virtual ~Object() = default;
  Object(const Object&) = delete;
  Object& operator=(const Object&) = delete;
  const Kind kind;
};

// Live handles by address.  Sharded so that threads launching on different
// streams do not serialise on one lock.
class Registry {
 public:
  void add(const void* handle, std::shared_ptr<Object> obj);
  // Removes and returns the entry (null when absent or of another kind).
  std::shared_ptr<Object> remove(const void* handle, Kind kind);
  std::shared_ptr<Object> find(const void* handle, Kind kind) const;
  bool contains(const void* handle, Kind kind) const;

  template <class T>
  std::shared_ptr<T> get(const void* handle, Kind kind) const {
    return std::static_pointer_cast<T>(find(handle, kind));
  }

  // find() for the hot path (launches, async copies): answered from a
  // per-thread one-entry cache per kind, without a lock, as long as no handle
  // has been removed since it was filled (every removal bumps the epoch).
  // The cache holds a weak reference, so it never keeps a destroyed object alive.
  std::shared_ptr<Object> find_fast(const void* handle, Kind kind);
  template <class T>
  std::shared_ptr<T> get_fast(const void* handle, Kind kind) {
    return std::static_pointer_cast<T>(find_fast(handle, kind));
  }

 private:
  std::atomic<uint64_t> epoch_{0};
  static constexpr unsigned kShards = 16;
  struct Shard {
    mutable std::shared_mutex mu;
    std::unordered_map<const void*, std::shared_ptr<Object>> map;
  };
  static unsigned shard_of(const void* h) {
    auto v = reinterpret_cast<uintptr_t>(h);
    return unsigned((v >> 4) ^ (v >> 12)) % kShards;
  }
  Shard shards_[kShards];
};

Registry& registry();

// cuInit has succeeded.
extern std::atomic<bool> g_initialized;

// The process is exiting (atexit): stream workers stop running work, so
// nothing calls into the engine or into a finalised interpreter while static
// destructors run.  Kernels already running are waited for (bounded).
extern std::atomic<bool> g_shutting_down;
extern std::atomic<int> g_kernels_running;
void install_exit_guard();
inline CUresult check_init() { return g_initialized.load(std::memory_order_acquire) ? CUDA_SUCCESS : CUDA_ERROR_NOT_INITIALIZED; }

inline uint64_t align_up(uint64_t v, uint64_t a) { return (v + a - 1) / a * a; }
inline bool is_pow2(uint64_t v) { return v && !(v & (v - 1)); }

// Monotonic clock in nanoseconds (CLOCK_MONOTONIC through the vDSO: no syscall).
uint64_t now_ns();

// One-line diagnostics to stderr, only with SINGULARITY_SIM_DEBUG=1.
void debug_log(const char* fmt, ...) __attribute__((format(printf, 1, 2)));

}  // namespace simgpu
