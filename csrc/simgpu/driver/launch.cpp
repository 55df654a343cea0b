// cuLaunchKernel, cuLaunchKernelEx, cuLaunchCooperativeKernel.
#include "launch.h"

#include "event.h"
#include "memmap.h"

namespace simgpu {

CUresult fault_result(ptx::Fault f) {
  switch (f) {
    case ptx::Fault::None: return CUDA_SUCCESS;
    case ptx::Fault::IllegalAddress: return CUDA_ERROR_ILLEGAL_ADDRESS;
    case ptx::Fault::MisalignedAddress: return CUDA_ERROR_MISALIGNED_ADDRESS;
    case ptx::Fault::IllegalInstruction: return CUDA_ERROR_ILLEGAL_INSTRUCTION;
    case ptx::Fault::Assert: return CUDA_ERROR_ASSERT;
    case ptx::Fault::Trap:
    case ptx::Fault::LaunchFailed: return CUDA_ERROR_LAUNCH_FAILED;
  }
  return CUDA_ERROR_LAUNCH_FAILED;
}

namespace {

bool dims_ok(const ptx::Dim3& d, uint32_t mx, uint32_t my, uint32_t mz) {
  return d.x >= 1 && d.y >= 1 && d.z >= 1 && d.x <= mx && d.y <= my && d.z <= mz;
}

CUresult pack_params(const ptx::KernelInfo& k, void** kernelParams, void** extra, ParamBuffer& out) {
  out.assign(k.param_bytes, 0);
  if (kernelParams && extra) return CUDA_ERROR_INVALID_VALUE;
  if (kernelParams) {
    for (size_t i = 0; i < k.params.size(); ++i) {
      const auto& p = k.params[i];
      if (!kernelParams[i]) return CUDA_ERROR_INVALID_VALUE;
      if (uint64_t(p.offset) + p.size > k.param_bytes) return CUDA_ERROR_INVALID_VALUE;
      std::memcpy(out.data() + p.offset, kernelParams[i], p.size);
    }
    return CUDA_SUCCESS;
  }
  if (extra) {
    const void* buf = nullptr;
    const size_t* size = nullptr;
    for (int i = 0;; i += 2) {
      if (i > 64) return CUDA_ERROR_INVALID_VALUE;  // no END marker in sight
      void* key = extra[i];
      if (key == CU_LAUNCH_PARAM_END) break;
      if (key == CU_LAUNCH_PARAM_BUFFER_POINTER)
        buf = extra[i + 1];
      else if (key == CU_LAUNCH_PARAM_BUFFER_SIZE)
        size = static_cast<const size_t*>(extra[i + 1]);
      else
        return CUDA_ERROR_INVALID_VALUE;
    }
    if (!buf || !size) return k.param_bytes ? CUDA_ERROR_INVALID_VALUE : CUDA_SUCCESS;
    // The buffer is the packed parameters, possibly with a struct's tail padding.
    uint32_t align = 8;
    for (auto& p : k.params) align = std::max(align, p.align);
    if (*size < k.param_bytes || *size > align_up(k.param_bytes, align)) return CUDA_ERROR_INVALID_VALUE;
    std::memcpy(out.data(), buf, k.param_bytes);
    return CUDA_SUCCESS;
  }
  return k.param_bytes ? CUDA_ERROR_INVALID_VALUE : CUDA_SUCCESS;
}

}  // namespace

CUresult prepare_launch(const std::shared_ptr<Function>& f, const ptx::Dim3& grid, const ptx::Dim3& block,
                        uint32_t shared_bytes, bool cooperative, void** kernelParams, void** extra, KernelWork& out) {
  using namespace h100;
  const auto& k = *f->info;
  if (!dims_ok(grid, kMaxGridDimX, kMaxGridDimY, kMaxGridDimZ)) return CUDA_ERROR_INVALID_VALUE;
  if (!dims_ok(block, kMaxBlockDimX, kMaxBlockDimY, kMaxBlockDimZ)) return CUDA_ERROR_INVALID_VALUE;
  uint64_t threads = block.count();
  if (threads > uint64_t(kMaxThreadsPerBlock)) return CUDA_ERROR_INVALID_VALUE;
  if (k.max_threads_per_block && threads > k.max_threads_per_block) return CUDA_ERROR_INVALID_VALUE;
  if (k.reqntid.x && (block.x != k.reqntid.x || block.y != std::max(1u, k.reqntid.y) ||
                      block.z != std::max(1u, k.reqntid.z)))
    return CUDA_ERROR_INVALID_VALUE;
  if (threads > uint64_t(max_threads_for_regs(k.num_regs))) return CUDA_ERROR_LAUNCH_OUT_OF_RESOURCES;
  if (shared_bytes > uint64_t(f->max_dynamic_shared.load())) return CUDA_ERROR_INVALID_VALUE;
  if (uint64_t(shared_bytes) + k.static_shared_bytes > uint64_t(kSharedPerBlockOptin)) return CUDA_ERROR_INVALID_VALUE;
  if (cooperative) {
    int per_sm = blocks_per_sm(k, int(threads), shared_bytes);
    if (grid.count() > uint64_t(per_sm) * uint64_t(kSmCount)) return CUDA_ERROR_COOPERATIVE_LAUNCH_TOO_LARGE;
  }
  SIM_CHECK(pack_params(k, kernelParams, extra, out.params));
  out.fn = f;
  out.grid = grid;
  out.block = block;
  out.shared_bytes = shared_bytes;
  out.cooperative = cooperative;
  return CUDA_SUCCESS;
}

void run_kernel(KernelWork& w, Stream& s) {
  Context& c = *s.ctx;
  auto snap = memmap().snapshot(c.dev->ordinal, c.peer_mask.load(std::memory_order_acquire));
  ptx::Launch l;
  l.program = w.fn->module->program.get();
  l.kernel = w.fn->index;
  l.grid = w.grid;
  l.block = w.block;
  l.dynamic_shared_bytes = w.shared_bytes;
  l.params = w.params.data();
  l.cooperative = w.cooperative;
  l.memory.begin = snap->begin.data();
  l.memory.end = snap->end.data();
  l.memory.count = snap->begin.size();
  l.sm_count = h100::kSmCount;
  l.device_ordinal = c.dev->ordinal;
  g_kernels_running.fetch_add(1, std::memory_order_acq_rel);
  if (g_shutting_down.load(std::memory_order_acquire)) {
    g_kernels_running.fetch_sub(1, std::memory_order_acq_rel);
    return;
  }
  ptx::Outcome o = l.program->run(l);
  g_kernels_running.fetch_sub(1, std::memory_order_acq_rel);
  if (o.fault != ptx::Fault::None) {
    CUresult rc = fault_result(o.fault);
    debug_log("kernel %s faulted (%d) at 0x%llx: %s", w.fn->info->name.c_str(), int(rc),
              static_cast<unsigned long long>(o.address), o.detail.c_str());
    c.set_sticky(rc);
  }
}

namespace {

CUresult launch(CUfunction f, const ptx::Dim3& grid, const ptx::Dim3& block, unsigned shared, CUstream h,
                void** params, void** extra, bool coop, bool ptds, std::vector<std::shared_ptr<Event>>* after = nullptr) {
  std::shared_ptr<Stream> s;
  SIM_CHECK(resolve_stream(h, ptds, s));
  if (!f) return CUDA_ERROR_INVALID_HANDLE;
  std::shared_ptr<Function> fn;
  SIM_CHECK(resolve_function(f, s->ctx.get(), fn));
  KernelWork w;
  SIM_CHECK(prepare_launch(fn, grid, block, shared, coop, params, extra, w));
  SIM_CHECK(submit(*s, std::move(w)));
  if (after)
    for (auto& e : *after) e->record(*s);
  return CUDA_SUCCESS;
}

CUresult launch_ex(const CUlaunchConfig* cfg, CUfunction f, void** params, void** extra, bool ptds) {
  if (!cfg) return CUDA_ERROR_INVALID_VALUE;
  if (cfg->numAttrs && !cfg->attrs) return CUDA_ERROR_INVALID_VALUE;
  bool coop = false;
  std::vector<std::shared_ptr<Event>> events;
  for (unsigned i = 0; i < cfg->numAttrs; ++i) {
    const CUlaunchAttribute& a = cfg->attrs[i];
    switch (a.id) {
      case CU_LAUNCH_ATTRIBUTE_IGNORE: break;
      case CU_LAUNCH_ATTRIBUTE_COOPERATIVE: coop = a.value.cooperative != 0; break;
      case CU_LAUNCH_ATTRIBUTE_CLUSTER_DIMENSION:
      case CU_LAUNCH_ATTRIBUTE_PREFERRED_CLUSTER_DIMENSION: {
        auto& d = a.value.clusterDim;
        if (d.x == 0 || d.y == 0 || d.z == 0) return CUDA_ERROR_INVALID_VALUE;
        // Thread-block clusters are not simulated: only the trivial cluster runs.
        if (d.x != 1 || d.y != 1 || d.z != 1) return CUDA_ERROR_NOT_SUPPORTED;
        break;
      }
      case CU_LAUNCH_ATTRIBUTE_PRIORITY:
      case CU_LAUNCH_ATTRIBUTE_ACCESS_POLICY_WINDOW:
      case CU_LAUNCH_ATTRIBUTE_SYNCHRONIZATION_POLICY:
      case CU_LAUNCH_ATTRIBUTE_CLUSTER_SCHEDULING_POLICY_PREFERENCE:
      case CU_LAUNCH_ATTRIBUTE_MEM_SYNC_DOMAIN:
      case CU_LAUNCH_ATTRIBUTE_MEM_SYNC_DOMAIN_MAP:
      case CU_LAUNCH_ATTRIBUTE_PREFERRED_SHARED_MEMORY_CARVEOUT:
      case CU_LAUNCH_ATTRIBUTE_NVLINK_UTIL_CENTRIC_SCHEDULING:
      // Kernels of a stream never overlap here, which programmatic serialisation permits.
      case CU_LAUNCH_ATTRIBUTE_PROGRAMMATIC_STREAM_SERIALIZATION: break;
      case CU_LAUNCH_ATTRIBUTE_PROGRAMMATIC_EVENT:
      case CU_LAUNCH_ATTRIBUTE_LAUNCH_COMPLETION_EVENT: {
        // Triggered no later than the kernel's completion: recording at completion is a valid trigger.
        CUevent ev = a.id == CU_LAUNCH_ATTRIBUTE_PROGRAMMATIC_EVENT ? a.value.programmaticEvent.event
                                                                     : a.value.launchCompletionEvent.event;
        std::shared_ptr<Event> e;
        SIM_CHECK(lookup_event(ev, e));
        events.push_back(std::move(e));
        break;
      }
      case CU_LAUNCH_ATTRIBUTE_DEVICE_UPDATABLE_KERNEL_NODE: return CUDA_ERROR_NOT_SUPPORTED;
      default: return CUDA_ERROR_INVALID_VALUE;
    }
  }
  ptx::Dim3 grid{cfg->gridDimX, cfg->gridDimY, cfg->gridDimZ};
  ptx::Dim3 block{cfg->blockDimX, cfg->blockDimY, cfg->blockDimZ};
  return launch(f, grid, block, cfg->sharedMemBytes, cfg->hStream, params, extra, coop, ptds, &events);
}

}  // namespace

}  // namespace simgpu

using namespace simgpu;

extern "C" {

SIM_EXPORT CUresult CUDAAPI cuLaunchKernel(CUfunction f, unsigned int gridDimX, unsigned int gridDimY,
                                           unsigned int gridDimZ, unsigned int blockDimX, unsigned int blockDimY,
                                           unsigned int blockDimZ, unsigned int sharedMemBytes, CUstream hStream,
                                           void** kernelParams, void** extra) {
  SIM_TRY return launch(f, {gridDimX, gridDimY, gridDimZ}, {blockDimX, blockDimY, blockDimZ}, sharedMemBytes,
                        hStream, kernelParams, extra, false, false);
  SIM_END
}

SIM_EXPORT CUresult CUDAAPI cuLaunchKernel_ptsz(CUfunction f, unsigned int gridDimX, unsigned int gridDimY,
                                                unsigned int gridDimZ, unsigned int blockDimX, unsigned int blockDimY,
                                                unsigned int blockDimZ, unsigned int sharedMemBytes, CUstream hStream,
                                                void** kernelParams, void** extra) {
  SIM_TRY return launch(f, {gridDimX, gridDimY, gridDimZ}, {blockDimX, blockDimY, blockDimZ}, sharedMemBytes,
                        hStream, kernelParams, extra, false, true);
  SIM_END
}

SIM_EXPORT CUresult CUDAAPI cuLaunchCooperativeKernel(CUfunction f, unsigned int gridDimX, unsigned int gridDimY,
                                                      unsigned int gridDimZ, unsigned int blockDimX,
                                                      unsigned int blockDimY, unsigned int blockDimZ,
                                                      unsigned int sharedMemBytes, CUstream hStream,
                                                      void** kernelParams) {
  SIM_TRY return launch(f, {gridDimX, gridDimY, gridDimZ}, {blockDimX, blockDimY, blockDimZ}, sharedMemBytes,
                        hStream, kernelParams, nullptr, true, false);
  SIM_END
}

SIM_EXPORT CUresult CUDAAPI cuLaunchCooperativeKernel_ptsz(CUfunction f, unsigned int gridDimX, unsigned int gridDimY,
                                                           unsigned int gridDimZ, unsigned int blockDimX,
                                                           unsigned int blockDimY, unsigned int blockDimZ,
                                                           unsigned int sharedMemBytes, CUstream hStream,
                                                           void** kernelParams) {
  SIM_TRY return launch(f, {gridDimX, gridDimY, gridDimZ}, {blockDimX, blockDimY, blockDimZ}, sharedMemBytes,
                        hStream, kernelParams, nullptr, true, true);
  SIM_END
}

SIM_EXPORT CUresult CUDAAPI cuLaunchKernelEx(const CUlaunchConfig* config, CUfunction f, void** kernelParams,
                                             void** extra) {
  SIM_TRY return launch_ex(config, f, kernelParams, extra, false);
  SIM_END
}

SIM_EXPORT CUresult CUDAAPI cuLaunchKernelEx_ptsz(const CUlaunchConfig* config, CUfunction f, void** kernelParams,
                                                  void** extra) {
  SIM_TRY return launch_ex(config, f, kernelParams, extra, true);
  SIM_END
}

}  // extern "C"
