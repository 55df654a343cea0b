// The app's own use of the virtual-memory API.  Its reservations are carved
// from the job's range (so they come back at the same addresses on restore),
// its physical allocations get virtual ids like every other handle.
#include <cstring>
#include <vector>

#include "app_vmm.h"
#include "handler_util.h"

namespace sing::proxy::custom {

namespace {

CUresult real_allocation(Client& c, uint64_t vid, CUmemGenericAllocationHandle* real) {
  uint64_t r;
  if (!c.handles.to_real(kAllocHandle, vid, &r)) return CUDA_ERROR_INVALID_VALUE;
  *real = r;
  return CUDA_SUCCESS;
}

}  // namespace

}  // namespace sing::proxy::custom

namespace sing::proxy {

uint64_t hold_allocation(Client& client, CUmemGenericAllocationHandle real, uint64_t bytes, bool shared) {
  const uint64_t vid = client.handles.to_vid(kAllocHandle, real);
  AppAllocation a{real, bytes, {}};
  if (BACKEND(cuMemGetAllocationPropertiesFromHandle)(&a.prop, real) != CUDA_SUCCESS) a.prop = {};
  std::lock_guard<std::mutex> lock(client.mu);
  auto it = client.app_allocations.find(vid);
  if (it != client.app_allocations.end()) ++it->second.refs;
  else client.app_allocations.emplace(vid, a);
  if (shared) mark_shared(client, vid);
  return vid;
}

uint64_t mapping_of(const Client& client, uint64_t vid) {
  for (auto& [va, m] : client.app_mappings)
    if (m.handle_vid == vid) return va;
  return 0;
}

void mark_shared(Client& client, uint64_t vid) {
  auto it = client.app_allocations.find(vid);
  if (it != client.app_allocations.end()) it->second.shared = true;
  for (auto& [va, m] : client.app_mappings)
    if (m.handle_vid == vid) m.shared = true;
}

}  // namespace sing::proxy

namespace sing::proxy::custom {

CUresult cuMemAddressReserve(Call& c) {
  Arg<CUdeviceptr*> out;
  Arg<size_t> size, alignment;
  Arg<CUdeviceptr> addr;
  Arg<unsigned long long> flags;
  CUresult r = decode_all(c, out, size, alignment, addr, flags);
  if (r != CUDA_SUCCESS) return r;
  if (!out.present || (alignment.v & (alignment.v - 1))) return CUDA_ERROR_INVALID_VALUE;
  // A hint outside the job's range cannot be honoured; the driver treats
  // hints as hints too.
  uint64_t hint = c.client.in_device_range(addr.v, size.v) ? addr.v : 0;
  uint64_t p;
  if ((r = c.client.heap.reserve_va(size.v, alignment.v, hint, &p)) != CUDA_SUCCESS) return r;
  out.local = p;
  encode_all(c, out, size, alignment, addr, flags);
  return CUDA_SUCCESS;
}

CUresult cuMemAddressFree(Call& c) {
  Arg<CUdeviceptr> ptr;
  Arg<size_t> size;
  CUresult r = decode_all(c, ptr, size);
  if (r != CUDA_SUCCESS) return r;
  {
    std::lock_guard<std::mutex> lock(c.client.mu);
    auto it = c.client.app_mappings.lower_bound(ptr.v);
    if (it != c.client.app_mappings.end() && it->first < ptr.v + size.v) return CUDA_ERROR_INVALID_VALUE;
  }
  return c.client.heap.release_va(ptr.v, size.v);
}

CUresult cuMemCreate(Call& c) {
  Arg<CUmemGenericAllocationHandle*> out;
  Arg<size_t> size;
  Arg<const CUmemAllocationProp*> prop;
  Arg<unsigned long long> flags;
  CUresult r = decode_all(c, out, size, prop, flags);
  if (r != CUDA_SUCCESS) return r;
  if (!out.present || !prop.present) return CUDA_ERROR_INVALID_VALUE;
  // POSIX descriptors are passed to the app (custom_vmm_share.cpp); fabric
  // and Win32 handles are not.
  if (raw(prop.local.requestedHandleTypes) & ~CU_MEM_HANDLE_TYPE_POSIX_FILE_DESCRIPTOR) return CUDA_ERROR_NOT_SUPPORTED;
  CUmemGenericAllocationHandle real;
  if ((r = BACKEND(cuMemCreate)(&real, size.v, &prop.local, flags.v)) != CUDA_SUCCESS) return r;
  uint64_t vid = c.client.handles.to_vid(kAllocHandle, real);
  {
    std::lock_guard<std::mutex> lock(c.client.mu);
    c.client.app_allocations[vid] = AppAllocation{real, size.v, prop.local};
  }
  out.local = vid;
  encode_all(c, out, size, prop, flags);
  return CUDA_SUCCESS;
}

CUresult cuMemRelease(Call& c) {
  Arg<CUmemGenericAllocationHandle> h;
  CUresult r = decode_all(c, h);
  if (r != CUDA_SUCCESS) return r;
  CUmemGenericAllocationHandle real;
  if ((r = real_allocation(c.client, h.v, &real)) != CUDA_SUCCESS) return r;
  if ((r = BACKEND(cuMemRelease)(real)) != CUDA_SUCCESS) return r;
  std::lock_guard<std::mutex> lock(c.client.mu);
  auto it = c.client.app_allocations.find(h.v);
  if (it != c.client.app_allocations.end() && --it->second.refs > 0) return CUDA_SUCCESS;
  // Mappings keep the memory alive, as on a GPU (create, map, release at once
  // is common): the record stays, with no reference, while a mapping uses it
  // — an image must recreate the memory behind those mappings — and goes with
  // the last unmap.  The id goes with the last reference otherwise.
  if (it != c.client.app_allocations.end() && mapping_of(c.client, h.v)) return CUDA_SUCCESS;
  c.client.app_allocations.erase(h.v);
  c.client.handles.forget(kAllocHandle, h.v);
  return CUDA_SUCCESS;
}

CUresult cuMemMap(Call& c) {
  Arg<CUdeviceptr> ptr;
  Arg<size_t> size, offset;
  Arg<CUmemGenericAllocationHandle> h;
  Arg<unsigned long long> flags;
  CUresult r = decode_all(c, ptr, size, offset, h, flags);
  if (r != CUDA_SUCCESS) return r;
  if (!c.client.heap.va_reserved(ptr.v, size.v)) return CUDA_ERROR_INVALID_VALUE;
  CUmemGenericAllocationHandle real;
  if ((r = real_allocation(c.client, h.v, &real)) != CUDA_SUCCESS) return r;
  if ((r = BACKEND(cuMemMap)(ptr.v, size.v, offset.v, real, flags.v)) != CUDA_SUCCESS) return r;
  std::lock_guard<std::mutex> lock(c.client.mu);
  auto a = c.client.app_allocations.find(h.v);
  const bool shared = a != c.client.app_allocations.end() && a->second.shared;
  c.client.app_mappings[ptr.v] = AppMapping{size.v, offset.v, h.v, shared};
  return CUDA_SUCCESS;
}

CUresult cuMemUnmap(Call& c) {
  Arg<CUdeviceptr> ptr;
  Arg<size_t> size;
  CUresult r = decode_all(c, ptr, size);
  if (r != CUDA_SUCCESS) return r;
  if (!c.client.heap.va_reserved(ptr.v, size.v)) return CUDA_ERROR_INVALID_VALUE;
  if ((r = BACKEND(cuMemUnmap)(ptr.v, size.v)) != CUDA_SUCCESS) return r;
  std::lock_guard<std::mutex> lock(c.client.mu);
  auto& m = c.client.app_mappings;
  std::vector<uint64_t> unmapped;
  for (auto it = m.lower_bound(ptr.v); it != m.end() && it->first < ptr.v + size.v;) {
    unmapped.push_back(it->second.handle_vid);
    it = m.erase(it);
  }
  // An allocation the app released lives only as long as its mappings.
  for (uint64_t vid : unmapped) {
    auto a = c.client.app_allocations.find(vid);
    if (a != c.client.app_allocations.end() && a->second.refs == 0 && !mapping_of(c.client, vid)) {
      c.client.app_allocations.erase(a);
      c.client.handles.forget(kAllocHandle, vid);
    }
  }
  return CUDA_SUCCESS;
}

// {u64 ptr, u64 size, u64 count, count x CUmemAccessDesc}
CUresult cuMemSetAccess(Call& c) {
  uint64_t ptr = c.in.get<uint64_t>(), size = c.in.get<uint64_t>(), count = c.in.get<uint64_t>();
  if (!c.in.ok() || count > 64) return CUDA_ERROR_INVALID_VALUE;
  std::vector<CUmemAccessDesc> desc(count);
  for (auto& d : desc) {
    const uint8_t* p = c.in.take(sizeof(CUmemAccessDesc));
    if (!p) return CUDA_ERROR_INVALID_VALUE;
    std::memcpy(&d, p, sizeof(d));
  }
  if (!c.client.heap.va_reserved(ptr, size)) return CUDA_ERROR_INVALID_VALUE;
  CUresult r = BACKEND(cuMemSetAccess)(ptr, size, desc.data(), count);
  if (r == CUDA_SUCCESS) {
    std::lock_guard<std::mutex> lock(c.client.mu);
    c.client.records.access[ptr] = {size, desc};
  }
  return r;
}

CUresult cuMemGetAllocationPropertiesFromHandle(Call& c) {
  Arg<CUmemAllocationProp*> prop;
  Arg<CUmemGenericAllocationHandle> h;
  CUresult r = decode_all(c, prop, h);
  if (r != CUDA_SUCCESS) return r;
  CUmemGenericAllocationHandle real;
  if ((r = real_allocation(c.client, h.v, &real)) != CUDA_SUCCESS) return r;
  if ((r = BACKEND(cuMemGetAllocationPropertiesFromHandle)(prop.pass(), real)) != CUDA_SUCCESS) return r;
  encode_all(c, prop, h);
  return CUDA_SUCCESS;
}

// {u64 addr} -> {u64 handle id}
CUresult cuMemRetainAllocationHandle(Call& c) {
  uint64_t addr = c.in.get<uint64_t>();
  if (!c.in.ok()) return CUDA_ERROR_INVALID_VALUE;
  bool shared = false;
  {
    std::lock_guard<std::mutex> lock(c.client.mu);
    auto it = c.client.app_mappings.upper_bound(addr);
    if (it == c.client.app_mappings.begin()) return CUDA_ERROR_INVALID_VALUE;
    --it;
    if (addr >= it->first + it->second.bytes) return CUDA_ERROR_INVALID_VALUE;
    shared = it->second.shared;
  }
  CUmemGenericAllocationHandle real;
  CUresult r = BACKEND(cuMemRetainAllocationHandle)(&real, reinterpret_cast<void*>(addr));
  if (r != CUDA_SUCCESS) return r;
  size_t bytes = 0;
  CUdeviceptr base = 0;
  if (BACKEND(cuMemGetAddressRange_v2)(&base, &bytes, addr) != CUDA_SUCCESS) bytes = 0;
  // The same physical allocation: the same id (re-issued if it was released), one more reference.
  c.out.put<uint64_t>(hold_allocation(c.client, real, bytes, shared));
  return CUDA_SUCCESS;
}

}  // namespace sing::proxy::custom
