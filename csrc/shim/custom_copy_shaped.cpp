// cuMemcpy2D/3D/3DPeer in the app.  A host side in the app's own (pageable)
// memory is copied through a staging buffer in the shared host range; the
// descriptor then points there, with the same pitch and origin arithmetic,
// so the proxy's driver does the 2D/3D walk itself.
#include <cstring>
#include <vector>

#include "call.h"
#include "custom.h"
#include "handles.h"
#include "host_heap.h"
#include "wire/opcodes.h"
#include "wire/payloads.h"

namespace sing::shim::custom {

using namespace sing::wire;

namespace {

struct Staged {
  uint64_t app = 0;     // first byte the copy touches in the app's memory
  uint64_t bytes = 0;
  void* temp = nullptr;
};

// Offset of the first byte and bytes spanned, for a side with origin
// (x, y, z), pitch and height (rows per slice) and an extent W x H x D.
void extent(uint64_t x, uint64_t y, uint64_t z, uint64_t pitch, uint64_t height, uint64_t w, uint64_t h, uint64_t d,
            uint64_t* offset, uint64_t* bytes) {
  *offset = (z * height + y) * pitch + x;
  *bytes = (w && h && d) ? ((d - 1) * height + (h - 1)) * pitch + w : 0;
}

bool pageable(uint64_t p, uint64_t n) {
  if (Connection::get()->in_device_range(p)) return false;
  return !HostHeap::get().in_range(reinterpret_cast<const void*>(p), n ? n : 1);
}

// Replaces a pageable host side by a staging buffer (filled now for a
// source side).  `ptr` is the descriptor's pointer field.
CUresult stage(CUmemorytype type, uint64_t* ptr, uint64_t offset, uint64_t bytes, bool source, Staged* st) {
  if (type == CU_MEMORYTYPE_ARRAY) return CUDA_ERROR_NOT_SUPPORTED;  // no CUDA arrays through the proxy
  if (type != CU_MEMORYTYPE_HOST && type != CU_MEMORYTYPE_UNIFIED) return CUDA_SUCCESS;
  if (!*ptr || !bytes || !pageable(*ptr + offset, bytes)) return CUDA_SUCCESS;
  void* temp = HostHeap::get().alloc(bytes, HostHeap::kPinned, 0);
  if (!temp) return CUDA_ERROR_OUT_OF_MEMORY;
  st->app = *ptr + offset;
  st->bytes = bytes;
  st->temp = temp;
  if (source) std::memcpy(temp, reinterpret_cast<const void*>(st->app), bytes);
  *ptr = reinterpret_cast<uint64_t>(temp) - offset;
  return CUDA_SUCCESS;
}

template <class D>
CUresult shaped(uint16_t op, uint32_t shape, D desc, CUstream stream) {
  CUresult r;
  if (!call_channel(op, &r)) return r;
  if ((r = check_handle(stream)) != CUDA_SUCCESS) return r;
  uint64_t w = desc.WidthInBytes, h = desc.Height, d = 1;
  uint64_t sz = 0, dz = 0, sh = 1, dh = 1;
  if constexpr (requires { desc.Depth; }) {
    d = desc.Depth;
    sz = desc.srcZ;
    dz = desc.dstZ;
    sh = desc.srcHeight;
    dh = desc.dstHeight;
  }
  uint64_t so, sb, dof, db;
  extent(desc.srcXInBytes, desc.srcY, sz, desc.srcPitch, sh, w, h, d, &so, &sb);
  extent(desc.dstXInBytes, desc.dstY, dz, desc.dstPitch, dh, w, h, d, &dof, &db);
  Staged src, dst;
  // Host sides use the host pointer field; unified ones the device field.
  auto field = [](CUmemorytype t, const void*& host, CUdeviceptr& dev) -> uint64_t* {
    return t == CU_MEMORYTYPE_HOST ? reinterpret_cast<uint64_t*>(&host) : reinterpret_cast<uint64_t*>(&dev);
  };
  const void* src_host = desc.srcHost;
  void* dst_host_rw = desc.dstHost;
  const void* dst_host = dst_host_rw;
  if ((r = stage(desc.srcMemoryType, field(desc.srcMemoryType, src_host, desc.srcDevice), so, sb, true, &src)) !=
      CUDA_SUCCESS)
    return r;
  if ((r = stage(desc.dstMemoryType, field(desc.dstMemoryType, dst_host, desc.dstDevice), dof, db, false, &dst)) !=
      CUDA_SUCCESS) {
    if (src.temp) HostHeap::get().release(src.temp, nullptr);
    return r;
  }
  desc.srcHost = src_host;
  desc.dstHost = const_cast<void*>(dst_host);
  ShapedCopyRequest req{shape, uint32_t(src.temp || dst.temp), reinterpret_cast<uint64_t>(stream)};
  r = sync_call(op, [&](Writer& wr) {
        wr.put(req);
        wr.put(desc);
      }).result;
  if (r == CUDA_SUCCESS && dst.temp) std::memcpy(reinterpret_cast<void*>(dst.app), dst.temp, dst.bytes);
  if (src.temp) HostHeap::get().release(src.temp, nullptr);
  if (dst.temp) HostHeap::get().release(dst.temp, nullptr);
  return r;
}

}  // namespace

#define SHAPED(sym, shape, T)                                                                       \
  CUresult sym(const T* p) { return p ? shaped(kOp_##sym, shape, *p, nullptr) : CUDA_ERROR_INVALID_VALUE; }
#define SHAPED_ASYNC(sym, shape, T)                                                                 \
  CUresult sym(const T* p, CUstream s) { return p ? shaped(kOp_##sym, shape, *p, s) : CUDA_ERROR_INVALID_VALUE; }

SHAPED(cuMemcpy2D_v2, kCopy2D, CUDA_MEMCPY2D)
SHAPED(cuMemcpy2D_v2_ptds, kCopy2D, CUDA_MEMCPY2D)
SHAPED(cuMemcpy2DUnaligned_v2, kCopy2D, CUDA_MEMCPY2D)
SHAPED(cuMemcpy2DUnaligned_v2_ptds, kCopy2D, CUDA_MEMCPY2D)
SHAPED_ASYNC(cuMemcpy2DAsync_v2, kCopy2D, CUDA_MEMCPY2D)
SHAPED_ASYNC(cuMemcpy2DAsync_v2_ptsz, kCopy2D, CUDA_MEMCPY2D)
SHAPED(cuMemcpy3D_v2, kCopy3D, CUDA_MEMCPY3D)
SHAPED(cuMemcpy3D_v2_ptds, kCopy3D, CUDA_MEMCPY3D)
SHAPED_ASYNC(cuMemcpy3DAsync_v2, kCopy3D, CUDA_MEMCPY3D)
SHAPED_ASYNC(cuMemcpy3DAsync_v2_ptsz, kCopy3D, CUDA_MEMCPY3D)
SHAPED(cuMemcpy3DPeer, kCopy3DPeer, CUDA_MEMCPY3D_PEER)
SHAPED(cuMemcpy3DPeer_ptds, kCopy3DPeer, CUDA_MEMCPY3D_PEER)
SHAPED_ASYNC(cuMemcpy3DPeerAsync, kCopy3DPeer, CUDA_MEMCPY3D_PEER)
SHAPED_ASYNC(cuMemcpy3DPeerAsync_ptsz, kCopy3DPeer, CUDA_MEMCPY3D_PEER)

}  // namespace sing::shim::custom
