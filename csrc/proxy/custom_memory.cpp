// Device and host memory of a client: cuMemAlloc on the job's heap, the
// shared host blocks (pinned, mapped, managed), address ranges and pointer
// attributes.
#include <algorithm>
#include <cstring>

#include "graph_memory.h"
#include "handler_util.h"
#include "pools.h"
#include "wire/payloads.h"

namespace sing::proxy::custom {

CUresult cuMemAlloc_v2(Call& c) {
  Arg<CUdeviceptr*> dptr;
  Arg<size_t> bytes;
  CUresult r = decode_all(c, dptr, bytes);
  if (r != CUDA_SUCCESS) return r;
  if (!dptr.present) return CUDA_ERROR_INVALID_VALUE;
  if ((r = capture_permits_unsafe_call()) != CUDA_SUCCESS) return r;
  CUdevice dev;
  if ((r = current_device(&dev)) != CUDA_SUCCESS) return r;
  reclaim_pending_frees(c.client);
  uint64_t p = 0;
  if ((r = c.client.heap.alloc(bytes.v, dev, current_context(c.client), &p)) != CUDA_SUCCESS) return r;
  *dptr.pass() = p;
  encode_all(c, dptr, bytes);
  return CUDA_SUCCESS;
}

CUresult cuMemGetInfo_v2(Call& c) {
  Arg<size_t*> free_bytes, total;
  CUresult r = decode_all(c, free_bytes, total);
  if (r != CUDA_SUCCESS) return r;
  if ((r = BACKEND(cuMemGetInfo_v2)(free_bytes.pass(), total.pass())) != CUDA_SUCCESS) return r;
  // Free memory as the app would see it without the proxy's sub-allocation.
  CUdevice dev;
  if (free_bytes.present && current_device(&dev) == CUDA_SUCCESS)
    free_bytes.local = std::min<uint64_t>(free_bytes.local + c.client.heap.slack(dev), total.local);
  encode_all(c, free_bytes, total);
  return CUDA_SUCCESS;
}

CUresult cuMemFree_v2(Call& c) {
  Arg<CUdeviceptr> ptr;
  CUresult r = decode_all(c, ptr);
  if (r != CUDA_SUCCESS) return r;
  if (!c.client.heap.contains(ptr.v, 0)) {
    // Not ours: the backend answers with the error it gives for a pointer it
    // never handed out (null, garbage, already freed).  It cannot free
    // anything of another client: all client memory is VMM-mapped.
    return BACKEND(cuMemFree_v2)(ptr.v);
  }
  {
    std::lock_guard<std::mutex> lock(c.client.mu);
    for (auto& f : c.client.pending_frees)
      if (f.ptr == ptr.v) return CUDA_ERROR_INVALID_VALUE;  // already freed (stream-ordered)
  }
  if ((r = capture_permits_unsafe_call()) != CUDA_SUCCESS) return r;
  // Graph memory belongs to its graph, as a driver's does.
  if (is_graph_memory(c.client, ptr.v)) return CUDA_ERROR_INVALID_VALUE;
  // cuMemFree synchronizes with the device before the memory goes away.
  if ((r = BACKEND(cuCtxSynchronize)()) != CUDA_SUCCESS && r != CUDA_ERROR_INVALID_CONTEXT) return r;
  forget_pool_allocation(c.client, ptr.v);
  return c.client.heap.free(ptr.v);
}

CUresult cuMemGetAddressRange_v2(Call& c) {
  Arg<CUdeviceptr*> base;
  Arg<size_t*> size;
  Arg<CUdeviceptr> ptr;
  CUresult r = decode_all(c, base, size, ptr);
  if (r != CUDA_SUCCESS) return r;
  uint64_t b, n;
  if (c.client.heap.range(ptr.v, &b, &n)) {
    if (base.present) base.local = b;
    if (size.present) size.local = n;
  } else if (c.client.in_device_range(ptr.v, 1)) {
    // App VMM mappings: the backend knows their extent.
    if ((r = BACKEND(cuMemGetAddressRange_v2)(base.pass(), size.pass(), ptr.v)) != CUDA_SUCCESS) return r;
  } else {
    return CUDA_ERROR_NOT_FOUND;
  }
  encode_all(c, base, size, ptr);
  return CUDA_SUCCESS;
}

CUresult cuMemAllocPitch_v2(Call& c) {
  Arg<CUdeviceptr*> dptr;
  Arg<size_t*> pitch;
  Arg<size_t> width, height;
  Arg<unsigned int> elem;
  CUresult r = decode_all(c, dptr, pitch, width, height, elem);
  if (r != CUDA_SUCCESS) return r;
  if (!dptr.present || !pitch.present || width.v == 0 || height.v == 0 ||
      (elem.v != 4 && elem.v != 8 && elem.v != 16))
    return CUDA_ERROR_INVALID_VALUE;
  if ((r = capture_permits_unsafe_call()) != CUDA_SUCCESS) return r;
  CUdevice dev;
  if ((r = current_device(&dev)) != CUDA_SUCCESS) return r;
  int align = 0;
  if ((r = BACKEND(cuDeviceGetAttribute)(&align, CU_DEVICE_ATTRIBUTE_TEXTURE_PITCH_ALIGNMENT, dev)) != CUDA_SUCCESS)
    return r;
  // cuMemAllocPitch pads rows to the texture pitch alignment, at least 512 B.
  uint64_t a = align > 512 ? uint64_t(align) : 512;
  uint64_t p = (width.v + a - 1) / a * a;
  uint64_t out;
  if ((r = c.client.heap.alloc(p * height.v, dev, current_context(c.client), &out)) != CUDA_SUCCESS) return r;
  dptr.local = out;
  pitch.local = p;
  encode_all(c, dptr, pitch, width, height, elem);
  return CUDA_SUCCESS;
}

namespace {

// The app allocated [ptr, ptr+bytes) in the shared host range: make it what
// cuMemAllocHost returns on a real driver, page-locked and device-mapped.
CUresult register_block(Call& c) {
  const uint8_t* p = c.in.take(sizeof(wire::HostBlockRequest));
  if (!p) return CUDA_ERROR_INVALID_VALUE;
  wire::HostBlockRequest req;
  std::memcpy(&req, p, sizeof(req));
  if (req.bytes == 0 || !c.client.in_host_range(req.ptr, req.bytes)) return CUDA_ERROR_INVALID_VALUE;
  {
    std::lock_guard<std::mutex> lock(c.client.mu);
    if (c.client.host_blocks.count(req.ptr)) return CUDA_ERROR_INVALID_VALUE;
  }
  CUresult r = BACKEND(cuMemHostRegister_v2)(reinterpret_cast<void*>(req.ptr), req.bytes,
                                            CU_MEMHOSTREGISTER_PORTABLE | CU_MEMHOSTREGISTER_DEVICEMAP);
  if (r != CUDA_SUCCESS) return r;
  std::lock_guard<std::mutex> lock(c.client.mu);
  c.client.host_blocks[req.ptr] = HostBlock{req.bytes, req.kind, req.flags};
  return CUDA_SUCCESS;
}

}  // namespace

CUresult cuMemAllocHost_v2(Call& c) { return register_block(c); }
CUresult cuMemHostAlloc(Call& c) { return register_block(c); }
CUresult cuMemAllocManaged(Call& c) { return register_block(c); }

CUresult cuMemFreeHost(Call& c) {
  const uint8_t* p = c.in.take(sizeof(wire::HostBlockRequest));
  if (!p) return CUDA_ERROR_INVALID_VALUE;
  wire::HostBlockRequest req;
  std::memcpy(&req, p, sizeof(req));
  {
    std::lock_guard<std::mutex> lock(c.client.mu);
    if (!c.client.host_blocks.erase(req.ptr)) return CUDA_ERROR_INVALID_VALUE;
  }
  // Freeing pinned memory synchronizes with the device, as cuMemFreeHost does.
  BACKEND(cuCtxSynchronize)();
  return BACKEND(cuMemHostUnregister)(reinterpret_cast<void*>(req.ptr));
}

// The app's own memory, registered: the shim has moved its pages onto a memfd
// and this process maps them at the same address (Client::share_host), so the
// driver here can pin them and kernels can dereference them.
CUresult cuMemHostRegister_v2(Call& c) {
  const uint64_t p = c.in.get<uint64_t>();
  const uint64_t bytes = c.in.get<uint64_t>();
  const uint32_t flags = c.in.get<uint32_t>();
  if (!c.in.ok() || !c.in.at_end() || bytes == 0 || p + bytes < p) return CUDA_ERROR_INVALID_VALUE;
  // Only memory this process shares with the app: its registered pages, or
  // the shared host range (whose blocks the driver already holds).
  {
    std::lock_guard<std::mutex> lock(c.client.mu);
    if (!c.client.in_host_range(p, bytes) && !c.client.in_shared_pages(p, bytes)) return CUDA_ERROR_INVALID_VALUE;
  }
  CUresult r = BACKEND(cuMemHostRegister_v2)(reinterpret_cast<void*>(p), bytes, flags);
  if (r != CUDA_SUCCESS) return r;
  std::lock_guard<std::mutex> lock(c.client.mu);
  c.client.host_blocks[p] = HostBlock{bytes, kRegistered, flags};
  return CUDA_SUCCESS;
}

CUresult cuMemHostUnregister(Call& c) {
  const uint64_t p = c.in.get<uint64_t>();
  if (!c.in.ok() || !c.in.at_end()) return CUDA_ERROR_INVALID_VALUE;
  {
    std::lock_guard<std::mutex> lock(c.client.mu);
    auto it = c.client.host_blocks.find(p);
    if (it == c.client.host_blocks.end() || it->second.kind != kRegistered)
      return CUDA_ERROR_HOST_MEMORY_NOT_REGISTERED;
  }
  CUresult r = BACKEND(cuMemHostUnregister)(reinterpret_cast<void*>(p));
  if (r != CUDA_SUCCESS) return r;
  std::lock_guard<std::mutex> lock(c.client.mu);
  c.client.host_blocks.erase(p);
  return CUDA_SUCCESS;
}

namespace {
// Inside one of this client's host blocks (pinned, managed or registered).
bool in_host_block(Client& client, uint64_t p) {
  std::lock_guard<std::mutex> lock(client.mu);
  auto it = client.host_blocks.upper_bound(p);
  if (it == client.host_blocks.begin()) return false;
  --it;
  return p < it->first + it->second.bytes;
}
}  // namespace

CUresult cuMemHostGetDevicePointer_v2(Call& c) {
  const uint64_t p = c.in.get<uint64_t>();
  const uint32_t flags = c.in.get<uint32_t>();
  if (!c.in.ok() || !c.in.at_end() || !in_host_block(c.client, p)) return CUDA_ERROR_INVALID_VALUE;
  CUdeviceptr d = 0;
  CUresult r = BACKEND(cuMemHostGetDevicePointer_v2)(&d, reinterpret_cast<void*>(p), flags);
  if (r == CUDA_SUCCESS) c.out.put<uint64_t>(d);
  return r;
}

CUresult cuMemHostGetFlags(Call& c) {
  const uint64_t p = c.in.get<uint64_t>();
  if (!c.in.ok() || !c.in.at_end() || !in_host_block(c.client, p)) return CUDA_ERROR_INVALID_VALUE;
  unsigned int flags = 0;
  CUresult r = BACKEND(cuMemHostGetFlags)(&flags, reinterpret_cast<void*>(p));
  if (r == CUDA_SUCCESS) c.out.put<uint32_t>(flags);
  return r;
}

}  // namespace sing::proxy::custom
