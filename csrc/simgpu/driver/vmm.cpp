// The virtual memory management API.
//
// cuMemCreate makes a memfd of the (2 MiB-granular) size: the physical
// allocation.  cuMemAddressReserve reserves VA PROT_NONE, honouring a
// requested address exactly whenever that range is free: the proxy places
// each job's memory at a fixed base so that device pointers survive
// checkpoint, restore and migration.  cuMemMap maps the memfd MAP_SHARED at
// the address, so two mappings of one allocation alias each other, as on a
// GPU; a mapping becomes device-accessible only through cuMemSetAccess.
// A memfd is also what cuMemExportToShareableHandle hands out (POSIX fd), so
// another process can map the same memory.
#include "memory.h"
#include "stream.h"

#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <map>

#ifndef MAP_FIXED_NOREPLACE
#define MAP_FIXED_NOREPLACE 0x100000
#endif
#ifndef MFD_CLOEXEC
#define MFD_CLOEXEC 1U
#endif

namespace simgpu {

struct PhysMem : Object {
  PhysMem() : Object(Kind::MemHandle) {}
  ~PhysMem() override {
    if (fd >= 0) close(fd);
    if (charged && dev) dev->uncharge(size);
  }
  int fd = -1;
  uint64_t size = 0;
  bool charged = false;
  Device* dev = nullptr;
  CUmemAllocationProp prop{};
  std::atomic<int> handle_refs{1};  // cuMemCreate / Retain / Import minus cuMemRelease
};

namespace {

struct Reservation {
  uint64_t size = 0;
  bool own_mapping = false;  // outside the VMM region: our own PROT_NONE mmap
};

struct VmmState {
  std::mutex mu;
  bool init = false;
  VaAllocator region;  // [kVmmBase, kVmmBase + kVmmSize) when reserved
  bool have_region = false;
  std::map<uint64_t, Reservation> reservations;
};

VmmState& vmm() {
  static auto* s = new VmmState;  // immortal, see registry()
  return *s;
}

void ensure_region(VmmState& s) {
  if (s.init) return;
  s.init = true;
  uint64_t base = reserve_va(kVmmBase, kVmmSize, kChunk);
  if (base) {
    s.region.init(base, kVmmSize);
    s.have_region = true;
  }
}

CUresult check_prop(const CUmemAllocationProp* prop, Device** dev) {
  if (!prop) return CUDA_ERROR_INVALID_VALUE;
  if (prop->type != CU_MEM_ALLOCATION_TYPE_PINNED) return CUDA_ERROR_INVALID_VALUE;
  if (prop->location.type == CU_MEM_LOCATION_TYPE_HOST || prop->location.type == CU_MEM_LOCATION_TYPE_HOST_NUMA ||
      prop->location.type == CU_MEM_LOCATION_TYPE_HOST_NUMA_CURRENT)
    return CUDA_ERROR_NOT_SUPPORTED;  // HOST_VIRTUAL_MEMORY_MANAGEMENT_SUPPORTED is 0
  if (prop->location.type != CU_MEM_LOCATION_TYPE_DEVICE) return CUDA_ERROR_INVALID_VALUE;
  if (lookup_device(prop->location.id, dev) != CUDA_SUCCESS) return CUDA_ERROR_INVALID_DEVICE;
  return CUDA_SUCCESS;
}

CUresult lookup_handle(CUmemGenericAllocationHandle h, std::shared_ptr<PhysMem>& out) {
  SIM_CHECK(check_init());
  out = registry().get<PhysMem>(reinterpret_cast<const void*>(uintptr_t(h)), Kind::MemHandle);
  return out ? CUDA_SUCCESS : CUDA_ERROR_INVALID_VALUE;
}

CUmemGenericAllocationHandle handle_of(PhysMem* p) { return CUmemGenericAllocationHandle(reinterpret_cast<uintptr_t>(p)); }

void drop_handle_ref(const std::shared_ptr<PhysMem>& p) {
  if (p->handle_refs.fetch_sub(1) == 1) registry().remove(p.get(), Kind::MemHandle);
}

// The reservation containing [addr, addr+size), if any.
Reservation* reservation_for(VmmState& s, uint64_t addr, uint64_t size, uint64_t* base = nullptr) {
  auto it = s.reservations.upper_bound(addr);
  if (it == s.reservations.begin()) return nullptr;
  --it;
  if (addr + size < addr || addr + size > it->first + it->second.size) return nullptr;
  if (base) *base = it->first;
  return &it->second;
}

// The Vmm ranges exactly tiling [addr, addr+size), or empty if they do not.
std::vector<MemRange> tiling(uint64_t addr, uint64_t size) {
  auto rs = memmap().overlapping(addr, size);
  uint64_t at = addr;
  for (auto& r : rs) {
    if (r.kind != MemKind::Vmm || r.base != at) return {};
    at += r.size;
  }
  if (at != addr + size) return {};
  return rs;
}

// Every context that may be running kernels must be done before memory goes.
void quiesce_all() {
  for (int d = 0; d < device_count(); ++d) sync_for_free(d);
}

CUresult unmap_range(uint64_t addr, uint64_t size) {
  auto rs = tiling(addr, size);
  if (rs.empty()) return CUDA_ERROR_INVALID_VALUE;
  quiesce_all();
  for (auto& r : rs) memmap().erase(r.base);
  decommit(addr, size);  // back to PROT_NONE, still reserved
  return CUDA_SUCCESS;
}

}  // namespace

}  // namespace simgpu

using namespace simgpu;

extern "C" {

SIM_EXPORT CUresult CUDAAPI cuMemGetAllocationGranularity(size_t* granularity, const CUmemAllocationProp* prop,
                                                          CUmemAllocationGranularity_flags option) {
  SIM_TRY
  SIM_CHECK(check_init());
  if (!granularity) return CUDA_ERROR_INVALID_VALUE;
  if (option != CU_MEM_ALLOC_GRANULARITY_MINIMUM && option != CU_MEM_ALLOC_GRANULARITY_RECOMMENDED)
    return CUDA_ERROR_INVALID_VALUE;
  Device* d;
  SIM_CHECK(check_prop(prop, &d));
  *granularity = kChunk;
  return CUDA_SUCCESS;
  SIM_END
}

SIM_EXPORT CUresult CUDAAPI cuMemCreate(CUmemGenericAllocationHandle* handle, size_t size,
                                        const CUmemAllocationProp* prop, unsigned long long flags) {
  SIM_TRY
  SIM_CHECK(check_init());
  if (!handle || flags != 0 || size == 0 || size % kChunk) return CUDA_ERROR_INVALID_VALUE;
  Device* d;
  SIM_CHECK(check_prop(prop, &d));
  if (prop->requestedHandleTypes & ~CUmemAllocationHandleType(CU_MEM_HANDLE_TYPE_POSIX_FILE_DESCRIPTOR))
    return CUDA_ERROR_NOT_SUPPORTED;
  if (prop->allocFlags.compressionType != 0) return CUDA_ERROR_NOT_SUPPORTED;  // GENERIC_COMPRESSION_SUPPORTED is 0
  if (!d->charge(size)) return CUDA_ERROR_OUT_OF_MEMORY;
  auto p = std::make_shared<PhysMem>();
  p->dev = d;
  p->size = size;
  p->charged = true;
  p->prop = *prop;
  p->fd = memfd_create("simgpu-vmm", MFD_CLOEXEC);
  if (p->fd < 0 || ftruncate(p->fd, off_t(size)) != 0) return CUDA_ERROR_OUT_OF_MEMORY;  // ~PhysMem uncharges
  registry().add(p.get(), p);
  *handle = handle_of(p.get());
  return CUDA_SUCCESS;
  SIM_END
}

SIM_EXPORT CUresult CUDAAPI cuMemRelease(CUmemGenericAllocationHandle handle) {
  SIM_TRY
  std::shared_ptr<PhysMem> p;
  SIM_CHECK(lookup_handle(handle, p));
  // The memory itself lives on while mapped: mappings hold it.
  drop_handle_ref(p);
  return CUDA_SUCCESS;
  SIM_END
}

SIM_EXPORT CUresult CUDAAPI cuMemAddressReserve(CUdeviceptr* ptr, size_t size, size_t alignment, CUdeviceptr addr,
                                                unsigned long long flags) {
  SIM_TRY
  SIM_CHECK(check_init());
  if (!ptr || size == 0 || size % kChunk || flags != 0) return CUDA_ERROR_INVALID_VALUE;
  if (alignment && (!is_pow2(alignment) || alignment % kChunk)) return CUDA_ERROR_INVALID_VALUE;
  uint64_t align = alignment ? alignment : kChunk;
  auto& s = vmm();
  std::lock_guard<std::mutex> lock(s.mu);
  ensure_region(s);
  uint64_t got = 0;
  bool own = false;
  if (addr && addr % align == 0 && addr + size > addr) {
    if (s.have_region && s.region.contains(addr)) {
      if (s.region.alloc_at(addr, size)) got = addr;
    } else if (!memmap().overlapping(addr, size).size()) {
      // Outside our regions: ours if the process has nothing there.
      bool in_heap = false;
      for (int d = 0; d < device_count(); ++d)
        if (device_at(d)->heap.contains(addr) || device_at(d)->heap.contains(addr + size - 1)) in_heap = true;
      if (!in_heap) {
        void* p = mmap(reinterpret_cast<void*>(addr), size, PROT_NONE,
                       MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE | MAP_FIXED_NOREPLACE, -1, 0);
        if (p != MAP_FAILED && reinterpret_cast<uint64_t>(p) == addr) {
          got = addr;
          own = true;
        } else if (p != MAP_FAILED) {
          munmap(p, size);
        }
      }
    }
  }
  if (!got && s.have_region) got = s.region.alloc(size, align);
  if (!got) {
    got = reserve_va(0, size, align);
    own = got != 0;
  }
  if (!got) return CUDA_ERROR_OUT_OF_MEMORY;
  s.reservations[got] = {size, own};
  *ptr = got;
  return CUDA_SUCCESS;
  SIM_END
}

SIM_EXPORT CUresult CUDAAPI cuMemAddressFree(CUdeviceptr ptr, size_t size) {
  SIM_TRY
  SIM_CHECK(check_init());
  auto& s = vmm();
  std::lock_guard<std::mutex> lock(s.mu);
  auto it = s.reservations.find(ptr);
  if (it == s.reservations.end() || it->second.size != size) return CUDA_ERROR_INVALID_VALUE;
  // Mappings still in the range go with it (their memory lives on while handles remain).
  auto left = memmap().overlapping(ptr, size);
  if (!left.empty()) {
    quiesce_all();
    for (auto& r : left)
      if (r.kind == MemKind::Vmm) memmap().erase(r.base);
  }
  if (it->second.own_mapping) {
    unreserve_va(ptr, size);
  } else {
    decommit(ptr, size);
    s.region.release(ptr, size);
  }
  s.reservations.erase(it);
  return CUDA_SUCCESS;
  SIM_END
}

SIM_EXPORT CUresult CUDAAPI cuMemMap(CUdeviceptr ptr, size_t size, size_t offset, CUmemGenericAllocationHandle handle,
                                     unsigned long long flags) {
  SIM_TRY
  std::shared_ptr<PhysMem> p;
  SIM_CHECK(lookup_handle(handle, p));
  if (flags != 0 || size == 0 || size % kChunk || offset % kChunk || ptr % kChunk) return CUDA_ERROR_INVALID_VALUE;
  if (offset > p->size || size > p->size - offset) return CUDA_ERROR_INVALID_VALUE;
  auto& s = vmm();
  std::lock_guard<std::mutex> lock(s.mu);
  if (!reservation_for(s, ptr, size)) return CUDA_ERROR_INVALID_VALUE;
  if (!memmap().overlapping(ptr, size).empty()) return CUDA_ERROR_INVALID_VALUE;  // already mapped
  void* m = mmap(reinterpret_cast<void*>(ptr), size, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_FIXED, p->fd,
                 off_t(offset));
  if (m == MAP_FAILED) return CUDA_ERROR_OUT_OF_MEMORY;
  MemRange r;
  r.base = ptr;
  r.size = size;
  r.held = size;
  r.kind = MemKind::Vmm;
  r.device = p->dev ? p->dev->ordinal : -1;
  r.buffer_id = next_buffer_id();
  r.phys = p;
  r.phys_offset = offset;
  memmap().insert(std::move(r));
  return CUDA_SUCCESS;
  SIM_END
}

SIM_EXPORT CUresult CUDAAPI cuMemUnmap(CUdeviceptr ptr, size_t size) {
  SIM_TRY
  SIM_CHECK(check_init());
  if (size == 0) return CUDA_ERROR_INVALID_VALUE;
  std::lock_guard<std::mutex> lock(vmm().mu);
  return unmap_range(ptr, size);
  SIM_END
}

SIM_EXPORT CUresult CUDAAPI cuMemSetAccess(CUdeviceptr ptr, size_t size, const CUmemAccessDesc* desc, size_t count) {
  SIM_TRY
  SIM_CHECK(check_init());
  if (size == 0 || !desc || count == 0) return CUDA_ERROR_INVALID_VALUE;
  std::lock_guard<std::mutex> lock(vmm().mu);
  auto rs = tiling(ptr, size);
  if (rs.empty()) return CUDA_ERROR_INVALID_VALUE;
  uint32_t read_set = 0, read_clear = 0, write_set = 0, write_clear = 0;
  for (size_t i = 0; i < count; ++i) {
    if (desc[i].location.type != CU_MEM_LOCATION_TYPE_DEVICE) return CUDA_ERROR_INVALID_VALUE;
    Device* d;
    if (lookup_device(desc[i].location.id, &d) != CUDA_SUCCESS) return CUDA_ERROR_INVALID_DEVICE;
    uint32_t bit = 1u << d->ordinal;
    switch (desc[i].flags) {
      case CU_MEM_ACCESS_FLAGS_PROT_NONE: read_clear |= bit; write_clear |= bit; break;
      // The engine cannot fault writes to read-only memory: READ grants access as READWRITE would.
      case CU_MEM_ACCESS_FLAGS_PROT_READ: read_set |= bit; write_clear |= bit; break;
      case CU_MEM_ACCESS_FLAGS_PROT_READWRITE: read_set |= bit; write_set |= bit; break;
      default: return CUDA_ERROR_INVALID_VALUE;
    }
  }
  if (read_clear) quiesce_all();  // revoking access under a running kernel would pull memory from it
  for (auto& r : rs)
    memmap().with(r.base, [&](MemRange& m) {
      m.access_read = (m.access_read & ~read_clear) | read_set;
      m.access_write = (m.access_write & ~write_clear) | write_set;
    });
  return CUDA_SUCCESS;
  SIM_END
}

SIM_EXPORT CUresult CUDAAPI cuMemGetAccess(unsigned long long* flags, const CUmemLocation* location,
                                           CUdeviceptr ptr) {
  SIM_TRY
  SIM_CHECK(check_init());
  if (!flags || !location || location->type != CU_MEM_LOCATION_TYPE_DEVICE) return CUDA_ERROR_INVALID_VALUE;
  Device* d;
  if (lookup_device(location->id, &d) != CUDA_SUCCESS) return CUDA_ERROR_INVALID_DEVICE;
  auto r = memmap().find(ptr);
  if (!r || r->kind != MemKind::Vmm) return CUDA_ERROR_INVALID_VALUE;
  uint32_t bit = 1u << d->ordinal;
  *flags = (r->access_write & bit)  ? CU_MEM_ACCESS_FLAGS_PROT_READWRITE
           : (r->access_read & bit) ? CU_MEM_ACCESS_FLAGS_PROT_READ
                                    : CU_MEM_ACCESS_FLAGS_PROT_NONE;
  return CUDA_SUCCESS;
  SIM_END
}

SIM_EXPORT CUresult CUDAAPI cuMemGetAllocationPropertiesFromHandle(CUmemAllocationProp* prop,
                                                                   CUmemGenericAllocationHandle handle) {
  SIM_TRY
  std::shared_ptr<PhysMem> p;
  SIM_CHECK(lookup_handle(handle, p));
  if (!prop) return CUDA_ERROR_INVALID_VALUE;
  *prop = p->prop;
  return CUDA_SUCCESS;
  SIM_END
}

SIM_EXPORT CUresult CUDAAPI cuMemRetainAllocationHandle(CUmemGenericAllocationHandle* handle, void* addr) {
  SIM_TRY
  SIM_CHECK(check_init());
  if (!handle) return CUDA_ERROR_INVALID_VALUE;
  auto r = memmap().find(reinterpret_cast<uint64_t>(addr));
  if (!r || r->kind != MemKind::Vmm || !r->phys) return CUDA_ERROR_INVALID_VALUE;
  // The handle may have been released while mapped: retaining makes it valid again.
  if (r->phys->handle_refs.fetch_add(1) == 0) registry().add(r->phys.get(), r->phys);
  *handle = handle_of(r->phys.get());
  return CUDA_SUCCESS;
  SIM_END
}

SIM_EXPORT CUresult CUDAAPI cuMemExportToShareableHandle(void* shareableHandle, CUmemGenericAllocationHandle handle,
                                                         CUmemAllocationHandleType handleType,
                                                         unsigned long long flags) {
  SIM_TRY
  std::shared_ptr<PhysMem> p;
  SIM_CHECK(lookup_handle(handle, p));
  if (!shareableHandle || flags != 0) return CUDA_ERROR_INVALID_VALUE;
  if (handleType != CU_MEM_HANDLE_TYPE_POSIX_FILE_DESCRIPTOR) return CUDA_ERROR_NOT_SUPPORTED;
  if (!(p->prop.requestedHandleTypes & CU_MEM_HANDLE_TYPE_POSIX_FILE_DESCRIPTOR)) return CUDA_ERROR_INVALID_VALUE;
  int fd = dup(p->fd);
  if (fd < 0) return CUDA_ERROR_OPERATING_SYSTEM;
  *static_cast<int*>(shareableHandle) = fd;
  return CUDA_SUCCESS;
  SIM_END
}

SIM_EXPORT CUresult CUDAAPI cuMemImportFromShareableHandle(CUmemGenericAllocationHandle* handle, void* osHandle,
                                                           CUmemAllocationHandleType shHandleType) {
  SIM_TRY
  SIM_CHECK(check_init());
  if (!handle) return CUDA_ERROR_INVALID_VALUE;
  if (shHandleType != CU_MEM_HANDLE_TYPE_POSIX_FILE_DESCRIPTOR) return CUDA_ERROR_NOT_SUPPORTED;
  int fd = int(reinterpret_cast<intptr_t>(osHandle));
  struct stat st;
  if (fd < 0 || fstat(fd, &st) != 0 || st.st_size <= 0 || uint64_t(st.st_size) % kChunk) return CUDA_ERROR_INVALID_VALUE;
  auto p = std::make_shared<PhysMem>();
  p->fd = dup(fd);
  if (p->fd < 0) return CUDA_ERROR_OPERATING_SYSTEM;
  p->size = uint64_t(st.st_size);
  Context* c = current_context_raw();
  p->dev = c ? c->dev : device_at(0);
  p->prop.type = CU_MEM_ALLOCATION_TYPE_PINNED;
  p->prop.requestedHandleTypes = CU_MEM_HANDLE_TYPE_POSIX_FILE_DESCRIPTOR;
  p->prop.location.type = CU_MEM_LOCATION_TYPE_DEVICE;
  p->prop.location.id = p->dev ? p->dev->ordinal : 0;
  registry().add(p.get(), p);
  *handle = handle_of(p.get());
  return CUDA_SUCCESS;
  SIM_END
}

}  // extern "C"
