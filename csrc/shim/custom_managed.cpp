// Managed-memory range attributes and batched prefetches.  The proxy keeps
// the hints (csrc/proxy/custom_managed.cpp); advice and single prefetches are
// forwarded generically.
#include <cstring>

#include "call.h"
#include "custom.h"
#include "wire/opcodes.h"

namespace sing::shim::custom {

using namespace sing::wire;

namespace {

// One round trip for every attribute: the proxy answers each as int32s,
// which land in the app's buffers; what an ACCESSED_BY list leaves of its
// buffer says "no device", as the driver fills it.
CUresult range_attributes(uint16_t op, void** data, const size_t* sizes, const CUmem_range_attribute* attrs, size_t n,
                          CUdeviceptr ptr, size_t count) {
  Answer a = sync_call(op, [&](Writer& w) {
    w.put<uint64_t>(ptr);
    w.put<uint64_t>(count);
    w.put<uint64_t>(n);
    for (size_t i = 0; i < n; ++i) {
      w.put<uint32_t>(attrs[i]);
      w.put<uint32_t>(0);
      w.put<uint64_t>(sizes[i]);
    }
  });
  if (a.result != CUDA_SUCCESS) return a.result;
  Reader r = a.reader();
  for (size_t i = 0; i < n; ++i) {
    const uint32_t k = r.get<uint32_t>();
    const uint8_t* values = k ? r.take(k * 4) : nullptr;
    if (!r.ok() || uint64_t(k) * 4 > sizes[i]) return CUDA_ERROR_UNKNOWN;
    auto* out = static_cast<uint8_t*>(data[i]);
    if (k) std::memcpy(out, values, k * 4);
    const int32_t none = CU_DEVICE_INVALID;
    for (size_t j = k; j < sizes[i] / 4; ++j) std::memcpy(out + 4 * j, &none, 4);
  }
  return CUDA_SUCCESS;
}

// Checked as the driver checks a batch, then issued in order as single
// prefetches on the stream (as cuMemcpyBatchAsync is taken apart).
template <uint16_t PrefetchOp>
CUresult prefetch_batch(CUdeviceptr* dptrs, size_t* sizes, size_t count, CUmemLocation* locs, size_t* loc_idxs,
                        size_t num_locs, unsigned long long flags, CUstream stream) {
  CUresult err;
  if (!call_channel(PrefetchOp, &err)) return err;
  if (count == 0 || !dptrs || !sizes || num_locs == 0 || !locs || !loc_idxs || loc_idxs[0] != 0 || flags != 0)
    return CUDA_ERROR_INVALID_VALUE;
  for (size_t i = 1; i < num_locs; ++i)
    if (loc_idxs[i] <= loc_idxs[i - 1] || loc_idxs[i] >= count) return CUDA_ERROR_INVALID_VALUE;
  size_t li = 0;
  for (size_t i = 0; i < count; ++i) {
    while (li + 1 < num_locs && loc_idxs[li + 1] <= i) ++li;
    CUresult r = Forward<PrefetchOp, decltype(::cuMemPrefetchAsync_v2)>::sync(dptrs[i], sizes[i], locs[li], 0, stream);
    if (r != CUDA_SUCCESS) return r;
  }
  return CUDA_SUCCESS;
}

}  // namespace

CUresult cuMemRangeGetAttribute(void* data, size_t size, CUmem_range_attribute attr, CUdeviceptr ptr, size_t count) {
  CUresult err;
  if (!call_channel(kOp_cuMemRangeGetAttribute, &err)) return err;
  if (!data) return CUDA_ERROR_INVALID_VALUE;
  return range_attributes(kOp_cuMemRangeGetAttribute, &data, &size, &attr, 1, ptr, count);
}

CUresult cuMemRangeGetAttributes(void** data, size_t* sizes, CUmem_range_attribute* attrs, size_t n, CUdeviceptr ptr,
                                 size_t count) {
  CUresult err;
  if (!call_channel(kOp_cuMemRangeGetAttributes, &err)) return err;
  if (!data || !sizes || !attrs || n == 0) return CUDA_ERROR_INVALID_VALUE;
  for (size_t i = 0; i < n; ++i)
    if (!data[i]) return CUDA_ERROR_INVALID_VALUE;
  return range_attributes(kOp_cuMemRangeGetAttributes, data, sizes, attrs, n, ptr, count);
}

CUresult cuMemPrefetchBatchAsync(CUdeviceptr* d, size_t* n, size_t count, CUmemLocation* locs, size_t* idxs,
                                 size_t num_locs, unsigned long long flags, CUstream st) {
  return prefetch_batch<kOp_cuMemPrefetchAsync_v2>(d, n, count, locs, idxs, num_locs, flags, st);
}
CUresult cuMemPrefetchBatchAsync_ptsz(CUdeviceptr* d, size_t* n, size_t count, CUmemLocation* locs, size_t* idxs,
                                      size_t num_locs, unsigned long long flags, CUstream st) {
  return prefetch_batch<kOp_cuMemPrefetchAsync_v2_ptsz>(d, n, count, locs, idxs, num_locs, flags, st);
}

}  // namespace sing::shim::custom
