// Strided copies: cuMemcpy2D*, cuMemcpy3D*, cuMemcpy3DPeer*.  CUDA arrays
// are not simulated: a copy naming one returns CUDA_ERROR_NOT_SUPPORTED.
#include "copy.h"

namespace simgpu {

namespace {

struct Side {
  CUmemorytype type;
  const void* host;
  CUdeviceptr dev;
  CUarray array;
  size_t x, y, z;
  size_t pitch, height;
  CUcontext ctx;
};

CUresult resolve_side(const Side& s, size_t width, size_t height, size_t depth, uint64_t& start, uint64_t& pitch,
                      uint64_t& slice, Where& where) {
  uint64_t base;
  switch (s.type) {
    case CU_MEMORYTYPE_HOST: base = reinterpret_cast<uint64_t>(s.host); break;
    case CU_MEMORYTYPE_DEVICE:
    case CU_MEMORYTYPE_UNIFIED: base = s.dev; break;
    case CU_MEMORYTYPE_ARRAY: return CUDA_ERROR_NOT_SUPPORTED;
    default: return CUDA_ERROR_INVALID_VALUE;
  }
  if (!base) return CUDA_ERROR_INVALID_VALUE;
  pitch = s.pitch;
  bool strided = height > 1 || depth > 1 || s.y || s.z;
  if (pitch == 0 && !strided) pitch = s.x + width;
  if (s.x + width > pitch) return CUDA_ERROR_INVALID_VALUE;
  uint64_t rows = s.height;
  if (depth > 1 || s.z) {
    if (rows < s.y + height) return CUDA_ERROR_INVALID_VALUE;
  } else {
    rows = s.y + height;
  }
  slice = pitch * rows;
  start = base + s.z * slice + s.y * pitch + s.x;
  uint64_t span = (depth - 1) * slice + (height - 1) * pitch + width;
  if (s.type == CU_MEMORYTYPE_DEVICE) SIM_CHECK(check_device_ptr(start, span));
  return classify(start, span, where);
}

CUresult copy_3d(const Side& src, const Side& dst, size_t width, size_t height, size_t depth, Stream& s, bool async_api) {
  if (width == 0 || height == 0 || depth == 0) return CUDA_SUCCESS;
  CopyWork w;
  Where ws, wd;
  SIM_CHECK(resolve_side(src, width, height, depth, w.src, w.src_pitch, w.src_slice, ws));
  SIM_CHECK(resolve_side(dst, width, height, depth, w.dst, w.dst_pitch, w.dst_slice, wd));
  w.width = width;
  w.height = height;
  w.depth = depth;
  return issue_copy(s, std::move(w), ws, wd, async_api);
}

Side src2d(const CUDA_MEMCPY2D& p) {
  return {p.srcMemoryType, p.srcHost, p.srcDevice, p.srcArray, p.srcXInBytes, p.srcY, 0, p.srcPitch, 0, nullptr};
}
Side dst2d(const CUDA_MEMCPY2D& p) {
  return {p.dstMemoryType, p.dstHost, p.dstDevice, p.dstArray, p.dstXInBytes, p.dstY, 0, p.dstPitch, 0, nullptr};
}
Side src3d(const CUDA_MEMCPY3D& p) {
  return {p.srcMemoryType, p.srcHost, p.srcDevice, p.srcArray, p.srcXInBytes, p.srcY, p.srcZ, p.srcPitch, p.srcHeight,
          nullptr};
}
Side dst3d(const CUDA_MEMCPY3D& p) {
  return {p.dstMemoryType, p.dstHost, p.dstDevice, p.dstArray, p.dstXInBytes, p.dstY, p.dstZ, p.dstPitch, p.dstHeight,
          nullptr};
}

CUresult memcpy2d(const CUDA_MEMCPY2D* p, CUstream h, bool ptds, bool async_api) {
  std::shared_ptr<Stream> s;
  SIM_CHECK(async_api ? resolve_stream(h, ptds, s) : sync_stream(ptds, s));
  if (!p) return CUDA_ERROR_INVALID_VALUE;
  return copy_3d(src2d(*p), dst2d(*p), p->WidthInBytes, p->Height, 1, *s, async_api);
}

CUresult memcpy3d(const CUDA_MEMCPY3D* p, CUstream h, bool ptds, bool async_api) {
  std::shared_ptr<Stream> s;
  SIM_CHECK(async_api ? resolve_stream(h, ptds, s) : sync_stream(ptds, s));
  if (!p || p->reserved0 || p->reserved1 || p->srcLOD || p->dstLOD) return CUDA_ERROR_INVALID_VALUE;
  return copy_3d(src3d(*p), dst3d(*p), p->WidthInBytes, p->Height, p->Depth, *s, async_api);
}

CUresult memcpy3d_peer(const CUDA_MEMCPY3D_PEER* p, CUstream h, bool ptds, bool async_api) {
  std::shared_ptr<Stream> s;
  SIM_CHECK(async_api ? resolve_stream(h, ptds, s) : sync_stream(ptds, s));
  if (!p || p->srcLOD || p->dstLOD) return CUDA_ERROR_INVALID_VALUE;
  for (CUcontext c : {p->srcContext, p->dstContext}) {
    auto ctx = registry().get<Context>(c, Kind::Context);
    if (c && !ctx) return CUDA_ERROR_INVALID_CONTEXT;
    if (ctx) SIM_CHECK(context_usable(*ctx));
  }
  Side src{p->srcMemoryType, p->srcHost, p->srcDevice, p->srcArray, p->srcXInBytes, p->srcY, p->srcZ, p->srcPitch,
           p->srcHeight, p->srcContext};
  Side dst{p->dstMemoryType, p->dstHost, p->dstDevice, p->dstArray, p->dstXInBytes, p->dstY, p->dstZ, p->dstPitch,
           p->dstHeight, p->dstContext};
  return copy_3d(src, dst, p->WidthInBytes, p->Height, p->Depth, *s, async_api);
}

}  // namespace

// For graph memcpy nodes: a CUDA_MEMCPY3D turned into work, validated.
CUresult copy_work_from_3d(const CUDA_MEMCPY3D& p, CopyWork& out) {
  if (p.reserved0 || p.reserved1 || p.srcLOD || p.dstLOD) return CUDA_ERROR_INVALID_VALUE;
  if (!p.WidthInBytes || !p.Height || !p.Depth) return CUDA_ERROR_INVALID_VALUE;
  Where ws, wd;
  CopyWork w;
  SIM_CHECK(resolve_side(src3d(p), p.WidthInBytes, p.Height, p.Depth, w.src, w.src_pitch, w.src_slice, ws));
  SIM_CHECK(resolve_side(dst3d(p), p.WidthInBytes, p.Height, p.Depth, w.dst, w.dst_pitch, w.dst_slice, wd));
  w.width = p.WidthInBytes;
  w.height = p.Height;
  w.depth = p.Depth;
  out = std::move(w);
  return CUDA_SUCCESS;
}

}  // namespace simgpu

using namespace simgpu;

extern "C" {

SIM_EXPORT CUresult CUDAAPI cuMemcpy2D_v2(const CUDA_MEMCPY2D* pCopy) {
  SIM_TRY return memcpy2d(pCopy, nullptr, false, false);
  SIM_END
}
SIM_EXPORT CUresult CUDAAPI cuMemcpy2D_v2_ptds(const CUDA_MEMCPY2D* pCopy) {
  SIM_TRY return memcpy2d(pCopy, nullptr, true, false);
  SIM_END
}
SIM_EXPORT CUresult CUDAAPI cuMemcpy2DUnaligned_v2(const CUDA_MEMCPY2D* pCopy) {
  SIM_TRY return memcpy2d(pCopy, nullptr, false, false);
  SIM_END
}
SIM_EXPORT CUresult CUDAAPI cuMemcpy2DUnaligned_v2_ptds(const CUDA_MEMCPY2D* pCopy) {
  SIM_TRY return memcpy2d(pCopy, nullptr, true, false);
  SIM_END
}
SIM_EXPORT CUresult CUDAAPI cuMemcpy2DAsync_v2(const CUDA_MEMCPY2D* pCopy, CUstream hStream) {
  SIM_TRY return memcpy2d(pCopy, hStream, false, true);
  SIM_END
}
SIM_EXPORT CUresult CUDAAPI cuMemcpy2DAsync_v2_ptsz(const CUDA_MEMCPY2D* pCopy, CUstream hStream) {
  SIM_TRY return memcpy2d(pCopy, hStream, true, true);
  SIM_END
}
SIM_EXPORT CUresult CUDAAPI cuMemcpy3D_v2(const CUDA_MEMCPY3D* pCopy) {
  SIM_TRY return memcpy3d(pCopy, nullptr, false, false);
  SIM_END
}
SIM_EXPORT CUresult CUDAAPI cuMemcpy3D_v2_ptds(const CUDA_MEMCPY3D* pCopy) {
  SIM_TRY return memcpy3d(pCopy, nullptr, true, false);
  SIM_END
}
SIM_EXPORT CUresult CUDAAPI cuMemcpy3DAsync_v2(const CUDA_MEMCPY3D* pCopy, CUstream hStream) {
  SIM_TRY return memcpy3d(pCopy, hStream, false, true);
  SIM_END
}
SIM_EXPORT CUresult CUDAAPI cuMemcpy3DAsync_v2_ptsz(const CUDA_MEMCPY3D* pCopy, CUstream hStream) {
  SIM_TRY return memcpy3d(pCopy, hStream, true, true);
  SIM_END
}
SIM_EXPORT CUresult CUDAAPI cuMemcpy3DPeer(const CUDA_MEMCPY3D_PEER* pCopy) {
  SIM_TRY return memcpy3d_peer(pCopy, nullptr, false, false);
  SIM_END
}
SIM_EXPORT CUresult CUDAAPI cuMemcpy3DPeer_ptds(const CUDA_MEMCPY3D_PEER* pCopy) {
  SIM_TRY return memcpy3d_peer(pCopy, nullptr, true, false);
  SIM_END
}
SIM_EXPORT CUresult CUDAAPI cuMemcpy3DPeerAsync(const CUDA_MEMCPY3D_PEER* pCopy, CUstream hStream) {
  SIM_TRY return memcpy3d_peer(pCopy, hStream, false, true);
  SIM_END
}
SIM_EXPORT CUresult CUDAAPI cuMemcpy3DPeerAsync_ptsz(const CUDA_MEMCPY3D_PEER* pCopy, CUstream hStream) {
  SIM_TRY return memcpy3d_peer(pCopy, hStream, true, true);
  SIM_END
}

}  // extern "C"
