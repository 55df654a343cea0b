// Shared view of the driver API list (driver_api.def) for every native part.
#pragma once

// Every old ABI version and every per-thread-default-stream twin is declared
// only under this macro; the generated tables need all of them, and the
// signature of each list entry is checked by the compiler against these.
#ifndef __CUDA_API_VERSION_INTERNAL
#define __CUDA_API_VERSION_INTERNAL 1
#endif
#include <cuda.h>
#include <cudaProfiler.h>

#include <cstdint>

namespace sing::api {

// One entry point as cuGetProcAddress sees it.
struct ProcEntry {
  const char* base;     // name asked for, e.g. "cuMemAlloc"
  int version;          // ABI version that introduced this symbol, e.g. 3020
  bool per_thread;      // the _ptds/_ptsz twin
  const char* symbol;   // exported name, e.g. "cuMemAlloc_v2"
  void* fn;
};

}  // namespace sing::api
