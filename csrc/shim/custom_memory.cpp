// Host memory and copies on the app's side.
//
// Pinned, mapped and managed memory come from the shared host heap (same
// address in the proxy), so kernels can dereference them and copies from
// them are zero-copy.  Copies from or to the app's pageable memory are
// staged through the channel's two stage slots, pipelined: the app fills one
// while the proxy copies the other.
#include <cstring>

#include "bulk_copy.h"

#include "call.h"
#include "custom.h"
#include "forward.h"
#include "handles.h"
#include "host_heap.h"
#include "host_registry.h"
#include "wire/control.h"
#include "wire/futex.h"
#include "wire/opcodes.h"
#include "wire/payloads.h"

namespace sing::shim::custom {

using namespace sing::wire;

namespace {

CUresult host_block(uint16_t op, void* p, size_t bytes, unsigned kind, unsigned flags) {
  HostBlockRequest req{reinterpret_cast<uint64_t>(p), bytes, kind, flags};
  return sync_call(op, [&](Writer& w) { w.put(req); }).result;
}

CUresult alloc_host(uint16_t op, void** out, size_t bytes, unsigned kind, unsigned flags) {
  if (!out || bytes == 0) return CUDA_ERROR_INVALID_VALUE;
  CUresult err;
  if (!call_channel(op, &err)) return err;
  void* p = HostHeap::get().alloc(bytes, kind, flags);
  if (!p) return CUDA_ERROR_OUT_OF_MEMORY;
  HostHeap::Block b;
  HostHeap::get().lookup(p, 1, &b);
  CUresult r = host_block(op, p, b.size, kind, flags);
  if (r != CUDA_SUCCESS) {
    HostHeap::get().release(p, nullptr);
    return r;
  }
  *out = p;
  return CUDA_SUCCESS;
}

enum class Side { Device, Shared, Pageable };

Side side(const void* p, size_t n) {
  auto a = reinterpret_cast<uint64_t>(p);
  if (Connection::get()->in_device_range(a)) return Side::Device;
  if (HostHeap::get().in_range(p, n ? n : 1)) return Side::Shared;
  return Side::Pageable;
}

CUresult direct(uint16_t op, bool async, uint64_t dst, uint64_t src, size_t n, CUstream stream) {
  if (CUresult r = check_handle(stream); async && r != CUDA_SUCCESS) return r;
  CopyRequest req{kCopyDirect, 0, dst, src, n, reinterpret_cast<uint64_t>(stream)};
  auto fill = [&](Writer& w) { w.put(req); };
  return async ? async_call(op, fill) : sync_call(op, fill, true, kCopyYieldNs).result;
}

// The chunk a staged copy of `total` bytes moves per stage slot: at least 4
// chunks when it can (the app copies one while the proxy copies the one
// before, so the two CPU copies overlap when both sides have a core), none
// under 64 KiB (each chunk costs a record and a hand-over).
uint64_t stage_chunk_bytes(uint64_t total) {
  uint64_t c = (total / 4 + 0xffff) & ~uint64_t(0xffff);
  return c < (64u << 10) ? (64u << 10) : c > kStageSlotBytes ? kStageSlotBytes : c;
}

// Pageable source: chunks through the stage slots, then a finishing call
// that answers with the first error.
CUresult staged_h2d(uint16_t op, uint64_t dst, const void* src, size_t n, CUstream stream) {
  CUresult err;
  Channel* ch = call_channel(op, &err);
  if (!ch) return err;
  wire::Channel* sh = ch->shared();
  const uint32_t released0 = sh->stage_released.load(std::memory_order_acquire);
  const uint64_t chunk = stage_chunk_bytes(n);
  uint32_t k = 0;
  for (size_t off = 0; off < n; off += chunk, ++k) {
    const uint32_t len = uint32_t(std::min<size_t>(chunk, n - off));
    if (k >= kStageSlots && !ch->wait_counter(sh->stage_released, released0 + k - kStageSlots + 1))
      return kProxyLost;
    const uint16_t slot = uint16_t(k % kStageSlots);
    bulk_copy(sh->stage[slot], static_cast<const uint8_t*>(src) + off, len);
    uint8_t* p = ch->begin(kOpStageH2D, sizeof(StageChunk), false);
    if (!p) return ch->failure();
    StageChunk chunk{op, slot, len, dst + off, reinterpret_cast<uint64_t>(stream), off, n};
    std::memcpy(p, &chunk, sizeof(chunk));
    ch->publish();
  }
  CopyRequest fin{kCopyStagedFinish, 0, dst, 0, n, reinterpret_cast<uint64_t>(stream)};
  auto fill = [&](Writer& w) { w.put(fin); };
  return sync_call_once(op, fill, true, kCopyYieldNs).result;
}

// Pageable destination: the proxy streams the chunks back.
CUresult staged_d2h(uint16_t op, void* dst, uint64_t src, size_t n, CUstream stream) {
  CUresult err;
  Channel* ch = call_channel(op, &err);
  if (!ch) return err;
  wire::Channel* sh = ch->shared();
  const uint32_t filled0 = sh->stage_filled.load(std::memory_order_acquire);
  const uint32_t acked0 = sh->stage_acked.load(std::memory_order_acquire);
  uint8_t* p = ch->begin(op, sizeof(CopyRequest), true);
  if (!p) return ch->failure();
  const uint64_t chunk = stage_chunk_bytes(n);
  CopyRequest req{kCopyStagedD2H, uint32_t(chunk), 0, src, n, reinterpret_cast<uint64_t>(stream)};
  std::memcpy(p, &req, sizeof(req));
  ch->publish();
  uint32_t k = 0;
  for (size_t off = 0; off < n; off += chunk, ++k) {
    const size_t len = std::min<size_t>(chunk, n - off);
    // Wait for chunk k, or for an early answer (the copy failed).
    if (!ch->wait_counter(sh->stage_filled, filled0 + k + 1, true)) return kProxyLost;
    if (int32_t(sh->stage_filled.load(std::memory_order_acquire) - filled0) < int32_t(k + 1)) return ch->wait();
    bulk_copy(static_cast<uint8_t*>(dst) + off, sh->stage[k % kStageSlots], len);
    sh->stage_acked.store(acked0 + k + 1, std::memory_order_release);
    futex_wake_all(&sh->stage_acked);
  }
  return ch->wait(kCopyYieldNs);
}

template <uint16_t Op>
CUresult htod(CUdeviceptr dst, const void* src, size_t n, CUstream stream, bool async) {
  if (n && src && side(src, n) == Side::Pageable)
    return with_restart([&] { return staged_h2d(Op, dst, src, n, stream); });
  return direct(Op, async, dst, reinterpret_cast<uint64_t>(src), n, stream);
}

template <uint16_t Op>
CUresult dtoh(void* dst, CUdeviceptr src, size_t n, CUstream stream, bool async) {
  if (n && dst && side(dst, n) == Side::Pageable)
    return with_restart([&] { return staged_d2h(Op, dst, src, n, stream); });
  return direct(Op, async, reinterpret_cast<uint64_t>(dst), src, n, stream);
}

template <uint16_t Op>
CUresult uva(CUdeviceptr dst, CUdeviceptr src, size_t n, CUstream stream, bool async) {
  auto* d = reinterpret_cast<void*>(dst);
  auto* s = reinterpret_cast<const void*>(src);
  const bool dp = n && dst && side(d, n) == Side::Pageable;
  const bool sp = n && src && side(s, n) == Side::Pageable;
  if (dp && sp) {
    std::memmove(d, s, n);  // host to host: no device involved
    return CUDA_SUCCESS;
  }
  if (sp) return with_restart([&] { return staged_h2d(Op, dst, s, n, stream); });
  if (dp) return with_restart([&] { return staged_d2h(Op, d, src, n, stream); });
  return direct(Op, async, dst, src, n, stream);
}

}  // namespace

CUresult cuMemAllocHost_v2(void** pp, size_t bytes) {
  return alloc_host(kOp_cuMemAllocHost_v2, pp, bytes, HostHeap::kPinned, 0);
}

CUresult cuMemHostAlloc(void** pp, size_t bytes, unsigned int flags) {
  if (flags & ~unsigned(CU_MEMHOSTALLOC_PORTABLE | CU_MEMHOSTALLOC_DEVICEMAP | CU_MEMHOSTALLOC_WRITECOMBINED))
    return CUDA_ERROR_INVALID_VALUE;
  return alloc_host(kOp_cuMemHostAlloc, pp, bytes, HostHeap::kPinned, flags);
}

CUresult cuMemAllocManaged(CUdeviceptr* dptr, size_t bytes, unsigned int flags) {
  if (flags != CU_MEM_ATTACH_GLOBAL && flags != CU_MEM_ATTACH_HOST) return CUDA_ERROR_INVALID_VALUE;
  void* p = nullptr;
  CUresult r = alloc_host(kOp_cuMemAllocManaged, dptr ? &p : nullptr, bytes, HostHeap::kManaged, flags);
  if (r == CUDA_SUCCESS) *dptr = reinterpret_cast<CUdeviceptr>(p);
  return r;
}

CUresult cuMemFreeHost(void* p) {
  if (!p) return CUDA_SUCCESS;  // as free(NULL)
  CUresult err;
  if (!call_channel(kOp_cuMemFreeHost, &err)) return err;
  HostHeap::Block b;
  if (!HostHeap::get().lookup(p, 1, &b) || b.base != reinterpret_cast<uint64_t>(p) || b.kind != HostHeap::kPinned)
    return CUDA_ERROR_INVALID_VALUE;
  CUresult r = host_block(kOp_cuMemFreeHost, p, b.size, b.kind, b.flags);
  if (r == CUDA_SUCCESS) HostHeap::get().release(p, nullptr);
  return r;
}

// Managed memory lives in the shared host heap (the proxy registered it): it goes back there, the
// proxy unregistering it (the host-block free, which synchronizes as cuMemFree does).  Anything
// else is device memory the proxy owns.
CUresult cuMemFree_v2(CUdeviceptr dptr) {
  HostHeap::Block b;
  void* p = reinterpret_cast<void*>(dptr);
  if (dptr && HostHeap::get().lookup(p, 1, &b) && b.kind == HostHeap::kManaged) {
    if (b.base != dptr) return CUDA_ERROR_INVALID_VALUE;
    CUresult err;
    if (!call_channel(kOp_cuMemFree_v2, &err)) return err;
    CUresult r = host_block(kOp_cuMemFreeHost, p, b.size, b.kind, b.flags);
    if (r == CUDA_SUCCESS) HostHeap::get().release(p, nullptr);
    return r;
  }
  return Forward<kOp_cuMemFree_v2, decltype(::cuMemFree_v2)>::sync(dptr);
}

CUresult cuMemHostGetDevicePointer_v2(CUdeviceptr* pdptr, void* p, unsigned int flags) {
  CUresult err;
  if (!call_channel(kOp_cuMemHostGetDevicePointer_v2, &err)) return err;
  if (!pdptr || flags != 0) return CUDA_ERROR_INVALID_VALUE;
  // Unified addressing: the device sees shared host memory at its address.
  if (HostHeap::get().lookup(p, 1, nullptr)) {
    *pdptr = reinterpret_cast<CUdeviceptr>(p);
    return CUDA_SUCCESS;
  }
  if (!p || !HostRegistry::get().contains(reinterpret_cast<uint64_t>(p), 1)) return CUDA_ERROR_INVALID_VALUE;
  // Registered memory: the proxy's driver answers.
  Answer a = sync_call(kOp_cuMemHostGetDevicePointer_v2, [&](Writer& w) {
    w.put<uint64_t>(reinterpret_cast<uint64_t>(p));
    w.put<uint32_t>(flags);
  });
  if (a.result != CUDA_SUCCESS) return a.result;
  Reader r = a.reader();
  uint64_t d = r.get<uint64_t>();
  if (!r.ok()) return CUDA_ERROR_UNKNOWN;
  *pdptr = d;
  return CUDA_SUCCESS;
}

CUresult cuMemHostGetFlags(unsigned int* flags, void* p) {
  CUresult err;
  if (!call_channel(kOp_cuMemHostGetFlags, &err)) return err;
  if (!flags || !p) return CUDA_ERROR_INVALID_VALUE;
  HostHeap::Block b;
  if (HostHeap::get().lookup(p, 1, &b)) {
    if (b.kind != HostHeap::kPinned) return CUDA_ERROR_INVALID_VALUE;
    *flags = b.flags;
    return CUDA_SUCCESS;
  }
  if (!HostRegistry::get().contains(reinterpret_cast<uint64_t>(p), 1)) return CUDA_ERROR_INVALID_VALUE;
  Answer a = sync_call(kOp_cuMemHostGetFlags, [&](Writer& w) { w.put<uint64_t>(reinterpret_cast<uint64_t>(p)); });
  if (a.result != CUDA_SUCCESS) return a.result;
  Reader r = a.reader();
  uint32_t f = r.get<uint32_t>();
  if (!r.ok()) return CUDA_ERROR_UNKNOWN;
  *flags = f;
  return CUDA_SUCCESS;
}

// The app's own pages are moved onto memory shared with the proxy first
// (host_registry.h), then the proxy registers them with its driver.
CUresult cuMemHostRegister_v2(void* ptr, size_t bytes, unsigned int flags) {
  CUresult err;
  Channel* ch = call_channel(kOp_cuMemHostRegister_v2, &err);
  if (!ch) return err;
  const auto p = reinterpret_cast<uint64_t>(ptr);
  constexpr unsigned kKnown = CU_MEMHOSTREGISTER_PORTABLE | CU_MEMHOSTREGISTER_DEVICEMAP |
                              CU_MEMHOSTREGISTER_IOMEMORY | CU_MEMHOSTREGISTER_READ_ONLY;
  if (!ptr || bytes == 0 || p + bytes < p || (flags & ~kKnown)) return CUDA_ERROR_INVALID_VALUE;
  // I/O memory (a device's BAR mapped into the app) cannot be copied onto a memfd.
  if (flags & CU_MEMHOSTREGISTER_IOMEMORY) return CUDA_ERROR_NOT_SUPPORTED;
  Connection* conn = ch->connection();
  if (conn->overlaps_device_range(p, bytes)) return CUDA_ERROR_INVALID_VALUE;
  auto forward = [&] {
    return sync_call(kOp_cuMemHostRegister_v2, [&](Writer& w) {
             w.put<uint64_t>(p);
             w.put<uint64_t>(bytes);
             w.put<uint32_t>(flags);
           }).result;
  };
  // Memory already shared with the proxy (pinned, managed): its driver answers.
  if (HostHeap::get().in_range(ptr, bytes)) return forward();
  // Partly shared already: remapping would cut the shared host range.
  if (HostHeap::get().overlaps(ptr, bytes)) return CUDA_ERROR_INVALID_VALUE;
  if (HostRegistry::get().overlaps(p, bytes)) return CUDA_ERROR_HOST_MEMORY_ALREADY_REGISTERED;
  CUresult r = HostRegistry::get().share(conn, p, bytes);
  if (r != CUDA_SUCCESS) return r;
  if ((r = forward()) != CUDA_SUCCESS) {
    HostRegistry::get().rollback(conn, p, bytes);
    return r;
  }
  HostRegistry::get().commit(p, bytes, flags);
  return CUDA_SUCCESS;
}

CUresult cuMemHostUnregister(void* ptr) {
  CUresult err;
  Channel* ch = call_channel(kOp_cuMemHostUnregister, &err);
  if (!ch) return err;
  if (!ptr) return CUDA_ERROR_INVALID_VALUE;
  const auto p = reinterpret_cast<uint64_t>(ptr);
  if (!HostRegistry::get().contains(p, 1)) return CUDA_ERROR_HOST_MEMORY_NOT_REGISTERED;
  CUresult r = sync_call(kOp_cuMemHostUnregister, [&](Writer& w) { w.put<uint64_t>(p); }).result;
  if (r != CUDA_SUCCESS) return r;
  HostRegistry::get().release(ch->connection(), p);
  return CUDA_SUCCESS;
}

CUresult cuMemcpyHtoD_v2(CUdeviceptr d, const void* s, size_t n) { return htod<kOp_cuMemcpyHtoD_v2>(d, s, n, nullptr, false); }
CUresult cuMemcpyHtoD_v2_ptds(CUdeviceptr d, const void* s, size_t n) {
  return htod<kOp_cuMemcpyHtoD_v2_ptds>(d, s, n, nullptr, false);
}
CUresult cuMemcpyHtoDAsync_v2(CUdeviceptr d, const void* s, size_t n, CUstream st) {
  return htod<kOp_cuMemcpyHtoDAsync_v2>(d, s, n, st, true);
}
CUresult cuMemcpyHtoDAsync_v2_ptsz(CUdeviceptr d, const void* s, size_t n, CUstream st) {
  return htod<kOp_cuMemcpyHtoDAsync_v2_ptsz>(d, s, n, st, true);
}
CUresult cuMemcpyDtoH_v2(void* d, CUdeviceptr s, size_t n) { return dtoh<kOp_cuMemcpyDtoH_v2>(d, s, n, nullptr, false); }
CUresult cuMemcpyDtoH_v2_ptds(void* d, CUdeviceptr s, size_t n) {
  return dtoh<kOp_cuMemcpyDtoH_v2_ptds>(d, s, n, nullptr, false);
}
CUresult cuMemcpyDtoHAsync_v2(void* d, CUdeviceptr s, size_t n, CUstream st) {
  return dtoh<kOp_cuMemcpyDtoHAsync_v2>(d, s, n, st, true);
}
CUresult cuMemcpyDtoHAsync_v2_ptsz(void* d, CUdeviceptr s, size_t n, CUstream st) {
  return dtoh<kOp_cuMemcpyDtoHAsync_v2_ptsz>(d, s, n, st, true);
}
CUresult cuMemcpy(CUdeviceptr d, CUdeviceptr s, size_t n) { return uva<kOp_cuMemcpy>(d, s, n, nullptr, false); }
CUresult cuMemcpy_ptds(CUdeviceptr d, CUdeviceptr s, size_t n) { return uva<kOp_cuMemcpy_ptds>(d, s, n, nullptr, false); }
CUresult cuMemcpyAsync(CUdeviceptr d, CUdeviceptr s, size_t n, CUstream st) {
  return uva<kOp_cuMemcpyAsync>(d, s, n, st, true);
}
CUresult cuMemcpyAsync_ptsz(CUdeviceptr d, CUdeviceptr s, size_t n, CUstream st) {
  return uva<kOp_cuMemcpyAsync_ptsz>(d, s, n, st, true);
}

namespace {

// A batch is its copies issued in order on the stream, each one the way cuMemcpyAsync issues it:
// stream order satisfies every source access order a batch may ask for, and the copies keep the
// pageable staging of single copies.  The arguments are checked as the driver checks them, first.
template <uint16_t CopyOp>
CUresult batch(CUdeviceptr* dsts, CUdeviceptr* srcs, size_t* sizes, size_t count, CUmemcpyAttributes* attrs,
               size_t* attrs_idx, size_t num_attrs, size_t* fail_idx, CUstream stream, bool ptds) {
  if (fail_idx) *fail_idx = SIZE_MAX;
  CUresult err;
  if (!call_channel(CopyOp, &err)) return err;
  if (count == 0 || !dsts || !srcs || !sizes) return CUDA_ERROR_INVALID_VALUE;
  if (num_attrs == 0 || !attrs || !attrs_idx || attrs_idx[0] != 0) return CUDA_ERROR_INVALID_VALUE;
  for (size_t i = 1; i < num_attrs; ++i)
    if (attrs_idx[i] <= attrs_idx[i - 1] || attrs_idx[i] >= count) return CUDA_ERROR_INVALID_VALUE;
  // The legacy stream cannot carry a batch.
  if (stream == CU_STREAM_LEGACY || (!stream && !ptds)) return CUDA_ERROR_INVALID_VALUE;
  for (size_t i = 0; i < count; ++i) {
    if (sizes[i] && (!dsts[i] || !srcs[i])) {
      if (fail_idx) *fail_idx = i;
      return CUDA_ERROR_INVALID_VALUE;
    }
  }
  for (size_t i = 0; i < count; ++i) {
    if (!sizes[i]) continue;
    if (CUresult r = uva<CopyOp>(dsts[i], srcs[i], sizes[i], stream, true); r != CUDA_SUCCESS) {
      if (fail_idx) *fail_idx = i;
      return r;
    }
  }
  return CUDA_SUCCESS;
}

}  // namespace

CUresult cuMemcpyBatchAsync(CUdeviceptr* d, CUdeviceptr* s, size_t* n, size_t count, CUmemcpyAttributes* a,
                            size_t* ai, size_t na, size_t* fail, CUstream st) {
  return batch<kOp_cuMemcpyAsync>(d, s, n, count, a, ai, na, fail, st, false);
}
CUresult cuMemcpyBatchAsync_ptsz(CUdeviceptr* d, CUdeviceptr* s, size_t* n, size_t count, CUmemcpyAttributes* a,
                                 size_t* ai, size_t na, size_t* fail, CUstream st) {
  return batch<kOp_cuMemcpyAsync_ptsz>(d, s, n, count, a, ai, na, fail, st, true);
}
CUresult cuMemcpyBatchAsync_v2(CUdeviceptr* d, CUdeviceptr* s, size_t* n, size_t count, CUmemcpyAttributes* a,
                               size_t* ai, size_t na, CUstream st) {
  return batch<kOp_cuMemcpyAsync>(d, s, n, count, a, ai, na, nullptr, st, false);
}
CUresult cuMemcpyBatchAsync_v2_ptsz(CUdeviceptr* d, CUdeviceptr* s, size_t* n, size_t count, CUmemcpyAttributes* a,
                                    size_t* ai, size_t na, CUstream st) {
  return batch<kOp_cuMemcpyAsync_ptsz>(d, s, n, count, a, ai, na, nullptr, st, true);
}

}  // namespace sing::shim::custom
