// Releasing what a departed (or reset) client held, newest kinds of object
// first so nothing is destroyed while something built on it still exists.
#include "dispatch.h"
#include "generic.h"
#include "graph_memory.h"
#include "log.h"

namespace sing::proxy {

namespace {
template <class T, class F>
void each(Client& c, F destroy) {
  for (auto& [vid, real] : c.handles.live(wire::HandleTraits<T>::kind)) {
    destroy(reinterpret_cast<T>(real));
    c.handles.forget(wire::HandleTraits<T>::kind, vid);
  }
}
}  // namespace

void release_client_objects(Client& c) {
  // Streams first: waiting for them lets any host function of this client
  // give up (closing) and every kernel still using its memory finish.
  each<CUstream>(c, [](CUstream s) {
    BACKEND(cuStreamSynchronize)(s);
    BACKEND(cuStreamDestroy_v2)(s);
  });
  {
    std::lock_guard<std::mutex> lock(c.mu);
    for (auto& f : c.pending_frees) BACKEND(cuEventDestroy_v2)(f.event);
    c.pending_frees.clear();
  }
  each<CUgraphExec>(c, [](CUgraphExec g) { BACKEND(cuGraphExecDestroy)(g); });
  each<CUgraph>(c, [](CUgraph g) { BACKEND(cuGraphDestroy)(g); });
  graph_mem_clear(c);  // its memory goes with the heap
  each<CUevent>(c, [](CUevent e) { BACKEND(cuEventDestroy_v2)(e); });
  each<CUmodule>(c, [](CUmodule m) { BACKEND(cuModuleUnload)(m); });
  each<CUlibrary>(c, [](CUlibrary l) { BACKEND(cuLibraryUnload)(l); });
  std::lock_guard<std::mutex> lock(c.mu);
  for (auto& [va, m] : c.app_mappings) BACKEND(cuMemUnmap)(va, m.bytes);
  c.app_mappings.clear();
  for (auto& [vid, a] : c.app_allocations) BACKEND(cuMemRelease)(a.real);
  c.app_allocations.clear();
  for (auto& [ptr, b] : c.host_blocks) BACKEND(cuMemHostUnregister)(reinterpret_cast<void*>(ptr));
  c.host_blocks.clear();
  c.pools.clear();
  c.pool_of_alloc.clear();
  c.images.clear();
  c.module_functions.clear();
  // Contexts the app created (primary contexts belong to the proxy).
  for (auto& [vid, real] : c.handles.live(HandleKind::Context)) {
    CUdevice dev;
    unsigned flags;
    int active;
    CUcontext primary = nullptr;
    if (BACKEND(cuCtxPushCurrent_v2)(reinterpret_cast<CUcontext>(real)) == CUDA_SUCCESS) {
      BACKEND(cuCtxGetDevice)(&dev);
      BACKEND(cuCtxPopCurrent_v2)(nullptr);
      BACKEND(cuDevicePrimaryCtxGetState)(dev, &flags, &active);
      if (active) BACKEND(cuDevicePrimaryCtxRetain)(&primary, dev);
      if (primary) BACKEND(cuDevicePrimaryCtxRelease_v2)(dev);
    }
    if (reinterpret_cast<uint64_t>(primary) != real) BACKEND(cuCtxDestroy_v2)(reinterpret_cast<CUcontext>(real));
    c.handles.forget(HandleKind::Context, vid);
  }
}

}  // namespace sing::proxy
