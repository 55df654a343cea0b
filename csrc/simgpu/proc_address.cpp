// cuGetProcAddress for libsimgpu.so, its table generated from
// csrc/common/driver_api.def.
#include "api.h"
#include "proc_resolve.h"

namespace {

#define LEGACY false
#define PTDS true
const sing::api::ProcEntry kTable[] = {
#define CU_FN(sym, base, ver, variant, policy) {#base, ver, variant, #sym, reinterpret_cast<void*>(&::sym)},
#include "driver_api.def"
#undef CU_FN
};
#undef LEGACY
#undef PTDS

}  // namespace

extern "C" {

SIM_EXPORT CUresult CUDAAPI cuGetProcAddress_v2(const char* symbol, void** pfn, int cudaVersion, cuuint64_t flags,
                                                CUdriverProcAddressQueryResult* symbolStatus) {
  return sing::api::resolve_proc(kTable, sizeof(kTable) / sizeof(kTable[0]), symbol, pfn, cudaVersion, flags,
                                 symbolStatus);
}

SIM_EXPORT CUresult CUDAAPI cuGetProcAddress(const char* symbol, void** pfn, int cudaVersion, cuuint64_t flags) {
  return cuGetProcAddress_v2(symbol, pfn, cudaVersion, flags, nullptr);
}

}  // extern "C"
