// cuModule*: loading PTX / fatbins into a context, functions and globals.
#include "module.h"

#include "fatbin.h"
#include "memory.h"

#include <chrono>
#include <fstream>
#include <sstream>

namespace simgpu {

Module::~Module() {
  // Globals are device memory of the module; they go with its last reference
  // (which a launch still in flight may hold).
  for (auto& g : globals) {
    auto r = memmap().erase(g.addr);
    if (r) release_device(*r);
  }
}

Function* Module::find_function(const char* name) {
  int i = program->find_kernel(name);
  return i < 0 ? nullptr : functions[size_t(i)].get();
}

const Module::Global* Module::find_global(const char* name) const {
  for (auto& g : globals)
    if (g.name == name) return &g;
  return nullptr;
}

CUresult load_module(Context& c, const std::string& ptx_text, std::string& log, std::shared_ptr<Module>& out) {
  std::string err;
  auto prog = ptx::Program::load(ptx_text, err);
  if (!prog) {
    log = err.empty() ? "PTX could not be loaded" : err;
    return CUDA_ERROR_INVALID_PTX;
  }
  auto m = std::make_shared<Module>();
  m->ctx = c.shared_from_this();
  m->ctx_id = c.id.load();
  const auto& gv = prog->globals();
  for (size_t i = 0; i < gv.size(); ++i) {
    const auto& g = gv[i];
    if (g.is_extern) {
      log = "unresolved extern variable '" + g.name + "' (no linker in the simulated driver)";
      return CUDA_ERROR_INVALID_PTX;  // ~m frees the globals made so far
    }
    MemRange proto;
    proto.internal = true;
    uint64_t addr;
    uint64_t size = g.size ? g.size : 1;
    SIM_CHECK(alloc_device(c, size, proto, &addr));
    m->globals.push_back({g.name, addr, g.size});
    auto* dst = reinterpret_cast<uint8_t*>(addr);
    size_t n = std::min<size_t>(g.init.size(), size);
    if (n) std::memcpy(dst, g.init.data(), n);
    std::memset(dst + n, 0, size - n);
    prog->bind_global(int(i), addr);
  }
  const auto& ks = prog->kernels();
  for (size_t i = 0; i < ks.size(); ++i) {
    auto f = std::make_unique<Function>();
    f->module = m.get();
    f->index = int(i);
    f->info = &ks[i];
    int static_shared = int(ks[i].static_shared_bytes);
    f->max_dynamic_shared.store(std::max(0, h100::kSharedPerBlockDefault - static_shared));
    m->functions.push_back(std::move(f));
  }
  m->program = std::move(prog);
  out = std::move(m);
  return CUDA_SUCCESS;
}

void publish_module(Context& c, const std::shared_ptr<Module>& m) {
  for (auto& f : m->functions) registry().add(f.get(), m->function_ref(f.get()));
  registry().add(m.get(), m);
  c.own(m.get(), Kind::Module);
}

void module_teardown(const void* h) {
  auto obj = registry().remove(h, Kind::Module);
  if (!obj) return;
  auto& m = static_cast<Module&>(*obj);
  for (auto& f : m.functions) registry().remove(f.get(), Kind::Function);
}

CUresult JitOptions::parse(unsigned n, CUjit_option* options, void** values) {
  if (n && (!options || !values)) return CUDA_ERROR_INVALID_VALUE;
  for (unsigned i = 0; i < n; ++i) {
    switch (options[i]) {
      case CU_JIT_ERROR_LOG_BUFFER:
        error_log = static_cast<char*>(values[i]);
        error_log_index = int(i);
        break;
      case CU_JIT_ERROR_LOG_BUFFER_SIZE_BYTES:
        error_log_size = reinterpret_cast<uintptr_t>(values[i]);
        error_log_index = error_log_index < 0 ? -2 - int(i) : error_log_index;
        break;
      case CU_JIT_INFO_LOG_BUFFER:
        info_log = static_cast<char*>(values[i]);
        info_log_index = int(i);
        break;
      case CU_JIT_INFO_LOG_BUFFER_SIZE_BYTES: info_log_size = reinterpret_cast<uintptr_t>(values[i]); break;
      case CU_JIT_WALL_TIME: wall_time_index = int(i); break;
      default:
        if (unsigned(options[i]) >= CU_JIT_NUM_OPTIONS) return CUDA_ERROR_INVALID_VALUE;
        break;  // optimisation levels, targets, caching: meaningless for an interpreter
    }
  }
  // Remember where the size options sit: their values are written back.
  sizes_.clear();
  for (unsigned i = 0; i < n; ++i) sizes_.push_back(options[i]);
  return CUDA_SUCCESS;
}

void JitOptions::finish(void** values, const std::string& error, const std::string& info, float ms) {
  auto fill = [](char* buf, size_t cap, const std::string& text) -> size_t {
    if (!buf || cap == 0) return 0;
    size_t n = std::min(cap - 1, text.size());
    std::memcpy(buf, text.data(), n);
    buf[n] = 0;
    return n + (n ? 1 : 0);
  };
  size_t e = fill(error_log, error_log_size, error);
  size_t in = fill(info_log, info_log_size, info);
  for (size_t i = 0; i < sizes_.size(); ++i) {
    if (sizes_[i] == CU_JIT_ERROR_LOG_BUFFER_SIZE_BYTES) values[i] = reinterpret_cast<void*>(uintptr_t(e));
    if (sizes_[i] == CU_JIT_INFO_LOG_BUFFER_SIZE_BYTES) values[i] = reinterpret_cast<void*>(uintptr_t(in));
    if (sizes_[i] == CU_JIT_WALL_TIME) std::memcpy(&values[i], &ms, sizeof ms);
  }
}

namespace {

CUresult lookup_module(CUmodule h, std::shared_ptr<Module>& out) {
  SIM_CHECK(check_init());
  out = registry().get<Module>(h, Kind::Module);
  if (!out) return CUDA_ERROR_INVALID_HANDLE;
  return context_usable(*out->ctx);
}

CUresult load_image(CUmodule* out, const void* image, size_t size, unsigned n, CUjit_option* options, void** values) {
  Context* c;
  SIM_CHECK(current_context(&c));
  if (!out || !image) return CUDA_ERROR_INVALID_VALUE;
  JitOptions jit;
  SIM_CHECK(jit.parse(n, options, values));
  auto t0 = std::chrono::steady_clock::now();
  std::string ptx, log;
  CUresult rc = extract_ptx(image, size, ptx, log);
  std::shared_ptr<Module> m;
  if (rc == CUDA_SUCCESS) rc = load_module(*c, ptx, log, m);
  float ms = std::chrono::duration<float, std::milli>(std::chrono::steady_clock::now() - t0).count();
  if (n) jit.finish(values, rc == CUDA_SUCCESS ? "" : log, "", ms);
  if (rc != CUDA_SUCCESS) {
    debug_log("module load failed (%d): %s", int(rc), log.c_str());
    return rc;
  }
  publish_module(*c, m);
  *out = m->handle();
  return CUDA_SUCCESS;
}

}  // namespace

bool read_file(const char* path, std::string& out) {
  std::ifstream f(path, std::ios::binary);
  if (!f) return false;
  std::ostringstream ss;
  ss << f.rdbuf();
  out = ss.str();
  return true;
}

}  // namespace simgpu

using namespace simgpu;

extern "C" {

SIM_EXPORT CUresult CUDAAPI cuModuleLoad(CUmodule* module, const char* fname) {
  SIM_TRY
  Context* c;
  SIM_CHECK(current_context(&c));
  if (!module || !fname) return CUDA_ERROR_INVALID_VALUE;
  std::string data;
  if (!read_file(fname, data)) return CUDA_ERROR_FILE_NOT_FOUND;
  if (data.empty()) return CUDA_ERROR_INVALID_IMAGE;
  return load_image(module, data.data(), data.size(), 0, nullptr, nullptr);
  SIM_END
}

SIM_EXPORT CUresult CUDAAPI cuModuleLoadData(CUmodule* module, const void* image) {
  SIM_TRY return load_image(module, image, 0, 0, nullptr, nullptr);
  SIM_END
}

SIM_EXPORT CUresult CUDAAPI cuModuleLoadDataEx(CUmodule* module, const void* image, unsigned int numOptions,
                                               CUjit_option* options, void** optionValues) {
  SIM_TRY return load_image(module, image, 0, numOptions, options, optionValues);
  SIM_END
}

SIM_EXPORT CUresult CUDAAPI cuModuleLoadFatBinary(CUmodule* module, const void* fatCubin) {
  SIM_TRY return load_image(module, fatCubin, 0, 0, nullptr, nullptr);
  SIM_END
}

SIM_EXPORT CUresult CUDAAPI cuModuleUnload(CUmodule hmod) {
  SIM_TRY
  SIM_CHECK(check_init());
  auto m = registry().get<Module>(hmod, Kind::Module);
  if (!m) return CUDA_ERROR_INVALID_HANDLE;
  m->ctx->disown(hmod);
  module_teardown(hmod);
  return CUDA_SUCCESS;
  SIM_END
}

SIM_EXPORT CUresult CUDAAPI cuModuleGetFunction(CUfunction* hfunc, CUmodule hmod, const char* name) {
  SIM_TRY
  std::shared_ptr<Module> m;
  SIM_CHECK(lookup_module(hmod, m));
  if (!hfunc || !name) return CUDA_ERROR_INVALID_VALUE;
  Function* f = m->find_function(name);
  if (!f) return CUDA_ERROR_NOT_FOUND;
  *hfunc = f->handle();
  return CUDA_SUCCESS;
  SIM_END
}

SIM_EXPORT CUresult CUDAAPI cuModuleGetGlobal_v2(CUdeviceptr* dptr, size_t* bytes, CUmodule hmod, const char* name) {
  SIM_TRY
  std::shared_ptr<Module> m;
  SIM_CHECK(lookup_module(hmod, m));
  if (!name) return CUDA_ERROR_INVALID_VALUE;
  auto* g = m->find_global(name);
  if (!g) return CUDA_ERROR_NOT_FOUND;
  if (dptr) *dptr = g->addr;
  if (bytes) *bytes = g->size;
  return CUDA_SUCCESS;
  SIM_END
}

SIM_EXPORT CUresult CUDAAPI cuModuleGetFunctionCount(unsigned int* count, CUmodule mod) {
  SIM_TRY
  std::shared_ptr<Module> m;
  SIM_CHECK(lookup_module(mod, m));
  if (!count) return CUDA_ERROR_INVALID_VALUE;
  *count = unsigned(m->functions.size());
  return CUDA_SUCCESS;
  SIM_END
}

SIM_EXPORT CUresult CUDAAPI cuModuleEnumerateFunctions(CUfunction* functions, unsigned int numFunctions,
                                                       CUmodule mod) {
  SIM_TRY
  std::shared_ptr<Module> m;
  SIM_CHECK(lookup_module(mod, m));
  if (!functions && numFunctions) return CUDA_ERROR_INVALID_VALUE;
  size_t n = std::min<size_t>(numFunctions, m->functions.size());
  for (size_t i = 0; i < n; ++i) functions[i] = m->functions[i]->handle();
  return CUDA_SUCCESS;
  SIM_END
}

SIM_EXPORT CUresult CUDAAPI cuModuleGetLoadingMode(CUmoduleLoadingMode* mode) {
  SIM_TRY
  SIM_CHECK(check_init());
  if (!mode) return CUDA_ERROR_INVALID_VALUE;
  *mode = CU_MODULE_EAGER_LOADING;
  return CUDA_SUCCESS;
  SIM_END
}

}  // extern "C"
