// cuLibrary* and cuKernel*: context-independent code, loaded into each
// context on first use (what CUDA calls lazy loading).
#include "fatbin.h"
#include "module.h"

#include <algorithm>

#include <chrono>

namespace simgpu {

CUresult Library::module_for(Context& c, std::shared_ptr<Module>& out) {
  std::lock_guard<std::mutex> lock(mu);
  uint64_t id = c.id.load();
  for (auto& p : loaded) {
    if (p.ctx.get() == &c && p.ctx_id == id && registry().contains(p.module.get(), Kind::Module)) {
      out = p.module;
      return CUDA_SUCCESS;
    }
  }
  std::string log;
  std::shared_ptr<Module> m;
  SIM_CHECK(load_module(c, ptx, log, m));
  m->library = this;
  publish_module(c, m);
  loaded.erase(std::remove_if(loaded.begin(), loaded.end(), [&](const PerContext& p) { return p.ctx.get() == &c; }),
               loaded.end());
  loaded.push_back({c.shared_from_this(), id, m});
  out = m;
  return CUDA_SUCCESS;
}

CUresult resolve_function(CUfunction f, Context* c, std::shared_ptr<Function>& out) {
  out = registry().get_fast<Function>(f, Kind::Function);
  if (out) return out->module->ctx.get() == c ? CUDA_SUCCESS : CUDA_ERROR_INVALID_HANDLE;
  auto k = registry().get<Kernel>(f, Kind::Kernel);
  if (!k) return CUDA_ERROR_INVALID_HANDLE;
  std::shared_ptr<Module> m;
  SIM_CHECK(k->library->module_for(*c, m));
  out = m->function_ref(m->functions[size_t(k->index)].get());
  return CUDA_SUCCESS;
}

namespace {

CUresult load_library(CUlibrary* out, const void* code, size_t size, CUjit_option* jo, void** jv, unsigned nj,
                      CUlibraryOption* lo, void** lv, unsigned nl) {
  SIM_CHECK(check_init());
  if (!out || !code) return CUDA_ERROR_INVALID_VALUE;
  if (nl && (!lo || !lv)) return CUDA_ERROR_INVALID_VALUE;
  for (unsigned i = 0; i < nl; ++i) {
    if (lo[i] == CU_LIBRARY_HOST_UNIVERSAL_FUNCTION_AND_DATA_TABLE) return CUDA_ERROR_NOT_SUPPORTED;
    if (lo[i] >= CU_LIBRARY_NUM_OPTIONS) return CUDA_ERROR_INVALID_VALUE;
  }
  JitOptions jit;
  SIM_CHECK(jit.parse(nj, jo, jv));
  auto t0 = std::chrono::steady_clock::now();
  auto lib = std::make_shared<Library>();
  std::string log;
  CUresult rc = extract_ptx(code, size, lib->ptx, log);
  if (rc == CUDA_SUCCESS) {
    lib->probe = ptx::Program::load(lib->ptx, log);
    if (!lib->probe) rc = CUDA_ERROR_INVALID_PTX;
  }
  float ms = std::chrono::duration<float, std::milli>(std::chrono::steady_clock::now() - t0).count();
  if (nj) jit.finish(jv, rc == CUDA_SUCCESS ? "" : log, "", ms);
  if (rc != CUDA_SUCCESS) return rc;
  for (size_t i = 0; i < lib->probe->kernels().size(); ++i) {
    auto k = std::make_unique<Kernel>();
    k->library = lib.get();
    k->index = int(i);
    k->name = lib->probe->kernels()[i].name;
    lib->kernels.push_back(std::move(k));
  }
  for (auto& k : lib->kernels) registry().add(k.get(), std::shared_ptr<Kernel>(lib, k.get()));
  registry().add(lib.get(), lib);
  *out = lib->handle();
  return CUDA_SUCCESS;
}

CUresult lookup_library(CUlibrary h, std::shared_ptr<Library>& out) {
  SIM_CHECK(check_init());
  out = registry().get<Library>(h, Kind::Library);
  return out ? CUDA_SUCCESS : CUDA_ERROR_INVALID_HANDLE;
}

CUresult lookup_kernel(CUkernel h, std::shared_ptr<Kernel>& out) {
  SIM_CHECK(check_init());
  out = registry().get<Kernel>(h, Kind::Kernel);
  return out ? CUDA_SUCCESS : CUDA_ERROR_INVALID_HANDLE;
}

// The kernel's function in the current context.
CUresult kernel_function(CUkernel h, std::shared_ptr<Function>& f) {
  std::shared_ptr<Kernel> k;
  SIM_CHECK(lookup_kernel(h, k));
  Context* c;
  SIM_CHECK(current_context(&c));
  std::shared_ptr<Module> m;
  SIM_CHECK(k->library->module_for(*c, m));
  f = m->function_ref(m->functions[size_t(k->index)].get());
  return CUDA_SUCCESS;
}

// cuKernelSetAttribute / GetAttribute name a device: the kernel's function in
// that device's primary context (retained by the application, as the
// runtime does), else in the current context when it is on that device.
CUresult kernel_function_on(CUkernel h, CUdevice dev, std::shared_ptr<Function>& f) {
  std::shared_ptr<Kernel> k;
  SIM_CHECK(lookup_kernel(h, k));
  Device* d;
  SIM_CHECK(lookup_device(dev, &d));
  Context* c = current_context_raw();
  std::shared_ptr<Context> target;
  if (c && c->dev == d && c->alive.load())
    target = c->shared_from_this();
  else if (d->primary && d->primary->alive.load())
    target = d->primary;
  else
    return CUDA_ERROR_INVALID_CONTEXT;
  std::shared_ptr<Module> m;
  SIM_CHECK(k->library->module_for(*target, m));
  f = m->function_ref(m->functions[size_t(k->index)].get());
  return CUDA_SUCCESS;
}

}  // namespace

}  // namespace simgpu

using namespace simgpu;

extern "C" {

SIM_EXPORT CUresult CUDAAPI cuLibraryLoadData(CUlibrary* library, const void* code, CUjit_option* jitOptions,
                                              void** jitOptionsValues, unsigned int numJitOptions,
                                              CUlibraryOption* libraryOptions, void** libraryOptionValues,
                                              unsigned int numLibraryOptions) {
  SIM_TRY return load_library(library, code, 0, jitOptions, jitOptionsValues, numJitOptions, libraryOptions,
                              libraryOptionValues, numLibraryOptions);
  SIM_END
}

SIM_EXPORT CUresult CUDAAPI cuLibraryLoadFromFile(CUlibrary* library, const char* fileName, CUjit_option* jitOptions,
                                                  void** jitOptionsValues, unsigned int numJitOptions,
                                                  CUlibraryOption* libraryOptions, void** libraryOptionValues,
                                                  unsigned int numLibraryOptions) {
  SIM_TRY
  SIM_CHECK(check_init());
  if (!library || !fileName) return CUDA_ERROR_INVALID_VALUE;
  std::string data;
  if (!read_file(fileName, data)) return CUDA_ERROR_FILE_NOT_FOUND;
  if (data.empty()) return CUDA_ERROR_INVALID_IMAGE;
  return load_library(library, data.data(), data.size(), jitOptions, jitOptionsValues, numJitOptions,
                      libraryOptions, libraryOptionValues, numLibraryOptions);
  SIM_END
}

SIM_EXPORT CUresult CUDAAPI cuLibraryUnload(CUlibrary library) {
  SIM_TRY
  SIM_CHECK(check_init());
  auto obj = registry().remove(library, Kind::Library);
  if (!obj) return CUDA_ERROR_INVALID_HANDLE;
  auto& lib = static_cast<Library&>(*obj);
  for (auto& k : lib.kernels) registry().remove(k.get(), Kind::Kernel);
  std::vector<Library::PerContext> loaded;
  {
    std::lock_guard<std::mutex> lock(lib.mu);
    loaded.swap(lib.loaded);
  }
  for (auto& p : loaded) {
    p.ctx->disown(p.module.get());
    module_teardown(p.module.get());
  }
  return CUDA_SUCCESS;
  SIM_END
}

SIM_EXPORT CUresult CUDAAPI cuLibraryGetKernel(CUkernel* pKernel, CUlibrary library, const char* name) {
  SIM_TRY
  std::shared_ptr<Library> lib;
  SIM_CHECK(lookup_library(library, lib));
  if (!pKernel || !name) return CUDA_ERROR_INVALID_VALUE;
  int i = lib->probe->find_kernel(name);
  if (i < 0) return CUDA_ERROR_NOT_FOUND;
  *pKernel = lib->kernels[size_t(i)]->handle();
  return CUDA_SUCCESS;
  SIM_END
}

SIM_EXPORT CUresult CUDAAPI cuLibraryGetKernelCount(unsigned int* count, CUlibrary library) {
  SIM_TRY
  std::shared_ptr<Library> lib;
  SIM_CHECK(lookup_library(library, lib));
  if (!count) return CUDA_ERROR_INVALID_VALUE;
  *count = unsigned(lib->kernels.size());
  return CUDA_SUCCESS;
  SIM_END
}

SIM_EXPORT CUresult CUDAAPI cuLibraryEnumerateKernels(CUkernel* kernels, unsigned int numKernels, CUlibrary library) {
  SIM_TRY
  std::shared_ptr<Library> lib;
  SIM_CHECK(lookup_library(library, lib));
  if (!kernels && numKernels) return CUDA_ERROR_INVALID_VALUE;
  size_t n = std::min<size_t>(numKernels, lib->kernels.size());
  for (size_t i = 0; i < n; ++i) kernels[i] = lib->kernels[i]->handle();
  return CUDA_SUCCESS;
  SIM_END
}

SIM_EXPORT CUresult CUDAAPI cuLibraryGetModule(CUmodule* pMod, CUlibrary library) {
  SIM_TRY
  std::shared_ptr<Library> lib;
  SIM_CHECK(lookup_library(library, lib));
  if (!pMod) return CUDA_ERROR_INVALID_VALUE;
  Context* c;
  SIM_CHECK(current_context(&c));
  std::shared_ptr<Module> m;
  SIM_CHECK(lib->module_for(*c, m));
  *pMod = m->handle();
  return CUDA_SUCCESS;
  SIM_END
}

SIM_EXPORT CUresult CUDAAPI cuLibraryGetGlobal(CUdeviceptr* dptr, size_t* bytes, CUlibrary library,
                                               const char* name) {
  SIM_TRY
  std::shared_ptr<Library> lib;
  SIM_CHECK(lookup_library(library, lib));
  if (!name) return CUDA_ERROR_INVALID_VALUE;
  Context* c;
  SIM_CHECK(current_context(&c));
  std::shared_ptr<Module> m;
  SIM_CHECK(lib->module_for(*c, m));
  auto* g = m->find_global(name);
  if (!g) return CUDA_ERROR_NOT_FOUND;
  if (dptr) *dptr = g->addr;
  if (bytes) *bytes = g->size;
  return CUDA_SUCCESS;
  SIM_END
}

SIM_EXPORT CUresult CUDAAPI cuLibraryGetManaged(CUdeviceptr* dptr, size_t* bytes, CUlibrary library,
                                                const char* name) {
  SIM_TRY
  std::shared_ptr<Library> lib;
  SIM_CHECK(lookup_library(library, lib));
  if (!name) return CUDA_ERROR_INVALID_VALUE;
  // The engine reports no __managed__ variables: none can be found.
  return CUDA_ERROR_NOT_FOUND;
  SIM_END
}

SIM_EXPORT CUresult CUDAAPI cuKernelGetFunction(CUfunction* pFunc, CUkernel kernel) {
  SIM_TRY
  if (!pFunc) return CUDA_ERROR_INVALID_VALUE;
  std::shared_ptr<Function> f;
  SIM_CHECK(kernel_function(kernel, f));
  *pFunc = f->handle();
  return CUDA_SUCCESS;
  SIM_END
}

SIM_EXPORT CUresult CUDAAPI cuKernelGetLibrary(CUlibrary* pLib, CUkernel kernel) {
  SIM_TRY
  std::shared_ptr<Kernel> k;
  SIM_CHECK(lookup_kernel(kernel, k));
  if (!pLib) return CUDA_ERROR_INVALID_VALUE;
  *pLib = k->library->handle();
  return CUDA_SUCCESS;
  SIM_END
}

SIM_EXPORT CUresult CUDAAPI cuKernelGetName(const char** name, CUkernel hfunc) {
  SIM_TRY
  std::shared_ptr<Kernel> k;
  SIM_CHECK(lookup_kernel(hfunc, k));
  if (!name) return CUDA_ERROR_INVALID_VALUE;
  *name = k->name.c_str();
  return CUDA_SUCCESS;
  SIM_END
}

SIM_EXPORT CUresult CUDAAPI cuKernelGetParamInfo(CUkernel kernel, size_t paramIndex, size_t* paramOffset,
                                                 size_t* paramSize) {
  SIM_TRY
  std::shared_ptr<Kernel> k;
  SIM_CHECK(lookup_kernel(kernel, k));
  const auto& info = k->library->probe->kernels()[size_t(k->index)];
  if (paramIndex >= info.params.size()) return CUDA_ERROR_INVALID_VALUE;
  if (paramOffset) *paramOffset = info.params[paramIndex].offset;
  if (paramSize) *paramSize = info.params[paramIndex].size;
  return CUDA_SUCCESS;
  SIM_END
}

SIM_EXPORT CUresult CUDAAPI cuKernelGetAttribute(int* pi, CUfunction_attribute attrib, CUkernel kernel, CUdevice dev) {
  SIM_TRY
  if (!pi) return CUDA_ERROR_INVALID_VALUE;
  std::shared_ptr<Function> f;
  SIM_CHECK(kernel_function_on(kernel, dev, f));
  int v;
  SIM_CHECK(func_get_attribute(*f, attrib, v));
  *pi = v;
  return CUDA_SUCCESS;
  SIM_END
}

SIM_EXPORT CUresult CUDAAPI cuKernelSetAttribute(CUfunction_attribute attrib, int val, CUkernel kernel, CUdevice dev) {
  SIM_TRY
  std::shared_ptr<Function> f;
  SIM_CHECK(kernel_function_on(kernel, dev, f));
  return func_set_attribute(*f, attrib, val);
  SIM_END
}

SIM_EXPORT CUresult CUDAAPI cuKernelSetCacheConfig(CUkernel kernel, CUfunc_cache config, CUdevice dev) {
  SIM_TRY
  std::shared_ptr<Function> f;
  SIM_CHECK(kernel_function_on(kernel, dev, f));
  if (unsigned(config) > CU_FUNC_CACHE_PREFER_EQUAL) return CUDA_ERROR_INVALID_VALUE;
  f->cache_config.store(config);
  return CUDA_SUCCESS;
  SIM_END
}

}  // extern "C"
