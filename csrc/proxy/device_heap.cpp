#include "device_heap.h"

#include <algorithm>

#include "backend.h"

namespace sing::proxy {

namespace {
constexpr uint64_t kSlabBytes = 2ull << 20;
constexpr uint64_t kMinBlock = 512;               // cuMemAlloc aligns to at least 256 B
constexpr uint64_t kLargest = kSlabBytes / 4;     // bigger requests get their own mapping

uint64_t round_up(uint64_t x, uint64_t a) { return (x + a - 1) / a * a; }

uint32_t size_class(uint64_t bytes) {
  uint64_t b = kMinBlock;
  while (b < bytes) b <<= 1;
  return uint32_t(b);
}
}  // namespace

void DeviceHeap::init(uint64_t base, uint64_t size) {
  std::lock_guard<std::mutex> lock(mu_);
  base_ = base;
  size_ = size;
  free_va_.clear();
  free_va_[base] = size;
}

uint64_t DeviceHeap::granularity(CUdevice device) {
  auto it = granularity_.find(device);
  if (it != granularity_.end()) return it->second;
  CUmemAllocationProp prop{};
  prop.type = CU_MEM_ALLOCATION_TYPE_PINNED;
  prop.location.type = CU_MEM_LOCATION_TYPE_DEVICE;
  prop.location.id = device;
  size_t g = 0;
  if (BACKEND(cuMemGetAllocationGranularity)(&g, &prop, CU_MEM_ALLOC_GRANULARITY_RECOMMENDED) != CUDA_SUCCESS || !g)
    g = kSlabBytes;
  granularity_[device] = std::max<uint64_t>(g, kSlabBytes);
  return granularity_[device];
}

bool DeviceHeap::take_va(uint64_t bytes, uint64_t alignment, uint64_t* out) {
  // First fit, lowest address: allocation sequences give the same addresses
  // run after run, which keeps jobs reproducible.
  for (auto it = free_va_.begin(); it != free_va_.end(); ++it) {
    uint64_t start = round_up(it->first, alignment);
    uint64_t end = it->first + it->second;
    if (start + bytes > end || start + bytes < start) continue;
    uint64_t lo = it->first;
    free_va_.erase(it);
    if (start > lo) free_va_[lo] = start - lo;
    if (end > start + bytes) free_va_[start + bytes] = end - (start + bytes);
    *out = start;
    return true;
  }
  return false;
}

void DeviceHeap::give_va(uint64_t va, uint64_t bytes) {
  auto next = free_va_.lower_bound(va);
  if (next != free_va_.end() && va + bytes == next->first) {
    bytes += next->second;
    next = free_va_.erase(next);
  }
  if (next != free_va_.begin()) {
    auto prev = std::prev(next);
    if (prev->first + prev->second == va) {
      prev->second += bytes;
      return;
    }
  }
  free_va_[va] = bytes;
}

CUresult DeviceHeap::map_new(uint64_t bytes, CUdevice device, uint64_t pool, uint64_t* va,
                             CUmemGenericAllocationHandle* handle) {
  uint64_t g = granularity(device);
  uint64_t mapped = round_up(bytes, g);
  if (!take_va(mapped, g, va)) return CUDA_ERROR_OUT_OF_MEMORY;
  CUmemAllocationProp prop{};
  prop.type = CU_MEM_ALLOCATION_TYPE_PINNED;
  prop.location.type = CU_MEM_LOCATION_TYPE_DEVICE;
  prop.location.id = device;
  CUresult r = BACKEND(cuMemCreate)(handle, mapped, &prop, 0);
  if (r != CUDA_SUCCESS) {
    give_va(*va, mapped);
    return r;
  }
  r = BACKEND(cuMemMap)(*va, mapped, 0, *handle, 0);
  if (r == CUDA_SUCCESS) {
    r = grant(*va, mapped, device, pool);
    if (r != CUDA_SUCCESS) BACKEND(cuMemUnmap)(*va, mapped);
  }
  if (r != CUDA_SUCCESS) {
    BACKEND(cuMemRelease)(*handle);
    give_va(*va, mapped);
  }
  return r;
}

// Read-write access for the owning device and every peer granted access.
CUresult DeviceHeap::grant(uint64_t va, uint64_t bytes, CUdevice owner, uint64_t pool) {
  std::vector<CUmemAccessDesc> access;
  CUmemAccessDesc d{};
  d.location.type = CU_MEM_LOCATION_TYPE_DEVICE;
  d.location.id = owner;
  d.flags = CU_MEM_ACCESS_FLAGS_PROT_READWRITE;
  access.push_back(d);
  for (int peer : access_[{pool, owner}]) {
    d.location.id = peer;
    access.push_back(d);
  }
  return BACKEND(cuMemSetAccess)(va, bytes, access.data(), access.size());
}

CUresult DeviceHeap::regrant(uint64_t pool, CUdevice owner) {
  CUresult r = CUDA_SUCCESS;
  for (auto& [va, a] : allocs_)
    if (!a.slab && a.device == owner && a.pool == pool && r == CUDA_SUCCESS) r = grant(va, a.mapped, owner, pool);
  for (auto& [va, s] : slabs_)
    if (s.device == owner && s.pool == pool && r == CUDA_SUCCESS) r = grant(va, kSlabBytes, owner, pool);
  return r;
}

CUresult DeviceHeap::set_peer_access(CUdevice owner, CUdevice accessor, bool enable) {
  std::lock_guard<std::mutex> lock(mu_);
  auto& peers = access_[{0, owner}];
  auto it = std::find(peers.begin(), peers.end(), accessor);
  if (enable && it == peers.end()) peers.push_back(accessor);
  if (!enable && it != peers.end()) peers.erase(it);
  return regrant(0, owner);
}

CUresult DeviceHeap::set_pool_access(uint64_t pool, CUdevice owner, const std::vector<int>& accessors) {
  std::lock_guard<std::mutex> lock(mu_);
  access_[{pool, owner}] = accessors;
  return regrant(pool, owner);
}

void DeviceHeap::unmap(uint64_t va, uint64_t bytes, CUmemGenericAllocationHandle handle) {
  BACKEND(cuMemUnmap)(va, bytes);
  BACKEND(cuMemRelease)(handle);
  give_va(va, bytes);
}

CUresult DeviceHeap::alloc(uint64_t bytes, CUdevice device, uint64_t context, uint64_t* out, uint64_t pool) {
  if (bytes == 0) return CUDA_ERROR_INVALID_VALUE;
  std::lock_guard<std::mutex> lock(mu_);
  if (bytes > kLargest) {
    uint64_t va;
    CUmemGenericAllocationHandle h;
    CUresult r = map_new(bytes, device, pool, &va, &h);
    if (r != CUDA_SUCCESS) return r;
    allocs_[va] = Alloc{bytes, 0, h, round_up(bytes, granularity(device)), device, context, pool};
    *out = va;
    return CUDA_SUCCESS;
  }
  const uint32_t block = size_class(bytes);
  auto& partial = partial_[block];
  Slab* slab = nullptr;
  for (uint64_t sva : partial) {
    Slab& s = slabs_[sva];
    if (s.device == device && s.pool == pool) {
      slab = &s;
      break;
    }
  }
  if (!slab) {
    uint64_t va;
    CUmemGenericAllocationHandle h;
    CUresult r = map_new(kSlabBytes, device, pool, &va, &h);
    if (r != CUDA_SUCCESS) return r;
    Slab s;
    s.pool = pool;
    s.va = va;
    s.block = block;
    s.device = device;
    s.handle = h;
    s.free_bitmap.assign((kSlabBytes / block + 63) / 64, ~0ull);
    slab = &(slabs_[va] = std::move(s));
    partial.push_back(va);
  }
  const uint64_t nblocks = kSlabBytes / block;
  for (size_t w = 0; w < slab->free_bitmap.size(); ++w) {
    uint64_t bits = slab->free_bitmap[w];
    if (!bits) continue;
    uint64_t bit = uint64_t(__builtin_ctzll(bits));
    uint64_t index = w * 64 + bit;
    if (index >= nblocks) break;
    slab->free_bitmap[w] &= ~(1ull << bit);
    slab->used++;
    if (slab->used == nblocks) partial.erase(std::find(partial.begin(), partial.end(), slab->va));
    uint64_t va = slab->va + index * block;
    allocs_[va] = Alloc{bytes, slab->va, 0, 0, device, context, pool};
    *out = va;
    return CUDA_SUCCESS;
  }
  return CUDA_ERROR_OUT_OF_MEMORY;  // not reached: a partial slab has a free block
}

CUresult DeviceHeap::free(uint64_t ptr) {
  std::lock_guard<std::mutex> lock(mu_);
  return free_locked(ptr);
}

uint64_t DeviceHeap::context_of(uint64_t ptr) const {
  std::lock_guard<std::mutex> lock(mu_);
  auto it = allocs_.upper_bound(ptr);
  if (it == allocs_.begin()) return 0;
  --it;
  return ptr < it->first + it->second.bytes ? it->second.context : 0;
}

void DeviceHeap::free_context(uint64_t context) {
  std::lock_guard<std::mutex> lock(mu_);
  std::vector<uint64_t> doomed;
  for (auto& [va, a] : allocs_)
    if (a.context == context) doomed.push_back(va);
  for (uint64_t va : doomed) free_locked(va);
}

CUresult DeviceHeap::free_locked(uint64_t ptr) {
  auto it = allocs_.find(ptr);
  if (it == allocs_.end()) return CUDA_ERROR_INVALID_VALUE;
  Alloc a = it->second;
  allocs_.erase(it);
  if (!a.slab) {
    unmap(ptr, a.mapped, a.handle);
    return CUDA_SUCCESS;
  }
  Slab& s = slabs_[a.slab];
  uint64_t index = (ptr - s.va) / s.block;
  const uint64_t nblocks = kSlabBytes / s.block;
  if (s.used == nblocks) partial_[s.block].push_back(s.va);
  s.free_bitmap[index / 64] |= 1ull << (index % 64);
  s.used--;
  if (s.used == 0) {
    // An empty slab goes back to the device, so freed memory is really free.
    auto& partial = partial_[s.block];
    partial.erase(std::find(partial.begin(), partial.end(), s.va));
    unmap(s.va, kSlabBytes, s.handle);
    slabs_.erase(a.slab);
  }
  return CUDA_SUCCESS;
}

bool DeviceHeap::range(uint64_t ptr, uint64_t* base, uint64_t* bytes) const {
  std::lock_guard<std::mutex> lock(mu_);
  auto it = allocs_.upper_bound(ptr);
  if (it == allocs_.begin()) return false;
  --it;
  if (ptr >= it->first + it->second.bytes) return false;
  if (base) *base = it->first;
  if (bytes) *bytes = it->second.bytes;
  return true;
}

bool DeviceHeap::contains(uint64_t ptr, uint64_t bytes) const {
  uint64_t b, n;
  return range(ptr, &b, &n) && ptr + bytes <= b + n;
}

CUresult DeviceHeap::reserve_va(uint64_t bytes, uint64_t alignment, uint64_t hint, uint64_t* out) {
  std::lock_guard<std::mutex> lock(mu_);
  const uint64_t g = kSlabBytes;
  if (bytes == 0 || bytes % g) return CUDA_ERROR_INVALID_VALUE;
  alignment = std::max(alignment, g);
  if (hint && hint % alignment == 0) {
    // Honour the hint when that range is free, as the driver does.
    auto it = free_va_.upper_bound(hint);
    if (it != free_va_.begin()) {
      --it;
      if (it->first <= hint && hint + bytes <= it->first + it->second) {
        uint64_t lo = it->first, end = it->first + it->second;
        free_va_.erase(it);
        if (hint > lo) free_va_[lo] = hint - lo;
        if (end > hint + bytes) free_va_[hint + bytes] = end - (hint + bytes);
        app_va_[hint] = bytes;
        *out = hint;
        return CUDA_SUCCESS;
      }
    }
  }
  if (!take_va(bytes, alignment, out)) return CUDA_ERROR_OUT_OF_MEMORY;
  app_va_[*out] = bytes;
  return CUDA_SUCCESS;
}

CUresult DeviceHeap::release_va(uint64_t ptr, uint64_t bytes) {
  std::lock_guard<std::mutex> lock(mu_);
  auto it = app_va_.find(ptr);
  if (it == app_va_.end() || it->second != bytes) return CUDA_ERROR_INVALID_VALUE;
  app_va_.erase(it);
  give_va(ptr, bytes);
  return CUDA_SUCCESS;
}

bool DeviceHeap::va_reserved(uint64_t ptr, uint64_t bytes) const {
  std::lock_guard<std::mutex> lock(mu_);
  auto it = app_va_.upper_bound(ptr);
  if (it == app_va_.begin()) return false;
  --it;
  return ptr >= it->first && ptr + bytes <= it->first + it->second && ptr + bytes >= ptr;
}

std::vector<DeviceHeap::Mapping> DeviceHeap::mappings() const {
  std::lock_guard<std::mutex> lock(mu_);
  std::vector<Mapping> out;
  for (auto& [va, a] : allocs_)
    if (!a.slab) out.push_back({va, a.mapped, a.handle, a.device});
  for (auto& [va, s] : slabs_) out.push_back({va, kSlabBytes, s.handle, s.device});
  std::sort(out.begin(), out.end(), [](const Mapping& a, const Mapping& b) { return a.va < b.va; });
  return out;
}

void DeviceHeap::release_all() {
  std::lock_guard<std::mutex> lock(mu_);
  for (auto& [va, a] : allocs_)
    if (!a.slab) unmap(va, a.mapped, a.handle);
  for (auto& [va, s] : slabs_) unmap(va, kSlabBytes, s.handle);
  allocs_.clear();
  slabs_.clear();
  partial_.clear();
}

uint64_t DeviceHeap::slack(CUdevice device) const {
  std::lock_guard<std::mutex> lock(mu_);
  uint64_t mapped = 0, held = 0;
  for (auto& [va, s] : slabs_)
    if (s.device == device) mapped += kSlabBytes;
  for (auto& [va, a] : allocs_) {
    if (a.device != device) continue;
    if (!a.slab) mapped += a.mapped;
    held += a.bytes >= kSlabBytes ? round_up(a.bytes, kSlabBytes) : round_up(a.bytes, kMinBlock);
  }
  return mapped > held ? mapped - held : 0;
}

uint64_t DeviceHeap::live_bytes() const {
  std::lock_guard<std::mutex> lock(mu_);
  uint64_t n = 0;
  for (auto& [va, a] : allocs_) n += a.bytes;
  return n;
}

}  // namespace sing::proxy
