// Small hand-written entry points: strings, context creation with
// parameters, primary-context reset, pool attributes.
#include <algorithm>
#include <cstring>
#include <vector>

#include "handler_util.h"
#include "pools.h"

namespace sing::proxy::custom {

// {i32 error} -> string
CUresult cuGetErrorString(Call& c) {
  int32_t e = c.in.get<int32_t>();
  if (!c.in.ok()) return CUDA_ERROR_INVALID_VALUE;
  const char* s = nullptr;
  CUresult r = BACKEND(cuGetErrorString)(CUresult(e), &s);
  if (r != CUDA_SUCCESS) return r;
  c.out.put_string(s);
  return CUDA_SUCCESS;
}

CUresult cuGetErrorName(Call& c) {
  int32_t e = c.in.get<int32_t>();
  if (!c.in.ok()) return CUDA_ERROR_INVALID_VALUE;
  const char* s = nullptr;
  CUresult r = BACKEND(cuGetErrorName)(CUresult(e), &s);
  if (r != CUDA_SUCCESS) return r;
  c.out.put_string(s);
  return CUDA_SUCCESS;
}

namespace {
// {i32 len, u32 has_buffer, i32 dev} -> len bytes
template <class F>
CUresult device_string(Call& c, F fn) {
  int32_t len = c.in.get<int32_t>();
  uint32_t has = c.in.get<uint32_t>();
  int32_t dev = c.in.get<int32_t>();
  if (!c.in.ok()) return CUDA_ERROR_INVALID_VALUE;
  std::vector<char> buf(size_t(std::clamp(len, 1, 4096)), 0);
  CUresult r = fn(has ? buf.data() : nullptr, len, CUdevice(dev));
  if (r != CUDA_SUCCESS) return r;
  c.out.put(buf.data(), uint32_t(std::min<size_t>(buf.size(), size_t(std::max(len, 0)))));
  return CUDA_SUCCESS;
}
}  // namespace

CUresult cuDeviceGetName(Call& c) { return device_string(c, BACKEND(cuDeviceGetName)); }
CUresult cuDeviceGetPCIBusId(Call& c) { return device_string(c, BACKEND(cuDeviceGetPCIBusId)); }

// {u32 has_luid, u32 has_mask, i32 dev} -> 8 bytes, u32 mask
CUresult cuDeviceGetLuid(Call& c) {
  uint32_t has_luid = c.in.get<uint32_t>(), has_mask = c.in.get<uint32_t>();
  int32_t dev = c.in.get<int32_t>();
  if (!c.in.ok()) return CUDA_ERROR_INVALID_VALUE;
  char luid[8] = {};
  unsigned int mask = 0;
  CUresult r = BACKEND(cuDeviceGetLuid)(has_luid ? luid : nullptr, has_mask ? &mask : nullptr, dev);
  if (r != CUDA_SUCCESS) return r;
  c.out.put(luid, 8);
  c.out.put<uint32_t>(mask);
  return CUDA_SUCCESS;
}

// {u32 has_params, u32 flags, i32 dev}: execution-affinity and CIG
// parameters are not forwarded (they name resources of the real device).
CUresult cuCtxCreate_v4(Call& c) {
  uint32_t has_params = c.in.get<uint32_t>();
  uint32_t flags = c.in.get<uint32_t>();
  int32_t dev = c.in.get<int32_t>();
  if (!c.in.ok()) return CUDA_ERROR_INVALID_VALUE;
  if (has_params) return CUDA_ERROR_NOT_SUPPORTED;
  CUcontext ctx = nullptr;
  CUresult r = BACKEND(cuCtxCreate_v4)(&ctx, nullptr, flags, dev);
  if (r != CUDA_SUCCESS) return r;
  const uint64_t vid = reinterpret_cast<uint64_t>(to_app(c.client, ctx));
  c.out.put<uint64_t>(vid);
  std::lock_guard<std::mutex> lock(c.client.mu);
  c.client.records.contexts[vid] = {flags, dev};
  return CUDA_SUCCESS;
}

// Destroying a context frees the memory allocated in it.
CUresult cuCtxDestroy_v2(Call& c) {
  Arg<CUcontext> ctx;
  CUresult r = decode_all(c, ctx);
  if (r != CUDA_SUCCESS) return r;
  if ((r = BACKEND(cuCtxDestroy_v2)(ctx.real)) != CUDA_SUCCESS) return r;
  c.client.heap.free_context(reinterpret_cast<uint64_t>(ctx.app));
  c.client.forget_context_objects(reinterpret_cast<uint64_t>(ctx.app));
  forget(c.client, ctx.app);
  return CUDA_SUCCESS;
}

namespace {
// Peer access to cuMemAlloc memory: the heap's mappings of the peer's device
// are opened to the current device (they are VMM mappings, whose access
// lists context peer access does not change).
CUresult peer_access(Call& c, bool enable) {
  Arg<CUcontext> peer;
  Arg<unsigned int> flags;
  CUresult r = enable ? decode_all(c, peer, flags) : decode_all(c, peer);
  if (r != CUDA_SUCCESS) return r;
  r = enable ? BACKEND(cuCtxEnablePeerAccess)(peer.real, flags.v) : BACKEND(cuCtxDisablePeerAccess)(peer.real);
  if (r != CUDA_SUCCESS) return r;
  CUdevice me, owner;
  if ((r = current_device(&me)) != CUDA_SUCCESS) return r;
  if ((r = BACKEND(cuCtxPushCurrent_v2)(peer.real)) != CUDA_SUCCESS) return r;
  r = current_device(&owner);
  BACKEND(cuCtxPopCurrent_v2)(nullptr);
  if (r != CUDA_SUCCESS) return r;
  return c.client.heap.set_peer_access(owner, me, enable);
}
}  // namespace

CUresult cuCtxEnablePeerAccess(Call& c) { return peer_access(c, true); }
CUresult cuCtxDisablePeerAccess(Call& c) { return peer_access(c, false); }

// The primary context is shared by every client of this proxy.  The only
// client of a proxy gets the real reset (flags cleared, a new incarnation);
// in a shared proxy, resetting it for one app releases that app's objects and
// the memory it allocated in it, nobody else's.
CUresult cuDevicePrimaryCtxReset_v2(Call& c) {
  Arg<CUdevice> dev;
  CUresult r = decode_all(c, dev);
  if (r != CUDA_SUCCESS) return r;
  int count = 0;
  BACKEND(cuDeviceGetCount)(&count);
  if (dev.v < 0 || dev.v >= count) return CUDA_ERROR_INVALID_DEVICE;
  CUcontext primary = nullptr;
  unsigned flags;
  int active = 0;
  BACKEND(cuDevicePrimaryCtxGetState)(dev.v, &flags, &active);
  if (active && BACKEND(cuDevicePrimaryCtxRetain)(&primary, dev.v) == CUDA_SUCCESS) {
    BACKEND(cuDevicePrimaryCtxRelease_v2)(dev.v);
    c.client.heap.free_context(reinterpret_cast<uint64_t>(to_app(c.client, primary)));
  }
  if (client_count() == 1) {
    if ((r = BACKEND(cuDevicePrimaryCtxReset_v2)(dev.v)) != CUDA_SUCCESS) return r;
    if (primary) c.client.forget_context_objects(reinterpret_cast<uint64_t>(to_app(c.client, primary)));
    return CUDA_SUCCESS;
  }
  BACKEND(cuCtxSynchronize)();
  return CUDA_SUCCESS;
}

namespace {
bool pool_attr_is_int(CUmemPool_attribute a) {
  return a == CU_MEMPOOL_ATTR_REUSE_FOLLOW_EVENT_DEPENDENCIES || a == CU_MEMPOOL_ATTR_REUSE_ALLOW_OPPORTUNISTIC ||
         a == CU_MEMPOOL_ATTR_REUSE_ALLOW_INTERNAL_DEPENDENCIES;
}
}  // namespace

// {u64 pool, u32 attr, u64 value}
CUresult cuMemPoolSetAttribute(Call& c) {
  uint64_t pool = c.in.get<uint64_t>();
  auto attr = CUmemPool_attribute(c.in.get<uint32_t>());
  uint64_t value = c.in.get<uint64_t>();
  if (!c.in.ok()) return CUDA_ERROR_INVALID_VALUE;
  std::lock_guard<std::mutex> lock(c.client.mu);
  auto it = c.client.pools.find(pool);
  if (it == c.client.pools.end()) return CUDA_ERROR_INVALID_VALUE;
  Pool& p = it->second;
  switch (attr) {
    case CU_MEMPOOL_ATTR_REUSE_FOLLOW_EVENT_DEPENDENCIES: p.reuse_follow_event = int(value); break;
    case CU_MEMPOOL_ATTR_REUSE_ALLOW_OPPORTUNISTIC: p.reuse_opportunistic = int(value); break;
    case CU_MEMPOOL_ATTR_REUSE_ALLOW_INTERNAL_DEPENDENCIES: p.reuse_internal = int(value); break;
    case CU_MEMPOOL_ATTR_RELEASE_THRESHOLD: p.release_threshold = value; break;
    case CU_MEMPOOL_ATTR_RESERVED_MEM_HIGH:
      if (value != 0) return CUDA_ERROR_INVALID_VALUE;
      p.reserved_high = p.used + p.retained;
      break;
    case CU_MEMPOOL_ATTR_USED_MEM_HIGH:
      if (value != 0) return CUDA_ERROR_INVALID_VALUE;
      p.used_high = p.used;
      break;
    default:
      return CUDA_ERROR_INVALID_VALUE;
  }
  return CUDA_SUCCESS;
}

// {u64 pool, u32 attr} -> u64 value
CUresult cuMemPoolGetAttribute(Call& c) {
  uint64_t pool = c.in.get<uint64_t>();
  auto attr = CUmemPool_attribute(c.in.get<uint32_t>());
  if (!c.in.ok()) return CUDA_ERROR_INVALID_VALUE;
  // Frees whose stream has passed them count as released.
  reclaim_pending_frees(c.client);
  std::lock_guard<std::mutex> lock(c.client.mu);
  auto it = c.client.pools.find(pool);
  if (it == c.client.pools.end()) return CUDA_ERROR_INVALID_VALUE;
  const Pool& p = it->second;
  uint64_t v;
  switch (attr) {
    case CU_MEMPOOL_ATTR_REUSE_FOLLOW_EVENT_DEPENDENCIES: v = uint64_t(p.reuse_follow_event); break;
    case CU_MEMPOOL_ATTR_REUSE_ALLOW_OPPORTUNISTIC: v = uint64_t(p.reuse_opportunistic); break;
    case CU_MEMPOOL_ATTR_REUSE_ALLOW_INTERNAL_DEPENDENCIES: v = uint64_t(p.reuse_internal); break;
    case CU_MEMPOOL_ATTR_RELEASE_THRESHOLD: v = p.release_threshold; break;
    case CU_MEMPOOL_ATTR_RESERVED_MEM_CURRENT: v = p.used + p.retained; break;
    case CU_MEMPOOL_ATTR_RESERVED_MEM_HIGH: v = p.reserved_high; break;
    case CU_MEMPOOL_ATTR_USED_MEM_CURRENT: v = p.used; break;
    case CU_MEMPOOL_ATTR_USED_MEM_HIGH: v = p.used_high; break;
    default:
      return CUDA_ERROR_INVALID_VALUE;
  }
  (void)pool_attr_is_int;
  c.out.put<uint64_t>(v);
  return CUDA_SUCCESS;
}

}  // namespace sing::proxy::custom
