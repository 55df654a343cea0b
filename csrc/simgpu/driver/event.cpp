// Events: create, record, query, synchronize, elapsed time, destroy.
#include "event.h"

#include "capture.h"
#include "pools.h"

namespace simgpu {

bool Event::done() {
  std::shared_ptr<Stream> s;
  uint64_t q;
  point(s, q);
  return !s || s->completed() >= q;
}

void Event::point(std::shared_ptr<Stream>& s, uint64_t& q) {
  std::lock_guard<std::mutex> lock(mu);
  s = stream;
  q = seq;
}

void Event::record(Stream& s) {
  uint64_t g;
  {
    std::lock_guard<std::mutex> lock(mu);
    g = ++gen;
    recorded = true;
    capture.reset();
    capture_nodes.clear();
  }
  auto self = std::static_pointer_cast<Event>(registry().find(this, Kind::Event));
  Work w = EventRecordWork{self, g};
  if (implicit_deps_idle(s) && s.try_inline(w)) {
    std::lock_guard<std::mutex> lock(mu);
    if (gen == g) stream.reset();
    return;
  }
  uint64_t q = submit_seq(s, EventRecordWork{self, g});
  std::lock_guard<std::mutex> lock(mu);
  if (gen == g) {
    stream = s.shared_from_this();
    seq = q;
  }
}

CUresult lookup_event(CUevent h, std::shared_ptr<Event>& out) {
  SIM_CHECK(check_init());
  if (tls().in_host_callback) return CUDA_ERROR_NOT_PERMITTED;
  out = registry().get<Event>(h, Kind::Event);
  if (!out) return CUDA_ERROR_INVALID_HANDLE;
  if (!out->ctx->alive.load(std::memory_order_acquire)) return CUDA_ERROR_CONTEXT_IS_DESTROYED;
  return CUDA_SUCCESS;
}

void event_teardown(const void* h) { registry().remove(h, Kind::Event); }

namespace {

CUresult record(CUevent hEvent, CUstream hStream, unsigned flags, bool ptds) {
  std::shared_ptr<Event> e;
  SIM_CHECK(lookup_event(hEvent, e));
  if (flags & ~unsigned(CU_EVENT_RECORD_EXTERNAL)) return CUDA_ERROR_INVALID_VALUE;
  std::shared_ptr<Stream> s;
  SIM_CHECK(resolve_stream(hStream, ptds, s));
  if (s->ctx != e->ctx) return CUDA_ERROR_INVALID_HANDLE;
  if (s->capturing.load(std::memory_order_acquire)) return capture_record_event(*s, *e, flags);
  if (flags & CU_EVENT_RECORD_EXTERNAL) return CUDA_ERROR_INVALID_VALUE;  // only meaningful in capture
  SIM_CHECK(capture_check_implicit(*s));
  e->record(*s);
  return CUDA_SUCCESS;
}

CUresult elapsed(float* ms, CUevent hStart, CUevent hEnd) {
  if (!ms) return CUDA_ERROR_INVALID_VALUE;
  std::shared_ptr<Event> a, b;
  SIM_CHECK(lookup_event(hStart, a));
  SIM_CHECK(lookup_event(hEnd, b));
  if (!a->timing() || !b->timing()) return CUDA_ERROR_INVALID_HANDLE;
  {
    std::lock_guard<std::mutex> la(a->mu);
    if (!a->recorded || a->capture) return CUDA_ERROR_INVALID_HANDLE;
  }
  {
    std::lock_guard<std::mutex> lb(b->mu);
    if (!b->recorded || b->capture) return CUDA_ERROR_INVALID_HANDLE;
  }
  if (!a->done() || !b->done()) return CUDA_ERROR_NOT_READY;
  SIM_CHECK(context_usable(*a->ctx));
  uint64_t ta, tb;
  {
    std::lock_guard<std::mutex> la(a->mu);
    if (a->time_gen != a->gen) return CUDA_ERROR_INVALID_HANDLE;
    ta = a->time_ns;
  }
  {
    std::lock_guard<std::mutex> lb(b->mu);
    if (b->time_gen != b->gen) return CUDA_ERROR_INVALID_HANDLE;
    tb = b->time_ns;
  }
  *ms = float((double(tb) - double(ta)) / 1e6);
  return CUDA_SUCCESS;
}

}  // namespace

}  // namespace simgpu

using namespace simgpu;

extern "C" {

SIM_EXPORT CUresult CUDAAPI cuEventCreate(CUevent* phEvent, unsigned int Flags) {
  SIM_TRY
  Context* c;
  SIM_CHECK(current_context(&c));
  if (!phEvent) return CUDA_ERROR_INVALID_VALUE;
  const unsigned all = CU_EVENT_BLOCKING_SYNC | CU_EVENT_DISABLE_TIMING | CU_EVENT_INTERPROCESS;
  if (Flags & ~all) return CUDA_ERROR_INVALID_VALUE;
  if ((Flags & CU_EVENT_INTERPROCESS) && !(Flags & CU_EVENT_DISABLE_TIMING)) return CUDA_ERROR_INVALID_VALUE;
  auto e = std::make_shared<Event>();
  e->ctx = c->shared_from_this();
  e->flags = Flags;
  registry().add(e.get(), e);
  c->own(e.get(), Kind::Event);
  *phEvent = e->handle();
  return CUDA_SUCCESS;
  SIM_END
}

SIM_EXPORT CUresult CUDAAPI cuEventRecord(CUevent hEvent, CUstream hStream) {
  SIM_TRY return record(hEvent, hStream, 0, false);
  SIM_END
}
SIM_EXPORT CUresult CUDAAPI cuEventRecord_ptsz(CUevent hEvent, CUstream hStream) {
  SIM_TRY return record(hEvent, hStream, 0, true);
  SIM_END
}
SIM_EXPORT CUresult CUDAAPI cuEventRecordWithFlags(CUevent hEvent, CUstream hStream, unsigned int flags) {
  SIM_TRY return record(hEvent, hStream, flags, false);
  SIM_END
}
SIM_EXPORT CUresult CUDAAPI cuEventRecordWithFlags_ptsz(CUevent hEvent, CUstream hStream, unsigned int flags) {
  SIM_TRY return record(hEvent, hStream, flags, true);
  SIM_END
}

SIM_EXPORT CUresult CUDAAPI cuEventQuery(CUevent hEvent) {
  SIM_TRY
  std::shared_ptr<Event> e;
  SIM_CHECK(lookup_event(hEvent, e));
  {
    std::lock_guard<std::mutex> lock(e->mu);
    if (e->capture) return CUDA_ERROR_CAPTURED_EVENT;
  }
  SIM_CHECK(context_usable(*e->ctx));
  return e->done() ? CUDA_SUCCESS : CUDA_ERROR_NOT_READY;
  SIM_END
}

SIM_EXPORT CUresult CUDAAPI cuEventSynchronize(CUevent hEvent) {
  SIM_TRY
  std::shared_ptr<Event> e;
  SIM_CHECK(lookup_event(hEvent, e));
  {
    std::lock_guard<std::mutex> lock(e->mu);
    if (e->capture) return CUDA_ERROR_CAPTURED_EVENT;
  }
  SIM_CHECK(context_usable(*e->ctx));
  std::shared_ptr<Stream> s;
  uint64_t q;
  e->point(s, q);
  if (s) s->wait(q);
  pools_trim_on_sync(*e->ctx->dev);
  return context_usable(*e->ctx);
  SIM_END
}

SIM_EXPORT CUresult CUDAAPI cuEventDestroy_v2(CUevent hEvent) {
  SIM_TRY
  SIM_CHECK(check_init());
  auto e = registry().remove(hEvent, Kind::Event);
  if (!e) return CUDA_ERROR_INVALID_HANDLE;
  static_cast<Event&>(*e).ctx->disown(hEvent);
  return CUDA_SUCCESS;
  SIM_END
}

SIM_EXPORT CUresult CUDAAPI cuEventDestroy(CUevent hEvent) { return cuEventDestroy_v2(hEvent); }

SIM_EXPORT CUresult CUDAAPI cuEventElapsedTime_v2(float* pMilliseconds, CUevent hStart, CUevent hEnd) {
  SIM_TRY return elapsed(pMilliseconds, hStart, hEnd);
  SIM_END
}

SIM_EXPORT CUresult CUDAAPI cuEventElapsedTime(float* pMilliseconds, CUevent hStart, CUevent hEnd) {
  SIM_TRY return elapsed(pMilliseconds, hStart, hEnd);
  SIM_END
}

}  // extern "C"
