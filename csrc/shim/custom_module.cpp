// Loading modules and libraries through the proxy: the image crosses the
// transport (in blobs when large), JIT options are passed by value and the
// log buffers are filled from the proxy's answer.
#include <elf.h>
#include <sys/uio.h>
#include <unistd.h>

#include <cstdio>
#include <cstring>
#include <vector>

#include "call.h"
#include "custom.h"
#include "functions.h"
#include "handles.h"
#include "wire/control.h"
#include "wire/opcodes.h"
#include "wire/payloads.h"

namespace sing::shim::custom {

using namespace sing::wire;

namespace {

// Copies app memory that a header (which may be corrupt) says is there,
// without faulting on what is not: returns the bytes actually readable.
uint64_t safe_copy(void* dst, const void* src, uint64_t n) {
  uint64_t done = 0;
  while (done < n) {
    iovec local{static_cast<uint8_t*>(dst) + done, size_t(n - done)};
    iovec remote{const_cast<uint8_t*>(static_cast<const uint8_t*>(src)) + done, size_t(n - done)};
    ssize_t got = process_vm_readv(getpid(), &local, 1, &remote, 1, 0);
    if (got <= 0) break;
    done += uint64_t(got);
  }
  return done;
}

constexpr uint32_t kFatbinMagic = 0xBA55ED50u;
constexpr uint32_t kFatbinWrapperMagic = 0x466243B1u;

// A module image has no size argument: work it out from its format.
bool image_extent(const void* image, const uint8_t** data, uint64_t* size) {
  auto* p = static_cast<const uint8_t*>(image);
  uint32_t magic;
  std::memcpy(&magic, p, 4);
  if (magic == kFatbinWrapperMagic) {
    // {int magic; int version; const void* fatbin; void* filename}
    const void* inner;
    std::memcpy(&inner, p + 8, sizeof(inner));
    if (!inner) return false;
    return image_extent(inner, data, size);
  }
  if (magic == kFatbinMagic) {
    // {u32 magic; u16 version; u16 header_size; u64 body_size}
    uint16_t header;
    uint64_t body;
    std::memcpy(&header, p + 6, 2);
    std::memcpy(&body, p + 8, 8);
    *data = p;
    *size = uint64_t(header) + body;
    return body < (1ull << 32);
  }
  if (std::memcmp(p, ELFMAG, SELFMAG) == 0 && p[EI_CLASS] == ELFCLASS64) {
    Elf64_Ehdr eh;
    std::memcpy(&eh, p, sizeof(eh));
    uint64_t end = std::max<uint64_t>(eh.e_shoff + uint64_t(eh.e_shnum) * eh.e_shentsize,
                                      eh.e_phoff + uint64_t(eh.e_phnum) * eh.e_phentsize);
    for (unsigned i = 0; i < eh.e_shnum; ++i) {
      Elf64_Shdr sh{};
      if (safe_copy(&sh, p + eh.e_shoff + uint64_t(i) * eh.e_shentsize, sizeof(sh)) != sizeof(sh)) break;
      if (sh.sh_type != SHT_NOBITS) end = std::max<uint64_t>(end, sh.sh_offset + sh.sh_size);
    }
    *data = p;
    *size = end;
    return end < (1ull << 32);
  }
  // PTX (or anything textual): up to and including its terminating NUL.
  *data = p;
  *size = std::strlen(reinterpret_cast<const char*>(p)) + 1;
  return true;
}

// Options whose values are plain numbers; anything that points into the
// app's memory cannot be passed to another process.
bool jit_option_forwardable(CUjit_option o) {
  switch (o) {
    case CU_JIT_MAX_REGISTERS:
    case CU_JIT_THREADS_PER_BLOCK:
    case CU_JIT_WALL_TIME:
    case CU_JIT_INFO_LOG_BUFFER:
    case CU_JIT_INFO_LOG_BUFFER_SIZE_BYTES:
    case CU_JIT_ERROR_LOG_BUFFER:
    case CU_JIT_ERROR_LOG_BUFFER_SIZE_BYTES:
    case CU_JIT_OPTIMIZATION_LEVEL:
    case CU_JIT_TARGET_FROM_CUCONTEXT:
    case CU_JIT_TARGET:
    case CU_JIT_FALLBACK_STRATEGY:
    case CU_JIT_GENERATE_DEBUG_INFO:
    case CU_JIT_LOG_VERBOSE:
    case CU_JIT_GENERATE_LINE_INFO:
    case CU_JIT_CACHE_MODE:
    case CU_JIT_POSITION_INDEPENDENT_CODE:
    case CU_JIT_MIN_CTA_PER_SM:
    case CU_JIT_MAX_THREADS_PER_BLOCK:
    case CU_JIT_OVERRIDE_DIRECTIVE_VALUES:
      return true;
    default:
      return false;
  }
}

struct Loaded {
  CUresult result;
  uint64_t handle;
};

Loaded load(uint16_t op, const void* image, unsigned num_jit, const CUjit_option* jit, void** jit_values,
            unsigned num_lib, const CUlibraryOption* lib, void** lib_values) {
  if (!image) return {CUDA_ERROR_INVALID_VALUE, 0};
  if (num_jit && (!jit || !jit_values)) return {CUDA_ERROR_INVALID_VALUE, 0};
  if (num_lib && (!lib || !lib_values)) return {CUDA_ERROR_INVALID_VALUE, 0};
  for (unsigned i = 0; i < num_jit; ++i)
    if (!jit_option_forwardable(jit[i])) return {CUDA_ERROR_NOT_SUPPORTED, 0};
  for (unsigned i = 0; i < num_lib; ++i)
    if (lib[i] != CU_LIBRARY_BINARY_IS_PRESERVED) return {CUDA_ERROR_NOT_SUPPORTED, 0};
  const uint8_t* claimed;
  uint64_t size;
  if (!image_extent(image, &claimed, &size)) return {CUDA_ERROR_INVALID_IMAGE, 0};
  // The image as far as it is really there: a corrupt header claiming more
  // is the driver's to refuse, not a reason to fault in the app.
  std::vector<uint8_t> copy(size);
  size = safe_copy(copy.data(), claimed, size);
  copy.resize(size);
  const uint8_t* data = copy.data();

  CUresult err;
  Channel* ch = call_channel(op, &err);
  if (!ch) return {err, 0};
  // Large images go ahead in pieces; the load record then refers to them.
  constexpr uint64_t kInline = kMaxRecordBytes - 4096;
  const bool blob = size > kInline;
  if (blob) {
    for (uint64_t off = 0; off < size; off += kInline) {
      const uint32_t n = uint32_t(std::min(kInline, size - off));
      uint8_t* p = ch->begin(kOpBlobAppend, n, false);
      if (!p) return {kProxyLost, 0};
      std::memcpy(p, data + off, n);
      ch->publish();
    }
  }
  ImageRequest req{blob, num_jit, num_lib, 0, size};
  Answer a = sync_call(op, [&](Writer& w) {
    w.put(req);
    for (unsigned i = 0; i < num_jit; ++i) w.put(JitOption{uint32_t(jit[i]), 0, reinterpret_cast<uint64_t>(jit_values[i])});
    for (unsigned i = 0; i < num_lib; ++i) w.put(JitOption{uint32_t(lib[i]), 0, reinterpret_cast<uint64_t>(lib_values[i])});
    if (!blob) w.put(data, uint32_t(size));
  });
  if (!a.channel) return {a.result, 0};
  Reader r = a.reader();
  uint64_t handle = r.get<uint64_t>();
  // Logs and wall time, written where the app asked.
  uint32_t info_n = r.get<uint32_t>();
  const uint8_t* info = r.take(info_n);
  uint32_t err_n = r.get<uint32_t>();
  const uint8_t* errs = r.take(err_n);
  float wall = r.get<float>();
  if (r.ok()) {
    for (unsigned i = 0; i < num_jit; ++i) {
      auto copy_log = [&](CUjit_option size_opt, const uint8_t* text, uint32_t n) {
        size_t cap = 0;
        for (unsigned j = 0; j < num_jit; ++j)
          if (jit[j] == size_opt) cap = reinterpret_cast<uintptr_t>(jit_values[j]);
        if (!jit_values[i] || cap == 0) return;
        size_t m = std::min<size_t>(n, cap - 1);
        if (text) std::memcpy(jit_values[i], text, m);
        static_cast<char*>(jit_values[i])[m] = 0;
      };
      if (jit[i] == CU_JIT_INFO_LOG_BUFFER) copy_log(CU_JIT_INFO_LOG_BUFFER_SIZE_BYTES, info, info_n);
      if (jit[i] == CU_JIT_ERROR_LOG_BUFFER) copy_log(CU_JIT_ERROR_LOG_BUFFER_SIZE_BYTES, errs, err_n);
      if (jit[i] == CU_JIT_INFO_LOG_BUFFER_SIZE_BYTES) jit_values[i] = reinterpret_cast<void*>(uintptr_t(info_n));
      if (jit[i] == CU_JIT_ERROR_LOG_BUFFER_SIZE_BYTES) jit_values[i] = reinterpret_cast<void*>(uintptr_t(err_n));
      if (jit[i] == CU_JIT_WALL_TIME) {
        uint32_t bits;
        std::memcpy(&bits, &wall, sizeof(bits));
        jit_values[i] = reinterpret_cast<void*>(uintptr_t(bits));
      }
    }
  }
  return {a.result, handle};
}

bool read_file(const char* path, std::vector<uint8_t>* out) {
  if (!path) return false;
  FILE* f = std::fopen(path, "rb");
  if (!f) return false;
  uint8_t buf[1 << 16];
  size_t n;
  while ((n = std::fread(buf, 1, sizeof(buf), f)) > 0) out->insert(out->end(), buf, buf + n);
  std::fclose(f);
  out->push_back(0);  // a text image needs its NUL
  return true;
}

template <class H>
CUresult finish(Loaded l, H* out) {
  if (l.result == CUDA_SUCCESS) {
    *out = reinterpret_cast<H>(l.handle);
    handle_seen(l.handle);
  }
  return l.result;
}

}  // namespace

CUresult cuModuleLoadData(CUmodule* module, const void* image) {
  if (!module) return CUDA_ERROR_INVALID_VALUE;
  return finish(load(kOp_cuModuleLoadData, image, 0, nullptr, nullptr, 0, nullptr, nullptr), module);
}

CUresult cuModuleLoadDataEx(CUmodule* module, const void* image, unsigned int n, CUjit_option* options, void** values) {
  if (!module) return CUDA_ERROR_INVALID_VALUE;
  return finish(load(kOp_cuModuleLoadDataEx, image, n, options, values, 0, nullptr, nullptr), module);
}

CUresult cuModuleLoadFatBinary(CUmodule* module, const void* fatCubin) {
  if (!module) return CUDA_ERROR_INVALID_VALUE;
  return finish(load(kOp_cuModuleLoadFatBinary, fatCubin, 0, nullptr, nullptr, 0, nullptr, nullptr), module);
}

CUresult cuModuleLoad(CUmodule* module, const char* fname) {
  if (!module || !fname) return CUDA_ERROR_INVALID_VALUE;
  CUresult err;
  if (!call_channel(kOp_cuModuleLoad, &err)) return err;
  std::vector<uint8_t> bytes;
  if (!read_file(fname, &bytes)) return CUDA_ERROR_FILE_NOT_FOUND;
  return finish(load(kOp_cuModuleLoad, bytes.data(), 0, nullptr, nullptr, 0, nullptr, nullptr), module);
}

CUresult cuLibraryLoadData(CUlibrary* library, const void* code, CUjit_option* jitOptions, void** jitOptionsValues,
                           unsigned int numJitOptions, CUlibraryOption* libraryOptions, void** libraryOptionValues,
                           unsigned int numLibraryOptions) {
  if (!library) return CUDA_ERROR_INVALID_VALUE;
  return finish(load(kOp_cuLibraryLoadData, code, numJitOptions, jitOptions, jitOptionsValues, numLibraryOptions,
                     libraryOptions, libraryOptionValues),
                library);
}

CUresult cuLibraryLoadFromFile(CUlibrary* library, const char* fileName, CUjit_option* jitOptions,
                               void** jitOptionsValues, unsigned int numJitOptions, CUlibraryOption* libraryOptions,
                               void** libraryOptionValues, unsigned int numLibraryOptions) {
  if (!library || !fileName) return CUDA_ERROR_INVALID_VALUE;
  CUresult err;
  if (!call_channel(kOp_cuLibraryLoadFromFile, &err)) return err;
  std::vector<uint8_t> bytes;
  if (!read_file(fileName, &bytes)) return CUDA_ERROR_FILE_NOT_FOUND;
  return finish(load(kOp_cuLibraryLoadFromFile, bytes.data(), numJitOptions, jitOptions, jitOptionsValues,
                     numLibraryOptions, libraryOptions, libraryOptionValues),
                library);
}

CUresult cuModuleUnload(CUmodule hmod) {
  CUresult r = Forward<kOp_cuModuleUnload, decltype(::cuModuleUnload)>::sync(hmod);
  if (r == CUDA_SUCCESS) functions_unloaded(reinterpret_cast<uint64_t>(hmod));
  return r;
}

CUresult cuLibraryUnload(CUlibrary lib) {
  CUresult r = Forward<kOp_cuLibraryUnload, decltype(::cuLibraryUnload)>::sync(lib);
  if (r == CUDA_SUCCESS) functions_unloaded(reinterpret_cast<uint64_t>(lib));
  return r;
}

CUresult cuModuleGetFunction(CUfunction* hfunc, CUmodule hmod, const char* name) {
  CUresult r = Forward<kOp_cuModuleGetFunction, decltype(::cuModuleGetFunction)>::sync(hfunc, hmod, name);
  if (r == CUDA_SUCCESS) function_owned_by(reinterpret_cast<uint64_t>(*hfunc), reinterpret_cast<uint64_t>(hmod));
  return r;
}

}  // namespace sing::shim::custom
