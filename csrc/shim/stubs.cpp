// The exported driver API of libsingshim.so, generated from driver_api.def.
//
// Each exported symbol is a one-instruction stub that jumps through a slot
// holding its implementation: generic forwarding (forward.h) for SYNC, ASYNC
// and DESTROY entries, a hand-written function (custom.h) for LOCAL, SHIM and
// CUSTOM ones, CUDA_ERROR_NOT_SUPPORTED otherwise.  A jump keeps every
// argument exactly as the caller passed it, whatever the signature.
// cuGetProcAddress hands out the slot contents directly.
#include "custom.h"
#include "forward.h"
#include "proc_resolve.h"
#include "wire/opcodes.h"

namespace sing::shim {
extern "C" CUresult shim_not_supported() { return CUDA_ERROR_NOT_SUPPORTED; }
}  // namespace sing::shim

using sing::shim::Forward;

#define SHIM_IMPL_SYNC(sym) &Forward<sing::wire::kOp_##sym, decltype(::sym)>::sync
#define SHIM_IMPL_DESTROY(sym) &Forward<sing::wire::kOp_##sym, decltype(::sym)>::sync
#define SHIM_IMPL_PROXY(sym) &Forward<sing::wire::kOp_##sym, decltype(::sym)>::sync
#define SHIM_IMPL_ASYNC(sym) &Forward<sing::wire::kOp_##sym, decltype(::sym)>::async
#define SHIM_IMPL_LOCAL(sym) &sing::shim::custom::sym
#define SHIM_IMPL_SHIM(sym) &sing::shim::custom::sym
#define SHIM_IMPL_CUSTOM(sym) &sing::shim::custom::sym
#define SHIM_IMPL_UNSUPPORTED(sym) &sing::shim::shim_not_supported

extern "C" {
#define CU_FN(sym, base, ver, variant, policy) \
  __attribute__((visibility("hidden"))) void* shim_fn_##sym = reinterpret_cast<void*>(SHIM_IMPL_##policy(sym));
#include "driver_api.def"
#undef CU_FN
}

#define CU_FN(sym, base, ver, variant, policy)                                              \
  asm(".pushsection .text\n.globl " #sym "\n.type " #sym ",@function\n.p2align 4\n" #sym \
      ":\n\tjmp *shim_fn_" #sym "(%rip)\n.size " #sym ",.-" #sym "\n.popsection\n");
#include "driver_api.def"
#undef CU_FN

namespace {

#define LEGACY false
#define PTDS true
const sing::api::ProcEntry kTable[] = {
#define CU_FN(sym, base, ver, variant, policy) {#base, ver, variant, #sym, &shim_fn_##sym},
#include "driver_api.def"
#undef CU_FN
};
#undef LEGACY
#undef PTDS

}  // namespace

namespace sing::shim::custom {

CUresult cuGetProcAddress_v2(const char* symbol, void** pfn, int cudaVersion, cuuint64_t flags,
                             CUdriverProcAddressQueryResult* symbolStatus) {
  // ProcEntry::fn holds the address of the slot; answer with its content.
  CUresult r = sing::api::resolve_proc(kTable, sizeof(kTable) / sizeof(kTable[0]), symbol, pfn, cudaVersion, flags,
                                       symbolStatus);
  if (r == CUDA_SUCCESS) *pfn = *static_cast<void**>(*pfn);
  return r;
}

CUresult cuGetProcAddress(const char* symbol, void** pfn, int cudaVersion, cuuint64_t flags) {
  return cuGetProcAddress_v2(symbol, pfn, cudaVersion, flags, nullptr);
}

// NVIDIA's private tables: out of scope (shared/DESIGN.md §8).
CUresult cuGetExportTable(const void** ppExportTable, const CUuuid* pExportTableId) {
  if (ppExportTable) *ppExportTable = nullptr;
  return CUDA_ERROR_NOT_SUPPORTED;
}

}  // namespace sing::shim::custom
