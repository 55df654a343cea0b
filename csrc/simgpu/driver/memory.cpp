// Linear device memory, pinned and registered host memory, managed memory.
#include "memory.h"

#include "capture.h"
#include "pools.h"
#include "stream.h"

#include <sys/mman.h>

#include <cerrno>

namespace simgpu {

CUresult alloc_device(Context& c, uint64_t bytes, MemRange proto, uint64_t* out) {
  if (bytes == 0) return CUDA_ERROR_INVALID_VALUE;
  if (bytes > (uint64_t(1) << 46)) return CUDA_ERROR_OUT_OF_MEMORY;
  Device& d = *c.dev;
  uint64_t held = bytes >= kLargeAlign ? align_up(bytes, kLargeAlign) : align_up(bytes, kAllocAlign);
  if (!d.charge(held)) return CUDA_ERROR_OUT_OF_MEMORY;
  uint64_t addr = d.heap.alloc(held);
  if (!addr) {
    d.uncharge(held);
    return CUDA_ERROR_OUT_OF_MEMORY;
  }
  proto.base = addr;
  proto.size = bytes;
  proto.held = held;
  proto.device = d.ordinal;
  proto.ctx = c.handle();
  proto.ctx_id = c.id.load();
  proto.buffer_id = next_buffer_id();
  if (!memmap().insert(proto)) {  // cannot happen: the heap hands out disjoint ranges
    d.heap.release(addr, held);
    d.uncharge(held);
    return CUDA_ERROR_UNKNOWN;
  }
  *out = addr;
  return CUDA_SUCCESS;
}

void release_device(const MemRange& r) {
  Device* d = device_at(r.device);
  if (!d) return;
  d->heap.release(r.base, r.held);
  d->uncharge(r.held);
}

CUresult free_device(uint64_t addr) {
  auto r = memmap().find(addr);
  if (!r || r->base != addr || r->kind != MemKind::Device || r->internal) return CUDA_ERROR_INVALID_VALUE;
  auto removed = memmap().erase(addr);
  if (!removed) return CUDA_ERROR_INVALID_VALUE;  // freed concurrently
  release_device(*removed);
  return CUDA_SUCCESS;
}

void* alloc_host_pages(uint64_t bytes, uint64_t* held) {
  *held = align_up(bytes, 4096);
  void* p = mmap(nullptr, *held, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  return p == MAP_FAILED ? nullptr : p;
}

void free_host_pages(void* p, uint64_t held) { munmap(p, held); }

void sync_for_free(int device) {
  Device* d = device_at(device);
  std::vector<std::shared_ptr<Context>> ctxs;
  Context* cur = current_context_raw();
  if (cur) ctxs.push_back(cur->shared_from_this());
  if (d && d->primary && d->primary.get() != cur) ctxs.push_back(d->primary);
  for (auto& c : ctxs) synchronize_context(*c);
}

CUresult check_not_capturing_unsafe() { return capture_check_unsafe(); }

void memory_teardown(Context& c) {
  uint64_t id = c.id.load();
  auto ranges = memmap().select([&](const MemRange& r) {
    return r.ctx_id == id && r.kind != MemKind::Vmm && r.pool == nullptr && !r.internal;
  });
  for (auto& r : ranges) {
    if (!memmap().erase(r.base)) continue;
    switch (r.kind) {
      case MemKind::Device: release_device(r); break;
      case MemKind::HostAlloc:
      case MemKind::Managed: free_host_pages(reinterpret_cast<void*>(r.base), r.held); break;
      case MemKind::HostRegistered:
      case MemKind::Vmm: break;
    }
  }
}

namespace {

CUresult host_alloc(void** pp, size_t bytesize, unsigned flags) {
  Context* c;
  SIM_CHECK(current_context(&c));
  if (!pp || bytesize == 0) return CUDA_ERROR_INVALID_VALUE;
  if (flags & ~unsigned(CU_MEMHOSTALLOC_PORTABLE | CU_MEMHOSTALLOC_DEVICEMAP | CU_MEMHOSTALLOC_WRITECOMBINED))
    return CUDA_ERROR_INVALID_VALUE;
  SIM_CHECK(check_not_capturing_unsafe());
  uint64_t held;
  void* p = alloc_host_pages(bytesize, &held);
  if (!p) return CUDA_ERROR_OUT_OF_MEMORY;
  MemRange r;
  r.base = reinterpret_cast<uint64_t>(p);
  r.size = bytesize;
  r.held = held;
  r.kind = MemKind::HostAlloc;
  r.ctx = c->handle();
  r.ctx_id = c->id.load();
  r.flags = flags;
  r.buffer_id = next_buffer_id();
  memmap().insert(r);
  *pp = p;
  return CUDA_SUCCESS;
}

CUresult mem_alloc(CUdeviceptr* dptr, size_t bytesize) {
  Context* c;
  SIM_CHECK(current_context(&c));
  if (!dptr || bytesize == 0) return CUDA_ERROR_INVALID_VALUE;
  SIM_CHECK(check_not_capturing_unsafe());
  uint64_t addr;
  SIM_CHECK(alloc_device(*c, bytesize, MemRange{}, &addr));
  *dptr = addr;
  return CUDA_SUCCESS;
}

CUresult mem_free(CUdeviceptr dptr) {
  Context* c;
  SIM_CHECK(current_context(&c));
  if (dptr == 0) return CUDA_SUCCESS;
  SIM_CHECK(check_not_capturing_unsafe());
  auto r = memmap().find(dptr);
  if (!r || r->base != dptr || r->internal) return CUDA_ERROR_INVALID_VALUE;
  if (r->kind == MemKind::Managed) {
    sync_for_free(r->device);
    if (!memmap().erase(dptr)) return CUDA_ERROR_INVALID_VALUE;
    free_host_pages(reinterpret_cast<void*>(r->base), r->held);
    return CUDA_SUCCESS;
  }
  if (r->kind != MemKind::Device) return CUDA_ERROR_INVALID_VALUE;
  sync_for_free(r->device);
  SIM_CHECK(c->sticky.load());
  if (r->pool) return pool_free_now(*r->pool, dptr);
  return free_device(dptr);
}

}  // namespace

}  // namespace simgpu

using namespace simgpu;

extern "C" {

SIM_EXPORT CUresult CUDAAPI cuMemAlloc_v2(CUdeviceptr* dptr, size_t bytesize) {
  SIM_TRY return mem_alloc(dptr, bytesize);
  SIM_END
}

SIM_EXPORT CUresult CUDAAPI cuMemFree_v2(CUdeviceptr dptr) {
  SIM_TRY return mem_free(dptr);
  SIM_END
}

SIM_EXPORT CUresult CUDAAPI cuMemAllocPitch_v2(CUdeviceptr* dptr, size_t* pPitch, size_t WidthInBytes, size_t Height,
                                               unsigned int ElementSizeBytes) {
  SIM_TRY
  Context* c;
  SIM_CHECK(current_context(&c));
  if (!dptr || !pPitch || WidthInBytes == 0 || Height == 0) return CUDA_ERROR_INVALID_VALUE;
  if (ElementSizeBytes != 4 && ElementSizeBytes != 8 && ElementSizeBytes != 16) return CUDA_ERROR_INVALID_VALUE;
  if (WidthInBytes > 2147483647ULL) return CUDA_ERROR_INVALID_VALUE;
  uint64_t pitch = align_up(WidthInBytes, 512);  // texture pitch alignment of this device
  if (Height > (uint64_t(1) << 46) / pitch) return CUDA_ERROR_OUT_OF_MEMORY;
  SIM_CHECK(check_not_capturing_unsafe());
  uint64_t addr;
  SIM_CHECK(alloc_device(*c, pitch * Height, MemRange{}, &addr));
  *dptr = addr;
  *pPitch = pitch;
  return CUDA_SUCCESS;
  SIM_END
}

SIM_EXPORT CUresult CUDAAPI cuMemGetInfo_v2(size_t* free, size_t* total) {
  SIM_TRY
  Context* c;
  SIM_CHECK(current_context(&c));
  if (!free || !total) return CUDA_ERROR_INVALID_VALUE;
  uint64_t used = c->dev->used.load();
  *total = c->dev->total_mem;
  *free = used >= c->dev->total_mem ? 0 : c->dev->total_mem - used;
  return CUDA_SUCCESS;
  SIM_END
}

SIM_EXPORT CUresult CUDAAPI cuMemGetAddressRange_v2(CUdeviceptr* pbase, size_t* psize, CUdeviceptr dptr) {
  SIM_TRY
  Context* c;
  SIM_CHECK(current_context(&c));
  auto r = memmap().find(dptr);
  if (!r) return CUDA_ERROR_NOT_FOUND;
  if (pbase) *pbase = r->base;
  if (psize) *psize = r->size;
  return CUDA_SUCCESS;
  SIM_END
}

SIM_EXPORT CUresult CUDAAPI cuMemAllocHost_v2(void** pp, size_t bytesize) {
  SIM_TRY return host_alloc(pp, bytesize, 0);
  SIM_END
}

SIM_EXPORT CUresult CUDAAPI cuMemHostAlloc(void** pp, size_t bytesize, unsigned int Flags) {
  SIM_TRY return host_alloc(pp, bytesize, Flags);
  SIM_END
}

SIM_EXPORT CUresult CUDAAPI cuMemFreeHost(void* p) {
  SIM_TRY
  Context* c;
  SIM_CHECK(current_context(&c));
  if (!p) return CUDA_SUCCESS;  // free(NULL) semantics, as the real driver
  auto r = memmap().find(reinterpret_cast<uint64_t>(p));
  if (!r || r->kind != MemKind::HostAlloc || r->base != reinterpret_cast<uint64_t>(p))
    return CUDA_ERROR_INVALID_VALUE;
  SIM_CHECK(check_not_capturing_unsafe());
  sync_for_free(c->dev->ordinal);
  if (!memmap().erase(r->base)) return CUDA_ERROR_INVALID_VALUE;
  free_host_pages(p, r->held);
  return CUDA_SUCCESS;
  SIM_END
}

SIM_EXPORT CUresult CUDAAPI cuMemHostGetDevicePointer_v2(CUdeviceptr* pdptr, void* p, unsigned int Flags) {
  SIM_TRY
  Context* c;
  SIM_CHECK(current_context(&c));
  if (!pdptr || !p || Flags != 0) return CUDA_ERROR_INVALID_VALUE;
  auto r = memmap().find(reinterpret_cast<uint64_t>(p));
  if (!r || (r->kind != MemKind::HostAlloc && r->kind != MemKind::HostRegistered)) return CUDA_ERROR_INVALID_VALUE;
  *pdptr = reinterpret_cast<CUdeviceptr>(p);  // unified addressing: the same address
  return CUDA_SUCCESS;
  SIM_END
}

SIM_EXPORT CUresult CUDAAPI cuMemHostGetFlags(unsigned int* pFlags, void* p) {
  SIM_TRY
  Context* c;
  SIM_CHECK(current_context(&c));
  if (!pFlags || !p) return CUDA_ERROR_INVALID_VALUE;
  auto r = memmap().find(reinterpret_cast<uint64_t>(p));
  if (!r || (r->kind != MemKind::HostAlloc && r->kind != MemKind::HostRegistered)) return CUDA_ERROR_INVALID_VALUE;
  // Every pinned allocation is mapped under unified addressing, whatever was asked.
  *pFlags = r->flags | CU_MEMHOSTALLOC_DEVICEMAP;
  return CUDA_SUCCESS;
  SIM_END
}

SIM_EXPORT CUresult CUDAAPI cuMemHostRegister_v2(void* p, size_t bytesize, unsigned int Flags) {
  SIM_TRY
  Context* c;
  SIM_CHECK(current_context(&c));
  if (!p || bytesize == 0) return CUDA_ERROR_INVALID_VALUE;
  const unsigned known = CU_MEMHOSTREGISTER_PORTABLE | CU_MEMHOSTREGISTER_DEVICEMAP | CU_MEMHOSTREGISTER_IOMEMORY |
                         CU_MEMHOSTREGISTER_READ_ONLY;
  if (Flags & ~known) return CUDA_ERROR_INVALID_VALUE;
  // Device-side read-only mappings and I/O memory cannot be honoured here.
  if (Flags & (CU_MEMHOSTREGISTER_READ_ONLY | CU_MEMHOSTREGISTER_IOMEMORY)) return CUDA_ERROR_NOT_SUPPORTED;
  uint64_t base = reinterpret_cast<uint64_t>(p);
  if (base + bytesize < base) return CUDA_ERROR_INVALID_VALUE;
  if (!memmap().overlapping(base, bytesize).empty()) return CUDA_ERROR_HOST_MEMORY_ALREADY_REGISTERED;
  // The range must be mapped memory: a kernel will dereference it.
  uint64_t page = base & ~uint64_t(4095);
  if (msync(reinterpret_cast<void*>(page), align_up(base + bytesize, 4096) - page, MS_ASYNC) != 0)
    return CUDA_ERROR_INVALID_VALUE;
  SIM_CHECK(check_not_capturing_unsafe());
  MemRange r;
  r.base = base;
  r.size = bytesize;
  r.held = bytesize;
  r.kind = MemKind::HostRegistered;
  r.ctx = c->handle();
  r.ctx_id = c->id.load();
  r.flags = Flags;
  r.buffer_id = next_buffer_id();
  if (!memmap().insert(r)) return CUDA_ERROR_HOST_MEMORY_ALREADY_REGISTERED;
  return CUDA_SUCCESS;
  SIM_END
}

SIM_EXPORT CUresult CUDAAPI cuMemHostRegister(void* p, size_t bytesize, unsigned int Flags) {
  return cuMemHostRegister_v2(p, bytesize, Flags);
}

SIM_EXPORT CUresult CUDAAPI cuMemHostUnregister(void* p) {
  SIM_TRY
  Context* c;
  SIM_CHECK(current_context(&c));
  if (!p) return CUDA_ERROR_INVALID_VALUE;
  uint64_t base = reinterpret_cast<uint64_t>(p);
  auto r = memmap().find(base);
  if (!r || r->kind != MemKind::HostRegistered || r->base != base) return CUDA_ERROR_HOST_MEMORY_NOT_REGISTERED;
  sync_for_free(c->dev->ordinal);
  if (!memmap().erase(base)) return CUDA_ERROR_HOST_MEMORY_NOT_REGISTERED;
  return CUDA_SUCCESS;
  SIM_END
}

SIM_EXPORT CUresult CUDAAPI cuMemAllocManaged(CUdeviceptr* dptr, size_t bytesize, unsigned int flags) {
  SIM_TRY
  Context* c;
  SIM_CHECK(current_context(&c));
  if (!dptr || bytesize == 0) return CUDA_ERROR_INVALID_VALUE;
  if (flags != CU_MEM_ATTACH_GLOBAL && flags != CU_MEM_ATTACH_HOST) return CUDA_ERROR_INVALID_VALUE;
  SIM_CHECK(check_not_capturing_unsafe());
  uint64_t held;
  void* p = alloc_host_pages(bytesize, &held);
  if (!p) return CUDA_ERROR_OUT_OF_MEMORY;
  MemRange r;
  r.base = reinterpret_cast<uint64_t>(p);
  r.size = bytesize;
  r.held = held;
  r.kind = MemKind::Managed;
  r.device = c->dev->ordinal;
  r.ctx = c->handle();
  r.ctx_id = c->id.load();
  r.flags = flags;
  r.buffer_id = next_buffer_id();
  memmap().insert(r);
  *dptr = r.base;
  return CUDA_SUCCESS;
  SIM_END
}

}  // extern "C"
