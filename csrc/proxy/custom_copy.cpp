// Copies with a host side.  Shared host memory (pinned, mapped, managed) is at
// the same address here as in the app, so those copies run directly.  The
// app's pageable memory is staged through its channel's two stage slots:
// host-to-device chunks arrive as kOpStageH2D records while the app fills the
// other slot; device-to-host chunks are streamed back the same way.
#include <cstring>

#include "graph_memory.h"
#include "guards.h"
#include "handler_util.h"
#include "wire/futex.h"
#include "wire/payloads.h"

namespace sing::proxy {

namespace {

template <class T>
T fn(uint16_t op) {
  return reinterpret_cast<T>(backend().fn[op]);
}

bool is_async(uint16_t op) {
  switch (op) {
    case wire::kOp_cuMemcpyHtoDAsync_v2:
    case wire::kOp_cuMemcpyHtoDAsync_v2_ptsz:
    case wire::kOp_cuMemcpyDtoHAsync_v2:
    case wire::kOp_cuMemcpyDtoHAsync_v2_ptsz:
    case wire::kOp_cuMemcpyAsync:
    case wire::kOp_cuMemcpyAsync_ptsz:
      return true;
    default:
      return false;
  }
}

bool is_ptds(uint16_t op) {
  switch (op) {
    case wire::kOp_cuMemcpyHtoD_v2_ptds:
    case wire::kOp_cuMemcpyDtoH_v2_ptds:
    case wire::kOp_cuMemcpy_ptds:
    case wire::kOp_cuMemcpyHtoDAsync_v2_ptsz:
    case wire::kOp_cuMemcpyDtoHAsync_v2_ptsz:
    case wire::kOp_cuMemcpyAsync_ptsz:
      return true;
    default:
      return false;
  }
}

// The generic UVA copy of the same flavour (sync/async, legacy/per-thread):
// every staged chunk and direct copy goes through it.
CUresult uva_copy(uint16_t op, uint64_t dst, uint64_t src, uint64_t n, CUstream stream) {
  if (is_async(op)) {
    auto f = fn<decltype(&::cuMemcpyAsync)>(is_ptds(op) ? wire::kOp_cuMemcpyAsync_ptsz : wire::kOp_cuMemcpyAsync);
    return f(dst, src, n, stream);
  }
  auto f = fn<decltype(&::cuMemcpy)>(is_ptds(op) ? wire::kOp_cuMemcpy_ptds : wire::kOp_cuMemcpy);
  return f(dst, src, n);
}

CUresult stream_sync(uint16_t op, CUstream stream) {
  auto f = fn<decltype(&::cuStreamSynchronize)>(is_ptds(op) ? wire::kOp_cuStreamSynchronize_ptsz
                                                             : wire::kOp_cuStreamSynchronize);
  return f(stream);
}

// Waiting for the app to copy out a D2H chunk: spin this long, then yield
// (wire::kCopyYieldNs) before sleeping.
constexpr uint64_t kStageSpinNs = 10'000;

// The first failure of the staged chunks of the copy in progress, per channel.
thread_local CUresult t_stage_error = CUDA_SUCCESS;

// A staged copy reaches the app's pageable memory only while the call lasts:
// captured into a graph, it would run later on a stage slot long reused.
bool captured(uint16_t op, CUstream stream) {
  return is_async(op) && capture_status(stream, is_ptds(op)) != CU_STREAM_CAPTURE_STATUS_NONE;
}

}  // namespace

namespace custom {

// One request format for every host-side copy (payloads.h).
template <uint16_t Op>
CUresult copy(Call& c) {
  const uint8_t* p = c.in.take(sizeof(wire::CopyRequest));
  if (!p || !c.in.at_end()) return CUDA_ERROR_INVALID_VALUE;
  wire::CopyRequest req;
  std::memcpy(&req, p, sizeof(req));
  CUstream stream = nullptr;
  CUresult r = to_real(c.client, reinterpret_cast<CUstream>(req.stream), &stream);
  if (r != CUDA_SUCCESS) return r;
  wire::Channel* ch = c.worker.channel();
  switch (req.mode) {
    case wire::kCopyDirect:
      if (!addressable(c.client, req.dst, req.bytes) || !addressable(c.client, req.src, req.bytes))
        return CUDA_ERROR_INVALID_VALUE;
      return uva_copy(Op, req.dst, req.src, req.bytes, stream);
    case wire::kCopyStagedFinish: {
      c.worker.copy_in_progress = false;
      r = t_stage_error;
      t_stage_error = CUDA_SUCCESS;
      return r;
    }
    case wire::kCopyStagedD2H: {
      if (!addressable(c.client, req.src, req.bytes)) return CUDA_ERROR_INVALID_VALUE;
      if (req.chunk == 0 || req.chunk > wire::kStageSlotBytes) return CUDA_ERROR_INVALID_VALUE;
      if (captured(Op, stream)) return CUDA_ERROR_NOT_SUPPORTED;
      // Chunk k goes to slot k % kStageSlots once the app has copied out
      // chunk k - kStageSlots.  The counters run on from the last copy.
      const uint32_t filled0 = ch->stage_filled.load();
      const uint32_t acked0 = ch->stage_acked.load();
      const uint64_t chunk = req.chunk;
      uint32_t k = 0;
      for (uint64_t off = 0; off < req.bytes; off += chunk, ++k) {
        const uint64_t n = std::min<uint64_t>(chunk, req.bytes - off);
        auto acked = [&] {
          return k < wire::kStageSlots ||
                 int32_t(ch->stage_acked.load(std::memory_order_acquire) - acked0) >= int32_t(k - wire::kStageSlots + 1);
        };
        wire::spin_then_yield_until(acked, kStageSpinNs, wire::kCopyYieldNs);
        while (!acked()) {
          uint32_t seen = ch->stage_acked.load();
          if (int32_t(seen - acked0) >= int32_t(k - wire::kStageSlots + 1)) break;
          wire::futex_wait(&ch->stage_acked, seen, 100'000'000);
          if (c.worker.finished()) return CUDA_ERROR_DEVICE_UNAVAILABLE;
        }
        uint8_t* slot = ch->stage[k % wire::kStageSlots];
        r = uva_copy(Op, reinterpret_cast<uint64_t>(slot), req.src + off, n, stream);
        if (r == CUDA_SUCCESS && is_async(Op)) r = stream_sync(Op, stream);
        if (r != CUDA_SUCCESS) return r;  // the app stops waiting for chunks when the answer comes
        ch->stage_filled.store(filled0 + k + 1, std::memory_order_release);
        wire::futex_wake_all(&ch->stage_filled);
      }
      return CUDA_SUCCESS;
    }
    default:
      return CUDA_ERROR_INVALID_VALUE;
  }
}

// A filled H2D stage slot.  To the backend the slot is pageable memory, so
// even an async copy from it has taken its data when the call returns (a
// driver stages pageable sources at once, which is also what CUDA promises
// the app): the slot can be handed back without waiting for the stream.
CUresult stage_h2d(Call& c) {
  const uint8_t* p = c.in.take(sizeof(wire::StageChunk));
  if (!p) return CUDA_ERROR_INVALID_VALUE;
  wire::StageChunk chunk;
  std::memcpy(&chunk, p, sizeof(chunk));
  wire::Channel* ch = c.worker.channel();
  CUresult r = CUDA_SUCCESS;
  CUstream stream = nullptr;
  if (chunk.slot >= wire::kStageSlots || chunk.bytes > wire::kStageSlotBytes) {
    r = CUDA_ERROR_INVALID_VALUE;
  } else if ((r = to_real(c.client, reinterpret_cast<CUstream>(chunk.stream), &stream)) == CUDA_SUCCESS) {
    if (!addressable(c.client, chunk.dst, chunk.bytes) || chunk.offset > chunk.total ||
        chunk.bytes > chunk.total - chunk.offset ||
        (chunk.offset == 0 && !addressable(c.client, chunk.dst, chunk.total))) {
      r = CUDA_ERROR_INVALID_VALUE;
    } else if (t_stage_error == CUDA_SUCCESS && captured(chunk.op, stream)) {
      r = CUDA_ERROR_NOT_SUPPORTED;
    } else if (t_stage_error == CUDA_SUCCESS) {
      r = uva_copy(chunk.op, chunk.dst, reinterpret_cast<uint64_t>(ch->stage[chunk.slot]), chunk.bytes, stream);
    }
  }
  if (r != CUDA_SUCCESS && t_stage_error == CUDA_SUCCESS) t_stage_error = r;
  c.worker.copy_in_progress = true;  // until the finishing record
  ch->stage_released.fetch_add(1, std::memory_order_release);
  wire::futex_wake_all(&ch->stage_released);
  // The error is answered by the copy's finishing record, not deferred.
  return CUDA_SUCCESS;
}

CUresult blob_append(Call& c) {
  uint32_t n = c.in.remaining();
  const uint8_t* p = c.in.take(n);
  if (!p && n) return CUDA_ERROR_INVALID_VALUE;
  auto& blob = c.worker.blob();
  if (blob.size() + n > (1ull << 31)) return CUDA_ERROR_INVALID_VALUE;
  blob.insert(blob.end(), p, p + n);
  return CUDA_SUCCESS;
}

}  // namespace custom
}  // namespace sing::proxy

PROXY_TWIN(cuMemcpyHtoD_v2, cuMemcpyHtoD_v2_ptds, copy)
PROXY_TWIN(cuMemcpyDtoH_v2, cuMemcpyDtoH_v2_ptds, copy)
PROXY_TWIN(cuMemcpyHtoDAsync_v2, cuMemcpyHtoDAsync_v2_ptsz, copy)
PROXY_TWIN(cuMemcpyDtoHAsync_v2, cuMemcpyDtoHAsync_v2_ptsz, copy)
PROXY_TWIN(cuMemcpy, cuMemcpy_ptds, copy)
PROXY_TWIN(cuMemcpyAsync, cuMemcpyAsync_ptsz, copy)
