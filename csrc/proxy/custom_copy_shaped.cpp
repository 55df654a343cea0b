// cuMemcpy2D/3D/3DPeer: check both sides lie in this client's memory, map the
// app's contexts to the backend's, and let the backend walk the shape.
#include <cstring>

#include "guards.h"
#include "handler_util.h"
#include "wire/payloads.h"

namespace sing::proxy::custom {

namespace {

bool side_ok(Client& c, uint32_t type, uint64_t host, uint64_t dev, uint64_t x, uint64_t y, uint64_t z,
             uint64_t pitch, uint64_t height, uint64_t w, uint64_t h, uint64_t d) {
  if (type == CU_MEMORYTYPE_ARRAY) return true;  // the backend answers (no arrays are ever handed out)
  const uint64_t base = type == CU_MEMORYTYPE_HOST ? host : dev;
  const uint64_t offset = (z * height + y) * pitch + x;
  const uint64_t bytes = (w && h && d) ? ((d - 1) * height + (h - 1)) * pitch + w : 0;
  return addressable(c, base + offset, bytes);
}

template <class D>
CUresult check_sides(Client& c, const D& desc) {
  uint64_t d = 1, sz = 0, dz = 0, sh = 1, dh = 1;
  if constexpr (requires { desc.Depth; }) {
    d = desc.Depth, sz = desc.srcZ, dz = desc.dstZ, sh = desc.srcHeight, dh = desc.dstHeight;
  }
  if (!side_ok(c, raw(desc.srcMemoryType), reinterpret_cast<uint64_t>(desc.srcHost), desc.srcDevice, desc.srcXInBytes,
               desc.srcY, sz, desc.srcPitch, sh, desc.WidthInBytes, desc.Height, d) ||
      !side_ok(c, raw(desc.dstMemoryType), reinterpret_cast<uint64_t>(desc.dstHost), desc.dstDevice, desc.dstXInBytes,
               desc.dstY, dz, desc.dstPitch, dh, desc.WidthInBytes, desc.Height, d))
    return CUDA_ERROR_INVALID_VALUE;
  return CUDA_SUCCESS;
}

template <uint16_t Op, class D>
CUresult run(Call& c) {
  const uint8_t* p = c.in.take(sizeof(wire::ShapedCopyRequest));
  const uint8_t* q = c.in.take(sizeof(D));
  if (!p || !q || !c.in.at_end()) return CUDA_ERROR_INVALID_VALUE;
  wire::ShapedCopyRequest req;
  D desc;
  std::memcpy(&req, p, sizeof(req));
  std::memcpy(&desc, q, sizeof(desc));
  CUstream stream;
  CUresult r = to_real(c.client, reinterpret_cast<CUstream>(req.stream), &stream);
  if (r != CUDA_SUCCESS) return r;
  if constexpr (std::is_same_v<D, CUDA_MEMCPY3D_PEER>) {
    if ((r = to_real(c.client, desc.srcContext, &desc.srcContext)) != CUDA_SUCCESS) return r;
    if ((r = to_real(c.client, desc.dstContext, &desc.dstContext)) != CUDA_SUCCESS) return r;
  }
  if ((r = check_sides(c.client, desc)) != CUDA_SUCCESS) return r;
  void* fn = backend().fn[Op];
  constexpr bool kAsync = (Op == wire::kOp_cuMemcpy2DAsync_v2 || Op == wire::kOp_cuMemcpy2DAsync_v2_ptsz ||
                           Op == wire::kOp_cuMemcpy3DAsync_v2 || Op == wire::kOp_cuMemcpy3DAsync_v2_ptsz ||
                           Op == wire::kOp_cuMemcpy3DPeerAsync || Op == wire::kOp_cuMemcpy3DPeerAsync_ptsz);
  if constexpr (kAsync) {
    r = reinterpret_cast<CUresult (*)(const D*, CUstream)>(fn)(&desc, stream);
    // A staged side is the app's memory: done before answering.
    if (r == CUDA_SUCCESS && req.sync_stream) r = BACKEND(cuStreamSynchronize)(stream);
  } else {
    r = reinterpret_cast<CUresult (*)(const D*)>(fn)(&desc);
  }
  return r;
}

}  // namespace

#define PROXY_SHAPED(sym, D) \
  CUresult sym(Call& c) { return run<wire::kOp_##sym, D>(c); }
PROXY_SHAPED(cuMemcpy2D_v2, CUDA_MEMCPY2D)
PROXY_SHAPED(cuMemcpy2D_v2_ptds, CUDA_MEMCPY2D)
PROXY_SHAPED(cuMemcpy2DUnaligned_v2, CUDA_MEMCPY2D)
PROXY_SHAPED(cuMemcpy2DUnaligned_v2_ptds, CUDA_MEMCPY2D)
PROXY_SHAPED(cuMemcpy2DAsync_v2, CUDA_MEMCPY2D)
PROXY_SHAPED(cuMemcpy2DAsync_v2_ptsz, CUDA_MEMCPY2D)
PROXY_SHAPED(cuMemcpy3D_v2, CUDA_MEMCPY3D)
PROXY_SHAPED(cuMemcpy3D_v2_ptds, CUDA_MEMCPY3D)
PROXY_SHAPED(cuMemcpy3DAsync_v2, CUDA_MEMCPY3D)
PROXY_SHAPED(cuMemcpy3DAsync_v2_ptsz, CUDA_MEMCPY3D)
PROXY_SHAPED(cuMemcpy3DPeer, CUDA_MEMCPY3D_PEER)
PROXY_SHAPED(cuMemcpy3DPeer_ptds, CUDA_MEMCPY3D_PEER)
PROXY_SHAPED(cuMemcpy3DPeerAsync, CUDA_MEMCPY3D_PEER)
PROXY_SHAPED(cuMemcpy3DPeerAsync_ptsz, CUDA_MEMCPY3D_PEER)

}  // namespace sing::proxy::custom
