// Managed-memory hints: cuMemAdvise, cuMemPrefetchAsync, cuMemRangeGetAttribute(s).
// All memory is coherent host memory here, so hints never move data; they
// are validated and remembered so that the range queries answer as CUDA would.
#include "memmap.h"
#include "stream.h"

namespace simgpu {

namespace {

constexpr uint32_t kHostBit = 1u << 31;

CUresult managed_range(uint64_t ptr, size_t count) {
  auto r = memmap().find(ptr);
  if (!r || r->kind != MemKind::Managed || count == 0 || count > r->size - (ptr - r->base))
    return CUDA_ERROR_INVALID_VALUE;
  return CUDA_SUCCESS;
}

CUresult check_location(const CUmemLocation& loc, bool allow_host) {
  switch (loc.type) {
    case CU_MEM_LOCATION_TYPE_DEVICE: {
      Device* d;
      return lookup_device(loc.id, &d) == CUDA_SUCCESS ? CUDA_SUCCESS : CUDA_ERROR_INVALID_DEVICE;
    }
    case CU_MEM_LOCATION_TYPE_HOST:
    case CU_MEM_LOCATION_TYPE_HOST_NUMA:
    case CU_MEM_LOCATION_TYPE_HOST_NUMA_CURRENT: return allow_host ? CUDA_SUCCESS : CUDA_ERROR_INVALID_VALUE;
    default: return CUDA_ERROR_INVALID_VALUE;
  }
}

CUmemLocation from_device(CUdevice d) {
  CUmemLocation l;
  if (d == CU_DEVICE_CPU) {
    l.type = CU_MEM_LOCATION_TYPE_HOST;
    l.id = 0;
  } else {
    l.type = CU_MEM_LOCATION_TYPE_DEVICE;
    l.id = d;
  }
  return l;
}

CUresult advise(CUdeviceptr ptr, size_t count, CUmem_advise advice, CUmemLocation loc) {
  SIM_CHECK(check_init());
  SIM_CHECK(managed_range(ptr, count));
  bool needs_loc = advice == CU_MEM_ADVISE_SET_PREFERRED_LOCATION || advice == CU_MEM_ADVISE_SET_ACCESSED_BY ||
                   advice == CU_MEM_ADVISE_UNSET_ACCESSED_BY;
  if (advice < CU_MEM_ADVISE_SET_READ_MOSTLY || advice > CU_MEM_ADVISE_UNSET_ACCESSED_BY)
    return CUDA_ERROR_INVALID_VALUE;
  if (needs_loc) SIM_CHECK(check_location(loc, true));
  uint32_t bit = loc.type == CU_MEM_LOCATION_TYPE_DEVICE ? (1u << loc.id) : kHostBit;
  memmap().with(ptr, [&](MemRange& r) {
    switch (advice) {
      case CU_MEM_ADVISE_SET_READ_MOSTLY: r.read_mostly = true; break;
      case CU_MEM_ADVISE_UNSET_READ_MOSTLY: r.read_mostly = false; break;
      case CU_MEM_ADVISE_SET_PREFERRED_LOCATION: r.preferred = loc; break;
      case CU_MEM_ADVISE_UNSET_PREFERRED_LOCATION: r.preferred = {CU_MEM_LOCATION_TYPE_INVALID, 0}; break;
      case CU_MEM_ADVISE_SET_ACCESSED_BY: r.accessed_by |= bit; break;
      case CU_MEM_ADVISE_UNSET_ACCESSED_BY: r.accessed_by &= ~bit; break;
    }
  });
  return CUDA_SUCCESS;
}

CUresult prefetch(CUdeviceptr ptr, size_t count, CUmemLocation loc, unsigned flags, CUstream h, bool ptds) {
  std::shared_ptr<Stream> s;
  SIM_CHECK(resolve_stream(h, ptds, s));
  if (flags != 0) return CUDA_ERROR_INVALID_VALUE;
  SIM_CHECK(managed_range(ptr, count));
  SIM_CHECK(check_location(loc, true));
  memmap().with(ptr, [&](MemRange& r) { r.last_prefetch = loc; });
  // A prefetch is stream-ordered work that moves nothing here.
  return submit(*s, EmptyWork{});
}

// Value of one range attribute into data (dataSize bytes).
CUresult range_attribute(void* data, size_t size, CUmem_range_attribute a, CUdeviceptr ptr, size_t count) {
  SIM_CHECK(managed_range(ptr, count));
  auto r = memmap().find(ptr);
  auto put_int = [&](int v) -> CUresult {
    if (size != 4) return CUDA_ERROR_INVALID_VALUE;
    std::memcpy(data, &v, 4);
    return CUDA_SUCCESS;
  };
  auto loc_as_device = [](const CUmemLocation& l) {
    if (l.type == CU_MEM_LOCATION_TYPE_DEVICE) return l.id;
    if (l.type == CU_MEM_LOCATION_TYPE_INVALID) return int(CU_DEVICE_INVALID);
    return int(CU_DEVICE_CPU);
  };
  switch (a) {
    case CU_MEM_RANGE_ATTRIBUTE_READ_MOSTLY: return put_int(r->read_mostly ? 1 : 0);
    case CU_MEM_RANGE_ATTRIBUTE_PREFERRED_LOCATION: return put_int(loc_as_device(r->preferred));
    case CU_MEM_RANGE_ATTRIBUTE_LAST_PREFETCH_LOCATION: return put_int(loc_as_device(r->last_prefetch));
    case CU_MEM_RANGE_ATTRIBUTE_PREFERRED_LOCATION_TYPE: return put_int(int(r->preferred.type));
    case CU_MEM_RANGE_ATTRIBUTE_PREFERRED_LOCATION_ID: return put_int(r->preferred.id);
    case CU_MEM_RANGE_ATTRIBUTE_LAST_PREFETCH_LOCATION_TYPE: return put_int(int(r->last_prefetch.type));
    case CU_MEM_RANGE_ATTRIBUTE_LAST_PREFETCH_LOCATION_ID: return put_int(r->last_prefetch.id);
    case CU_MEM_RANGE_ATTRIBUTE_ACCESSED_BY: {
      if (size == 0 || size % 4) return CUDA_ERROR_INVALID_VALUE;
      auto* out = static_cast<int*>(data);
      size_t n = size / 4, k = 0;
      for (int d = 0; d < device_count() && k < n; ++d)
        if (r->accessed_by & (1u << d)) out[k++] = d;
      if ((r->accessed_by & kHostBit) && k < n) out[k++] = CU_DEVICE_CPU;
      for (; k < n; ++k) out[k] = CU_DEVICE_INVALID;
      return CUDA_SUCCESS;
    }
    default: return CUDA_ERROR_INVALID_VALUE;
  }
}

}  // namespace

}  // namespace simgpu

using namespace simgpu;

extern "C" {

SIM_EXPORT CUresult CUDAAPI cuMemAdvise_v2(CUdeviceptr devPtr, size_t count, CUmem_advise advice,
                                           CUmemLocation location) {
  SIM_TRY return advise(devPtr, count, advice, location);
  SIM_END
}

SIM_EXPORT CUresult CUDAAPI cuMemAdvise(CUdeviceptr devPtr, size_t count, CUmem_advise advice, CUdevice device) {
  SIM_TRY return advise(devPtr, count, advice, from_device(device));
  SIM_END
}

SIM_EXPORT CUresult CUDAAPI cuMemPrefetchAsync_v2(CUdeviceptr devPtr, size_t count, CUmemLocation location,
                                                  unsigned int flags, CUstream hStream) {
  SIM_TRY return prefetch(devPtr, count, location, flags, hStream, false);
  SIM_END
}
SIM_EXPORT CUresult CUDAAPI cuMemPrefetchAsync_v2_ptsz(CUdeviceptr devPtr, size_t count, CUmemLocation location,
                                                       unsigned int flags, CUstream hStream) {
  SIM_TRY return prefetch(devPtr, count, location, flags, hStream, true);
  SIM_END
}
SIM_EXPORT CUresult CUDAAPI cuMemPrefetchAsync(CUdeviceptr devPtr, size_t count, CUdevice dstDevice,
                                               CUstream hStream) {
  SIM_TRY return prefetch(devPtr, count, from_device(dstDevice), 0, hStream, false);
  SIM_END
}
SIM_EXPORT CUresult CUDAAPI cuMemPrefetchAsync_ptsz(CUdeviceptr devPtr, size_t count, CUdevice dstDevice,
                                                    CUstream hStream) {
  SIM_TRY return prefetch(devPtr, count, from_device(dstDevice), 0, hStream, true);
  SIM_END
}

static CUresult prefetch_batch(CUdeviceptr* dptrs, size_t* sizes, size_t count, CUmemLocation* locs, size_t* idxs,
                               size_t nlocs, unsigned long long flags, CUstream h, bool ptds) {
  if (count == 0 || !dptrs || !sizes || nlocs == 0 || !locs || !idxs || idxs[0] != 0 || flags != 0)
    return CUDA_ERROR_INVALID_VALUE;
  for (size_t i = 1; i < nlocs; ++i)
    if (idxs[i] <= idxs[i - 1] || idxs[i] >= count) return CUDA_ERROR_INVALID_VALUE;
  size_t li = 0;
  for (size_t i = 0; i < count; ++i) {
    while (li + 1 < nlocs && idxs[li + 1] <= i) ++li;
    SIM_CHECK(prefetch(dptrs[i], sizes[i], locs[li], 0, h, ptds));
  }
  return CUDA_SUCCESS;
}

SIM_EXPORT CUresult CUDAAPI cuMemPrefetchBatchAsync(CUdeviceptr* dptrs, size_t* sizes, size_t count,
                                                    CUmemLocation* prefetchLocs, size_t* prefetchLocIdxs,
                                                    size_t numPrefetchLocs, unsigned long long flags,
                                                    CUstream hStream) {
  SIM_TRY return prefetch_batch(dptrs, sizes, count, prefetchLocs, prefetchLocIdxs, numPrefetchLocs, flags, hStream,
                                false);
  SIM_END
}
SIM_EXPORT CUresult CUDAAPI cuMemPrefetchBatchAsync_ptsz(CUdeviceptr* dptrs, size_t* sizes, size_t count,
                                                         CUmemLocation* prefetchLocs, size_t* prefetchLocIdxs,
                                                         size_t numPrefetchLocs, unsigned long long flags,
                                                         CUstream hStream) {
  SIM_TRY return prefetch_batch(dptrs, sizes, count, prefetchLocs, prefetchLocIdxs, numPrefetchLocs, flags, hStream,
                                true);
  SIM_END
}

SIM_EXPORT CUresult CUDAAPI cuMemRangeGetAttribute(void* data, size_t dataSize, CUmem_range_attribute attribute,
                                                   CUdeviceptr devPtr, size_t count) {
  SIM_TRY
  SIM_CHECK(check_init());
  if (!data) return CUDA_ERROR_INVALID_VALUE;
  return range_attribute(data, dataSize, attribute, devPtr, count);
  SIM_END
}

SIM_EXPORT CUresult CUDAAPI cuMemRangeGetAttributes(void** data, size_t* dataSizes, CUmem_range_attribute* attributes,
                                                    size_t numAttributes, CUdeviceptr devPtr, size_t count) {
  SIM_TRY
  SIM_CHECK(check_init());
  if (!data || !dataSizes || !attributes || numAttributes == 0) return CUDA_ERROR_INVALID_VALUE;
  for (size_t i = 0; i < numAttributes; ++i) {
    if (!data[i]) return CUDA_ERROR_INVALID_VALUE;
    SIM_CHECK(range_attribute(data[i], dataSizes[i], attributes[i], devPtr, count));
  }
  return CUDA_SUCCESS;
  SIM_END
}

}  // extern "C"
