// cuFunc*: attributes, cache configuration, names and parameter layout.
#include "launch.h"
#include "module.h"

namespace simgpu {

int max_threads_for_regs(unsigned regs) {
  if (regs == 0) return h100::kMaxThreadsPerBlock;
  int per_warp = int(align_up(uint64_t(regs) * h100::kWarpSize, h100::kRegAllocUnit));
  int warps = h100::kRegsPerBlock / per_warp;
  return std::min(h100::kMaxThreadsPerBlock, warps * h100::kWarpSize);
}

CUresult func_get_attribute(const Function& f, int attr, int& v) {
  const auto& k = *f.info;
  switch (attr) {
    case CU_FUNC_ATTRIBUTE_MAX_THREADS_PER_BLOCK:
      v = std::min<int>(int(k.max_threads_per_block ? k.max_threads_per_block : 1024), max_threads_for_regs(k.num_regs));
      break;
    case CU_FUNC_ATTRIBUTE_SHARED_SIZE_BYTES: v = int(k.static_shared_bytes); break;
    case CU_FUNC_ATTRIBUTE_CONST_SIZE_BYTES: {
      uint64_t total = 0;
      for (auto& g : f.module->program->globals())
        if (g.space == ptx::Space::Const) total += g.size;
      v = int(total);
      break;
    }
    case CU_FUNC_ATTRIBUTE_LOCAL_SIZE_BYTES: v = int(k.local_bytes); break;
    case CU_FUNC_ATTRIBUTE_NUM_REGS: v = int(k.num_regs); break;
    case CU_FUNC_ATTRIBUTE_PTX_VERSION: v = h100::kCcMajor * 10 + h100::kCcMinor; break;
    case CU_FUNC_ATTRIBUTE_BINARY_VERSION: v = h100::kCcMajor * 10 + h100::kCcMinor; break;
    case CU_FUNC_ATTRIBUTE_CACHE_MODE_CA: v = 0; break;
    case CU_FUNC_ATTRIBUTE_MAX_DYNAMIC_SHARED_SIZE_BYTES: v = f.max_dynamic_shared.load(); break;
    case CU_FUNC_ATTRIBUTE_PREFERRED_SHARED_MEMORY_CARVEOUT: v = f.carveout.load(); break;
    case CU_FUNC_ATTRIBUTE_CLUSTER_SIZE_MUST_BE_SET: v = 0; break;
    case CU_FUNC_ATTRIBUTE_REQUIRED_CLUSTER_WIDTH: v = f.cluster_x.load(); break;
    case CU_FUNC_ATTRIBUTE_REQUIRED_CLUSTER_HEIGHT: v = f.cluster_y.load(); break;
    case CU_FUNC_ATTRIBUTE_REQUIRED_CLUSTER_DEPTH: v = f.cluster_z.load(); break;
    case CU_FUNC_ATTRIBUTE_NON_PORTABLE_CLUSTER_SIZE_ALLOWED: v = f.non_portable_cluster.load(); break;
    case CU_FUNC_ATTRIBUTE_CLUSTER_SCHEDULING_POLICY_PREFERENCE: v = f.cluster_policy.load(); break;
    default: return CUDA_ERROR_INVALID_VALUE;
  }
  return CUDA_SUCCESS;
}

CUresult func_set_attribute(Function& f, int attr, int value) {
  const auto& k = *f.info;
  switch (attr) {
    case CU_FUNC_ATTRIBUTE_MAX_DYNAMIC_SHARED_SIZE_BYTES:
      if (value < 0 || uint64_t(value) + k.static_shared_bytes > uint64_t(h100::kSharedPerBlockOptin))
        return CUDA_ERROR_INVALID_VALUE;
      f.max_dynamic_shared.store(value);
      return CUDA_SUCCESS;
    case CU_FUNC_ATTRIBUTE_PREFERRED_SHARED_MEMORY_CARVEOUT:
      if (value < -1 || value > 100) return CUDA_ERROR_INVALID_VALUE;
      f.carveout.store(value);
      return CUDA_SUCCESS;
    case CU_FUNC_ATTRIBUTE_REQUIRED_CLUSTER_WIDTH:
    case CU_FUNC_ATTRIBUTE_REQUIRED_CLUSTER_HEIGHT:
    case CU_FUNC_ATTRIBUTE_REQUIRED_CLUSTER_DEPTH:
      // Clusters are not simulated (CU_DEVICE_ATTRIBUTE_CLUSTER_LAUNCH is 0); a 1-wide cluster is no cluster.
      if (value < 0) return CUDA_ERROR_INVALID_VALUE;
      if (value > 1) return CUDA_ERROR_NOT_SUPPORTED;
      (attr == CU_FUNC_ATTRIBUTE_REQUIRED_CLUSTER_WIDTH    ? f.cluster_x
       : attr == CU_FUNC_ATTRIBUTE_REQUIRED_CLUSTER_HEIGHT ? f.cluster_y
                                                           : f.cluster_z)
          .store(value);
      return CUDA_SUCCESS;
    case CU_FUNC_ATTRIBUTE_NON_PORTABLE_CLUSTER_SIZE_ALLOWED:
      if (value != 0 && value != 1) return CUDA_ERROR_INVALID_VALUE;
      f.non_portable_cluster.store(value);
      return CUDA_SUCCESS;
    case CU_FUNC_ATTRIBUTE_CLUSTER_SCHEDULING_POLICY_PREFERENCE:
      if (value < CU_CLUSTER_SCHEDULING_POLICY_DEFAULT || value > CU_CLUSTER_SCHEDULING_POLICY_LOAD_BALANCING)
        return CUDA_ERROR_INVALID_VALUE;
      f.cluster_policy.store(value);
      return CUDA_SUCCESS;
    default: return CUDA_ERROR_INVALID_VALUE;  // read-only or unknown
  }
}

namespace {

CUresult lookup(CUfunction h, std::shared_ptr<Function>& f) {
  Context* c;
  SIM_CHECK(current_context(&c));
  return resolve_function(h, c, f);
}

}  // namespace

}  // namespace simgpu

using namespace simgpu;

extern "C" {

SIM_EXPORT CUresult CUDAAPI cuFuncGetAttribute(int* pi, CUfunction_attribute attrib, CUfunction hfunc) {
  SIM_TRY
  std::shared_ptr<Function> f;
  SIM_CHECK(lookup(hfunc, f));
  if (!pi) return CUDA_ERROR_INVALID_VALUE;
  int v;
  SIM_CHECK(func_get_attribute(*f, attrib, v));
  *pi = v;
  return CUDA_SUCCESS;
  SIM_END
}

SIM_EXPORT CUresult CUDAAPI cuFuncSetAttribute(CUfunction hfunc, CUfunction_attribute attrib, int value) {
  SIM_TRY
  std::shared_ptr<Function> f;
  SIM_CHECK(lookup(hfunc, f));
  return func_set_attribute(*f, attrib, value);
  SIM_END
}

SIM_EXPORT CUresult CUDAAPI cuFuncSetCacheConfig(CUfunction hfunc, CUfunc_cache config) {
  SIM_TRY
  std::shared_ptr<Function> f;
  SIM_CHECK(lookup(hfunc, f));
  if (unsigned(config) > CU_FUNC_CACHE_PREFER_EQUAL) return CUDA_ERROR_INVALID_VALUE;
  f->cache_config.store(config);
  return CUDA_SUCCESS;
  SIM_END
}

SIM_EXPORT CUresult CUDAAPI cuFuncSetSharedMemConfig(CUfunction hfunc, CUsharedconfig config) {
  SIM_TRY
  std::shared_ptr<Function> f;
  SIM_CHECK(lookup(hfunc, f));
  if (unsigned(config) > CU_SHARED_MEM_CONFIG_EIGHT_BYTE_BANK_SIZE) return CUDA_ERROR_INVALID_VALUE;
  return CUDA_SUCCESS;
  SIM_END
}

SIM_EXPORT CUresult CUDAAPI cuFuncGetName(const char** name, CUfunction hfunc) {
  SIM_TRY
  std::shared_ptr<Function> f;
  SIM_CHECK(lookup(hfunc, f));
  if (!name) return CUDA_ERROR_INVALID_VALUE;
  *name = f->info->name.c_str();
  return CUDA_SUCCESS;
  SIM_END
}

SIM_EXPORT CUresult CUDAAPI cuFuncGetParamInfo(CUfunction func, size_t paramIndex, size_t* paramOffset,
                                               size_t* paramSize) {
  SIM_TRY
  std::shared_ptr<Function> f;
  SIM_CHECK(lookup(func, f));
  if (paramIndex >= f->info->params.size()) return CUDA_ERROR_INVALID_VALUE;
  if (paramOffset) *paramOffset = f->info->params[paramIndex].offset;
  if (paramSize) *paramSize = f->info->params[paramIndex].size;
  return CUDA_SUCCESS;
  SIM_END
}

SIM_EXPORT CUresult CUDAAPI cuFuncGetModule(CUmodule* hmod, CUfunction hfunc) {
  SIM_TRY
  std::shared_ptr<Function> f;
  SIM_CHECK(lookup(hfunc, f));
  if (!hmod) return CUDA_ERROR_INVALID_VALUE;
  *hmod = f->module->handle();
  return CUDA_SUCCESS;
  SIM_END
}

SIM_EXPORT CUresult CUDAAPI cuFuncIsLoaded(CUfunctionLoadingState* state, CUfunction function) {
  SIM_TRY
  std::shared_ptr<Function> f;
  SIM_CHECK(lookup(function, f));
  if (!state) return CUDA_ERROR_INVALID_VALUE;
  *state = CU_FUNCTION_LOADING_STATE_LOADED;  // modules load eagerly
  return CUDA_SUCCESS;
  SIM_END
}

SIM_EXPORT CUresult CUDAAPI cuFuncLoad(CUfunction function) {
  SIM_TRY
  std::shared_ptr<Function> f;
  return lookup(function, f);
  SIM_END
}

}  // extern "C"
