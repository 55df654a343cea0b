// Profiler control, the private export tables, context-wide events.
#include "context.h"
#include "event.h"

#include "cudaProfiler.h"

using namespace simgpu;

extern "C" {

// There is no profiler to start: success, as the driver returns when no tool is attached.
SIM_EXPORT CUresult CUDAAPI cuProfilerStart() {
  SIM_TRY
  Context* c;
  return current_context(&c);
  SIM_END
}

SIM_EXPORT CUresult CUDAAPI cuProfilerStop() {
  SIM_TRY
  Context* c;
  return current_context(&c);
  SIM_END
}

SIM_EXPORT CUresult CUDAAPI cuProfilerInitialize(const char* configFile, const char* outputFile,
                                                 CUoutput_mode outputMode) {
  SIM_TRY
  Context* c;
  SIM_CHECK(current_context(&c));
  return CUDA_ERROR_NOT_SUPPORTED;  // deprecated and removed from the toolkit's profilers
  SIM_END
}

// NVIDIA's private export tables are known only by reverse engineering and
// are out of scope (DESIGN.md section 8): the runtime must not rely on them.
SIM_EXPORT CUresult CUDAAPI cuGetExportTable(const void** ppExportTable, const CUuuid* pExportTableId) {
  if (ppExportTable) *ppExportTable = nullptr;
  return CUDA_ERROR_NOT_SUPPORTED;
}

// cuCtxRecordEvent: an event that completes when all work submitted to the
// context so far has: a marker on the legacy stream implies exactly that.
SIM_EXPORT CUresult CUDAAPI cuCtxRecordEvent(CUcontext hCtx, CUevent hEvent) {
  SIM_TRY
  std::shared_ptr<Context> c;
  SIM_CHECK(lookup_context(hCtx, c));
  SIM_CHECK(context_usable(*c));
  std::shared_ptr<Event> e;
  SIM_CHECK(lookup_event(hEvent, e));
  if (e->ctx != c) return CUDA_ERROR_INVALID_HANDLE;
  // The legacy stream implicitly waits for blocking streams; non-blocking ones get explicit waits.
  auto ls = legacy_stream(*c);
  for (auto& s : c->all_streams()) {
    if (s.get() == ls.get() || s->blocking()) continue;
    uint64_t seq = s->submitted();
    if (s->completed() < seq) submit(*ls, WaitWork{s, seq});
  }
  e->record(*ls);
  return CUDA_SUCCESS;
  SIM_END
}

SIM_EXPORT CUresult CUDAAPI cuCtxWaitEvent(CUcontext hCtx, CUevent hEvent) {
  SIM_TRY
  std::shared_ptr<Context> c;
  SIM_CHECK(lookup_context(hCtx, c));
  SIM_CHECK(context_usable(*c));
  std::shared_ptr<Event> e;
  SIM_CHECK(lookup_event(hEvent, e));
  std::shared_ptr<Stream> other;
  uint64_t seq;
  e->point(other, seq);
  if (!other || other->completed() >= seq) return CUDA_SUCCESS;
  // Future work of the whole context waits: the legacy stream (which every
  // blocking stream, even a new one, waits for) and each non-blocking stream.
  for (auto& s : c->all_streams()) SIM_CHECK(submit(*s, WaitWork{other, seq}));
  return CUDA_SUCCESS;
  SIM_END
}

}  // extern "C"
