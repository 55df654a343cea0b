// Kernel launches.  The shim packed the parameters with the layout the
// function reports, so they go to the backend as one buffer (`extra`), which
// every driver accepts for any kernel.
#include <cstring>
#include <vector>

#include "handler_util.h"
#include "log.h"
#include "wire/payloads.h"

namespace sing::proxy::custom {

CUresult function_handle(Client& client, uint64_t vid, CUfunction* f, bool* is_kernel);

namespace {

struct Decoded {
  wire::LaunchRequest req{};
  CUfunction f = nullptr;
  CUstream stream = nullptr;
  std::vector<CUlaunchAttribute> attrs;
  const uint8_t* params = nullptr;
};

CUresult decode_launch(Call& c, Decoded* d) {
  const uint8_t* p = c.in.take(sizeof(wire::LaunchRequest));
  if (!p) return CUDA_ERROR_INVALID_VALUE;
  std::memcpy(&d->req, p, sizeof(d->req));
  if (d->req.num_attrs > 32 || d->req.param_bytes > 32768) return CUDA_ERROR_INVALID_VALUE;
  d->attrs.resize(d->req.num_attrs);
  for (auto& a : d->attrs) {
    const uint8_t* q = c.in.take(sizeof(CUlaunchAttribute));
    if (!q) return CUDA_ERROR_INVALID_VALUE;
    std::memcpy(&a, q, sizeof(a));
  }
  if (d->req.has_params) {
    d->params = c.in.take(d->req.param_bytes);
    if (!d->params && d->req.param_bytes) return CUDA_ERROR_INVALID_VALUE;
  }
  if (!c.in.ok() || !c.in.at_end()) return CUDA_ERROR_INVALID_VALUE;
  bool is_kernel;
  CUresult r = function_handle(c.client, d->req.function, &d->f, &is_kernel);
  if (r != CUDA_SUCCESS) return r;
  r = to_real(c.client, reinterpret_cast<CUstream>(d->req.stream), &d->stream);
  if (r != CUDA_SUCCESS) return r;
  // Attributes that carry handles: the app's ids become the backend's.
  for (auto& a : d->attrs) {
    if (a.id == CU_LAUNCH_ATTRIBUTE_PROGRAMMATIC_EVENT) {
      r = to_real(c.client, a.value.programmaticEvent.event, &a.value.programmaticEvent.event);
    } else if (a.id == CU_LAUNCH_ATTRIBUTE_LAUNCH_COMPLETION_EVENT) {
      r = to_real(c.client, a.value.launchCompletionEvent.event, &a.value.launchCompletionEvent.event);
    }
    if (r != CUDA_SUCCESS) return r;
  }
  return CUDA_SUCCESS;
}

template <uint16_t Op>
CUresult launch(Call& c) {
  Decoded d;
  CUresult r = decode_launch(c, &d);
  if (r != CUDA_SUCCESS) {
    log_debug("launch refused (%d): function %#llx grid %u,%u,%u block %u,%u,%u params %u/%u attrs %u", int(r),
              (unsigned long long)d.req.function, d.req.grid[0], d.req.grid[1], d.req.grid[2], d.req.block[0],
              d.req.block[1], d.req.block[2], d.req.param_bytes, d.req.has_params, d.req.num_attrs);
    return r;
  }
  size_t size = d.req.param_bytes;
  // The backend reads the buffer during the call only.
  void* extra[] = {CU_LAUNCH_PARAM_BUFFER_POINTER, const_cast<uint8_t*>(d.params), CU_LAUNCH_PARAM_BUFFER_SIZE,
                   &size, CU_LAUNCH_PARAM_END};
  void** ex = d.req.has_params ? extra : nullptr;
  const auto& q = d.req;
  if constexpr (Op == wire::kOp_cuLaunchKernelEx || Op == wire::kOp_cuLaunchKernelEx_ptsz) {
    CUlaunchConfig cfg{};
    cfg.gridDimX = q.grid[0], cfg.gridDimY = q.grid[1], cfg.gridDimZ = q.grid[2];
    cfg.blockDimX = q.block[0], cfg.blockDimY = q.block[1], cfg.blockDimZ = q.block[2];
    cfg.sharedMemBytes = q.shared_bytes;
    cfg.hStream = d.stream;
    cfg.attrs = d.attrs.data();
    cfg.numAttrs = unsigned(d.attrs.size());
    auto fn = reinterpret_cast<decltype(&::cuLaunchKernelEx)>(backend().fn[Op]);
    return fn(&cfg, d.f, nullptr, ex);
  } else if constexpr (Op == wire::kOp_cuLaunchCooperativeKernel || Op == wire::kOp_cuLaunchCooperativeKernel_ptsz) {
    // The cooperative entry point takes kernelParams only; the extended
    // launch with the cooperative attribute is the same launch and takes
    // the packed buffer.
    CUlaunchAttribute coop{};
    coop.id = CU_LAUNCH_ATTRIBUTE_COOPERATIVE;
    coop.value.cooperative = 1;
    CUlaunchConfig cfg{};
    cfg.gridDimX = q.grid[0], cfg.gridDimY = q.grid[1], cfg.gridDimZ = q.grid[2];
    cfg.blockDimX = q.block[0], cfg.blockDimY = q.block[1], cfg.blockDimZ = q.block[2];
    cfg.sharedMemBytes = q.shared_bytes;
    cfg.hStream = d.stream;
    cfg.attrs = &coop;
    cfg.numAttrs = 1;
    auto fn = Op == wire::kOp_cuLaunchCooperativeKernel ? BACKEND(cuLaunchKernelEx) : BACKEND(cuLaunchKernelEx_ptsz);
    return fn(&cfg, d.f, nullptr, ex);
  } else {
    auto fn = reinterpret_cast<decltype(&::cuLaunchKernel)>(backend().fn[Op]);
    r = fn(d.f, q.grid[0], q.grid[1], q.grid[2], q.block[0], q.block[1], q.block[2], q.shared_bytes, d.stream,
           nullptr, ex);
    if (r != CUDA_SUCCESS)
      log_debug("backend launch failed (%d): grid %u,%u,%u block %u,%u,%u params %u/%u", int(r), q.grid[0], q.grid[1],
                q.grid[2], q.block[0], q.block[1], q.block[2], q.param_bytes, q.has_params);
    return r;
  }
}

}  // namespace
}  // namespace sing::proxy::custom

PROXY_TWIN(cuLaunchKernel, cuLaunchKernel_ptsz, launch)
PROXY_TWIN(cuLaunchKernelEx, cuLaunchKernelEx_ptsz, launch)
PROXY_TWIN(cuLaunchCooperativeKernel, cuLaunchCooperativeKernel_ptsz, launch)
