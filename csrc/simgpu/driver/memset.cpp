// cuMemsetD8/D16/D32 and their 2D and asynchronous forms.
#include "copy.h"

#include "memory.h"

namespace simgpu {

void run_memset(const MemsetWork& w) {
  for (uint64_t y = 0; y < w.height; ++y) {
    uint8_t* row = reinterpret_cast<uint8_t*>(w.dst + y * w.pitch);
    switch (w.elem) {
      case 1: std::memset(row, int(w.value & 0xff), w.width); break;
      case 2: {
        auto* p = reinterpret_cast<uint16_t*>(row);
        for (uint64_t i = 0; i < w.width; ++i) p[i] = uint16_t(w.value);
        break;
      }
      default: {
        auto* p = reinterpret_cast<uint32_t*>(row);
        for (uint64_t i = 0; i < w.width; ++i) p[i] = w.value;
        break;
      }
    }
  }
}

namespace {

CUresult validate(const MemsetWork& w) {
  if (!w.dst) return CUDA_ERROR_INVALID_VALUE;
  if (w.dst % w.elem) return CUDA_ERROR_INVALID_VALUE;
  if (w.height > 1 && (w.pitch < w.width * w.elem || w.pitch % w.elem)) return CUDA_ERROR_INVALID_VALUE;
  uint64_t span = (w.height - 1) * w.pitch + w.width * w.elem;
  return check_device_ptr(w.dst, span);
}

CUresult do_memset(uint64_t dst, uint64_t pitch, uint32_t value, uint32_t elem, uint64_t width, uint64_t height,
                   CUstream h, bool ptds, bool async_api) {
  std::shared_ptr<Stream> s;
  SIM_CHECK(async_api ? resolve_stream(h, ptds, s) : sync_stream(ptds, s));
  if (width == 0 || height == 0) return CUDA_SUCCESS;
  MemsetWork w;
  w.dst = dst;
  w.pitch = height > 1 ? pitch : width * elem;
  w.value = value;
  w.elem = elem;
  w.width = width;
  w.height = height;
  SIM_CHECK(validate(w));
  return issue_memset(*s, std::move(w), async_api);
}

}  // namespace

CUresult issue_memset(Stream& s, MemsetWork w, bool async_api) {
  if (s.capturing.load(std::memory_order_acquire)) {
    if (!async_api) return CUDA_ERROR_STREAM_CAPTURE_UNSUPPORTED;
    return submit(s, std::move(w));
  }
  if (!async_api) {
    SIM_CHECK(check_not_capturing_unsafe());
    // Asynchronous to the host unless the target is host (pinned / managed) memory.
    auto r = memmap().find(w.dst);
    if (r && (r->kind == MemKind::Device || r->kind == MemKind::Vmm)) return submit(s, std::move(w));
    return submit_and_wait(s, std::move(w));
  }
  return submit(s, std::move(w));
}

CUresult memset_work_from_params(const CUDA_MEMSET_NODE_PARAMS& p, MemsetWork& out) {
  if (p.elementSize != 1 && p.elementSize != 2 && p.elementSize != 4) return CUDA_ERROR_INVALID_VALUE;
  if (!p.width || !p.height) return CUDA_ERROR_INVALID_VALUE;
  MemsetWork w;
  w.dst = p.dst;
  w.elem = p.elementSize;
  w.width = p.width;
  w.height = p.height;
  w.pitch = p.height > 1 ? p.pitch : p.width * p.elementSize;
  w.value = p.elementSize == 1 ? (p.value & 0xff) : p.elementSize == 2 ? (p.value & 0xffff) : p.value;
  SIM_CHECK(validate(w));
  out = w;
  return CUDA_SUCCESS;
}

}  // namespace simgpu

using namespace simgpu;

#define SIM_MEMSET(name, params, ...)                    \
  SIM_EXPORT CUresult CUDAAPI name params {              \
    SIM_TRY return do_memset(__VA_ARGS__);               \
    SIM_END                                              \
  }

extern "C" {

SIM_MEMSET(cuMemsetD8_v2, (CUdeviceptr d, unsigned char v, size_t n), d, 0, v, 1, n, 1, nullptr, false, false)
SIM_MEMSET(cuMemsetD8_v2_ptds, (CUdeviceptr d, unsigned char v, size_t n), d, 0, v, 1, n, 1, nullptr, true, false)
SIM_MEMSET(cuMemsetD16_v2, (CUdeviceptr d, unsigned short v, size_t n), d, 0, v, 2, n, 1, nullptr, false, false)
SIM_MEMSET(cuMemsetD16_v2_ptds, (CUdeviceptr d, unsigned short v, size_t n), d, 0, v, 2, n, 1, nullptr, true, false)
SIM_MEMSET(cuMemsetD32_v2, (CUdeviceptr d, unsigned int v, size_t n), d, 0, v, 4, n, 1, nullptr, false, false)
SIM_MEMSET(cuMemsetD32_v2_ptds, (CUdeviceptr d, unsigned int v, size_t n), d, 0, v, 4, n, 1, nullptr, true, false)

SIM_MEMSET(cuMemsetD8Async, (CUdeviceptr d, unsigned char v, size_t n, CUstream s), d, 0, v, 1, n, 1, s, false, true)
SIM_MEMSET(cuMemsetD8Async_ptsz, (CUdeviceptr d, unsigned char v, size_t n, CUstream s), d, 0, v, 1, n, 1, s, true,
           true)
SIM_MEMSET(cuMemsetD16Async, (CUdeviceptr d, unsigned short v, size_t n, CUstream s), d, 0, v, 2, n, 1, s, false,
           true)
SIM_MEMSET(cuMemsetD16Async_ptsz, (CUdeviceptr d, unsigned short v, size_t n, CUstream s), d, 0, v, 2, n, 1, s, true,
           true)
SIM_MEMSET(cuMemsetD32Async, (CUdeviceptr d, unsigned int v, size_t n, CUstream s), d, 0, v, 4, n, 1, s, false, true)
SIM_MEMSET(cuMemsetD32Async_ptsz, (CUdeviceptr d, unsigned int v, size_t n, CUstream s), d, 0, v, 4, n, 1, s, true,
           true)

SIM_MEMSET(cuMemsetD2D8_v2, (CUdeviceptr d, size_t p, unsigned char v, size_t w, size_t h), d, p, v, 1, w, h,
           nullptr, false, false)
SIM_MEMSET(cuMemsetD2D8_v2_ptds, (CUdeviceptr d, size_t p, unsigned char v, size_t w, size_t h), d, p, v, 1, w, h,
           nullptr, true, false)
SIM_MEMSET(cuMemsetD2D16_v2, (CUdeviceptr d, size_t p, unsigned short v, size_t w, size_t h), d, p, v, 2, w, h,
           nullptr, false, false)
SIM_MEMSET(cuMemsetD2D16_v2_ptds, (CUdeviceptr d, size_t p, unsigned short v, size_t w, size_t h), d, p, v, 2, w, h,
           nullptr, true, false)
SIM_MEMSET(cuMemsetD2D32_v2, (CUdeviceptr d, size_t p, unsigned int v, size_t w, size_t h), d, p, v, 4, w, h,
           nullptr, false, false)
SIM_MEMSET(cuMemsetD2D32_v2_ptds, (CUdeviceptr d, size_t p, unsigned int v, size_t w, size_t h), d, p, v, 4, w, h,
           nullptr, true, false)

SIM_MEMSET(cuMemsetD2D8Async, (CUdeviceptr d, size_t p, unsigned char v, size_t w, size_t h, CUstream s), d, p, v, 1,
           w, h, s, false, true)
SIM_MEMSET(cuMemsetD2D8Async_ptsz, (CUdeviceptr d, size_t p, unsigned char v, size_t w, size_t h, CUstream s), d, p,
           v, 1, w, h, s, true, true)
SIM_MEMSET(cuMemsetD2D16Async, (CUdeviceptr d, size_t p, unsigned short v, size_t w, size_t h, CUstream s), d, p, v,
           2, w, h, s, false, true)
SIM_MEMSET(cuMemsetD2D16Async_ptsz, (CUdeviceptr d, size_t p, unsigned short v, size_t w, size_t h, CUstream s), d,
           p, v, 2, w, h, s, true, true)
SIM_MEMSET(cuMemsetD2D32Async, (CUdeviceptr d, size_t p, unsigned int v, size_t w, size_t h, CUstream s), d, p, v, 4,
           w, h, s, false, true)
SIM_MEMSET(cuMemsetD2D32Async_ptsz, (CUdeviceptr d, size_t p, unsigned int v, size_t w, size_t h, CUstream s), d, p,
           v, 4, w, h, s, true, true)

}  // extern "C"
