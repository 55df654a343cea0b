// cuPointerGetAttribute(s) / cuPointerSetAttribute.
#include "memmap.h"
#include "pools.h"

namespace simgpu {

namespace {

template <class T>
void put(void* data, T v) {
  std::memcpy(data, &v, sizeof v);
}

// One attribute of a known range.  `ptr` is the address asked about.
CUresult attribute(const MemRange& r, CUpointer_attribute a, uint64_t ptr, void* data) {
  const bool host = r.kind == MemKind::HostAlloc || r.kind == MemKind::HostRegistered;
  switch (a) {
    case CU_POINTER_ATTRIBUTE_CONTEXT: put(data, static_cast<CUcontext>(const_cast<void*>(r.ctx))); break;
    case CU_POINTER_ATTRIBUTE_MEMORY_TYPE:
      put(data, unsigned(host ? CU_MEMORYTYPE_HOST : CU_MEMORYTYPE_DEVICE));
      break;
    case CU_POINTER_ATTRIBUTE_DEVICE_POINTER: put(data, CUdeviceptr(ptr)); break;
    case CU_POINTER_ATTRIBUTE_HOST_POINTER:
      // Device memory has no host mapping a program may use (it would on no GPU).
      if (!host && r.kind != MemKind::Managed) return CUDA_ERROR_INVALID_VALUE;
      put(data, reinterpret_cast<void*>(ptr));
      break;
    case CU_POINTER_ATTRIBUTE_P2P_TOKENS: return CUDA_ERROR_NOT_SUPPORTED;
    case CU_POINTER_ATTRIBUTE_SYNC_MEMOPS: put(data, bool(r.sync_memops)); break;
    case CU_POINTER_ATTRIBUTE_BUFFER_ID: put(data, static_cast<unsigned long long>(r.buffer_id)); break;
    case CU_POINTER_ATTRIBUTE_IS_MANAGED: put(data, bool(r.kind == MemKind::Managed)); break;
    case CU_POINTER_ATTRIBUTE_DEVICE_ORDINAL: {
      int ord = r.device;
      if (ord < 0) {
        // Host memory reports the device of the context that allocated it.
        auto c = registry().get<Context>(r.ctx, Kind::Context);
        ord = c ? c->dev->ordinal : 0;
      }
      put(data, ord);
      break;
    }
    case CU_POINTER_ATTRIBUTE_IS_LEGACY_CUDA_IPC_CAPABLE: put(data, false); break;
    case CU_POINTER_ATTRIBUTE_RANGE_START_ADDR: put(data, CUdeviceptr(r.base)); break;
    case CU_POINTER_ATTRIBUTE_RANGE_SIZE: put(data, size_t(r.size)); break;
    case CU_POINTER_ATTRIBUTE_MAPPED: put(data, true); break;
    case CU_POINTER_ATTRIBUTE_ALLOWED_HANDLE_TYPES:
      put(data, unsigned(r.kind == MemKind::Vmm && r.phys ? CU_MEM_HANDLE_TYPE_POSIX_FILE_DESCRIPTOR
                                                         : CU_MEM_HANDLE_TYPE_NONE));
      break;
    case CU_POINTER_ATTRIBUTE_IS_GPU_DIRECT_RDMA_CAPABLE: put(data, 0u); break;
    case CU_POINTER_ATTRIBUTE_ACCESS_FLAGS: {
      // Access of the current context's device to this memory.
      Context* c = current_context_raw();
      unsigned v = CU_POINTER_ATTRIBUTE_ACCESS_FLAG_READWRITE;
      if (r.kind == MemKind::Vmm && c) {
        uint32_t bit = 1u << c->dev->ordinal;
        v = (r.access_write & bit)  ? CU_POINTER_ATTRIBUTE_ACCESS_FLAG_READWRITE
            : (r.access_read & bit) ? CU_POINTER_ATTRIBUTE_ACCESS_FLAG_READ
                                    : CU_POINTER_ATTRIBUTE_ACCESS_FLAG_NONE;
      }
      put(data, v);
      break;
    }
    case CU_POINTER_ATTRIBUTE_MEMPOOL_HANDLE:
      put(data, r.pool ? r.pool->handle() : CUmemoryPool(nullptr));
      break;
    case CU_POINTER_ATTRIBUTE_MAPPING_SIZE: put(data, size_t(r.size)); break;
    case CU_POINTER_ATTRIBUTE_MAPPING_BASE_ADDR: put(data, reinterpret_cast<void*>(r.base)); break;
    case CU_POINTER_ATTRIBUTE_MEMORY_BLOCK_ID: put(data, static_cast<unsigned long long>(r.buffer_id)); break;
    case CU_POINTER_ATTRIBUTE_IS_HW_DECOMPRESS_CAPABLE: put(data, false); break;
    default: return CUDA_ERROR_INVALID_VALUE;
  }
  return CUDA_SUCCESS;
}

// What cuPointerGetAttributes reports for memory CUDA does not know (pageable host memory).
CUresult unknown_attribute(CUpointer_attribute a, void* data) {
  switch (a) {
    case CU_POINTER_ATTRIBUTE_CONTEXT: put(data, CUcontext(nullptr)); break;
    case CU_POINTER_ATTRIBUTE_MEMORY_TYPE: put(data, 0u); break;
    case CU_POINTER_ATTRIBUTE_DEVICE_POINTER: put(data, CUdeviceptr(0)); break;
    case CU_POINTER_ATTRIBUTE_HOST_POINTER: put(data, static_cast<void*>(nullptr)); break;
    case CU_POINTER_ATTRIBUTE_SYNC_MEMOPS:
    case CU_POINTER_ATTRIBUTE_IS_MANAGED:
    case CU_POINTER_ATTRIBUTE_IS_LEGACY_CUDA_IPC_CAPABLE:
    case CU_POINTER_ATTRIBUTE_MAPPED:
    case CU_POINTER_ATTRIBUTE_IS_HW_DECOMPRESS_CAPABLE: put(data, false); break;
    case CU_POINTER_ATTRIBUTE_BUFFER_ID:
    case CU_POINTER_ATTRIBUTE_MEMORY_BLOCK_ID: put(data, 0ULL); break;
    case CU_POINTER_ATTRIBUTE_DEVICE_ORDINAL: put(data, -2); break;  // CU_DEVICE_INVALID
    case CU_POINTER_ATTRIBUTE_RANGE_START_ADDR: put(data, CUdeviceptr(0)); break;
    case CU_POINTER_ATTRIBUTE_RANGE_SIZE:
    case CU_POINTER_ATTRIBUTE_MAPPING_SIZE: put(data, size_t(0)); break;
    case CU_POINTER_ATTRIBUTE_MAPPING_BASE_ADDR: put(data, static_cast<void*>(nullptr)); break;
    case CU_POINTER_ATTRIBUTE_ALLOWED_HANDLE_TYPES:
    case CU_POINTER_ATTRIBUTE_IS_GPU_DIRECT_RDMA_CAPABLE:
    case CU_POINTER_ATTRIBUTE_ACCESS_FLAGS: put(data, 0u); break;
    case CU_POINTER_ATTRIBUTE_MEMPOOL_HANDLE: put(data, CUmemoryPool(nullptr)); break;
    case CU_POINTER_ATTRIBUTE_P2P_TOKENS: return CUDA_ERROR_NOT_SUPPORTED;
    default: return CUDA_ERROR_INVALID_VALUE;
  }
  return CUDA_SUCCESS;
}

}  // namespace

}  // namespace simgpu

using namespace simgpu;

extern "C" {

SIM_EXPORT CUresult CUDAAPI cuPointerGetAttribute(void* data, CUpointer_attribute attribute, CUdeviceptr ptr) {
  SIM_TRY
  SIM_CHECK(check_init());
  if (!data) return CUDA_ERROR_INVALID_VALUE;
  auto r = memmap().find(ptr);
  if (!r) return CUDA_ERROR_INVALID_VALUE;
  return simgpu::attribute(*r, attribute, ptr, data);
  SIM_END
}

SIM_EXPORT CUresult CUDAAPI cuPointerGetAttributes(unsigned int numAttributes, CUpointer_attribute* attributes,
                                                   void** data, CUdeviceptr ptr) {
  SIM_TRY
  SIM_CHECK(check_init());
  if (numAttributes && (!attributes || !data)) return CUDA_ERROR_INVALID_VALUE;
  auto r = memmap().find(ptr);
  for (unsigned i = 0; i < numAttributes; ++i) {
    if (!data[i]) return CUDA_ERROR_INVALID_VALUE;
    CUresult rc = r ? simgpu::attribute(*r, attributes[i], ptr, data[i]) : unknown_attribute(attributes[i], data[i]);
    // Unlike the singular call, attributes that do not apply read as empty rather than failing.
    if (rc == CUDA_ERROR_INVALID_VALUE && r && attributes[i] == CU_POINTER_ATTRIBUTE_HOST_POINTER) {
      put(data[i], static_cast<void*>(nullptr));
      rc = CUDA_SUCCESS;
    }
    if (rc != CUDA_SUCCESS) return rc;
  }
  return CUDA_SUCCESS;
  SIM_END
}

SIM_EXPORT CUresult CUDAAPI cuPointerSetAttribute(const void* value, CUpointer_attribute attribute, CUdeviceptr ptr) {
  SIM_TRY
  SIM_CHECK(check_init());
  if (!value) return CUDA_ERROR_INVALID_VALUE;
  if (attribute != CU_POINTER_ATTRIBUTE_SYNC_MEMOPS) return CUDA_ERROR_INVALID_VALUE;
  bool v;
  std::memcpy(&v, value, sizeof v);
  if (!memmap().with(ptr, [&](MemRange& r) { r.sync_memops = v; })) return CUDA_ERROR_INVALID_VALUE;
  return CUDA_SUCCESS;
  SIM_END
}

}  // extern "C"
