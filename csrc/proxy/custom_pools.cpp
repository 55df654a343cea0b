#include <cstring>

#include "graph_memory.h"
#include "handler_util.h"
#include "pools.h"

namespace sing::proxy {

namespace {

// Pools exist only in the proxy: their "real" handle is a counter.
std::atomic<uint64_t> g_next_pool{1};

uint64_t new_pool(Client& client, const CUmemPoolProps& props, bool is_default) {
  uint64_t vid = client.handles.to_vid(HandleKind::MemPool, g_next_pool.fetch_add(1));
  Pool p;
  p.props = props;
  p.is_default = is_default;
  client.pools[vid] = p;
  return vid;
}

uint64_t default_pool(Client& client, CUdevice dev) {
  for (auto& [vid, p] : client.pools)
    if (p.is_default && p.props.location.id == dev) return vid;
  CUmemPoolProps props{};
  props.allocType = CU_MEM_ALLOCATION_TYPE_PINNED;
  props.location.type = CU_MEM_LOCATION_TYPE_DEVICE;
  props.location.id = dev;
  return new_pool(client, props, true);
}

uint64_t current_pool(Client& client, CUdevice dev) {
  auto it = client.current_pool.find(dev);
  return it != client.current_pool.end() ? it->second : default_pool(client, dev);
}

CUresult pool_alloc(Call& c, uint64_t pool_vid, uint64_t bytes, uint64_t* out) {
  Pool* pool;
  {
    std::lock_guard<std::mutex> lock(c.client.mu);
    auto it = c.client.pools.find(pool_vid);
    if (it == c.client.pools.end()) return CUDA_ERROR_INVALID_VALUE;
    pool = &it->second;
  }
  reclaim_pending_frees(c.client);
  {
    // A block of the same size the pool kept: reused, as a pool does.
    std::lock_guard<std::mutex> lock(c.client.mu);
    auto it = pool->retained_by_size.find(bytes);
    if (it != pool->retained_by_size.end()) {
      *out = it->second;
      pool->retained_by_size.erase(it);
      pool->retained -= bytes;
      c.client.pool_of_alloc[*out] = pool_vid;
      pool->used += bytes;
      pool->used_high = std::max(pool->used_high, pool->used);
      return CUDA_SUCCESS;
    }
  }
  CUresult r = c.client.heap.alloc(bytes, pool->props.location.id, current_context(c.client), out, pool_vid);
  if (r != CUDA_SUCCESS) return r;
  std::lock_guard<std::mutex> lock(c.client.mu);
  c.client.pool_of_alloc[*out] = pool_vid;
  pool->used += bytes;
  pool->used_high = std::max(pool->used_high, pool->used);
  pool->reserved_high = std::max(pool->reserved_high, pool->used + pool->retained);
  return CUDA_SUCCESS;
}

}  // namespace

void reclaim_pending_frees(Client& client) {
  std::vector<Client::PendingFree> done;
  {
    std::lock_guard<std::mutex> lock(client.mu);
    auto& pending = client.pending_frees;
    for (size_t i = 0; i < pending.size();) {
      if (BACKEND(cuEventQuery)(pending[i].event) != CUDA_ERROR_NOT_READY) {
        done.push_back(pending[i]);
        pending[i] = pending.back();
        pending.pop_back();
      } else {
        ++i;
      }
    }
  }
  std::vector<uint64_t> release;
  for (auto& f : done) {
    BACKEND(cuEventDestroy_v2)(f.event);
    std::lock_guard<std::mutex> lock(client.mu);
    auto owner = client.pool_of_alloc.find(f.ptr);
    uint64_t base, bytes;
    if (owner == client.pool_of_alloc.end() || !client.heap.range(f.ptr, &base, &bytes)) {
      release.push_back(f.ptr);
      continue;
    }
    Pool& pool = client.pools[owner->second];
    client.pool_of_alloc.erase(owner);
    pool.used -= bytes;
    pool.retained_by_size.emplace(bytes, f.ptr);
    pool.retained += bytes;
  }
  {
    // Memory beyond each pool's release threshold goes back to the device.
    std::lock_guard<std::mutex> lock(client.mu);
    for (auto& [vid, pool] : client.pools) trim_pool(pool, pool.release_threshold, &release);
  }
  for (uint64_t p : release) client.heap.free(p);
}

void trim_pool(Pool& pool, uint64_t keep, std::vector<uint64_t>* release) {
  while (pool.retained > keep && !pool.retained_by_size.empty()) {
    auto it = std::prev(pool.retained_by_size.end());  // largest first
    pool.retained -= it->first;
    release->push_back(it->second);
    pool.retained_by_size.erase(it);
  }
}

void forget_pool_allocation(Client& client, uint64_t ptr) {
  std::lock_guard<std::mutex> lock(client.mu);
  auto it = client.pool_of_alloc.find(ptr);
  if (it == client.pool_of_alloc.end()) return;
  uint64_t base, bytes;
  auto pool = client.pools.find(it->second);
  if (pool != client.pools.end() && client.heap.range(ptr, &base, &bytes)) pool->second.used -= bytes;
  client.pool_of_alloc.erase(it);
}

uint64_t pool_of(Client& client, uint64_t ptr) {
  std::lock_guard<std::mutex> lock(client.mu);
  auto it = client.pool_of_alloc.find(ptr);
  return it == client.pool_of_alloc.end() ? 0 : it->second;
}

namespace custom {

CUresult cuDeviceGetDefaultMemPool(Call& c) {
  Arg<CUmemoryPool*> out;
  Arg<CUdevice> dev;
  CUresult r = decode_all(c, out, dev);
  if (r != CUDA_SUCCESS) return r;
  int count = 0;
  BACKEND(cuDeviceGetCount)(&count);
  if (!out.present) return CUDA_ERROR_INVALID_VALUE;
  if (dev.v < 0 || dev.v >= count) return CUDA_ERROR_INVALID_DEVICE;
  std::lock_guard<std::mutex> lock(c.client.mu);
  uint64_t vid = default_pool(c.client, dev.v);
  c.out.put<uint64_t>(vid);
  return CUDA_SUCCESS;
}

CUresult cuDeviceGetMemPool(Call& c) {
  Arg<CUmemoryPool*> out;
  Arg<CUdevice> dev;
  CUresult r = decode_all(c, out, dev);
  if (r != CUDA_SUCCESS) return r;
  int count = 0;
  BACKEND(cuDeviceGetCount)(&count);
  if (!out.present) return CUDA_ERROR_INVALID_VALUE;
  if (dev.v < 0 || dev.v >= count) return CUDA_ERROR_INVALID_DEVICE;
  std::lock_guard<std::mutex> lock(c.client.mu);
  c.out.put<uint64_t>(current_pool(c.client, dev.v));
  return CUDA_SUCCESS;
}

CUresult cuDeviceSetMemPool(Call& c) {
  Arg<CUdevice> dev;
  uint64_t pool = 0;
  CUresult r = dev.decode(c);
  pool = c.in.get<uint64_t>();
  if (r != CUDA_SUCCESS || !c.in.ok()) return CUDA_ERROR_INVALID_VALUE;
  std::lock_guard<std::mutex> lock(c.client.mu);
  auto it = c.client.pools.find(pool);
  if (it == c.client.pools.end()) return CUDA_ERROR_INVALID_VALUE;
  if (it->second.props.location.id != dev.v) return CUDA_ERROR_INVALID_DEVICE;
  c.client.current_pool[dev.v] = pool;
  return CUDA_SUCCESS;
}

CUresult cuMemPoolCreate(Call& c) {
  Arg<CUmemoryPool*> out;
  Arg<const CUmemPoolProps*> props;
  CUresult r = decode_all(c, out, props);
  if (r != CUDA_SUCCESS) return r;
  if (!out.present || !props.present) return CUDA_ERROR_INVALID_VALUE;
  const CUmemPoolProps& p = props.local;
  const auto loc = raw(p.location.type);
  if (loc == CU_MEM_LOCATION_TYPE_HOST || loc == CU_MEM_LOCATION_TYPE_HOST_NUMA ||
      loc == CU_MEM_LOCATION_TYPE_HOST_NUMA_CURRENT)
    return CUDA_ERROR_NOT_SUPPORTED;  // as the simulated device: no host pools
  int count = 0;
  BACKEND(cuDeviceGetCount)(&count);
  if (raw(p.allocType) != CU_MEM_ALLOCATION_TYPE_PINNED || loc != CU_MEM_LOCATION_TYPE_DEVICE ||
      p.location.id < 0 || p.location.id >= count)
    return CUDA_ERROR_INVALID_VALUE;
  // Exportable pools would need the driver's own pool: not through the proxy yet.
  if (p.handleTypes != CU_MEM_HANDLE_TYPE_NONE) return CUDA_ERROR_NOT_SUPPORTED;
  std::lock_guard<std::mutex> lock(c.client.mu);
  c.out.put<uint64_t>(new_pool(c.client, p, false));
  return CUDA_SUCCESS;
}

CUresult cuMemPoolDestroy(Call& c) {
  uint64_t pool = c.in.get<uint64_t>();
  if (!c.in.ok()) return CUDA_ERROR_INVALID_VALUE;
  std::vector<uint64_t> release;
  {
    std::lock_guard<std::mutex> lock(c.client.mu);
    auto it = c.client.pools.find(pool);
    if (it == c.client.pools.end()) return CUDA_ERROR_INVALID_VALUE;
    if (it->second.is_default) return CUDA_ERROR_INVALID_VALUE;
    for (auto& [dev, vid] : c.client.current_pool)
      if (vid == pool) vid = 0;
    std::erase_if(c.client.current_pool, [](auto& kv) { return kv.second == 0; });
    trim_pool(it->second, 0, &release);
    c.client.pools.erase(it);
    c.client.handles.forget(HandleKind::MemPool, pool);
  }
  for (uint64_t p : release) c.client.heap.free(p);
  return CUDA_SUCCESS;
}

CUresult cuMemPoolTrimTo(Call& c) {
  uint64_t pool = c.in.get<uint64_t>();
  const uint64_t keep_bytes = c.in.get<size_t>();
  if (!c.in.ok()) return CUDA_ERROR_INVALID_VALUE;
  {
    std::lock_guard<std::mutex> lock(c.client.mu);
    if (!c.client.pools.count(pool)) return CUDA_ERROR_INVALID_VALUE;
  }
  reclaim_pending_frees(c.client);
  std::vector<uint64_t> release;
  {
    std::lock_guard<std::mutex> lock(c.client.mu);
    trim_pool(c.client.pools[pool], keep_bytes, &release);
  }
  for (uint64_t p : release) c.client.heap.free(p);
  return CUDA_SUCCESS;
}

CUresult cuMemPoolGetAccess(Call& c) {
  Arg<CUmemAccess_flags*> flags;
  uint64_t pool = 0;
  Arg<CUmemLocation*> loc;
  CUresult r = flags.decode(c);
  pool = c.in.get<uint64_t>();
  if (r == CUDA_SUCCESS) r = loc.decode(c);
  if (!c.in.ok() || !c.in.at_end() || !flags.present || !loc.present) return CUDA_ERROR_INVALID_VALUE;
  std::lock_guard<std::mutex> lock(c.client.mu);
  auto it = c.client.pools.find(pool);
  if (it == c.client.pools.end() || loc.local.type != CU_MEM_LOCATION_TYPE_DEVICE) return CUDA_ERROR_INVALID_VALUE;
  const Pool& p = it->second;
  if (loc.local.id == p.props.location.id) {
    flags.local = CU_MEM_ACCESS_FLAGS_PROT_READWRITE;  // the owner always has access
  } else {
    auto a = p.access.find(loc.local.id);
    flags.local = a == p.access.end() ? CU_MEM_ACCESS_FLAGS_PROT_NONE : a->second;
  }
  encode_all(c, flags, loc);
  return CUDA_SUCCESS;
}

// {u64 pool, u64 count, count x CUmemAccessDesc}
CUresult cuMemPoolSetAccess(Call& c) {
  uint64_t pool = c.in.get<uint64_t>(), count = c.in.get<uint64_t>();
  if (!c.in.ok() || count == 0 || count > 64) return CUDA_ERROR_INVALID_VALUE;
  std::vector<CUmemAccessDesc> desc(count);
  for (auto& d : desc) {
    const uint8_t* p = c.in.take(sizeof(CUmemAccessDesc));
    if (!p) return CUDA_ERROR_INVALID_VALUE;
    std::memcpy(&d, p, sizeof(d));
  }
  int devices = 0;
  BACKEND(cuDeviceGetCount)(&devices);
  std::lock_guard<std::mutex> lock(c.client.mu);
  auto it = c.client.pools.find(pool);
  if (it == c.client.pools.end()) return CUDA_ERROR_INVALID_VALUE;
  for (auto& d : desc) {
    if (d.location.type != CU_MEM_LOCATION_TYPE_DEVICE || d.location.id < 0 || d.location.id >= devices ||
        d.flags > CU_MEM_ACCESS_FLAGS_PROT_READWRITE)
      return CUDA_ERROR_INVALID_VALUE;
  }
  for (auto& d : desc)
    if (d.location.id != it->second.props.location.id) it->second.access[d.location.id] = d.flags;
  std::vector<int> accessors;
  for (auto& [dev, f] : it->second.access)
    if (f != CU_MEM_ACCESS_FLAGS_PROT_NONE) accessors.push_back(dev);
  return c.client.heap.set_pool_access(pool, it->second.props.location.id, accessors);
}

template <uint16_t Op>
CUresult alloc_async(Call& c) {
  Arg<CUdeviceptr*> dptr;
  Arg<size_t> bytes;
  Arg<CUstream> stream;
  CUresult r = decode_all(c, dptr, bytes, stream);
  if (r != CUDA_SUCCESS) return r;
  if (!dptr.present || bytes.v == 0) return CUDA_ERROR_INVALID_VALUE;
  CUdevice dev;
  if ((r = current_device(&dev)) != CUDA_SUCCESS) return r;
  uint64_t p;
  // On a capturing stream the allocation becomes a node of the capture's graph.
  if (capture_status(stream.real, Op == wire::kOp_cuMemAllocAsync_ptsz) != CU_STREAM_CAPTURE_STATUS_NONE) {
    if ((r = capture_mem_alloc(c.client, stream.real, Op == wire::kOp_cuMemAllocAsync_ptsz, dev, bytes.v, &p)) !=
        CUDA_SUCCESS)
      return r;
    c.out.put<uint64_t>(p);
    return CUDA_SUCCESS;
  }
  uint64_t pool;
  {
    std::lock_guard<std::mutex> lock(c.client.mu);
    pool = current_pool(c.client, dev);
  }
  if ((r = pool_alloc(c, pool, bytes.v, &p)) != CUDA_SUCCESS) return r;
  c.out.put<uint64_t>(p);
  return CUDA_SUCCESS;
}

template <uint16_t Op>
CUresult alloc_from_pool(Call& c) {
  Arg<CUdeviceptr*> dptr;
  Arg<size_t> bytes;
  uint64_t pool;
  Arg<CUstream> stream;
  CUresult r = dptr.decode(c);
  bytes.decode(c);
  pool = c.in.get<uint64_t>();
  if (r == CUDA_SUCCESS) r = stream.decode(c);
  if (!c.in.ok() || !c.in.at_end()) return CUDA_ERROR_INVALID_VALUE;
  if (r != CUDA_SUCCESS) return r;
  if (!dptr.present || bytes.v == 0) return CUDA_ERROR_INVALID_VALUE;
  uint64_t p;
  const bool ptds = Op == wire::kOp_cuMemAllocFromPoolAsync_ptsz;
  if (capture_status(stream.real, ptds) != CU_STREAM_CAPTURE_STATUS_NONE) {
    int dev;
    {
      std::lock_guard<std::mutex> lock(c.client.mu);
      auto it = c.client.pools.find(pool);
      if (it == c.client.pools.end()) return CUDA_ERROR_INVALID_VALUE;
      dev = it->second.props.location.id;
    }
    if ((r = capture_mem_alloc(c.client, stream.real, ptds, dev, bytes.v, &p)) != CUDA_SUCCESS) return r;
    c.out.put<uint64_t>(p);
    return CUDA_SUCCESS;
  }
  if ((r = pool_alloc(c, pool, bytes.v, &p)) != CUDA_SUCCESS) return r;
  c.out.put<uint64_t>(p);
  return CUDA_SUCCESS;
}

template <uint16_t Op>
CUresult free_async(Call& c) {
  Arg<CUdeviceptr> ptr;
  Arg<CUstream> stream;
  CUresult r = decode_all(c, ptr, stream);
  if (r != CUDA_SUCCESS) return r;
  const bool ptds = Op == wire::kOp_cuMemFreeAsync_ptsz;
  if (capture_status(stream.real, ptds) != CU_STREAM_CAPTURE_STATUS_NONE)
    return capture_mem_free(c.client, stream.real, ptds, ptr.v);
  // Graph memory lives as long as its graph: freeing it from a stream only
  // ends the app's use of it (as libsimgpu does).
  if (is_graph_memory(c.client, ptr.v)) return CUDA_SUCCESS;
  if (!c.client.heap.contains(ptr.v, 0)) return CUDA_ERROR_INVALID_VALUE;
  {
    std::lock_guard<std::mutex> lock(c.client.mu);
    for (auto& f : c.client.pending_frees)
      if (f.ptr == ptr.v) return CUDA_ERROR_INVALID_VALUE;  // freed twice
  }
  // The memory is free once the stream passes this point: mark the point.
  CUevent ev;
  if ((r = BACKEND(cuEventCreate)(&ev, CU_EVENT_DISABLE_TIMING)) != CUDA_SUCCESS) return r;
  auto record = reinterpret_cast<CUresult (*)(CUevent, CUstream)>(
      backend().fn[Op == wire::kOp_cuMemFreeAsync ? wire::kOp_cuEventRecord : wire::kOp_cuEventRecord_ptsz]);
  if ((r = record(ev, stream.real)) != CUDA_SUCCESS) {
    BACKEND(cuEventDestroy_v2)(ev);
    return r;
  }
  std::lock_guard<std::mutex> lock(c.client.mu);
  c.client.pending_frees.push_back({ptr.v, ev});
  return CUDA_SUCCESS;
}

}  // namespace custom
}  // namespace sing::proxy

PROXY_TWIN(cuMemAllocAsync, cuMemAllocAsync_ptsz, alloc_async)
PROXY_TWIN(cuMemAllocFromPoolAsync, cuMemAllocFromPoolAsync_ptsz, alloc_from_pool)
PROXY_TWIN(cuMemFreeAsync, cuMemFreeAsync_ptsz, free_async)
