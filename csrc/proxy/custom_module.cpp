// Modules, libraries and their functions.  Every image is kept (a restore
// loads it again), and function ids are tracked per module so unloading one
// invalidates its functions.
#include <algorithm>
#include <cstring>
#include <string>
#include <vector>

#include "handler_util.h"
#include "wire/payloads.h"

namespace sing::proxy::custom {

namespace {

struct LoadedImage {
  wire::ImageRequest req{};
  std::vector<wire::JitOption> jit, lib;
  const uint8_t* data = nullptr;
  std::vector<uint8_t> owned;  // the blob, when it came ahead
};

CUresult read_image(Call& c, LoadedImage* img) {
  const uint8_t* p = c.in.take(sizeof(wire::ImageRequest));
  if (!p) return CUDA_ERROR_INVALID_VALUE;
  std::memcpy(&img->req, p, sizeof(img->req));
  if (img->req.num_jit > 64 || img->req.num_lib > 64) return CUDA_ERROR_INVALID_VALUE;
  img->jit.resize(img->req.num_jit);
  img->lib.resize(img->req.num_lib);
  for (auto* v : {&img->jit, &img->lib}) {
    for (auto& o : *v) {
      const uint8_t* q = c.in.take(sizeof(wire::JitOption));
      if (!q) return CUDA_ERROR_INVALID_VALUE;
      std::memcpy(&o, q, sizeof(o));
    }
  }
  if (img->req.from_blob) {
    img->owned.swap(c.worker.blob());
    c.worker.blob().clear();
    if (img->owned.size() != img->req.bytes) return CUDA_ERROR_INVALID_VALUE;
  } else {
    if (img->req.bytes > wire::kMaxRecordBytes) return CUDA_ERROR_INVALID_VALUE;
    const uint8_t* q = c.in.take(uint32_t(img->req.bytes));
    if (!q) return CUDA_ERROR_INVALID_VALUE;
    img->owned.assign(q, q + img->req.bytes);
  }
  if (img->owned.empty()) return CUDA_ERROR_INVALID_VALUE;
  // A driver sizes PTX text by its terminating NUL: an image sent without one
  // (hostile or truncated) must not have the backend read past the buffer.
  // Binary images are sized by their headers; the extra byte is inert.
  img->owned.push_back(0);
  return CUDA_SUCCESS;
}

// JIT options for the backend.  Log buffers are the proxy's own; their text
// goes back in the answer.
struct JitArgs {
  // As the integers the app sent (held_t), passed on as the CUjit_option[]
  // they are in the ABI.
  std::vector<held_t<CUjit_option>> options;
  CUjit_option* option_array() { return reinterpret_cast<CUjit_option*>(options.data()); }
  std::vector<void*> values;
  std::vector<char> info, error;
  int info_index = -1, error_index = -1, info_size_index = -1, error_size_index = -1, wall_index = -1;

  explicit JitArgs(const std::vector<wire::JitOption>& in) {
    size_t info_size = 0, error_size = 0;
    for (auto& o : in) {
      if (o.option == CU_JIT_INFO_LOG_BUFFER_SIZE_BYTES) info_size = std::min<uint64_t>(o.value, 1 << 20);
      if (o.option == CU_JIT_ERROR_LOG_BUFFER_SIZE_BYTES) error_size = std::min<uint64_t>(o.value, 1 << 20);
    }
    info.assign(info_size + 1, 0);
    error.assign(error_size + 1, 0);
    for (auto& o : in) {
      int i = int(options.size());
      options.push_back(o.option);
      switch (o.option) {
        case CU_JIT_INFO_LOG_BUFFER:
          info_index = i;
          values.push_back(info.data());
          break;
        case CU_JIT_ERROR_LOG_BUFFER:
          error_index = i;
          values.push_back(error.data());
          break;
        case CU_JIT_INFO_LOG_BUFFER_SIZE_BYTES:
          info_size_index = i;
          values.push_back(reinterpret_cast<void*>(uintptr_t(info_size)));
          break;
        case CU_JIT_ERROR_LOG_BUFFER_SIZE_BYTES:
          error_size_index = i;
          values.push_back(reinterpret_cast<void*>(uintptr_t(error_size)));
          break;
        case CU_JIT_WALL_TIME:
          wall_index = i;
          values.push_back(nullptr);
          break;
        default:
          values.push_back(reinterpret_cast<void*>(uintptr_t(o.value)));
      }
    }
  }

  // {u32 info bytes, text, u32 error bytes, text, f32 wall time}
  void answer(Call& c) const {
    auto put_log = [&](int index, int size_index, const std::vector<char>& buf) {
      uint32_t n = 0;
      if (index >= 0) n = uint32_t(strnlen(buf.data(), buf.size()));
      if (size_index >= 0) n = std::min<uint32_t>(n, uint32_t(reinterpret_cast<uintptr_t>(values[size_index])));
      c.out.put<uint32_t>(n);
      c.out.put(buf.data(), n);
    };
    put_log(info_index, info_size_index, info);
    put_log(error_index, error_size_index, error);
    float wall = 0;
    if (wall_index >= 0) {
      uint32_t bits = uint32_t(reinterpret_cast<uintptr_t>(values[wall_index]));
      std::memcpy(&wall, &bits, sizeof(wall));
    }
    c.out.put(wall);
  }
};

void remember_image(Call& c, uint64_t vid, LoadedImage& img, bool library) {
  Client::Image rec;
  rec.bytes = std::move(img.owned);
  for (auto& o : img.jit) rec.jit.emplace_back(o.option, o.value);
  for (auto& o : img.lib) rec.lib.emplace_back(o.option, o.value);
  rec.library = library;
  rec.ctx = current_context(c.client);
  std::lock_guard<std::mutex> lock(c.client.mu);
  c.client.images[vid] = std::move(rec);
}

CUresult load_module(Call& c) {
  LoadedImage img;
  CUresult r = read_image(c, &img);
  if (r != CUDA_SUCCESS) return r;
  if (img.owned.empty()) return CUDA_ERROR_INVALID_VALUE;
  JitArgs jit(img.jit);
  CUmodule mod = nullptr;
  r = BACKEND(cuModuleLoadDataEx)(&mod, img.owned.data(), unsigned(jit.options.size()), jit.option_array(),
                                  jit.values.data());
  c.output_on_error = true;
  uint64_t vid = r == CUDA_SUCCESS ? reinterpret_cast<uint64_t>(to_app(c.client, mod)) : 0;
  c.out.put<uint64_t>(vid);
  jit.answer(c);
  if (r == CUDA_SUCCESS) remember_image(c, vid, img, false);
  return r;
}

CUresult load_library(Call& c) {
  LoadedImage img;
  CUresult r = read_image(c, &img);
  if (r != CUDA_SUCCESS) return r;
  if (img.owned.empty()) return CUDA_ERROR_INVALID_VALUE;
  JitArgs jit(img.jit);
  std::vector<held_t<CUlibraryOption>> lib_opts;  // as sent (held_t)
  std::vector<void*> lib_vals;
  for (auto& o : img.lib) {
    lib_opts.push_back(o.option);
    lib_vals.push_back(reinterpret_cast<void*>(uintptr_t(o.value)));
  }
  CUlibrary lib = nullptr;
  r = BACKEND(cuLibraryLoadData)(&lib, img.owned.data(), jit.option_array(), jit.values.data(),
                                 unsigned(jit.options.size()), reinterpret_cast<CUlibraryOption*>(lib_opts.data()),
                                 lib_vals.data(),
                                 unsigned(lib_opts.size()));
  c.output_on_error = true;
  uint64_t vid = r == CUDA_SUCCESS ? reinterpret_cast<uint64_t>(to_app(c.client, lib)) : 0;
  c.out.put<uint64_t>(vid);
  jit.answer(c);
  if (r == CUDA_SUCCESS) remember_image(c, vid, img, true);
  return r;
}

}  // namespace

CUresult cuModuleLoad(Call& c) { return load_module(c); }
CUresult cuModuleLoadData(Call& c) { return load_module(c); }
CUresult cuModuleLoadDataEx(Call& c) { return load_module(c); }
CUresult cuModuleLoadFatBinary(Call& c) { return load_module(c); }
CUresult cuLibraryLoadData(Call& c) { return load_library(c); }
CUresult cuLibraryLoadFromFile(Call& c) { return load_library(c); }

CUresult cuModuleUnload(Call& c) {
  Arg<CUmodule> mod;
  CUresult r = decode_all(c, mod);
  if (r != CUDA_SUCCESS) return r;
  if ((r = BACKEND(cuModuleUnload)(mod.real)) != CUDA_SUCCESS) return r;
  c.client.forget_image(reinterpret_cast<uint64_t>(mod.app));
  forget(c.client, mod.app);
  return CUDA_SUCCESS;
}

CUresult cuLibraryUnload(Call& c) {
  Arg<CUlibrary> lib;
  CUresult r = decode_all(c, lib);
  if (r != CUDA_SUCCESS) return r;
  if ((r = BACKEND(cuLibraryUnload)(lib.real)) != CUDA_SUCCESS) return r;
  c.client.forget_image(reinterpret_cast<uint64_t>(lib.app));
  forget(c.client, lib.app);
  return CUDA_SUCCESS;
}

CUresult cuModuleGetFunction(Call& c) {
  Arg<CUfunction*> out;
  Arg<CUmodule> mod;
  Arg<const char*> name;
  CUresult r = decode_all(c, out, mod, name);
  if (r != CUDA_SUCCESS) return r;
  if ((r = BACKEND(cuModuleGetFunction)(out.pass(), mod.real, name.s)) != CUDA_SUCCESS) return r;
  encode_all(c, out, mod, name);
  if (out.present) {
    uint64_t fvid = reinterpret_cast<uint64_t>(to_app(c.client, out.real));
    std::lock_guard<std::mutex> lock(c.client.mu);
    auto& fs = c.client.module_functions[reinterpret_cast<uint64_t>(mod.app)];
    if (std::find(fs.begin(), fs.end(), fvid) == fs.end()) fs.push_back(fvid);
    c.client.records.functions[fvid] = {reinterpret_cast<uint64_t>(mod.app), name.s ? name.s : ""};
  }
  return CUDA_SUCCESS;
}

// {u32 count, u64 module} -> count function ids
CUresult cuModuleEnumerateFunctions(Call& c) {
  uint32_t n = c.in.get<uint32_t>();
  Arg<CUmodule> mod;
  CUresult r = mod.decode(c);
  if (!c.in.ok() || r != CUDA_SUCCESS) return r != CUDA_SUCCESS ? r : CUDA_ERROR_INVALID_VALUE;
  if (n > 65536) return CUDA_ERROR_INVALID_VALUE;
  std::vector<CUfunction> fs(n);
  if ((r = BACKEND(cuModuleEnumerateFunctions)(fs.data(), n, mod.real)) != CUDA_SUCCESS) return r;
  for (CUfunction f : fs) c.out.put<uint64_t>(reinterpret_cast<uint64_t>(to_app(c.client, f)));
  return CUDA_SUCCESS;
}

CUresult cuLibraryEnumerateKernels(Call& c) {
  uint32_t n = c.in.get<uint32_t>();
  Arg<CUlibrary> lib;
  CUresult r = lib.decode(c);
  if (!c.in.ok() || r != CUDA_SUCCESS) return r != CUDA_SUCCESS ? r : CUDA_ERROR_INVALID_VALUE;
  if (n > 65536) return CUDA_ERROR_INVALID_VALUE;
  std::vector<CUkernel> ks(n);
  if ((r = BACKEND(cuLibraryEnumerateKernels)(ks.data(), n, lib.real)) != CUDA_SUCCESS) return r;
  for (CUkernel k : ks) c.out.put<uint64_t>(reinterpret_cast<uint64_t>(to_app(c.client, k)));
  return CUDA_SUCCESS;
}

namespace {
// cuModuleGetGlobal and friends: {dptr*, bytes*, owner, name}.  The range is
// remembered so the app may copy to and from it.
template <class Owner, class F>
CUresult get_global(Call& c, F backend_fn) {
  Arg<CUdeviceptr*> dptr;
  Arg<size_t*> bytes;
  Arg<Owner> owner;
  Arg<const char*> name;
  CUresult r = decode_all(c, dptr, bytes, owner, name);
  if (r != CUDA_SUCCESS) return r;
  CUdeviceptr p = 0;
  size_t n = 0;
  if ((r = backend_fn(&p, &n, owner.real, name.s)) != CUDA_SUCCESS) return r;
  {
    std::lock_guard<std::mutex> lock(c.client.mu);
    c.client.module_globals[p] = {n, reinterpret_cast<uint64_t>(owner.app)};
    c.client.global_names[p] = name.s ? name.s : "";
  }
  dptr.local = p;
  bytes.local = n;
  encode_all(c, dptr, bytes, owner, name);
  return CUDA_SUCCESS;
}
}  // namespace

CUresult cuModuleGetGlobal_v2(Call& c) { return get_global<CUmodule>(c, BACKEND(cuModuleGetGlobal_v2)); }
CUresult cuLibraryGetGlobal(Call& c) { return get_global<CUlibrary>(c, BACKEND(cuLibraryGetGlobal)); }
CUresult cuLibraryGetManaged(Call& c) { return get_global<CUlibrary>(c, BACKEND(cuLibraryGetManaged)); }

CUresult cuFuncGetName(Call& c) {
  Arg<CUfunction> f;
  CUresult r = f.decode(c);
  if (r != CUDA_SUCCESS) return r;
  const char* name = nullptr;
  if ((r = BACKEND(cuFuncGetName)(&name, f.real)) != CUDA_SUCCESS) return r;
  c.out.put_string(name);
  return CUDA_SUCCESS;
}

CUresult cuKernelGetName(Call& c) {
  Arg<CUkernel> k;
  CUresult r = k.decode(c);
  if (r != CUDA_SUCCESS) return r;
  const char* name = nullptr;
  if ((r = BACKEND(cuKernelGetName)(&name, k.real)) != CUDA_SUCCESS) return r;
  c.out.put_string(name);
  return CUDA_SUCCESS;
}

// A function id (or kernel id, usable wherever a function is) -> its real
// handle, and whether it is a CUkernel.
CUresult function_handle(Client& client, uint64_t vid, CUfunction* f, bool* is_kernel) {
  uint64_t real;
  if (client.handles.to_real(HandleKind::Function, vid, &real)) {
    *f = reinterpret_cast<CUfunction>(real);
    *is_kernel = false;
    return CUDA_SUCCESS;
  }
  if (client.handles.to_real(HandleKind::Kernel, vid, &real)) {
    *f = reinterpret_cast<CUfunction>(real);
    *is_kernel = true;
    return CUDA_SUCCESS;
  }
  return CUDA_ERROR_INVALID_HANDLE;
}

CUresult function_info(Call& c) {
  uint64_t vid = c.in.get<uint64_t>();
  if (!c.in.ok()) return CUDA_ERROR_INVALID_VALUE;
  CUfunction f;
  bool is_kernel;
  CUresult r = function_handle(c.client, vid, &f, &is_kernel);
  if (r != CUDA_SUCCESS) return r;
  CUdevice dev = 0;
  if (is_kernel && (r = current_device(&dev)) != CUDA_SUCCESS) return r;
  auto attr = [&](CUfunction_attribute a, int* v) {
    return is_kernel ? BACKEND(cuKernelGetAttribute)(v, a, reinterpret_cast<CUkernel>(f), dev)
                     : BACKEND(cuFuncGetAttribute)(v, a, f);
  };
  int max_threads = 0, max_dyn = 0;
  if ((r = attr(CU_FUNC_ATTRIBUTE_MAX_THREADS_PER_BLOCK, &max_threads)) != CUDA_SUCCESS) return r;
  if ((r = attr(CU_FUNC_ATTRIBUTE_MAX_DYNAMIC_SHARED_SIZE_BYTES, &max_dyn)) != CUDA_SUCCESS) return r;
  std::vector<std::pair<uint32_t, uint32_t>> params;
  for (size_t i = 0; i < 4096; ++i) {
    size_t off = 0, size = 0;
    CUresult q = is_kernel ? BACKEND(cuKernelGetParamInfo)(reinterpret_cast<CUkernel>(f), i, &off, &size)
                           : BACKEND(cuFuncGetParamInfo)(f, i, &off, &size);
    if (q != CUDA_SUCCESS) break;
    params.emplace_back(uint32_t(off), uint32_t(size));
  }
  wire::FunctionInfo info{};
  info.num_params = uint32_t(params.size());
  for (auto& [off, size] : params) info.param_bytes = std::max(info.param_bytes, off + size);
  info.max_threads = uint32_t(max_threads);
  info.max_dynamic_shared = uint32_t(max_dyn);
  c.out.put(info);
  for (auto& [off, size] : params) {
    c.out.put<uint32_t>(off);
    c.out.put<uint32_t>(size);
  }
  return CUDA_SUCCESS;
}

}  // namespace sing::proxy::custom
