// Managed-memory hints through the proxy: cuMemAdvise, cuMemPrefetchAsync
// and cuMemRangeGetAttribute(s), answered from the proxy's record of each
// managed block (managed_hints.h), checked in the order libsimgpu checks them.
#include <cstring>
#include <vector>

#include "capture_node.h"
#include "graph_memory.h"
#include "handler_util.h"

namespace sing::proxy::custom {

namespace {

// More attributes in one cuMemRangeGetAttributes than any program asks for
// (the driver has seven): the answer must fit the response area.
constexpr uint64_t kMaxRangeAttributes = 256;

// [ptr, ptr + count) inside one managed block: its hints.  Under client.mu.
ManagedHints* managed_range(Client& client, uint64_t ptr, uint64_t count) {
  auto it = client.host_blocks.upper_bound(ptr);
  if (it == client.host_blocks.begin()) return nullptr;
  --it;
  HostBlock& b = it->second;
  const uint64_t off = ptr - it->first;
  if (b.kind != kManaged || count == 0 || off >= b.bytes || count > b.bytes - off) return nullptr;
  return &b.hints;
}

// Enum values as the app sent them: any 32 bits, which must not be loaded as
// the enum type (out of its range that is undefined behaviour).
template <class E>
uint32_t raw(const E& e) {
  static_assert(sizeof(E) == sizeof(uint32_t));
  uint32_t v;
  std::memcpy(&v, &e, sizeof(v));
  return v;
}

// A device of the backend, or a host location.
CUresult check_location(const CUmemLocation& loc) {
  switch (raw(loc.type)) {
    case CU_MEM_LOCATION_TYPE_DEVICE: {
      CUdevice d;
      if (loc.id >= ManagedHints::kMaxDevices || BACKEND(cuDeviceGet)(&d, loc.id) != CUDA_SUCCESS)
        return CUDA_ERROR_INVALID_DEVICE;
      return CUDA_SUCCESS;
    }
    case CU_MEM_LOCATION_TYPE_HOST:
    case CU_MEM_LOCATION_TYPE_HOST_NUMA:
    case CU_MEM_LOCATION_TYPE_HOST_NUMA_CURRENT: return CUDA_SUCCESS;
    default: return CUDA_ERROR_INVALID_VALUE;
  }
}

// The CUDA 8 entry points name a device, CU_DEVICE_CPU for the host; the
// CUDA 12.2 ones a location.
CUmemLocation location_of(CUdevice d) {
  if (d == CU_DEVICE_CPU) return {CU_MEM_LOCATION_TYPE_HOST, 0};
  return {CU_MEM_LOCATION_TYPE_DEVICE, d};
}
CUmemLocation location_of(const CUmemLocation& l) { return l; }

CUresult advise(Client& client, uint64_t ptr, uint64_t count, uint32_t advice, const CUmemLocation& loc) {
  const bool needs_location = advice == CU_MEM_ADVISE_SET_PREFERRED_LOCATION ||
                              advice == CU_MEM_ADVISE_SET_ACCESSED_BY || advice == CU_MEM_ADVISE_UNSET_ACCESSED_BY;
  // Asked before taking the lock (a backend call); the range is checked first all the same.
  const CUresult location = needs_location ? check_location(loc) : CUDA_SUCCESS;
  std::lock_guard<std::mutex> lock(client.mu);
  ManagedHints* h = managed_range(client, ptr, count);
  if (!h || advice < CU_MEM_ADVISE_SET_READ_MOSTLY || advice > CU_MEM_ADVISE_UNSET_ACCESSED_BY)
    return CUDA_ERROR_INVALID_VALUE;
  if (location != CUDA_SUCCESS) return location;
  // Only for the advice whose location was checked (a device id is then in range).
  auto bit = [&] { return raw(loc.type) == CU_MEM_LOCATION_TYPE_DEVICE ? 1ull << loc.id : ManagedHints::kHostBit; };
  switch (advice) {
    case CU_MEM_ADVISE_SET_READ_MOSTLY: h->read_mostly = true; break;
    case CU_MEM_ADVISE_UNSET_READ_MOSTLY: h->read_mostly = false; break;
    case CU_MEM_ADVISE_SET_PREFERRED_LOCATION: h->preferred = loc; break;
    case CU_MEM_ADVISE_UNSET_PREFERRED_LOCATION: h->preferred = {CU_MEM_LOCATION_TYPE_INVALID, 0}; break;
    case CU_MEM_ADVISE_SET_ACCESSED_BY: h->accessed_by |= bit(); break;
    case CU_MEM_ADVISE_UNSET_ACCESSED_BY: h->accessed_by &= ~bit(); break;
  }
  return CUDA_SUCCESS;
}

// Moves nothing (the memory is host memory on both sides of the proxy), but
// is checked and, on a capturing stream, captured as the backend would (an
// empty node).
CUresult prefetch(Client& client, uint64_t ptr, uint64_t count, const CUmemLocation& loc, unsigned flags,
                  CUstream stream, bool ptds) {
  CUstreamCaptureStatus st = CU_STREAM_CAPTURE_STATUS_NONE;
  // The stream must be usable here (destroyed, or no context for the default one).
  auto capturing = ptds ? BACKEND(cuStreamIsCapturing_ptsz) : BACKEND(cuStreamIsCapturing);
  CUresult r = capturing(stream, &st);
  if (r != CUDA_SUCCESS) return r;
  if (flags != 0) return CUDA_ERROR_INVALID_VALUE;
  const CUresult location = check_location(loc);
  {
    std::lock_guard<std::mutex> lock(client.mu);
    ManagedHints* h = managed_range(client, ptr, count);
    if (!h) return CUDA_ERROR_INVALID_VALUE;
    if (location != CUDA_SUCCESS) return location;
    h->last_prefetch = loc;
  }
  return st == CU_STREAM_CAPTURE_STATUS_NONE ? CUDA_SUCCESS : capture_empty_node(stream, ptds);
}

// Device ordinals as the range attributes give them: CU_DEVICE_CPU for the
// host, CU_DEVICE_INVALID for no location.
int as_device(const CUmemLocation& l) {
  if (l.type == CU_MEM_LOCATION_TYPE_DEVICE) return l.id;
  if (l.type == CU_MEM_LOCATION_TYPE_INVALID) return CU_DEVICE_INVALID;
  return CU_DEVICE_CPU;
}

// One attribute's value as int32s: one for every attribute but
// ACCESSED_BY, whose list (devices ascending, then the host) the shim pads
// to the app's size with CU_DEVICE_INVALID.
CUresult attribute(const ManagedHints& h, uint32_t a, uint64_t size, std::vector<int32_t>* out) {
  out->clear();
  if (a == CU_MEM_RANGE_ATTRIBUTE_ACCESSED_BY) {
    if (size == 0 || size % 4) return CUDA_ERROR_INVALID_VALUE;
    for (int d = 0; d < ManagedHints::kMaxDevices; ++d)
      if (h.accessed_by & (1ull << d)) out->push_back(d);
    if (h.accessed_by & ManagedHints::kHostBit) out->push_back(CU_DEVICE_CPU);
    if (out->size() > size / 4) out->resize(size / 4);
    return CUDA_SUCCESS;
  }
  int v;
  switch (a) {
    case CU_MEM_RANGE_ATTRIBUTE_READ_MOSTLY: v = h.read_mostly ? 1 : 0; break;
    case CU_MEM_RANGE_ATTRIBUTE_PREFERRED_LOCATION: v = as_device(h.preferred); break;
    case CU_MEM_RANGE_ATTRIBUTE_LAST_PREFETCH_LOCATION: v = as_device(h.last_prefetch); break;
    case CU_MEM_RANGE_ATTRIBUTE_PREFERRED_LOCATION_TYPE: v = int(h.preferred.type); break;
    case CU_MEM_RANGE_ATTRIBUTE_PREFERRED_LOCATION_ID: v = h.preferred.id; break;
    case CU_MEM_RANGE_ATTRIBUTE_LAST_PREFETCH_LOCATION_TYPE: v = int(h.last_prefetch.type); break;
    case CU_MEM_RANGE_ATTRIBUTE_LAST_PREFETCH_LOCATION_ID: v = h.last_prefetch.id; break;
    default: return CUDA_ERROR_INVALID_VALUE;
  }
  if (size != 4) return CUDA_ERROR_INVALID_VALUE;
  out->push_back(v);
  return CUDA_SUCCESS;
}

// {u64 ptr, u64 count, u64 n, n x {u32 attribute, u32 0, u64 size}}
//   -> n x {u32 k, k x i32}
CUresult range_attributes(Call& c) {
  const uint64_t ptr = c.in.get<uint64_t>(), count = c.in.get<uint64_t>(), n = c.in.get<uint64_t>();
  if (!c.in.ok() || n == 0 || n > kMaxRangeAttributes) return CUDA_ERROR_INVALID_VALUE;
  std::vector<std::pair<uint32_t, uint64_t>> asked(n);
  for (auto& [a, size] : asked) {
    a = c.in.get<uint32_t>();
    c.in.get<uint32_t>();
    size = c.in.get<uint64_t>();
  }
  if (!c.in.ok() || !c.in.at_end()) return CUDA_ERROR_INVALID_VALUE;
  std::lock_guard<std::mutex> lock(c.client.mu);
  const ManagedHints* h = managed_range(c.client, ptr, count);
  if (!h) return CUDA_ERROR_INVALID_VALUE;
  std::vector<int32_t> v;
  for (auto& [a, size] : asked) {
    if (CUresult r = attribute(*h, a, size, &v); r != CUDA_SUCCESS) return r;
    c.out.put<uint32_t>(uint32_t(v.size()));
    if (!v.empty()) c.out.put(v.data(), uint32_t(v.size() * sizeof(int32_t)));
  }
  return CUDA_SUCCESS;
}

template <class Where>
CUresult advise_call(Call& c) {
  Arg<CUdeviceptr> ptr;
  Arg<size_t> count;
  Arg<uint32_t> advice;  // CUmem_advise, as sent
  Arg<Where> where;
  CUresult r = decode_all(c, ptr, count, advice, where);
  if (r != CUDA_SUCCESS) return r;
  return advise(c.client, ptr.v, count.v, advice.v, location_of(where.v));
}

template <uint16_t Op>
CUresult prefetch_to_device(Call& c) {
  Arg<CUdeviceptr> ptr;
  Arg<size_t> count;
  Arg<CUdevice> device;
  Arg<CUstream> stream;
  CUresult r = decode_all(c, ptr, count, device, stream);
  if (r != CUDA_SUCCESS) return r;
  return prefetch(c.client, ptr.v, count.v, location_of(device.v), 0, stream.real, Op == wire::kOp_cuMemPrefetchAsync_ptsz);
}

template <uint16_t Op>
CUresult prefetch_to_location(Call& c) {
  Arg<CUdeviceptr> ptr;
  Arg<size_t> count;
  Arg<CUmemLocation> loc;
  Arg<unsigned int> flags;
  Arg<CUstream> stream;
  CUresult r = decode_all(c, ptr, count, loc, flags, stream);
  if (r != CUDA_SUCCESS) return r;
  return prefetch(c.client, ptr.v, count.v, loc.v, flags.v, stream.real, Op == wire::kOp_cuMemPrefetchAsync_v2_ptsz);
}

}  // namespace

CUresult cuMemAdvise(Call& c) { return advise_call<CUdevice>(c); }
CUresult cuMemAdvise_v2(Call& c) { return advise_call<CUmemLocation>(c); }

CUresult cuMemRangeGetAttribute(Call& c) { return range_attributes(c); }
CUresult cuMemRangeGetAttributes(Call& c) { return range_attributes(c); }

}  // namespace sing::proxy::custom

PROXY_TWIN(cuMemPrefetchAsync, cuMemPrefetchAsync_ptsz, prefetch_to_device)
PROXY_TWIN(cuMemPrefetchAsync_v2, cuMemPrefetchAsync_v2_ptsz, prefetch_to_location)
