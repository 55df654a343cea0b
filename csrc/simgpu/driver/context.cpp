// Contexts: created and primary, the per-thread stack, synchronisation,
// limits and peer access.
#include "context.h"

#include "capture.h"
#include "pools.h"
#include "stream.h"

#include <algorithm>

namespace simgpu {

uint64_t next_context_id() {
  static std::atomic<uint64_t> next{1};
  return next.fetch_add(1, std::memory_order_relaxed);
}

ThreadState& tls() {
  thread_local ThreadState state;
  return state;
}

ThreadState::~ThreadState() {
  // The thread's default streams die with it; queued work still completes.  A capture
  // still open on one is abandoned first: stream and capture hold each other (else the
  // capture and its graph leak: LeakSanitizer in the proxy fuzzer).  Session 10 took this
  // out after one segfault of exit_with_work_queued.py, which opens no capture (so this
  // returns at once there); six runs of it through the proxy since: no crash.
  for (auto& [ctx, p] : ptds) {
    capture_abandon(*p.stream);
    p.stream->close();
  }
}

void Context::forget_stream(const Stream* s) {
  std::lock_guard<std::mutex> lock(mu);
  streams.erase(std::remove_if(streams.begin(), streams.end(),
                               [&](const std::shared_ptr<Stream>& p) { return p.get() == s; }),
                streams.end());
}

std::vector<std::shared_ptr<Stream>> Context::all_streams() {
  std::lock_guard<std::mutex> lock(mu);
  std::vector<std::shared_ptr<Stream>> out;
  out.reserve(streams.size() + 1);
  if (null_stream) out.push_back(null_stream);
  out.insert(out.end(), streams.begin(), streams.end());
  return out;
}

CUresult current_context_nosticky(Context** out) {
  SIM_CHECK(check_init());
  ThreadState& t = tls();
  if (t.in_host_callback) return CUDA_ERROR_NOT_PERMITTED;
  if (t.stack.empty()) return CUDA_ERROR_INVALID_CONTEXT;
  Context* c = t.stack.back().get();
  if (!c->alive.load(std::memory_order_acquire)) return CUDA_ERROR_CONTEXT_IS_DESTROYED;
  *out = c;
  return CUDA_SUCCESS;
}

CUresult current_context(Context** out) {
  SIM_CHECK(current_context_nosticky(out));
  return (*out)->sticky.load(std::memory_order_acquire);
}

CUresult lookup_context(CUcontext h, std::shared_ptr<Context>& out) {
  SIM_CHECK(check_init());
  if (!h) {
    Context* c;
    SIM_CHECK(current_context_nosticky(&c));
    out = c->shared_from_this();
    return CUDA_SUCCESS;
  }
  out = registry().get<Context>(h, Kind::Context);
  if (!out) return CUDA_ERROR_INVALID_CONTEXT;
  return CUDA_SUCCESS;
}

std::shared_ptr<Context> primary_context(Device& dev) {
  std::lock_guard<std::mutex> lock(dev.primary_mu);
  if (!dev.primary) {
    auto c = std::make_shared<Context>();
    c->dev = &dev;
    c->primary = true;
    c->alive.store(false);
    registry().add(c.get(), c);  // the primary context's handle lives as long as the process
    dev.primary = c;
  }
  return dev.primary;
}

CUresult synchronize_context(Context& c) {
  for (auto& s : c.all_streams()) s->wait(s->submitted());
  pools_trim_on_sync(*c.dev);
  return context_usable(c);
}

void teardown_context(Context& c) {
  // Drain the device: every stream's queued work runs (or is dropped after a fault).
  auto streams = c.all_streams();
  for (auto& s : streams) s->wait(s->submitted());
  for (auto& s : streams) {
    // An open capture and its stream hold each other (and the capture its graph): without
    // this, a context destroyed mid-capture leaks them all.
    capture_abandon(*s);
    s->close();
    registry().remove(s.get(), Kind::Stream);
  }
  std::unordered_map<const void*, Kind> owned;
  {
    std::lock_guard<std::mutex> lock(c.mu);
    c.streams.clear();
    c.null_stream.reset();
    owned.swap(c.owned);
  }
  for (auto& [h, k] : owned) {
    if (k == Kind::Event) event_teardown(h);
  }
  for (auto& [h, k] : owned) {
    if (k == Kind::Module) module_teardown(h);
  }
  memory_teardown(c);
  c.peer_mask.store(0);
  c.sticky.store(CUDA_SUCCESS);
  std::lock_guard<std::mutex> lock(c.mu);
  c.limit_stack = 1024;
  c.limit_printf_fifo = 1 << 20;
  c.limit_malloc_heap = 8 << 20;
  c.cache_config = CU_FUNC_CACHE_PREFER_NONE;
}

namespace {

bool valid_ctx_flags(unsigned flags) {
  if (flags & ~unsigned(CU_CTX_FLAGS_MASK)) return false;
  unsigned sched = flags & CU_CTX_SCHED_MASK;
  return sched == 0 || sched == CU_CTX_SCHED_SPIN || sched == CU_CTX_SCHED_YIELD || sched == CU_CTX_SCHED_BLOCKING_SYNC;
}

CUresult create_context(CUcontext* pctx, unsigned flags, CUdevice dev) {
  Device* d;
  SIM_CHECK(lookup_device(dev, &d));
  if (!pctx || !valid_ctx_flags(flags)) return CUDA_ERROR_INVALID_VALUE;
  auto c = std::make_shared<Context>();
  c->dev = d;
  c->flags = flags | CU_CTX_MAP_HOST;  // mapping host memory is always on (unified addressing)
  c->id.store(next_context_id());
  registry().add(c.get(), c);
  tls().stack.push_back(c);
  *pctx = c->handle();
  return CUDA_SUCCESS;
}

void drop_from_stack(Context* c) {
  auto& st = tls().stack;
  st.erase(std::remove_if(st.begin(), st.end(), [&](const std::shared_ptr<Context>& p) { return p.get() == c; }),
           st.end());
}

CUresult destroy_context(CUcontext h) {
  SIM_CHECK(check_init());
  auto c = registry().get<Context>(h, Kind::Context);
  if (!c || c->primary) return CUDA_ERROR_INVALID_CONTEXT;
  teardown_context(*c);
  c->alive.store(false, std::memory_order_release);
  registry().remove(h, Kind::Context);
  // Popped here; other threads that still have it current get CONTEXT_IS_DESTROYED.
  drop_from_stack(c.get());
  return CUDA_SUCCESS;
}

CUresult primary_release(CUdevice dev) {
  Device* d;
  SIM_CHECK(lookup_device(dev, &d));
  auto c = primary_context(*d);
  std::lock_guard<std::mutex> lock(d->primary_mu);
  if (d->primary_refs <= 0) return CUDA_ERROR_INVALID_CONTEXT;
  if (--d->primary_refs == 0) {
    teardown_context(*c);
    c->alive.store(false, std::memory_order_release);
  }
  return CUDA_SUCCESS;
}

CUresult primary_reset(CUdevice dev) {
  Device* d;
  SIM_CHECK(lookup_device(dev, &d));
  auto c = primary_context(*d);
  std::lock_guard<std::mutex> lock(d->primary_mu);
  if (c->alive.load()) {
    teardown_context(*c);
    // A fresh incarnation: per-thread state keyed by the old id is dropped.
    c->id.store(next_context_id());
  }
  d->primary_flags = 0;
  c->flags = CU_CTX_MAP_HOST;
  return CUDA_SUCCESS;
}

CUresult primary_set_flags(CUdevice dev, unsigned flags, bool fail_if_active) {
  Device* d;
  SIM_CHECK(lookup_device(dev, &d));
  if (!valid_ctx_flags(flags)) return CUDA_ERROR_INVALID_VALUE;
  auto c = primary_context(*d);
  std::lock_guard<std::mutex> lock(d->primary_mu);
  if (fail_if_active && c->alive.load()) return CUDA_ERROR_PRIMARY_CONTEXT_ACTIVE;
  d->primary_flags = flags;
  c->flags = flags | CU_CTX_MAP_HOST;
  return CUDA_SUCCESS;
}

}  // namespace

}  // namespace simgpu

using namespace simgpu;

extern "C" {

SIM_EXPORT CUresult CUDAAPI cuCtxCreate_v2(CUcontext* pctx, unsigned int flags, CUdevice dev) {
  SIM_TRY return create_context(pctx, flags, dev);
  SIM_END
}

SIM_EXPORT CUresult CUDAAPI cuCtxCreate(CUcontext* pctx, unsigned int flags, CUdevice dev) {
  return cuCtxCreate_v2(pctx, flags, dev);
}

SIM_EXPORT CUresult CUDAAPI cuCtxCreate_v3(CUcontext* pctx, CUexecAffinityParam* paramsArray, int numParams,
                                           unsigned int flags, CUdevice dev) {
  SIM_TRY
  SIM_CHECK(check_init());
  if (numParams < 0 || (numParams > 0 && !paramsArray)) return CUDA_ERROR_INVALID_VALUE;
  if (numParams > 0) return CUDA_ERROR_UNSUPPORTED_EXEC_AFFINITY;
  return create_context(pctx, flags, dev);
  SIM_END
}

SIM_EXPORT CUresult CUDAAPI cuCtxCreate_v4(CUcontext* pctx, CUctxCreateParams* params, unsigned int flags,
                                           CUdevice dev) {
  SIM_TRY
  SIM_CHECK(check_init());
  if (params) {
    if (params->numExecAffinityParams < 0) return CUDA_ERROR_INVALID_VALUE;
    if (params->execAffinityParams && params->cigParams) return CUDA_ERROR_INVALID_VALUE;
    if (params->numExecAffinityParams > 0 && params->execAffinityParams) return CUDA_ERROR_UNSUPPORTED_EXEC_AFFINITY;
    if (params->cigParams) return CUDA_ERROR_NOT_SUPPORTED;
  }
  return create_context(pctx, flags, dev);
  SIM_END
}

SIM_EXPORT CUresult CUDAAPI cuCtxDestroy_v2(CUcontext ctx) {
  SIM_TRY return destroy_context(ctx);
  SIM_END
}

SIM_EXPORT CUresult CUDAAPI cuCtxDestroy(CUcontext ctx) { return cuCtxDestroy_v2(ctx); }

SIM_EXPORT CUresult CUDAAPI cuCtxPushCurrent_v2(CUcontext ctx) {
  SIM_TRY
  SIM_CHECK(check_init());
  auto c = registry().get<Context>(ctx, Kind::Context);
  if (!c) return CUDA_ERROR_INVALID_CONTEXT;
  tls().stack.push_back(std::move(c));
  return CUDA_SUCCESS;
  SIM_END
}

SIM_EXPORT CUresult CUDAAPI cuCtxPushCurrent(CUcontext ctx) { return cuCtxPushCurrent_v2(ctx); }

SIM_EXPORT CUresult CUDAAPI cuCtxPopCurrent_v2(CUcontext* pctx) {
  SIM_TRY
  SIM_CHECK(check_init());
  auto& st = tls().stack;
  if (st.empty()) return CUDA_ERROR_INVALID_CONTEXT;
  if (pctx) *pctx = st.back()->handle();
  st.pop_back();
  return CUDA_SUCCESS;
  SIM_END
}

SIM_EXPORT CUresult CUDAAPI cuCtxPopCurrent(CUcontext* pctx) { return cuCtxPopCurrent_v2(pctx); }

SIM_EXPORT CUresult CUDAAPI cuCtxSetCurrent(CUcontext ctx) {
  SIM_TRY
  SIM_CHECK(check_init());
  auto& st = tls().stack;
  if (!ctx) {
    if (!st.empty()) st.pop_back();
    return CUDA_SUCCESS;
  }
  auto c = registry().get<Context>(ctx, Kind::Context);
  if (!c) return CUDA_ERROR_INVALID_CONTEXT;
  if (st.empty())
    st.push_back(std::move(c));
  else
    st.back() = std::move(c);
  return CUDA_SUCCESS;
  SIM_END
}

SIM_EXPORT CUresult CUDAAPI cuCtxGetCurrent(CUcontext* pctx) {
  SIM_TRY
  SIM_CHECK(check_init());
  if (!pctx) return CUDA_ERROR_INVALID_VALUE;
  Context* c = current_context_raw();
  *pctx = c ? c->handle() : nullptr;
  return CUDA_SUCCESS;
  SIM_END
}

SIM_EXPORT CUresult CUDAAPI cuCtxGetDevice(CUdevice* device) {
  SIM_TRY
  Context* c;
  SIM_CHECK(current_context_nosticky(&c));
  if (!device) return CUDA_ERROR_INVALID_VALUE;
  *device = c->dev->ordinal;
  return CUDA_SUCCESS;
  SIM_END
}

SIM_EXPORT CUresult CUDAAPI cuCtxGetDevice_v2(CUdevice* device, CUcontext ctx) {
  SIM_TRY
  std::shared_ptr<Context> c;
  SIM_CHECK(lookup_context(ctx, c));
  if (!device) return CUDA_ERROR_INVALID_VALUE;
  if (!c->alive.load()) return CUDA_ERROR_CONTEXT_IS_DESTROYED;
  *device = c->dev->ordinal;
  return CUDA_SUCCESS;
  SIM_END
}

SIM_EXPORT CUresult CUDAAPI cuCtxSynchronize() {
  SIM_TRY
  Context* c;
  SIM_CHECK(current_context(&c));
  SIM_CHECK(capture_check_unsafe());
  return synchronize_context(*c);
  SIM_END
}

SIM_EXPORT CUresult CUDAAPI cuCtxSynchronize_v2(CUcontext ctx) {
  SIM_TRY
  std::shared_ptr<Context> c;
  SIM_CHECK(lookup_context(ctx, c));
  SIM_CHECK(context_usable(*c));
  return synchronize_context(*c);
  SIM_END
}

SIM_EXPORT CUresult CUDAAPI cuCtxGetFlags(unsigned int* flags) {
  SIM_TRY
  Context* c;
  SIM_CHECK(current_context_nosticky(&c));
  if (!flags) return CUDA_ERROR_INVALID_VALUE;
  *flags = c->flags;
  return CUDA_SUCCESS;
  SIM_END
}

SIM_EXPORT CUresult CUDAAPI cuCtxSetFlags(unsigned int flags) {
  SIM_TRY
  Context* c;
  SIM_CHECK(current_context(&c));
  if (!valid_ctx_flags(flags)) return CUDA_ERROR_INVALID_VALUE;
  c->flags = flags | CU_CTX_MAP_HOST;
  return CUDA_SUCCESS;
  SIM_END
}

SIM_EXPORT CUresult CUDAAPI cuCtxGetApiVersion(CUcontext ctx, unsigned int* version) {
  SIM_TRY
  std::shared_ptr<Context> c;
  SIM_CHECK(lookup_context(ctx, c));
  if (!version) return CUDA_ERROR_INVALID_VALUE;
  *version = 3020;  // the context ABI every driver since CUDA 3.2 reports
  return CUDA_SUCCESS;
  SIM_END
}

SIM_EXPORT CUresult CUDAAPI cuCtxGetId(CUcontext ctx, unsigned long long* ctxId) {
  SIM_TRY
  std::shared_ptr<Context> c;
  SIM_CHECK(lookup_context(ctx, c));
  if (!ctxId) return CUDA_ERROR_INVALID_VALUE;
  if (!c->alive.load()) return CUDA_ERROR_CONTEXT_IS_DESTROYED;
  *ctxId = c->id.load();
  return CUDA_SUCCESS;
  SIM_END
}

SIM_EXPORT CUresult CUDAAPI cuCtxGetLimit(size_t* pvalue, CUlimit limit) {
  SIM_TRY
  Context* c;
  SIM_CHECK(current_context(&c));
  if (!pvalue) return CUDA_ERROR_INVALID_VALUE;
  std::lock_guard<std::mutex> lock(c->mu);
  switch (limit) {
    case CU_LIMIT_STACK_SIZE: *pvalue = c->limit_stack; break;
    case CU_LIMIT_PRINTF_FIFO_SIZE: *pvalue = c->limit_printf_fifo; break;
    case CU_LIMIT_MALLOC_HEAP_SIZE: *pvalue = c->limit_malloc_heap; break;
    case CU_LIMIT_DEV_RUNTIME_SYNC_DEPTH: *pvalue = c->limit_sync_depth; break;
    case CU_LIMIT_DEV_RUNTIME_PENDING_LAUNCH_COUNT: *pvalue = c->limit_pending_launches; break;
    case CU_LIMIT_MAX_L2_FETCH_GRANULARITY: *pvalue = c->limit_max_l2_fetch; break;
    case CU_LIMIT_PERSISTING_L2_CACHE_SIZE: *pvalue = c->limit_persisting_l2; break;
    case CU_LIMIT_SHMEM_SIZE: *pvalue = size_t(h100::kSharedPerBlockOptin); break;
    case CU_LIMIT_CIG_ENABLED:
    case CU_LIMIT_CIG_SHMEM_FALLBACK_ENABLED: *pvalue = 0; break;
    default: return CUDA_ERROR_INVALID_VALUE;
  }
  return CUDA_SUCCESS;
  SIM_END
}

SIM_EXPORT CUresult CUDAAPI cuCtxSetLimit(CUlimit limit, size_t value) {
  SIM_TRY
  Context* c;
  SIM_CHECK(current_context(&c));
  std::lock_guard<std::mutex> lock(c->mu);
  switch (limit) {
    case CU_LIMIT_STACK_SIZE:
      // Per-thread stack; a GPU caps it near 1 MiB for local memory reasons.
      if (value > (1u << 20)) return CUDA_ERROR_INVALID_VALUE;
      c->limit_stack = align_up(value, 16);
      break;
    case CU_LIMIT_PRINTF_FIFO_SIZE: c->limit_printf_fifo = value; break;
    case CU_LIMIT_MALLOC_HEAP_SIZE: c->limit_malloc_heap = value; break;
    case CU_LIMIT_DEV_RUNTIME_SYNC_DEPTH: c->limit_sync_depth = value; break;
    case CU_LIMIT_DEV_RUNTIME_PENDING_LAUNCH_COUNT: c->limit_pending_launches = value; break;
    case CU_LIMIT_MAX_L2_FETCH_GRANULARITY:
      if (value > 128) return CUDA_ERROR_INVALID_VALUE;
      c->limit_max_l2_fetch = value;
      break;
    case CU_LIMIT_PERSISTING_L2_CACHE_SIZE:
      c->limit_persisting_l2 = std::min<size_t>(value, size_t(h100::kMaxPersistingL2));
      break;
    case CU_LIMIT_SHMEM_SIZE:
    case CU_LIMIT_CIG_ENABLED:
    case CU_LIMIT_CIG_SHMEM_FALLBACK_ENABLED: return CUDA_ERROR_UNSUPPORTED_LIMIT;
    default: return CUDA_ERROR_INVALID_VALUE;
  }
  return CUDA_SUCCESS;
  SIM_END
}

SIM_EXPORT CUresult CUDAAPI cuCtxGetCacheConfig(CUfunc_cache* pconfig) {
  SIM_TRY
  Context* c;
  SIM_CHECK(current_context(&c));
  if (!pconfig) return CUDA_ERROR_INVALID_VALUE;
  std::lock_guard<std::mutex> lock(c->mu);
  *pconfig = c->cache_config;
  return CUDA_SUCCESS;
  SIM_END
}

SIM_EXPORT CUresult CUDAAPI cuCtxSetCacheConfig(CUfunc_cache config) {
  SIM_TRY
  Context* c;
  SIM_CHECK(current_context(&c));
  if (unsigned(config) > CU_FUNC_CACHE_PREFER_EQUAL) return CUDA_ERROR_INVALID_VALUE;
  std::lock_guard<std::mutex> lock(c->mu);
  c->cache_config = config;
  return CUDA_SUCCESS;
  SIM_END
}

SIM_EXPORT CUresult CUDAAPI cuCtxGetSharedMemConfig(CUsharedconfig* pConfig) {
  SIM_TRY
  Context* c;
  SIM_CHECK(current_context(&c));
  if (!pConfig) return CUDA_ERROR_INVALID_VALUE;
  *pConfig = CU_SHARED_MEM_CONFIG_FOUR_BYTE_BANK_SIZE;
  return CUDA_SUCCESS;
  SIM_END
}

SIM_EXPORT CUresult CUDAAPI cuCtxSetSharedMemConfig(CUsharedconfig config) {
  SIM_TRY
  Context* c;
  SIM_CHECK(current_context(&c));
  // Hopper has a fixed bank size: valid values are accepted and ignored, as there.
  if (unsigned(config) > CU_SHARED_MEM_CONFIG_EIGHT_BYTE_BANK_SIZE) return CUDA_ERROR_INVALID_VALUE;
  return CUDA_SUCCESS;
  SIM_END
}

SIM_EXPORT CUresult CUDAAPI cuCtxGetStreamPriorityRange(int* leastPriority, int* greatestPriority) {
  SIM_TRY
  Context* c;
  SIM_CHECK(current_context(&c));
  if (leastPriority) *leastPriority = kLeastPriority;
  if (greatestPriority) *greatestPriority = kGreatestPriority;
  return CUDA_SUCCESS;
  SIM_END
}

SIM_EXPORT CUresult CUDAAPI cuCtxResetPersistingL2Cache() {
  SIM_TRY
  Context* c;
  SIM_CHECK(current_context(&c));
  return CUDA_SUCCESS;
  SIM_END
}

SIM_EXPORT CUresult CUDAAPI cuCtxEnablePeerAccess(CUcontext peerContext, unsigned int Flags) {
  SIM_TRY
  Context* c;
  SIM_CHECK(current_context(&c));
  if (Flags != 0) return CUDA_ERROR_INVALID_VALUE;
  auto peer = registry().get<Context>(peerContext, Kind::Context);
  if (!peerContext || !peer || !peer->alive.load()) return CUDA_ERROR_INVALID_CONTEXT;
  if (peer->dev == c->dev) return CUDA_ERROR_INVALID_DEVICE;
  uint32_t bit = 1u << peer->dev->ordinal;
  uint32_t old = c->peer_mask.fetch_or(bit);
  if (old & bit) return CUDA_ERROR_PEER_ACCESS_ALREADY_ENABLED;
  return CUDA_SUCCESS;
  SIM_END
}

SIM_EXPORT CUresult CUDAAPI cuCtxDisablePeerAccess(CUcontext peerContext) {
  SIM_TRY
  Context* c;
  SIM_CHECK(current_context(&c));
  auto peer = registry().get<Context>(peerContext, Kind::Context);
  if (!peerContext || !peer) return CUDA_ERROR_INVALID_CONTEXT;
  uint32_t bit = 1u << peer->dev->ordinal;
  uint32_t old = c->peer_mask.fetch_and(~bit);
  if (!(old & bit)) return CUDA_ERROR_PEER_ACCESS_NOT_ENABLED;
  return CUDA_SUCCESS;
  SIM_END
}

SIM_EXPORT CUresult CUDAAPI cuDevicePrimaryCtxRetain(CUcontext* pctx, CUdevice dev) {
  SIM_TRY
  Device* d;
  SIM_CHECK(lookup_device(dev, &d));
  if (!pctx) return CUDA_ERROR_INVALID_VALUE;
  auto c = primary_context(*d);
  std::lock_guard<std::mutex> lock(d->primary_mu);
  if (d->primary_refs++ == 0 && !c->alive.load()) {
    c->id.store(next_context_id());
    c->flags = d->primary_flags | CU_CTX_MAP_HOST;
    c->alive.store(true, std::memory_order_release);
  }
  *pctx = c->handle();
  return CUDA_SUCCESS;
  SIM_END
}

SIM_EXPORT CUresult CUDAAPI cuDevicePrimaryCtxRelease_v2(CUdevice dev) {
  SIM_TRY return primary_release(dev);
  SIM_END
}

SIM_EXPORT CUresult CUDAAPI cuDevicePrimaryCtxRelease(CUdevice dev) { return cuDevicePrimaryCtxRelease_v2(dev); }

SIM_EXPORT CUresult CUDAAPI cuDevicePrimaryCtxReset_v2(CUdevice dev) {
  SIM_TRY return primary_reset(dev);
  SIM_END
}

SIM_EXPORT CUresult CUDAAPI cuDevicePrimaryCtxReset(CUdevice dev) { return cuDevicePrimaryCtxReset_v2(dev); }

SIM_EXPORT CUresult CUDAAPI cuDevicePrimaryCtxSetFlags_v2(CUdevice dev, unsigned int flags) {
  SIM_TRY return primary_set_flags(dev, flags, false);
  SIM_END
}

SIM_EXPORT CUresult CUDAAPI cuDevicePrimaryCtxSetFlags(CUdevice dev, unsigned int flags) {
  SIM_TRY return primary_set_flags(dev, flags, true);
  SIM_END
}

SIM_EXPORT CUresult CUDAAPI cuDevicePrimaryCtxGetState(CUdevice dev, unsigned int* flags, int* active) {
  SIM_TRY
  Device* d;
  SIM_CHECK(lookup_device(dev, &d));
  if (!flags || !active) return CUDA_ERROR_INVALID_VALUE;
  auto c = primary_context(*d);
  std::lock_guard<std::mutex> lock(d->primary_mu);
  *flags = d->primary_flags;
  *active = c->alive.load() ? 1 : 0;
  return CUDA_SUCCESS;
  SIM_END
}

}  // extern "C"
