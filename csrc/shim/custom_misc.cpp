// Hand-written entry points that only marshal differently from the generic
// rule: strings, arrays, values whose size depends on another argument.
#include <cstring>
#include <map>
#include <mutex>
#include <string>

#include "call.h"
#include "custom.h"
#include "forward.h"
#include "handles.h"
#include "wire/opcodes.h"
#include "wire/pointer_attrs.h"

namespace sing::shim::custom {

using namespace sing::wire;

CUresult cuInit(unsigned int flags) {
  CUresult r = Forward<kOp_cuInit, decltype(::cuInit)>::sync(flags);
  if (r == CUDA_SUCCESS) g_initialized.store(true, std::memory_order_release);
  return r;
}

namespace {

// Strings handed to the app must live forever: cache them per code.
std::mutex g_strings_mu;
std::map<std::pair<int, int>, const char*> g_strings;

CUresult error_string(uint16_t op, CUresult error, const char** out) {
  if (!out) return CUDA_ERROR_INVALID_VALUE;
  const auto key = std::make_pair(int(op), int(error));
  {
    std::lock_guard<std::mutex> lock(g_strings_mu);
    auto it = g_strings.find(key);
    if (it != g_strings.end()) {
      *out = it->second;
      return CUDA_SUCCESS;
    }
  }
  Answer a = sync_call(op, [&](Writer& w) { w.put<int32_t>(int32_t(error)); }, false);
  if (a.result != CUDA_SUCCESS) {
    *out = nullptr;
    return a.result;
  }
  Reader r = a.reader();
  const char* s = r.get_string();
  std::lock_guard<std::mutex> lock(g_strings_mu);
  const char*& slot = g_strings[key];
  if (!slot) slot = strdup(s ? s : "");
  *out = slot;
  return CUDA_SUCCESS;
}

// Functions and kernels: names cached per id, valid as long as the process.
std::mutex g_names_mu;
std::map<uint64_t, const char*> g_names;

template <class H>
CUresult handle_name(uint16_t op, H h, const char** out) {
  if (!out) return CUDA_ERROR_INVALID_VALUE;
  auto key = reinterpret_cast<uint64_t>(h);
  {
    std::lock_guard<std::mutex> lock(g_names_mu);
    auto it = g_names.find(key);
    if (it != g_names.end()) {
      *out = it->second;
      return CUDA_SUCCESS;
    }
  }
  Answer a = sync_call(op, [&](Writer& w) { w.put<uint64_t>(key); });
  if (a.result != CUDA_SUCCESS) return a.result;
  Reader r = a.reader();
  const char* s = r.get_string();
  std::lock_guard<std::mutex> lock(g_names_mu);
  const char*& slot = g_names[key];
  if (!slot) slot = strdup(s ? s : "");
  *out = slot;
  return CUDA_SUCCESS;
}

CUresult device_string(uint16_t op, char* buf, int len, CUdevice dev) {
  Answer a = sync_call(op, [&](Writer& w) {
    w.put<int32_t>(len);
    w.put<uint32_t>(buf != nullptr);
    w.put<int32_t>(dev);
  });
  if (a.result != CUDA_SUCCESS) return a.result;
  Reader r = a.reader();
  uint32_t n = a.channel->response_length();
  if (const uint8_t* p = r.take(n)) std::memcpy(buf, p, std::min<size_t>(n, size_t(len)));
  return CUDA_SUCCESS;
}

}  // namespace

CUresult cuGetErrorString(CUresult error, const char** pStr) { return error_string(kOp_cuGetErrorString, error, pStr); }
CUresult cuGetErrorName(CUresult error, const char** pStr) { return error_string(kOp_cuGetErrorName, error, pStr); }
CUresult cuFuncGetName(const char** name, CUfunction f) { return handle_name(kOp_cuFuncGetName, f, name); }
CUresult cuKernelGetName(const char** name, CUkernel k) { return handle_name(kOp_cuKernelGetName, k, name); }

CUresult cuDeviceGetName(char* name, int len, CUdevice dev) {
  return device_string(kOp_cuDeviceGetName, name, len, dev);
}
CUresult cuDeviceGetPCIBusId(char* id, int len, CUdevice dev) {
  return device_string(kOp_cuDeviceGetPCIBusId, id, len, dev);
}

CUresult cuDeviceGetLuid(char* luid, unsigned int* mask, CUdevice dev) {
  Answer a = sync_call(kOp_cuDeviceGetLuid, [&](Writer& w) {
    w.put<uint32_t>(luid != nullptr);
    w.put<uint32_t>(mask != nullptr);
    w.put<int32_t>(dev);
  });
  if (a.result != CUDA_SUCCESS) return a.result;
  Reader r = a.reader();
  const uint8_t* p = r.take(8);
  uint32_t m = r.get<uint32_t>();
  if (luid && p) std::memcpy(luid, p, 8);
  if (mask) *mask = m;
  return CUDA_SUCCESS;
}

CUresult cuCtxCreate_v4(CUcontext* pctx, CUctxCreateParams* params, unsigned int flags, CUdevice dev) {
  if (!pctx) return CUDA_ERROR_INVALID_VALUE;
  Answer a = sync_call(kOp_cuCtxCreate_v4, [&](Writer& w) {
    w.put<uint32_t>(params != nullptr && (params->execAffinityParams || params->cigParams));
    w.put<uint32_t>(flags);
    w.put<int32_t>(dev);
  });
  if (a.result != CUDA_SUCCESS) return a.result;
  Reader r = a.reader();
  *pctx = reinterpret_cast<CUcontext>(r.get<uint64_t>());
  handle_seen(reinterpret_cast<uint64_t>(*pctx));
  return CUDA_SUCCESS;
}

namespace {
CUresult pointer_attrs(uint16_t op, unsigned n, const CUpointer_attribute* attrs, void** data, CUdeviceptr ptr) {
  Answer a = sync_call(op, [&](Writer& w) {
    w.put<uint32_t>(n);
    w.put(attrs, n * uint32_t(sizeof(uint32_t)));
    w.put<uint64_t>(ptr);
  });
  if (a.result != CUDA_SUCCESS) return a.result;
  Reader r = a.reader();
  for (unsigned i = 0; i < n; ++i) {
    int32_t res = r.get<int32_t>();
    uint32_t size = r.get<uint32_t>();
    const uint8_t* v = r.take(size);
    uint32_t want = pointer_attribute_size(attrs[i]);
    if (data[i] && v && want) {
      if (res == CUDA_SUCCESS) std::memcpy(data[i], v, std::min(size, want));
      else std::memset(data[i], 0, want);
    }
  }
  return CUDA_SUCCESS;
}
}  // namespace

CUresult cuPointerGetAttribute(void* data, CUpointer_attribute attribute, CUdeviceptr ptr) {
  if (!data) return CUDA_ERROR_INVALID_VALUE;
  void* out[1] = {data};
  return pointer_attrs(kOp_cuPointerGetAttribute, 1, &attribute, out, ptr);
}

CUresult cuPointerGetAttributes(unsigned int n, CUpointer_attribute* attributes, void** data, CUdeviceptr ptr) {
  if (n == 0 || !attributes || !data) return CUDA_ERROR_INVALID_VALUE;
  if (n > 64) return CUDA_ERROR_INVALID_VALUE;
  return pointer_attrs(kOp_cuPointerGetAttributes, n, attributes, data, ptr);
}

CUresult cuMemSetAccess(CUdeviceptr ptr, size_t size, const CUmemAccessDesc* desc, size_t count) {
  if (!desc || count == 0 || count > 64) return CUDA_ERROR_INVALID_VALUE;
  return sync_call(kOp_cuMemSetAccess, [&](Writer& w) {
           w.put<uint64_t>(ptr);
           w.put<uint64_t>(size);
           w.put<uint64_t>(count);
           for (size_t i = 0; i < count; ++i) w.put(desc[i]);
         }).result;
}

CUresult cuMemPoolSetAccess(CUmemoryPool pool, const CUmemAccessDesc* map, size_t count) {
  if (!map || count == 0 || count > 64) return CUDA_ERROR_INVALID_VALUE;
  return sync_call(kOp_cuMemPoolSetAccess, [&](Writer& w) {
           w.put<uint64_t>(reinterpret_cast<uint64_t>(pool));
           w.put<uint64_t>(count);
           for (size_t i = 0; i < count; ++i) w.put(map[i]);
         }).result;
}

CUresult cuMemRetainAllocationHandle(CUmemGenericAllocationHandle* handle, void* addr) {
  if (!handle) return CUDA_ERROR_INVALID_VALUE;
  Answer a = sync_call(kOp_cuMemRetainAllocationHandle,
                       [&](Writer& w) { w.put<uint64_t>(reinterpret_cast<uint64_t>(addr)); });
  if (a.result != CUDA_SUCCESS) return a.result;
  Reader r = a.reader();
  *handle = r.get<uint64_t>();
  return CUDA_SUCCESS;
}

namespace {
template <class H>
CUresult enumerate(uint16_t op, H* out, unsigned int n, uint64_t owner) {
  if (!out) return CUDA_ERROR_INVALID_VALUE;
  Answer a = sync_call(op, [&](Writer& w) {
    w.put<uint32_t>(n);
    w.put<uint64_t>(owner);
  });
  if (a.result != CUDA_SUCCESS) return a.result;
  Reader r = a.reader();
  for (unsigned i = 0; i < n; ++i) {
    out[i] = reinterpret_cast<H>(r.get<uint64_t>());
    handle_seen(reinterpret_cast<uint64_t>(out[i]));
  }
  return CUDA_SUCCESS;
}
}  // namespace

CUresult cuModuleEnumerateFunctions(CUfunction* functions, unsigned int n, CUmodule mod) {
  return enumerate(kOp_cuModuleEnumerateFunctions, functions, n, reinterpret_cast<uint64_t>(mod));
}
CUresult cuLibraryEnumerateKernels(CUkernel* kernels, unsigned int n, CUlibrary lib) {
  return enumerate(kOp_cuLibraryEnumerateKernels, kernels, n, reinterpret_cast<uint64_t>(lib));
}

namespace {
bool pool_attr_is_int(CUmemPool_attribute a) {
  return a == CU_MEMPOOL_ATTR_REUSE_FOLLOW_EVENT_DEPENDENCIES || a == CU_MEMPOOL_ATTR_REUSE_ALLOW_OPPORTUNISTIC ||
         a == CU_MEMPOOL_ATTR_REUSE_ALLOW_INTERNAL_DEPENDENCIES;
}
}  // namespace

CUresult cuMemPoolSetAttribute(CUmemoryPool pool, CUmemPool_attribute attr, void* value) {
  if (!value) return CUDA_ERROR_INVALID_VALUE;
  uint64_t v = 0;
  if (pool_attr_is_int(attr)) v = uint64_t(uint32_t(*static_cast<int*>(value)));
  else v = *static_cast<cuuint64_t*>(value);
  return sync_call(kOp_cuMemPoolSetAttribute, [&](Writer& w) {
           w.put<uint64_t>(reinterpret_cast<uint64_t>(pool));
           w.put<uint32_t>(uint32_t(attr));
           w.put<uint64_t>(v);
         }).result;
}

CUresult cuMemPoolGetAttribute(CUmemoryPool pool, CUmemPool_attribute attr, void* value) {
  if (!value) return CUDA_ERROR_INVALID_VALUE;
  Answer a = sync_call(kOp_cuMemPoolGetAttribute, [&](Writer& w) {
    w.put<uint64_t>(reinterpret_cast<uint64_t>(pool));
    w.put<uint32_t>(uint32_t(attr));
  });
  if (a.result != CUDA_SUCCESS) return a.result;
  Reader r = a.reader();
  uint64_t v = r.get<uint64_t>();
  if (pool_attr_is_int(attr)) *static_cast<int*>(value) = int(v);
  else *static_cast<cuuint64_t*>(value) = v;
  return CUDA_SUCCESS;
}

}  // namespace sing::shim::custom
