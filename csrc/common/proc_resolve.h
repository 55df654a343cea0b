// Inline implementation of sing::api::resolve_proc, shared by libsimgpu and
// libsingshim so both answer cuGetProcAddress identically.
#pragma once
#include "driver_api.h"

#include <algorithm>
#include <cstring>

namespace sing::api {

inline CUresult resolve_proc(const ProcEntry* table, std::size_t n, const char* symbol, void** pfn,
                             int cuda_version, cuuint64_t flags, CUdriverProcAddressQueryResult* status) {
  auto set_status = [&](CUdriverProcAddressQueryResult s) {
    if (status) *status = s;
  };
  if (!symbol || !pfn) {
    set_status(CU_GET_PROC_ADDRESS_SYMBOL_NOT_FOUND);
    return CUDA_ERROR_INVALID_VALUE;
  }
  *pfn = nullptr;
  const bool want_ptds = (flags & CU_GET_PROC_ADDRESS_PER_THREAD_DEFAULT_STREAM) != 0;
  auto lo = std::lower_bound(table, table + n, symbol,
                             [](const ProcEntry& e, const char* s) { return std::strcmp(e.base, s) < 0; });
  auto hi = lo;
  while (hi != table + n && std::strcmp(hi->base, symbol) == 0) ++hi;
  if (lo == hi) {
    set_status(CU_GET_PROC_ADDRESS_SYMBOL_NOT_FOUND);
    return CUDA_ERROR_NOT_FOUND;
  }
  const ProcEntry* best = nullptr;      // newest legacy entry <= version
  const ProcEntry* best_pt = nullptr;   // newest per-thread entry <= version
  for (auto e = lo; e != hi; ++e) {
    if (e->version > cuda_version) continue;
    if (e->per_thread) {
      if (!best_pt || e->version >= best_pt->version) best_pt = e;
    } else if (!best || e->version >= best->version) {
      best = e;
    }
  }
  if (!best) {
    set_status(CU_GET_PROC_ADDRESS_VERSION_NOT_SUFFICIENT);
    return CUDA_ERROR_NOT_FOUND;
  }
  // A per-thread twin only stands in for the same ABI generation: it must not
  // be older than the legacy symbol chosen.
  const ProcEntry* pick = (want_ptds && best_pt && best_pt->version >= best->version) ? best_pt : best;
  *pfn = pick->fn;
  set_status(CU_GET_PROC_ADDRESS_SUCCESS);
  return CUDA_SUCCESS;
}

}  // namespace sing::api
