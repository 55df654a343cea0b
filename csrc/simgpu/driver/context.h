// Contexts (primary and created), the per-thread context stack, and the
// per-thread state every entry point may consult.
#pragma once

#include "core.h"
#include "device.h"

#include <unordered_map>
#include <vector>

namespace simgpu {

struct Stream;

struct Context : Object, std::enable_shared_from_this<Context> {
  Context() : Object(Kind::Context) {}
  CUcontext handle() { return reinterpret_cast<CUcontext>(this); }

  Device* dev = nullptr;
  bool primary = false;
  unsigned flags = 0;
  // Changes every time a primary context is (re)activated, so per-thread
  // state keyed by the context can tell an old incarnation from the new one.
  std::atomic<uint64_t> id{0};
  std::atomic<bool> alive{true};  // false: destroyed / primary inactive
  // First asynchronous error (a kernel fault).  Sticky: every later call on
  // this context returns it, as on a GPU, until the context is destroyed or
  // (primary) reset.
  std::atomic<CUresult> sticky{CUDA_SUCCESS};
  std::atomic<uint32_t> peer_mask{0};  // bit p: peer access to device p enabled

  // Guards the members below.
  std::mutex mu;
  std::shared_ptr<Stream> null_stream;             // legacy default stream, created on first use
  std::vector<std::shared_ptr<Stream>> streams;    // every other live stream (user + per-thread)
  std::unordered_map<const void*, Kind> owned;     // events / modules to tear down with the context
  size_t limit_stack = 1024;
  size_t limit_printf_fifo = 1 << 20;
  size_t limit_malloc_heap = 8 << 20;
  size_t limit_sync_depth = 2;
  size_t limit_pending_launches = 2048;
  size_t limit_max_l2_fetch = 64;
  size_t limit_persisting_l2 = 0;
  CUfunc_cache cache_config = CU_FUNC_CACHE_PREFER_NONE;

  void set_sticky(CUresult err) {
    CUresult expected = CUDA_SUCCESS;
    sticky.compare_exchange_strong(expected, err, std::memory_order_acq_rel);
  }
  // Every stream of the context that work may be pending on (null stream first).
  std::vector<std::shared_ptr<Stream>> all_streams();
  // Drops a closed stream from `streams` (its worker has drained it).
  void forget_stream(const Stream* s);
  void own(const void* h, Kind k) {
    std::lock_guard<std::mutex> lock(mu);
    owned[h] = k;
  }
  void disown(const void* h) {
    std::lock_guard<std::mutex> lock(mu);
    owned.erase(h);
  }
};

// The state a thread carries between calls.
struct ThreadState {
  std::vector<std::shared_ptr<Context>> stack;  // back() is current
  struct Ptds {
    uint64_t ctx_id;
    std::shared_ptr<Stream> stream;
  };
  std::unordered_map<const Context*, Ptds> ptds;  // per-thread default streams
  CUstreamCaptureMode capture_mode = CU_STREAM_CAPTURE_MODE_GLOBAL;
  int thread_local_captures = 0;  // captures begun by this thread in a non-relaxed mode
  bool in_host_callback = false;  // a stream worker running a host function
  ~ThreadState();
};
ThreadState& tls();

inline Context* current_context_raw() {
  auto& s = tls().stack;
  return s.empty() ? nullptr : s.back().get();
}

// The current context, ready for work: cuInit done, a context current and
// alive, no sticky error (which is returned instead), not inside a host callback.
CUresult current_context(Context** out);
// Same, but a sticky error does not fail it (getters that still work after a fault).
CUresult current_context_nosticky(Context** out);
// Validates a CUcontext handle (null = the current context).
CUresult lookup_context(CUcontext h, std::shared_ptr<Context>& out);
// Whether ctx may still be used (alive + no sticky error).
inline CUresult context_usable(const Context& c) {
  if (!c.alive.load(std::memory_order_acquire)) return CUDA_ERROR_CONTEXT_IS_DESTROYED;
  return c.sticky.load(std::memory_order_acquire);
}

// Primary context of a device, creating the (inactive) object on first use.
std::shared_ptr<Context> primary_context(Device& dev);

// Waits for all work of the context; returns its sticky error.
CUresult synchronize_context(Context& c);
// Destroys everything the context owns (streams, events, modules,
// allocations).  Used by cuCtxDestroy, primary release-to-zero and reset.
void teardown_context(Context& c);

uint64_t next_context_id();

// Teardown hooks, implemented by the files that own each kind of resource.
void module_teardown(const void* handle);   // module.cpp: unload, free globals
void event_teardown(const void* handle);    // event.cpp
void memory_teardown(Context& c);           // memory.cpp: free the context's allocations

}  // namespace simgpu
