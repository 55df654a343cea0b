// cuPointerGetAttribute(s): the backend answers, then what only the proxy
// knows is put right: allocation ranges (the backend sees the heap's 2 MiB
// mappings, the app its own allocations), managed memory (shared host memory
// here), handles (translated to the app's ids).
#include <cstring>
#include <vector>

#include "handler_util.h"
#include "pools.h"
#include "wire/pointer_attrs.h"

namespace sing::proxy::custom {

namespace {

template <class T>
void store(std::vector<uint8_t>& v, T x) {
  v.assign(sizeof(T), 0);
  std::memcpy(v.data(), &x, sizeof(T));
}

// Request: {u32 count, u32 attrs[count] (8-aligned), u64 ptr}.  Answer per
// attribute: {i32 result, u32 size, bytes}.
CUresult pointer_attributes(Call& c, bool single) {
  uint32_t n = c.in.get<uint32_t>();
  if (n == 0 || n > 64) return CUDA_ERROR_INVALID_VALUE;
  const uint8_t* raw = c.in.take(n * sizeof(uint32_t));
  uint64_t ptr = c.in.get<uint64_t>();
  if (!c.in.ok() || !raw) return CUDA_ERROR_INVALID_VALUE;
  std::vector<uint32_t> attrs(n);  // any value the app sent: not a CUpointer_attribute (held_t)
  std::memcpy(attrs.data(), raw, n * sizeof(uint32_t));

  uint64_t base = 0, bytes = 0;
  const bool in_heap = c.client.heap.range(ptr, &base, &bytes);
  HostBlock block{};
  uint64_t block_base = 0;
  bool in_block = false;
  {
    std::lock_guard<std::mutex> lock(c.client.mu);
    auto it = c.client.host_blocks.upper_bound(ptr);
    if (it != c.client.host_blocks.begin()) {
      --it;
      if (ptr < it->first + it->second.bytes) {
        in_block = true;
        block = it->second;
        block_base = it->first;
      }
    }
  }
  const bool managed = in_block && block.kind == kManaged;
  CUresult first = CUDA_SUCCESS;
  for (uint32_t i = 0; i < n; ++i) {
    const uint32_t size = wire::pointer_attribute_size(attrs[i]);
    std::vector<uint8_t> value(size ? size : 8, 0);
    CUresult r = size ? BACKEND(cuPointerGetAttribute)(value.data(), attrs[i], ptr) : CUDA_ERROR_INVALID_VALUE;
    if (r == CUDA_SUCCESS || in_heap || in_block) {
      switch (attrs[i]) {
        case CU_POINTER_ATTRIBUTE_RANGE_START_ADDR:
          if (in_heap) store(value, base), r = CUDA_SUCCESS;
          else if (in_block) store(value, block_base), r = CUDA_SUCCESS;
          break;
        case CU_POINTER_ATTRIBUTE_RANGE_SIZE:
          if (in_heap) store(value, size_t(bytes)), r = CUDA_SUCCESS;
          else if (in_block) store(value, size_t(block.bytes)), r = CUDA_SUCCESS;
          break;
        case CU_POINTER_ATTRIBUTE_IS_MANAGED:
          if (r == CUDA_SUCCESS || in_block) store(value, (unsigned int)(managed ? 1 : 0)), r = CUDA_SUCCESS;
          break;
        case CU_POINTER_ATTRIBUTE_MEMORY_TYPE:
          if (managed) store(value, (unsigned int)CU_MEMORYTYPE_UNIFIED), r = CUDA_SUCCESS;
          break;
        case CU_POINTER_ATTRIBUTE_CONTEXT: {
          if (in_heap) {
            store(value, c.client.heap.context_of(ptr));
            r = CUDA_SUCCESS;
            break;
          }
          CUcontext ctx;
          std::memcpy(&ctx, value.data(), sizeof(ctx));
          if (r == CUDA_SUCCESS) store(value, to_app(c.client, ctx));
          break;
        }
        case CU_POINTER_ATTRIBUTE_BUFFER_ID:
          if (in_heap) store(value, (unsigned long long)c.client.heap.buffer_id(ptr)), r = CUDA_SUCCESS;
          break;
        case CU_POINTER_ATTRIBUTE_MEMPOOL_HANDLE:
          store(value, reinterpret_cast<CUmemoryPool>(pool_of(c.client, ptr)));
          r = CUDA_SUCCESS;
          break;
        default:
          break;
      }
    }
    if (r != CUDA_SUCCESS && first == CUDA_SUCCESS) first = r;
    c.out.put<int32_t>(int32_t(r));
    c.out.put<uint32_t>(uint32_t(value.size()));
    c.out.put(value.data(), uint32_t(value.size()));
  }
  // cuPointerGetAttribute fails with its attribute; cuPointerGetAttributes
  // succeeds and leaves what it cannot answer zeroed.
  return single ? first : CUDA_SUCCESS;
}

}  // namespace

CUresult cuPointerGetAttribute(Call& c) { return pointer_attributes(c, true); }
CUresult cuPointerGetAttributes(Call& c) { return pointer_attributes(c, false); }

}  // namespace sing::proxy::custom
