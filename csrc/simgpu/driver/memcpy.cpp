// Linear copies: HtoD / DtoH / DtoD, unified cuMemcpy, peer copies, batches.
#include "copy.h"

#include "bulk_copy.h"
#include "capture.h"
#include "memory.h"

namespace simgpu {

CUresult classify(uint64_t addr, uint64_t len, Where& out) {
  auto r = memmap().find(addr);
  if (!r) {
    // A range that starts in pageable memory but runs into a registered one is
    // still treated as pageable; a real driver cannot tell either.
    out = Where::Pageable;
    return CUDA_SUCCESS;
  }
  uint64_t off = addr - r->base;
  if (len > r->size - off) return CUDA_ERROR_INVALID_VALUE;
  switch (r->kind) {
    case MemKind::HostAlloc:
    case MemKind::HostRegistered: out = Where::Pinned; break;
    case MemKind::Vmm:
      if (!r->access_read) return CUDA_ERROR_INVALID_VALUE;
      out = Where::Device;
      break;
    default: out = Where::Device; break;
  }
  return CUDA_SUCCESS;
}

CUresult check_device_ptr(uint64_t addr, uint64_t len) {
  auto r = memmap().find(addr);
  if (!r) return CUDA_ERROR_INVALID_VALUE;
  if (len > r->size - (addr - r->base)) return CUDA_ERROR_INVALID_VALUE;
  if (r->kind == MemKind::Vmm && !r->access_read) return CUDA_ERROR_INVALID_VALUE;
  return CUDA_SUCCESS;
}

CUresult sync_stream(bool ptds, std::shared_ptr<Stream>& out) { return resolve_stream(nullptr, ptds, out); }

namespace {

uint64_t extent(uint64_t width, uint64_t height, uint64_t depth, uint64_t pitch, uint64_t slice) {
  if (!width || !height || !depth) return 0;
  return (depth - 1) * slice + (height - 1) * pitch + width;
}

}  // namespace

CUresult issue_copy(Stream& s, CopyWork w, Where src, Where dst, bool async_api) {
  if (!w.width || !w.height || !w.depth) return CUDA_SUCCESS;
  if (s.capturing.load(std::memory_order_acquire)) {
    if (!async_api) return CUDA_ERROR_STREAM_CAPTURE_UNSUPPORTED;
    return submit(s, std::move(w));
  }
  if (!async_api) {
    SIM_CHECK(check_not_capturing_unsafe());
    if (src == Where::Device && dst == Where::Device) return submit(s, std::move(w));
    return submit_and_wait(s, std::move(w));
  }
  if (dst == Where::Pageable) return submit_and_wait(s, std::move(w));
  if (src == Where::Pageable) {
    uint64_t n = extent(w.width, w.height, w.depth, w.src_pitch, w.src_slice);
    w.staged = std::make_shared<std::vector<uint8_t>>(n);
    std::memcpy(w.staged->data(), reinterpret_cast<const void*>(w.src), n);
  }
  return submit(s, std::move(w));
}

void run_copy(const CopyWork& w) {
  const uint8_t* src = w.staged ? w.staged->data() : reinterpret_cast<const uint8_t*>(w.src);
  uint8_t* dst = reinterpret_cast<uint8_t*>(w.dst);
  if (w.height == 1 && w.depth == 1) {
    if (dst + w.width <= src || src + w.width <= dst)
      sing::bulk_copy(dst, src, w.width);  // glibc's memcpy is slow at some alignments (bulk_copy.h)
    else
      std::memmove(dst, src, w.width);
    return;
  }
  for (uint64_t z = 0; z < w.depth; ++z)
    for (uint64_t y = 0; y < w.height; ++y)
      std::memmove(dst + z * w.dst_slice + y * w.dst_pitch, src + z * w.src_slice + y * w.src_pitch, w.width);
}

namespace {

CopyWork linear(uint64_t dst, uint64_t src, uint64_t n) {
  CopyWork w;
  w.dst = dst;
  w.src = src;
  w.width = n;
  w.dst_pitch = w.src_pitch = n;
  w.dst_slice = w.src_slice = n;
  return w;
}

// Explicit-direction copy; dev_src / dev_dst say which sides the API names device memory.
CUresult copy_1d(uint64_t dst, uint64_t src, size_t n, bool dev_dst, bool dev_src, Stream* s, bool async_api) {
  if (n == 0) return CUDA_SUCCESS;
  if ((dev_dst && !dst) || (dev_src && !src) || (!dev_dst && !dst) || (!dev_src && !src)) return CUDA_ERROR_INVALID_VALUE;
  if (dev_dst) SIM_CHECK(check_device_ptr(dst, n));
  if (dev_src) SIM_CHECK(check_device_ptr(src, n));
  Where ws, wd;
  SIM_CHECK(classify(src, n, ws));
  SIM_CHECK(classify(dst, n, wd));
  return issue_copy(*s, linear(dst, src, n), ws, wd, async_api);
}

CUresult sync_copy(uint64_t dst, uint64_t src, size_t n, bool dev_dst, bool dev_src, bool ptds) {
  std::shared_ptr<Stream> s;
  SIM_CHECK(sync_stream(ptds, s));
  return copy_1d(dst, src, n, dev_dst, dev_src, s.get(), false);
}

CUresult async_copy(uint64_t dst, uint64_t src, size_t n, bool dev_dst, bool dev_src, CUstream h, bool ptds) {
  std::shared_ptr<Stream> s;
  SIM_CHECK(resolve_stream(h, ptds, s));
  return copy_1d(dst, src, n, dev_dst, dev_src, s.get(), true);
}

// cuMemcpy / cuMemcpyAsync: the kind of each side is read from the address.
CUresult unified_copy(uint64_t dst, uint64_t src, size_t n, CUstream h, bool ptds, bool async_api) {
  std::shared_ptr<Stream> s;
  SIM_CHECK(async_api ? resolve_stream(h, ptds, s) : sync_stream(ptds, s));
  if (n == 0) return CUDA_SUCCESS;
  if (!dst || !src) return CUDA_ERROR_INVALID_VALUE;
  Where ws, wd;
  SIM_CHECK(classify(src, n, ws));
  SIM_CHECK(classify(dst, n, wd));
  return issue_copy(*s, linear(dst, src, n), ws, wd, async_api);
}

CUresult peer_copy(uint64_t dst, CUcontext dstCtx, uint64_t src, CUcontext srcCtx, size_t n, CUstream h, bool ptds,
                   bool async_api) {
  SIM_CHECK(check_init());
  auto dc = registry().get<Context>(dstCtx, Kind::Context);
  auto sc = registry().get<Context>(srcCtx, Kind::Context);
  if (!dstCtx || !srcCtx || !dc || !sc) return CUDA_ERROR_INVALID_CONTEXT;
  SIM_CHECK(context_usable(*dc));
  SIM_CHECK(context_usable(*sc));
  std::shared_ptr<Stream> s;
  SIM_CHECK(async_api ? resolve_stream(h, ptds, s) : sync_stream(ptds, s));
  if (n == 0) return CUDA_SUCCESS;
  SIM_CHECK(check_device_ptr(dst, n));
  SIM_CHECK(check_device_ptr(src, n));
  if (!async_api) {
    // Ordered after the legacy streams of both contexts, as the driver does.
    for (auto* c : {dc.get(), sc.get()}) {
      auto ls = legacy_stream(*c);
      if (ls.get() != s.get()) ls->wait(ls->submitted());
    }
    SIM_CHECK(check_not_capturing_unsafe());
    return submit_and_wait(*s, linear(dst, src, n));
  }
  return submit(*s, linear(dst, src, n));
}

CUresult batch_copy(CUdeviceptr* dsts, CUdeviceptr* srcs, size_t* sizes, size_t count, CUmemcpyAttributes* attrs,
                    size_t* attrsIdxs, size_t numAttrs, size_t* failIdx, CUstream h, bool ptds) {
  if (failIdx) *failIdx = SIZE_MAX;
  std::shared_ptr<Stream> s;
  SIM_CHECK(resolve_stream(h, ptds, s));
  if (count == 0 || !dsts || !srcs || !sizes) return CUDA_ERROR_INVALID_VALUE;
  if (numAttrs == 0 || !attrs || !attrsIdxs || attrsIdxs[0] != 0) return CUDA_ERROR_INVALID_VALUE;
  // The legacy stream cannot be used for a batch.
  if (s->type == Stream::Type::Legacy) return CUDA_ERROR_INVALID_VALUE;
  for (size_t i = 1; i < numAttrs; ++i)
    if (attrsIdxs[i] <= attrsIdxs[i - 1] || attrsIdxs[i] >= count) return CUDA_ERROR_INVALID_VALUE;
  std::vector<std::pair<Where, Where>> kinds(count);
  for (size_t i = 0; i < count; ++i) {
    CUresult rc = CUDA_SUCCESS;
    if (sizes[i] && (!dsts[i] || !srcs[i])) rc = CUDA_ERROR_INVALID_VALUE;
    if (rc == CUDA_SUCCESS) rc = classify(srcs[i], sizes[i], kinds[i].first);
    if (rc == CUDA_SUCCESS) rc = classify(dsts[i], sizes[i], kinds[i].second);
    if (rc != CUDA_SUCCESS) {
      if (failIdx) *failIdx = i;
      return rc;
    }
  }
  for (size_t i = 0; i < count; ++i) SIM_CHECK(issue_copy(*s, linear(dsts[i], srcs[i], sizes[i]), kinds[i].first,
                                                          kinds[i].second, true));
  return CUDA_SUCCESS;
}

}  // namespace

}  // namespace simgpu

using namespace simgpu;

#define SIM_PAIR(legacy, ptdsname, params, call_legacy, call_ptds)        \
  SIM_EXPORT CUresult CUDAAPI legacy params { SIM_TRY return call_legacy; SIM_END } \
  SIM_EXPORT CUresult CUDAAPI ptdsname params { SIM_TRY return call_ptds; SIM_END }

extern "C" {

SIM_PAIR(cuMemcpyHtoD_v2, cuMemcpyHtoD_v2_ptds, (CUdeviceptr dstDevice, const void* srcHost, size_t ByteCount),
         sync_copy(dstDevice, reinterpret_cast<uint64_t>(srcHost), ByteCount, true, false, false),
         sync_copy(dstDevice, reinterpret_cast<uint64_t>(srcHost), ByteCount, true, false, true))

SIM_PAIR(cuMemcpyDtoH_v2, cuMemcpyDtoH_v2_ptds, (void* dstHost, CUdeviceptr srcDevice, size_t ByteCount),
         sync_copy(reinterpret_cast<uint64_t>(dstHost), srcDevice, ByteCount, false, true, false),
         sync_copy(reinterpret_cast<uint64_t>(dstHost), srcDevice, ByteCount, false, true, true))

SIM_PAIR(cuMemcpyDtoD_v2, cuMemcpyDtoD_v2_ptds, (CUdeviceptr dstDevice, CUdeviceptr srcDevice, size_t ByteCount),
         sync_copy(dstDevice, srcDevice, ByteCount, true, true, false),
         sync_copy(dstDevice, srcDevice, ByteCount, true, true, true))

SIM_PAIR(cuMemcpyHtoDAsync_v2, cuMemcpyHtoDAsync_v2_ptsz,
         (CUdeviceptr dstDevice, const void* srcHost, size_t ByteCount, CUstream hStream),
         async_copy(dstDevice, reinterpret_cast<uint64_t>(srcHost), ByteCount, true, false, hStream, false),
         async_copy(dstDevice, reinterpret_cast<uint64_t>(srcHost), ByteCount, true, false, hStream, true))

SIM_PAIR(cuMemcpyDtoHAsync_v2, cuMemcpyDtoHAsync_v2_ptsz,
         (void* dstHost, CUdeviceptr srcDevice, size_t ByteCount, CUstream hStream),
         async_copy(reinterpret_cast<uint64_t>(dstHost), srcDevice, ByteCount, false, true, hStream, false),
         async_copy(reinterpret_cast<uint64_t>(dstHost), srcDevice, ByteCount, false, true, hStream, true))

SIM_PAIR(cuMemcpyDtoDAsync_v2, cuMemcpyDtoDAsync_v2_ptsz,
         (CUdeviceptr dstDevice, CUdeviceptr srcDevice, size_t ByteCount, CUstream hStream),
         async_copy(dstDevice, srcDevice, ByteCount, true, true, hStream, false),
         async_copy(dstDevice, srcDevice, ByteCount, true, true, hStream, true))

SIM_PAIR(cuMemcpy, cuMemcpy_ptds, (CUdeviceptr dst, CUdeviceptr src, size_t ByteCount),
         unified_copy(dst, src, ByteCount, nullptr, false, false), unified_copy(dst, src, ByteCount, nullptr, true, false))

SIM_PAIR(cuMemcpyAsync, cuMemcpyAsync_ptsz, (CUdeviceptr dst, CUdeviceptr src, size_t ByteCount, CUstream hStream),
         unified_copy(dst, src, ByteCount, hStream, false, true), unified_copy(dst, src, ByteCount, hStream, true, true))

SIM_PAIR(cuMemcpyPeer, cuMemcpyPeer_ptds,
         (CUdeviceptr dstDevice, CUcontext dstContext, CUdeviceptr srcDevice, CUcontext srcContext, size_t ByteCount),
         peer_copy(dstDevice, dstContext, srcDevice, srcContext, ByteCount, nullptr, false, false),
         peer_copy(dstDevice, dstContext, srcDevice, srcContext, ByteCount, nullptr, true, false))

SIM_PAIR(cuMemcpyPeerAsync, cuMemcpyPeerAsync_ptsz,
         (CUdeviceptr dstDevice, CUcontext dstContext, CUdeviceptr srcDevice, CUcontext srcContext, size_t ByteCount,
          CUstream hStream),
         peer_copy(dstDevice, dstContext, srcDevice, srcContext, ByteCount, hStream, false, true),
         peer_copy(dstDevice, dstContext, srcDevice, srcContext, ByteCount, hStream, true, true))

SIM_PAIR(cuMemcpyBatchAsync_v2, cuMemcpyBatchAsync_v2_ptsz,
         (CUdeviceptr * dsts, CUdeviceptr* srcs, size_t* sizes, size_t count, CUmemcpyAttributes* attrs,
          size_t* attrsIdxs, size_t numAttrs, CUstream hStream),
         batch_copy(dsts, srcs, sizes, count, attrs, attrsIdxs, numAttrs, nullptr, hStream, false),
         batch_copy(dsts, srcs, sizes, count, attrs, attrsIdxs, numAttrs, nullptr, hStream, true))

SIM_PAIR(cuMemcpyBatchAsync, cuMemcpyBatchAsync_ptsz,
         (CUdeviceptr * dsts, CUdeviceptr* srcs, size_t* sizes, size_t count, CUmemcpyAttributes* attrs,
          size_t* attrsIdxs, size_t numAttrs, size_t* failIdx, CUstream hStream),
         batch_copy(dsts, srcs, sizes, count, attrs, attrsIdxs, numAttrs, failIdx, hStream, false),
         batch_copy(dsts, srcs, sizes, count, attrs, attrsIdxs, numAttrs, failIdx, hStream, true))

}  // extern "C"
