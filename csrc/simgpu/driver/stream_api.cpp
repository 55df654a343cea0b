// cuStream* entry points (capture lives in capture.cpp), host functions and
// stream memory operations.
#include "capture.h"
#include "copy.h"
#include "event.h"
#include "memory.h"
#include "pools.h"

#include <algorithm>

namespace simgpu {

namespace {

CUresult create(CUstream* ph, unsigned flags, int priority) {
  Context* c;
  SIM_CHECK(current_context(&c));
  if (!ph) return CUDA_ERROR_INVALID_VALUE;
  if (flags & ~unsigned(CU_STREAM_NON_BLOCKING)) return CUDA_ERROR_INVALID_VALUE;
  // Out-of-range priorities are clamped, as documented.
  priority = std::clamp(priority, kGreatestPriority, kLeastPriority);
  auto s = new_stream(*c, Stream::Type::User, flags, priority);
  *ph = s->handle();
  return CUDA_SUCCESS;
}

CUresult destroy(CUstream h) {
  SIM_CHECK(check_init());
  if (!h || h == CU_STREAM_LEGACY || h == CU_STREAM_PER_THREAD) return CUDA_ERROR_INVALID_HANDLE;
  auto obj = registry().remove(h, Kind::Stream);
  if (!obj) return CUDA_ERROR_INVALID_HANDLE;
  auto& s = static_cast<Stream&>(*obj);
  capture_abandon(s);
  // Returns at once; queued work still runs, then the worker lets go.
  s.close();
  return CUDA_SUCCESS;
}

// Waiting on the legacy stream waits for what a marker submitted to it would:
// its own work and everything in the context's blocking streams.
void wait_all_implied(Stream& s) {
  if (s.type == Stream::Type::Legacy) {
    for (auto& b : s.ctx->all_streams())
      if (b.get() == &s || b->blocking()) b->wait(b->submitted());
  } else {
    s.wait(s.submitted());
  }
}

bool all_implied_idle(Stream& s) {
  if (s.type == Stream::Type::Legacy) {
    for (auto& b : s.ctx->all_streams())
      if ((b.get() == &s || b->blocking()) && !b->idle()) return false;
    return true;
  }
  return s.idle();
}

CUresult query(CUstream h, bool ptds) {
  std::shared_ptr<Stream> s;
  SIM_CHECK(resolve_stream(h, ptds, s));
  if (s->capturing.load()) return capture_invalidate(*s, CUDA_ERROR_STREAM_CAPTURE_UNSUPPORTED);
  return all_implied_idle(*s) ? CUDA_SUCCESS : CUDA_ERROR_NOT_READY;
}

CUresult synchronize(CUstream h, bool ptds) {
  std::shared_ptr<Stream> s;
  SIM_CHECK(resolve_stream(h, ptds, s));
  if (s->capturing.load()) return capture_invalidate(*s, CUDA_ERROR_STREAM_CAPTURE_UNSUPPORTED);
  SIM_CHECK(check_not_capturing_unsafe());
  wait_all_implied(*s);
  pools_trim_on_sync(*s->ctx->dev);
  return context_usable(*s->ctx);
}

CUresult wait_event(CUstream h, CUevent hEvent, unsigned flags, bool ptds) {
  std::shared_ptr<Stream> s;
  SIM_CHECK(resolve_stream(h, ptds, s));
  std::shared_ptr<Event> e;
  SIM_CHECK(lookup_event(hEvent, e));
  if (flags & ~unsigned(CU_EVENT_WAIT_EXTERNAL)) return CUDA_ERROR_INVALID_VALUE;
  bool captured;
  {
    std::lock_guard<std::mutex> lock(e->mu);
    captured = e->capture != nullptr;
  }
  if (captured || s->capturing.load()) return capture_wait_event(*s, *e, flags);
  std::shared_ptr<Stream> other;
  uint64_t seq;
  e->point(other, seq);
  if (!other || other.get() == s.get() || other->completed() >= seq) return CUDA_SUCCESS;
  return submit(*s, WaitWork{other, seq});
}

CUresult host_func(CUstream h, CUhostFn fn, void* user, bool ptds) {
  std::shared_ptr<Stream> s;
  SIM_CHECK(resolve_stream(h, ptds, s));
  if (!fn) return CUDA_ERROR_INVALID_VALUE;
  return submit(*s, HostWork{fn, user});
}

CUresult add_callback(CUstream h, CUstreamCallback cb, void* user, unsigned flags, bool ptds) {
  std::shared_ptr<Stream> s;
  SIM_CHECK(resolve_stream(h, ptds, s));
  if (!cb || flags != 0) return CUDA_ERROR_INVALID_VALUE;
  if (s->capturing.load()) return capture_invalidate(*s, CUDA_ERROR_STREAM_CAPTURE_UNSUPPORTED);
  return submit(*s, CallbackWork{cb, user, h});
}

template <class F>
CUresult with_stream(CUstream h, bool ptds, F f) {
  std::shared_ptr<Stream> s;
  SIM_CHECK(resolve_stream_nosticky(h, ptds, s));
  return f(*s);
}

CUresult get_attribute(CUstream h, CUstreamAttrID attr, CUstreamAttrValue* out, bool ptds) {
  return with_stream(h, ptds, [&](Stream& s) -> CUresult {
    if (!out) return CUDA_ERROR_INVALID_VALUE;
    switch (attr) {
      case CU_LAUNCH_ATTRIBUTE_ACCESS_POLICY_WINDOW: out->accessPolicyWindow = s.access_policy; break;
      case CU_LAUNCH_ATTRIBUTE_SYNCHRONIZATION_POLICY: out->syncPolicy = s.sync_policy; break;
      case CU_LAUNCH_ATTRIBUTE_PRIORITY: out->priority = s.priority; break;
      case CU_LAUNCH_ATTRIBUTE_MEM_SYNC_DOMAIN: out->memSyncDomain = CU_LAUNCH_MEM_SYNC_DOMAIN_DEFAULT; break;
      case CU_LAUNCH_ATTRIBUTE_MEM_SYNC_DOMAIN_MAP:
        out->memSyncDomainMap.default_ = 0;
        out->memSyncDomainMap.remote = 1;
        break;
      default: return CUDA_ERROR_INVALID_VALUE;
    }
    return CUDA_SUCCESS;
  });
}

CUresult set_attribute(CUstream h, CUstreamAttrID attr, const CUstreamAttrValue* v, bool ptds) {
  return with_stream(h, ptds, [&](Stream& s) -> CUresult {
    if (!v) return CUDA_ERROR_INVALID_VALUE;
    switch (attr) {
      case CU_LAUNCH_ATTRIBUTE_ACCESS_POLICY_WINDOW:
        if (v->accessPolicyWindow.hitRatio < 0 || v->accessPolicyWindow.hitRatio > 1) return CUDA_ERROR_INVALID_VALUE;
        s.access_policy = v->accessPolicyWindow;
        break;
      case CU_LAUNCH_ATTRIBUTE_SYNCHRONIZATION_POLICY:
        if (v->syncPolicy < CU_SYNC_POLICY_AUTO || v->syncPolicy > CU_SYNC_POLICY_BLOCKING_SYNC)
          return CUDA_ERROR_INVALID_VALUE;
        s.sync_policy = v->syncPolicy;
        break;
      case CU_LAUNCH_ATTRIBUTE_PRIORITY: s.priority = std::clamp(v->priority, kGreatestPriority, kLeastPriority); break;
      case CU_LAUNCH_ATTRIBUTE_MEM_SYNC_DOMAIN:
      case CU_LAUNCH_ATTRIBUTE_MEM_SYNC_DOMAIN_MAP: break;  // one memory domain here: accepted, no effect
      default: return CUDA_ERROR_INVALID_VALUE;
    }
    return CUDA_SUCCESS;
  });
}

CUresult mem_value(CUstream h, CUdeviceptr addr, uint64_t value, unsigned flags, bool wait, bool is64, bool ptds) {
  std::shared_ptr<Stream> s;
  SIM_CHECK(resolve_stream(h, ptds, s));
  unsigned size = is64 ? 8 : 4;
  if (!addr || addr % size) return CUDA_ERROR_INVALID_VALUE;
  if (wait) {
    unsigned op = flags & ~unsigned(CU_STREAM_WAIT_VALUE_FLUSH);
    if (op > CU_STREAM_WAIT_VALUE_NOR) return CUDA_ERROR_INVALID_VALUE;
    if (flags & CU_STREAM_WAIT_VALUE_FLUSH) return CUDA_ERROR_NOT_SUPPORTED;  // CAN_FLUSH_REMOTE_WRITES is 0
  } else if (flags & ~unsigned(CU_STREAM_WRITE_VALUE_NO_MEMORY_BARRIER)) {
    return CUDA_ERROR_INVALID_VALUE;
  }
  SIM_CHECK(check_device_ptr(addr, size));
  return submit(*s, MemValueWork{addr, value, wait, is64, flags});
}

CUresult batch_mem_op(CUstream h, unsigned count, CUstreamBatchMemOpParams* ops, unsigned flags, bool ptds) {
  std::shared_ptr<Stream> s;
  SIM_CHECK(resolve_stream(h, ptds, s));
  if (flags != 0 || (count && !ops) || count > 256) return CUDA_ERROR_INVALID_VALUE;
  std::vector<MemValueWork> works;
  for (unsigned i = 0; i < count; ++i) {
    const auto& p = ops[i];
    switch (p.operation) {
      case CU_STREAM_MEM_OP_WAIT_VALUE_32:
      case CU_STREAM_MEM_OP_WAIT_VALUE_64: {
        bool is64 = p.operation == CU_STREAM_MEM_OP_WAIT_VALUE_64;
        unsigned size = is64 ? 8 : 4;
        if (!p.waitValue.address || p.waitValue.address % size) return CUDA_ERROR_INVALID_VALUE;
        if ((p.waitValue.flags & ~unsigned(CU_STREAM_WAIT_VALUE_FLUSH)) > CU_STREAM_WAIT_VALUE_NOR)
          return CUDA_ERROR_INVALID_VALUE;
        SIM_CHECK(check_device_ptr(p.waitValue.address, size));
        works.push_back({p.waitValue.address, is64 ? p.waitValue.value64 : p.waitValue.value, true, is64,
                         p.waitValue.flags & ~unsigned(CU_STREAM_WAIT_VALUE_FLUSH)});
        break;
      }
      case CU_STREAM_MEM_OP_WRITE_VALUE_32:
      case CU_STREAM_MEM_OP_WRITE_VALUE_64: {
        bool is64 = p.operation == CU_STREAM_MEM_OP_WRITE_VALUE_64;
        unsigned size = is64 ? 8 : 4;
        if (!p.writeValue.address || p.writeValue.address % size) return CUDA_ERROR_INVALID_VALUE;
        SIM_CHECK(check_device_ptr(p.writeValue.address, size));
        works.push_back({p.writeValue.address, is64 ? p.writeValue.value64 : p.writeValue.value, false, is64,
                         p.writeValue.flags});
        break;
      }
      case CU_STREAM_MEM_OP_BARRIER:
      case CU_STREAM_MEM_OP_FLUSH_REMOTE_WRITES: break;  // host-coherent memory: nothing to flush
      default: return CUDA_ERROR_INVALID_VALUE;
    }
  }
  for (auto& w : works) SIM_CHECK(submit(*s, w));
  return CUDA_SUCCESS;
}

}  // namespace

}  // namespace simgpu

using namespace simgpu;

#define SIM_TWIN(legacy, ptdsname, params, impl, ...)                                   \
  SIM_EXPORT CUresult CUDAAPI legacy params { SIM_TRY return impl(__VA_ARGS__, false); SIM_END } \
  SIM_EXPORT CUresult CUDAAPI ptdsname params { SIM_TRY return impl(__VA_ARGS__, true); SIM_END }

extern "C" {

SIM_EXPORT CUresult CUDAAPI cuStreamCreate(CUstream* phStream, unsigned int Flags) {
  SIM_TRY return create(phStream, Flags, kLeastPriority);
  SIM_END
}

SIM_EXPORT CUresult CUDAAPI cuStreamCreateWithPriority(CUstream* phStream, unsigned int flags, int priority) {
  SIM_TRY return create(phStream, flags, priority);
  SIM_END
}

SIM_EXPORT CUresult CUDAAPI cuStreamDestroy_v2(CUstream hStream) {
  SIM_TRY return destroy(hStream);
  SIM_END
}
SIM_EXPORT CUresult CUDAAPI cuStreamDestroy(CUstream hStream) { return cuStreamDestroy_v2(hStream); }

SIM_TWIN(cuStreamQuery, cuStreamQuery_ptsz, (CUstream hStream), query, hStream)
SIM_TWIN(cuStreamSynchronize, cuStreamSynchronize_ptsz, (CUstream hStream), synchronize, hStream)
SIM_TWIN(cuStreamWaitEvent, cuStreamWaitEvent_ptsz, (CUstream hStream, CUevent hEvent, unsigned int Flags),
         wait_event, hStream, hEvent, Flags)
SIM_TWIN(cuLaunchHostFunc, cuLaunchHostFunc_ptsz, (CUstream hStream, CUhostFn fn, void* userData), host_func,
         hStream, fn, userData)
SIM_TWIN(cuStreamAddCallback, cuStreamAddCallback_ptsz,
         (CUstream hStream, CUstreamCallback callback, void* userData, unsigned int flags), add_callback, hStream,
         callback, userData, flags)

static CUresult get_flags(CUstream h, unsigned* flags, bool ptds) {
  return with_stream(h, ptds, [&](Stream& s) -> CUresult {
    if (!flags) return CUDA_ERROR_INVALID_VALUE;
    *flags = s.flags;
    return CUDA_SUCCESS;
  });
}
SIM_TWIN(cuStreamGetFlags, cuStreamGetFlags_ptsz, (CUstream hStream, unsigned int* flags), get_flags, hStream, flags)

static CUresult get_priority(CUstream h, int* priority, bool ptds) {
  return with_stream(h, ptds, [&](Stream& s) -> CUresult {
    if (!priority) return CUDA_ERROR_INVALID_VALUE;
    *priority = s.priority;
    return CUDA_SUCCESS;
  });
}
SIM_TWIN(cuStreamGetPriority, cuStreamGetPriority_ptsz, (CUstream hStream, int* priority), get_priority, hStream,
         priority)

static CUresult get_ctx(CUstream h, CUcontext* pctx, bool ptds) {
  return with_stream(h, ptds, [&](Stream& s) -> CUresult {
    if (!pctx) return CUDA_ERROR_INVALID_VALUE;
    *pctx = s.ctx->handle();
    return CUDA_SUCCESS;
  });
}
SIM_TWIN(cuStreamGetCtx, cuStreamGetCtx_ptsz, (CUstream hStream, CUcontext* pctx), get_ctx, hStream, pctx)

static CUresult get_ctx2(CUstream h, CUcontext* pctx, CUgreenCtx* pgreen, bool ptds) {
  return with_stream(h, ptds, [&](Stream& s) -> CUresult {
    if (!pctx || !pgreen) return CUDA_ERROR_INVALID_VALUE;
    *pctx = s.ctx->handle();
    *pgreen = nullptr;
    return CUDA_SUCCESS;
  });
}
SIM_TWIN(cuStreamGetCtx_v2, cuStreamGetCtx_v2_ptsz, (CUstream hStream, CUcontext* pCtx, CUgreenCtx* pGreenCtx),
         get_ctx2, hStream, pCtx, pGreenCtx)

static CUresult get_id(CUstream h, unsigned long long* id, bool ptds) {
  return with_stream(h, ptds, [&](Stream& s) -> CUresult {
    if (!id) return CUDA_ERROR_INVALID_VALUE;
    *id = s.id;
    return CUDA_SUCCESS;
  });
}
SIM_TWIN(cuStreamGetId, cuStreamGetId_ptsz, (CUstream hStream, unsigned long long* streamId), get_id, hStream,
         streamId)

static CUresult get_device(CUstream h, CUdevice* dev, bool ptds) {
  return with_stream(h, ptds, [&](Stream& s) -> CUresult {
    if (!dev) return CUDA_ERROR_INVALID_VALUE;
    *dev = s.ctx->dev->ordinal;
    return CUDA_SUCCESS;
  });
}
SIM_TWIN(cuStreamGetDevice, cuStreamGetDevice_ptsz, (CUstream hStream, CUdevice* device), get_device, hStream, device)

SIM_TWIN(cuStreamGetAttribute, cuStreamGetAttribute_ptsz,
         (CUstream hStream, CUstreamAttrID attr, CUstreamAttrValue* value_out), get_attribute, hStream, attr,
         value_out)
SIM_TWIN(cuStreamSetAttribute, cuStreamSetAttribute_ptsz,
         (CUstream hStream, CUstreamAttrID attr, const CUstreamAttrValue* value), set_attribute, hStream, attr, value)

static CUresult copy_attributes(CUstream dst, CUstream src, bool ptds) {
  std::shared_ptr<Stream> d, s;
  SIM_CHECK(resolve_stream_nosticky(dst, ptds, d));
  SIM_CHECK(resolve_stream_nosticky(src, ptds, s));
  d->access_policy = s->access_policy;
  d->sync_policy = s->sync_policy;
  return CUDA_SUCCESS;
}
SIM_TWIN(cuStreamCopyAttributes, cuStreamCopyAttributes_ptsz, (CUstream dst, CUstream src), copy_attributes, dst, src)

static CUresult attach_mem(CUstream h, CUdeviceptr dptr, size_t length, unsigned flags, bool ptds) {
  std::shared_ptr<Stream> s;
  SIM_CHECK(resolve_stream(h, ptds, s));
  if (flags != CU_MEM_ATTACH_GLOBAL && flags != CU_MEM_ATTACH_HOST && flags != CU_MEM_ATTACH_SINGLE)
    return CUDA_ERROR_INVALID_VALUE;
  auto r = memmap().find(dptr);
  if (!r || r->kind != MemKind::Managed) return CUDA_ERROR_INVALID_VALUE;
  if (length != 0 && (r->base != dptr || length != r->size)) return CUDA_ERROR_INVALID_VALUE;
  // All memory is coherent here: attachment changes visibility rules only, never data.
  return CUDA_SUCCESS;
}
SIM_TWIN(cuStreamAttachMemAsync, cuStreamAttachMemAsync_ptsz,
         (CUstream hStream, CUdeviceptr dptr, size_t length, unsigned int flags), attach_mem, hStream, dptr, length,
         flags)

static CUresult write32(CUstream h, CUdeviceptr a, cuuint32_t v, unsigned f, bool ptds) {
  return mem_value(h, a, v, f, false, false, ptds);
}
static CUresult wait32(CUstream h, CUdeviceptr a, cuuint32_t v, unsigned f, bool ptds) {
  return mem_value(h, a, v, f, true, false, ptds);
}
static CUresult write64(CUstream h, CUdeviceptr a, cuuint64_t v, unsigned f, bool ptds) {
  return mem_value(h, a, v, f, false, true, ptds);
}
static CUresult wait64(CUstream h, CUdeviceptr a, cuuint64_t v, unsigned f, bool ptds) {
  return mem_value(h, a, v, f, true, true, ptds);
}
SIM_TWIN(cuStreamWriteValue32_v2, cuStreamWriteValue32_v2_ptsz,
         (CUstream stream, CUdeviceptr addr, cuuint32_t value, unsigned int flags), write32, stream, addr, value,
         flags)
SIM_TWIN(cuStreamWaitValue32_v2, cuStreamWaitValue32_v2_ptsz,
         (CUstream stream, CUdeviceptr addr, cuuint32_t value, unsigned int flags), wait32, stream, addr, value, flags)
SIM_TWIN(cuStreamWriteValue64_v2, cuStreamWriteValue64_v2_ptsz,
         (CUstream stream, CUdeviceptr addr, cuuint64_t value, unsigned int flags), write64, stream, addr, value,
         flags)
SIM_TWIN(cuStreamWaitValue64_v2, cuStreamWaitValue64_v2_ptsz,
         (CUstream stream, CUdeviceptr addr, cuuint64_t value, unsigned int flags), wait64, stream, addr, value, flags)
SIM_TWIN(cuStreamWriteValue32, cuStreamWriteValue32_ptsz,
         (CUstream stream, CUdeviceptr addr, cuuint32_t value, unsigned int flags), write32, stream, addr, value,
         flags)
SIM_TWIN(cuStreamWaitValue32, cuStreamWaitValue32_ptsz,
         (CUstream stream, CUdeviceptr addr, cuuint32_t value, unsigned int flags), wait32, stream, addr, value, flags)
SIM_TWIN(cuStreamWriteValue64, cuStreamWriteValue64_ptsz,
         (CUstream stream, CUdeviceptr addr, cuuint64_t value, unsigned int flags), write64, stream, addr, value,
         flags)
SIM_TWIN(cuStreamWaitValue64, cuStreamWaitValue64_ptsz,
         (CUstream stream, CUdeviceptr addr, cuuint64_t value, unsigned int flags), wait64, stream, addr, value, flags)
SIM_TWIN(cuStreamBatchMemOp_v2, cuStreamBatchMemOp_v2_ptsz,
         (CUstream stream, unsigned int count, CUstreamBatchMemOpParams* paramArray, unsigned int flags),
         batch_mem_op, stream, count, paramArray, flags)
SIM_TWIN(cuStreamBatchMemOp, cuStreamBatchMemOp_ptsz,
         (CUstream stream, unsigned int count, CUstreamBatchMemOpParams* paramArray, unsigned int flags),
         batch_mem_op, stream, count, paramArray, flags)

}  // extern "C"
