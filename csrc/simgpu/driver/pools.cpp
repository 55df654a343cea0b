// Memory pools and stream-ordered allocation (see pools.h).
#include "pools.h"

#include "capture.h"
#include "memory.h"

namespace simgpu {

namespace {

// Pools are never freed: allocations hold raw pointers to their pool, and a
// destroyed pool lives on until its last allocation is gone.  Pools are few.
std::mutex g_pools_mu;
std::vector<std::shared_ptr<MemPool>>& all_pools() {
  static auto* v = new std::vector<std::shared_ptr<MemPool>>;
  return *v;
}

uint64_t held_size(uint64_t bytes) {
  return bytes >= kLargeAlign ? align_up(bytes, kLargeAlign) : align_up(bytes, kAllocAlign);
}

std::shared_ptr<MemPool> make_pool(Device& d, const CUmemPoolProps& props, bool is_default) {
  auto p = std::make_shared<MemPool>();
  p->dev = &d;
  p->is_default = is_default;
  p->props = props;
  // The default pool keeps nothing across synchronisations; so do new pools (threshold 0).
  std::lock_guard<std::mutex> lock(g_pools_mu);
  all_pools().push_back(p);
  registry().add(p.get(), p);
  return p;
}

MemPool& default_pool(Device& d) {
  std::lock_guard<std::mutex> lock(d.pool_mu);
  if (!d.default_pool) {
    CUmemPoolProps props{};
    props.allocType = CU_MEM_ALLOCATION_TYPE_PINNED;
    props.handleTypes = CU_MEM_HANDLE_TYPE_NONE;
    props.location.type = CU_MEM_LOCATION_TYPE_DEVICE;
    props.location.id = d.ordinal;
    d.default_pool = make_pool(d, props, true);
  }
  return *d.default_pool;
}

MemPool& current_pool(Device& d) {
  MemPool& def = default_pool(d);
  std::lock_guard<std::mutex> lock(d.pool_mu);
  return d.current_pool ? *d.current_pool : def;
}

// Releases cached blocks whose frees have executed until at most `keep` bytes stay reserved.
void trim(MemPool& p, uint64_t keep) {
  std::vector<MemPool::Block> drop;
  {
    std::lock_guard<std::mutex> lock(p.mu);
    for (auto it = p.cached.begin(); it != p.cached.end() && p.reserved > keep;) {
      if (it->second.range_live) {  // its free has not executed yet
        ++it;
        continue;
      }
      p.reserved -= it->second.held;
      drop.push_back(it->second);
      it = p.cached.erase(it);
    }
  }
  for (auto& b : drop) {
    p.dev->heap.release(b.addr, b.held);
    p.dev->uncharge(b.held);
  }
}

CUresult pool_alloc(MemPool& p, Context& c, Stream& s, uint64_t size, uint64_t* out) {
  if (size == 0) return CUDA_ERROR_INVALID_VALUE;
  if (size > (uint64_t(1) << 46)) return CUDA_ERROR_OUT_OF_MEMORY;
  uint64_t held = held_size(size);
  Device& d = *p.dev;
  MemRange r;
  r.size = size;
  r.kind = MemKind::Device;
  r.device = d.ordinal;
  r.ctx = c.handle();
  r.ctx_id = c.id.load();
  r.buffer_id = next_buffer_id();
  r.pool = &p;
  {
    std::lock_guard<std::mutex> lock(p.mu);
    if (p.destroyed) return CUDA_ERROR_INVALID_VALUE;
    for (auto it = p.cached.lower_bound(held); it != p.cached.end() && it->first <= 2 * held; ++it) {
      auto fs = it->second.freed_on.lock();
      bool same_stream = fs.get() == &s;
      bool done = !fs || (it->second.freed_seq != UINT64_MAX && fs->completed() >= it->second.freed_seq);
      if (!same_stream && !done) continue;
      MemPool::Block b = it->second;
      p.cached.erase(it);
      ++b.gen;
      b.size = size;
      b.freed_on.reset();
      r.base = b.addr;
      r.held = b.held;
      r.access_read = r.access_write = p.access_mask;
      if (b.range_live) {
        // Its free has not executed yet: the registered range simply becomes the new allocation.
        memmap().with(b.addr, [&](MemRange& m) { m = r; });
      } else {
        memmap().insert(r);
      }
      b.range_live = true;
      p.used += b.held;
      p.used_high = std::max(p.used_high, p.used);
      p.live[b.addr] = b;
      *out = b.addr;
      return CUDA_SUCCESS;
    }
    if (p.props.maxSize && p.reserved + held > p.props.maxSize) return CUDA_ERROR_OUT_OF_MEMORY;
  }
  if (!d.charge(held)) {
    trim(p, 0);  // give back what is cached before failing, as the driver does
    if (!d.charge(held)) return CUDA_ERROR_OUT_OF_MEMORY;
  }
  MemPool::Block b;
  b.addr = d.heap.alloc(held);
  if (!b.addr) {
    d.uncharge(held);
    return CUDA_ERROR_OUT_OF_MEMORY;
  }
  b.held = held;
  b.size = size;
  b.gen = 1;
  b.range_live = true;
  r.base = b.addr;
  r.held = held;
  {
    std::lock_guard<std::mutex> lock(p.mu);
    r.access_read = r.access_write = p.access_mask;
    p.reserved += held;
    p.reserved_high = std::max(p.reserved_high, p.reserved);
    p.used += held;
    p.used_high = std::max(p.used_high, p.used);
    p.live[b.addr] = b;
    memmap().insert(r);
  }
  *out = b.addr;
  return CUDA_SUCCESS;
}

CUresult free_async(CUdeviceptr dptr, CUstream h, bool ptds) {
  std::shared_ptr<Stream> s;
  SIM_CHECK(resolve_stream(h, ptds, s));
  if (!dptr) return CUDA_ERROR_INVALID_VALUE;
  if (s->capturing.load()) return capture_mem_free(*s, dptr);
  auto r = memmap().find(dptr);
  if (!r || r->base != dptr || r->kind != MemKind::Device) return CUDA_ERROR_INVALID_VALUE;
  if (r->internal) return graph_mem_free_outside(dptr, *s);
  if (!r->pool) {
    // cuMemAlloc memory: freed once the stream has reached this point.
    synchronize_stream(*s);
    return free_device(dptr);
  }
  MemPool& p = *r->pool;
  SIM_CHECK(capture_check_implicit(*s));
  uint64_t gen;
  {
    std::lock_guard<std::mutex> lock(p.mu);
    auto it = p.live.find(dptr);
    if (it == p.live.end()) return CUDA_ERROR_INVALID_VALUE;  // not allocated (or already freed)
    MemPool::Block b = it->second;
    p.live.erase(it);
    p.used -= b.held;
    b.freed_on = s;
    b.freed_seq = UINT64_MAX;
    gen = b.gen;
    p.cached.emplace(b.held, b);
  }
  uint64_t seq = submit_seq(*s, PoolFreeWork{p.shared_from_this(), dptr, gen});
  std::lock_guard<std::mutex> lock(p.mu);
  for (auto& [h, b] : p.cached)
    if (b.addr == dptr && b.gen == gen) b.freed_seq = seq;
  return CUDA_SUCCESS;
}

CUresult lookup_pool(CUmemoryPool h, std::shared_ptr<MemPool>& out) {
  SIM_CHECK(check_init());
  out = registry().get<MemPool>(h, Kind::MemPool);
  return out ? CUDA_SUCCESS : CUDA_ERROR_INVALID_VALUE;
}

CUresult device_location(const CUmemLocation* loc, Device** out) {
  if (!loc) return CUDA_ERROR_INVALID_VALUE;
  if (loc->type == CU_MEM_LOCATION_TYPE_HOST || loc->type == CU_MEM_LOCATION_TYPE_HOST_NUMA ||
      loc->type == CU_MEM_LOCATION_TYPE_HOST_NUMA_CURRENT)
    return CUDA_ERROR_NOT_SUPPORTED;  // host pools: HOST_MEMORY_POOLS_SUPPORTED is 0
  if (loc->type != CU_MEM_LOCATION_TYPE_DEVICE) return CUDA_ERROR_INVALID_VALUE;
  Device* d;
  if (lookup_device(loc->id, &d) != CUDA_SUCCESS) return CUDA_ERROR_INVALID_DEVICE;
  *out = d;
  return CUDA_SUCCESS;
}

void refresh_access(MemPool& p) {
  uint32_t mask;
  std::vector<uint64_t> addrs;
  {
    std::lock_guard<std::mutex> lock(p.mu);
    mask = p.access_mask;
    for (auto& [a, b] : p.live) addrs.push_back(a);
  }
  for (uint64_t a : addrs)
    memmap().with(a, [&](MemRange& r) {
      if (r.pool == &p) r.access_read = r.access_write = mask;
    });
}

}  // namespace

void pool_complete_free(MemPool& p, uint64_t addr, uint64_t gen) {
  MemPool::Block drop;
  bool release = false;
  {
    std::lock_guard<std::mutex> lock(p.mu);
    for (auto it = p.cached.begin(); it != p.cached.end(); ++it) {
      MemPool::Block& b = it->second;
      if (b.addr != addr || b.gen != gen || !b.range_live) continue;
      // From here on kernels no longer see the block.
      memmap().erase(addr);
      b.range_live = false;
      if (p.destroyed) {
        p.reserved -= b.held;
        drop = b;
        release = true;
        p.cached.erase(it);
      }
      break;
    }
  }
  if (release) {
    p.dev->heap.release(drop.addr, drop.held);
    p.dev->uncharge(drop.held);
  }
}

CUresult pool_free_now(MemPool& p, uint64_t addr) {
  MemPool::Block b;
  {
    std::lock_guard<std::mutex> lock(p.mu);
    auto it = p.live.find(addr);
    if (it == p.live.end()) return CUDA_ERROR_INVALID_VALUE;
    b = it->second;
    p.live.erase(it);
    p.used -= b.held;
    p.reserved -= b.held;
    memmap().erase(addr);
  }
  p.dev->heap.release(b.addr, b.held);
  p.dev->uncharge(b.held);
  return CUDA_SUCCESS;
}

void pools_trim_on_sync(Device& d) {
  std::vector<std::shared_ptr<MemPool>> pools;
  {
    std::lock_guard<std::mutex> lock(g_pools_mu);
    for (auto& p : all_pools())
      if (p->dev == &d) pools.push_back(p);
  }
  for (auto& p : pools) {
    uint64_t keep;
    {
      std::lock_guard<std::mutex> lock(p->mu);
      if (p->reserved <= p->release_threshold) continue;
      keep = p->release_threshold;
    }
    trim(*p, keep);
  }
}

// Stream-ordered allocation on the stream's device from its current pool;
// used by capture as well.
CUresult alloc_async(CUdeviceptr* dptr, size_t size, MemPool* pool, CUstream h, bool ptds) {
  std::shared_ptr<Stream> s;
  SIM_CHECK(resolve_stream(h, ptds, s));
  if (!dptr || size == 0) return CUDA_ERROR_INVALID_VALUE;
  if (s->capturing.load()) return capture_mem_alloc(*s, size, pool, dptr);
  MemPool& p = pool ? *pool : current_pool(*s->ctx->dev);
  uint64_t addr;
  SIM_CHECK(pool_alloc(p, *s->ctx, *s, size, &addr));
  *dptr = addr;
  return CUDA_SUCCESS;
}

}  // namespace simgpu

using namespace simgpu;

extern "C" {

SIM_EXPORT CUresult CUDAAPI cuMemAllocAsync(CUdeviceptr* dptr, size_t bytesize, CUstream hStream) {
  SIM_TRY return alloc_async(dptr, bytesize, nullptr, hStream, false);
  SIM_END
}
SIM_EXPORT CUresult CUDAAPI cuMemAllocAsync_ptsz(CUdeviceptr* dptr, size_t bytesize, CUstream hStream) {
  SIM_TRY return alloc_async(dptr, bytesize, nullptr, hStream, true);
  SIM_END
}

SIM_EXPORT CUresult CUDAAPI cuMemAllocFromPoolAsync(CUdeviceptr* dptr, size_t bytesize, CUmemoryPool pool,
                                                    CUstream hStream) {
  SIM_TRY
  std::shared_ptr<MemPool> p;
  SIM_CHECK(lookup_pool(pool, p));
  return alloc_async(dptr, bytesize, p.get(), hStream, false);
  SIM_END
}
SIM_EXPORT CUresult CUDAAPI cuMemAllocFromPoolAsync_ptsz(CUdeviceptr* dptr, size_t bytesize, CUmemoryPool pool,
                                                         CUstream hStream) {
  SIM_TRY
  std::shared_ptr<MemPool> p;
  SIM_CHECK(lookup_pool(pool, p));
  return alloc_async(dptr, bytesize, p.get(), hStream, true);
  SIM_END
}

SIM_EXPORT CUresult CUDAAPI cuMemFreeAsync(CUdeviceptr dptr, CUstream hStream) {
  SIM_TRY return free_async(dptr, hStream, false);
  SIM_END
}
SIM_EXPORT CUresult CUDAAPI cuMemFreeAsync_ptsz(CUdeviceptr dptr, CUstream hStream) {
  SIM_TRY return free_async(dptr, hStream, true);
  SIM_END
}

SIM_EXPORT CUresult CUDAAPI cuMemPoolCreate(CUmemoryPool* pool, const CUmemPoolProps* poolProps) {
  SIM_TRY
  SIM_CHECK(check_init());
  if (!pool || !poolProps) return CUDA_ERROR_INVALID_VALUE;
  if (poolProps->allocType != CU_MEM_ALLOCATION_TYPE_PINNED) return CUDA_ERROR_INVALID_VALUE;
  Device* d;
  SIM_CHECK(device_location(&poolProps->location, &d));
  if (poolProps->handleTypes != CU_MEM_HANDLE_TYPE_NONE) return CUDA_ERROR_NOT_SUPPORTED;  // no pool IPC
  if (poolProps->win32SecurityAttributes) return CUDA_ERROR_INVALID_VALUE;
  auto p = make_pool(*d, *poolProps, false);
  *pool = p->handle();
  return CUDA_SUCCESS;
  SIM_END
}

SIM_EXPORT CUresult CUDAAPI cuMemPoolDestroy(CUmemoryPool pool) {
  SIM_TRY
  std::shared_ptr<MemPool> p;
  SIM_CHECK(lookup_pool(pool, p));
  if (p->is_default) return CUDA_ERROR_INVALID_VALUE;
  {
    std::lock_guard<std::mutex> lock(p->dev->pool_mu);
    if (p->dev->current_pool == p.get()) p->dev->current_pool = nullptr;
  }
  registry().remove(pool, Kind::MemPool);
  {
    std::lock_guard<std::mutex> lock(p->mu);
    p->destroyed = true;
  }
  // Cached memory goes now; live allocations when they are freed.
  trim(*p, 0);
  return CUDA_SUCCESS;
  SIM_END
}

SIM_EXPORT CUresult CUDAAPI cuMemPoolTrimTo(CUmemoryPool pool, size_t minBytesToKeep) {
  SIM_TRY
  std::shared_ptr<MemPool> p;
  SIM_CHECK(lookup_pool(pool, p));
  trim(*p, minBytesToKeep);
  return CUDA_SUCCESS;
  SIM_END
}

SIM_EXPORT CUresult CUDAAPI cuMemPoolSetAttribute(CUmemoryPool pool, CUmemPool_attribute attr, void* value) {
  SIM_TRY
  std::shared_ptr<MemPool> p;
  SIM_CHECK(lookup_pool(pool, p));
  if (!value) return CUDA_ERROR_INVALID_VALUE;
  std::lock_guard<std::mutex> lock(p->mu);
  switch (attr) {
    case CU_MEMPOOL_ATTR_REUSE_FOLLOW_EVENT_DEPENDENCIES: p->reuse_follow_events = *static_cast<int*>(value); break;
    case CU_MEMPOOL_ATTR_REUSE_ALLOW_OPPORTUNISTIC: p->reuse_opportunistic = *static_cast<int*>(value); break;
    case CU_MEMPOOL_ATTR_REUSE_ALLOW_INTERNAL_DEPENDENCIES: p->reuse_internal = *static_cast<int*>(value); break;
    case CU_MEMPOOL_ATTR_RELEASE_THRESHOLD: p->release_threshold = *static_cast<cuuint64_t*>(value); break;
    case CU_MEMPOOL_ATTR_RESERVED_MEM_HIGH:
      if (*static_cast<cuuint64_t*>(value) != 0) return CUDA_ERROR_INVALID_VALUE;  // may only be reset
      p->reserved_high = p->reserved;
      break;
    case CU_MEMPOOL_ATTR_USED_MEM_HIGH:
      if (*static_cast<cuuint64_t*>(value) != 0) return CUDA_ERROR_INVALID_VALUE;
      p->used_high = p->used;
      break;
    default: return CUDA_ERROR_INVALID_VALUE;
  }
  return CUDA_SUCCESS;
  SIM_END
}

SIM_EXPORT CUresult CUDAAPI cuMemPoolGetAttribute(CUmemoryPool pool, CUmemPool_attribute attr, void* value) {
  SIM_TRY
  std::shared_ptr<MemPool> p;
  SIM_CHECK(lookup_pool(pool, p));
  if (!value) return CUDA_ERROR_INVALID_VALUE;
  std::lock_guard<std::mutex> lock(p->mu);
  switch (attr) {
    case CU_MEMPOOL_ATTR_REUSE_FOLLOW_EVENT_DEPENDENCIES: *static_cast<int*>(value) = p->reuse_follow_events; break;
    case CU_MEMPOOL_ATTR_REUSE_ALLOW_OPPORTUNISTIC: *static_cast<int*>(value) = p->reuse_opportunistic; break;
    case CU_MEMPOOL_ATTR_REUSE_ALLOW_INTERNAL_DEPENDENCIES: *static_cast<int*>(value) = p->reuse_internal; break;
    case CU_MEMPOOL_ATTR_RELEASE_THRESHOLD: *static_cast<cuuint64_t*>(value) = p->release_threshold; break;
    case CU_MEMPOOL_ATTR_RESERVED_MEM_CURRENT: *static_cast<cuuint64_t*>(value) = p->reserved; break;
    case CU_MEMPOOL_ATTR_RESERVED_MEM_HIGH: *static_cast<cuuint64_t*>(value) = p->reserved_high; break;
    case CU_MEMPOOL_ATTR_USED_MEM_CURRENT: *static_cast<cuuint64_t*>(value) = p->used; break;
    case CU_MEMPOOL_ATTR_USED_MEM_HIGH: *static_cast<cuuint64_t*>(value) = p->used_high; break;
    default: return CUDA_ERROR_INVALID_VALUE;
  }
  return CUDA_SUCCESS;
  SIM_END
}

SIM_EXPORT CUresult CUDAAPI cuMemPoolSetAccess(CUmemoryPool pool, const CUmemAccessDesc* map, size_t count) {
  SIM_TRY
  std::shared_ptr<MemPool> p;
  SIM_CHECK(lookup_pool(pool, p));
  if (count && !map) return CUDA_ERROR_INVALID_VALUE;
  for (size_t i = 0; i < count; ++i) {
    Device* d;
    SIM_CHECK(device_location(&map[i].location, &d));
    if (map[i].flags > CU_MEM_ACCESS_FLAGS_PROT_READWRITE) return CUDA_ERROR_INVALID_VALUE;
    // The owning device always has read-write access.
    if (d == p->dev) {
      if (map[i].flags != CU_MEM_ACCESS_FLAGS_PROT_READWRITE) return CUDA_ERROR_INVALID_DEVICE;
      continue;
    }
    std::lock_guard<std::mutex> lock(p->mu);
    uint32_t bit = 1u << d->ordinal;
    if (map[i].flags == CU_MEM_ACCESS_FLAGS_PROT_NONE)
      p->access_mask &= ~bit;
    else
      p->access_mask |= bit;
  }
  refresh_access(*p);
  return CUDA_SUCCESS;
  SIM_END
}

SIM_EXPORT CUresult CUDAAPI cuMemPoolGetAccess(CUmemAccess_flags* flags, CUmemoryPool memPool,
                                               CUmemLocation* location) {
  SIM_TRY
  std::shared_ptr<MemPool> p;
  SIM_CHECK(lookup_pool(memPool, p));
  if (!flags) return CUDA_ERROR_INVALID_VALUE;
  Device* d;
  SIM_CHECK(device_location(location, &d));
  std::lock_guard<std::mutex> lock(p->mu);
  *flags = (d == p->dev || (p->access_mask & (1u << d->ordinal))) ? CU_MEM_ACCESS_FLAGS_PROT_READWRITE
                                                                    : CU_MEM_ACCESS_FLAGS_PROT_NONE;
  return CUDA_SUCCESS;
  SIM_END
}

SIM_EXPORT CUresult CUDAAPI cuDeviceGetDefaultMemPool(CUmemoryPool* pool_out, CUdevice dev) {
  SIM_TRY
  Device* d;
  SIM_CHECK(lookup_device(dev, &d));
  if (!pool_out) return CUDA_ERROR_INVALID_VALUE;
  *pool_out = default_pool(*d).handle();
  return CUDA_SUCCESS;
  SIM_END
}

SIM_EXPORT CUresult CUDAAPI cuDeviceGetMemPool(CUmemoryPool* pool, CUdevice dev) {
  SIM_TRY
  Device* d;
  SIM_CHECK(lookup_device(dev, &d));
  if (!pool) return CUDA_ERROR_INVALID_VALUE;
  *pool = current_pool(*d).handle();
  return CUDA_SUCCESS;
  SIM_END
}

SIM_EXPORT CUresult CUDAAPI cuDeviceSetMemPool(CUdevice dev, CUmemoryPool pool) {
  SIM_TRY
  Device* d;
  SIM_CHECK(lookup_device(dev, &d));
  std::shared_ptr<MemPool> p;
  SIM_CHECK(lookup_pool(pool, p));
  if (p->dev != d) return CUDA_ERROR_INVALID_DEVICE;
  default_pool(*d);
  std::lock_guard<std::mutex> lock(d->pool_mu);
  d->current_pool = p->is_default ? nullptr : p.get();
  return CUDA_SUCCESS;
  SIM_END
}

SIM_EXPORT CUresult CUDAAPI cuMemGetDefaultMemPool(CUmemoryPool* pool_out, CUmemLocation* location,
                                                   CUmemAllocationType type) {
  SIM_TRY
  SIM_CHECK(check_init());
  if (!pool_out || type != CU_MEM_ALLOCATION_TYPE_PINNED) return CUDA_ERROR_INVALID_VALUE;
  Device* d;
  SIM_CHECK(device_location(location, &d));
  *pool_out = default_pool(*d).handle();
  return CUDA_SUCCESS;
  SIM_END
}

SIM_EXPORT CUresult CUDAAPI cuMemGetMemPool(CUmemoryPool* pool, CUmemLocation* location, CUmemAllocationType type) {
  SIM_TRY
  SIM_CHECK(check_init());
  if (!pool || type != CU_MEM_ALLOCATION_TYPE_PINNED) return CUDA_ERROR_INVALID_VALUE;
  Device* d;
  SIM_CHECK(device_location(location, &d));
  *pool = current_pool(*d).handle();
  return CUDA_SUCCESS;
  SIM_END
}

SIM_EXPORT CUresult CUDAAPI cuMemSetMemPool(CUmemLocation* location, CUmemAllocationType type, CUmemoryPool pool) {
  SIM_TRY
  SIM_CHECK(check_init());
  if (type != CU_MEM_ALLOCATION_TYPE_PINNED) return CUDA_ERROR_INVALID_VALUE;
  Device* d;
  SIM_CHECK(device_location(location, &d));
  std::shared_ptr<MemPool> p;
  SIM_CHECK(lookup_pool(pool, p));
  if (p->dev != d) return CUDA_ERROR_INVALID_VALUE;
  default_pool(*d);
  std::lock_guard<std::mutex> lock(d->pool_mu);
  d->current_pool = p->is_default ? nullptr : p.get();
  return CUDA_SUCCESS;
  SIM_END
}

}  // extern "C"
