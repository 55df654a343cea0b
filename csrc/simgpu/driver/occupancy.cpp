// Occupancy queries, computed as NVIDIA's occupancy calculator does for
// sm_90 from what the engine reports per kernel (registers, shared memory,
// thread limit).
#include "launch.h"

namespace simgpu {

int blocks_per_sm(const ptx::KernelInfo& k, int block_threads, uint64_t dynamic_shared) {
  using namespace h100;
  if (block_threads <= 0 || block_threads > kMaxThreadsPerBlock) return 0;
  if (k.max_threads_per_block && unsigned(block_threads) > k.max_threads_per_block) return 0;
  if (block_threads > max_threads_for_regs(k.num_regs)) return 0;
  uint64_t shared = uint64_t(k.static_shared_bytes) + dynamic_shared;
  if (shared > uint64_t(kSharedPerBlockOptin)) return 0;

  int warps = (block_threads + kWarpSize - 1) / kWarpSize;
  int limit = kMaxBlocksPerSm;
  limit = std::min(limit, (kMaxThreadsPerSm / kWarpSize) / warps);
  if (k.num_regs) {
    int per_warp = int(align_up(uint64_t(k.num_regs) * kWarpSize, kRegAllocUnit));
    int warps_by_regs = (kRegsPerSm / per_warp) / 4 * 4;  // warps are given registers four at a time
    limit = std::min(limit, warps_by_regs / warps);
  }
  // Every resident block also holds the driver's reserved 1 KiB.
  uint64_t per_block = shared + uint64_t(kReservedSharedPerBlock);
  limit = std::min<int64_t>(limit, int64_t(uint64_t(kSharedPerSm) / per_block));
  return std::max(limit, 0);
}

namespace {

CUresult func_for(CUfunction h, std::shared_ptr<Function>& f) {
  Context* c;
  SIM_CHECK(current_context(&c));
  return resolve_function(h, c, f);
}

CUresult active_blocks(int* numBlocks, CUfunction func, int blockSize, size_t dynamicSMemSize, unsigned flags) {
  std::shared_ptr<Function> f;
  SIM_CHECK(func_for(func, f));
  if (!numBlocks || blockSize <= 0) return CUDA_ERROR_INVALID_VALUE;
  if (flags & ~unsigned(CU_OCCUPANCY_DISABLE_CACHING_OVERRIDE)) return CUDA_ERROR_INVALID_VALUE;
  *numBlocks = blocks_per_sm(*f->info, blockSize, dynamicSMemSize);
  return CUDA_SUCCESS;
}

CUresult potential_block_size(int* minGridSize, int* blockSize, CUfunction func, CUoccupancyB2DSize b2d,
                              size_t dynamicSMemSize, int blockSizeLimit, unsigned flags) {
  std::shared_ptr<Function> f;
  SIM_CHECK(func_for(func, f));
  if (!minGridSize || !blockSize || blockSizeLimit < 0) return CUDA_ERROR_INVALID_VALUE;
  if (flags & ~unsigned(CU_OCCUPANCY_DISABLE_CACHING_OVERRIDE)) return CUDA_ERROR_INVALID_VALUE;
  int fmax;
  SIM_CHECK(func_get_attribute(*f, CU_FUNC_ATTRIBUTE_MAX_THREADS_PER_BLOCK, fmax));
  int limit = blockSizeLimit ? std::min(blockSizeLimit, fmax) : fmax;
  int best_size = 0, best_occ = 0, best_blocks = 0;
  // From the largest size down, keeping the first best: ties go to larger blocks.
  for (int size = (limit / h100::kWarpSize) * h100::kWarpSize; size > 0; size -= h100::kWarpSize) {
    size_t dyn = b2d ? b2d(size) : dynamicSMemSize;
    int blocks = blocks_per_sm(*f->info, size, dyn);
    int occ = blocks * size;
    if (occ > best_occ) {
      best_occ = occ;
      best_size = size;
      best_blocks = blocks;
    }
    if (best_occ == h100::kMaxThreadsPerSm) break;
  }
  if (limit > 0 && limit < h100::kWarpSize && best_size == 0) {
    size_t dyn = b2d ? b2d(limit) : dynamicSMemSize;
    best_blocks = blocks_per_sm(*f->info, limit, dyn);
    if (best_blocks) best_size = limit;
  }
  *blockSize = best_size;
  *minGridSize = best_blocks * h100::kSmCount;
  return CUDA_SUCCESS;
}

}  // namespace

}  // namespace simgpu

using namespace simgpu;

extern "C" {

SIM_EXPORT CUresult CUDAAPI cuOccupancyMaxActiveBlocksPerMultiprocessor(int* numBlocks, CUfunction func,
                                                                        int blockSize, size_t dynamicSMemSize) {
  SIM_TRY return active_blocks(numBlocks, func, blockSize, dynamicSMemSize, 0);
  SIM_END
}

SIM_EXPORT CUresult CUDAAPI cuOccupancyMaxActiveBlocksPerMultiprocessorWithFlags(int* numBlocks, CUfunction func,
                                                                                 int blockSize, size_t dynamicSMemSize,
                                                                                 unsigned int flags) {
  SIM_TRY return active_blocks(numBlocks, func, blockSize, dynamicSMemSize, flags);
  SIM_END
}

SIM_EXPORT CUresult CUDAAPI cuOccupancyMaxPotentialBlockSize(int* minGridSize, int* blockSize, CUfunction func,
                                                             CUoccupancyB2DSize blockSizeToDynamicSMemSize,
                                                             size_t dynamicSMemSize, int blockSizeLimit) {
  SIM_TRY return potential_block_size(minGridSize, blockSize, func, blockSizeToDynamicSMemSize, dynamicSMemSize,
                                      blockSizeLimit, 0);
  SIM_END
}

SIM_EXPORT CUresult CUDAAPI cuOccupancyMaxPotentialBlockSizeWithFlags(int* minGridSize, int* blockSize,
                                                                      CUfunction func,
                                                                      CUoccupancyB2DSize blockSizeToDynamicSMemSize,
                                                                      size_t dynamicSMemSize, int blockSizeLimit,
                                                                      unsigned int flags) {
  SIM_TRY return potential_block_size(minGridSize, blockSize, func, blockSizeToDynamicSMemSize, dynamicSMemSize,
                                      blockSizeLimit, flags);
  SIM_END
}

SIM_EXPORT CUresult CUDAAPI cuOccupancyAvailableDynamicSMemPerBlock(size_t* dynamicSmemSize, CUfunction func,
                                                                    int numBlocks, int blockSize) {
  SIM_TRY
  std::shared_ptr<Function> f;
  SIM_CHECK(func_for(func, f));
  if (!dynamicSmemSize || numBlocks <= 0 || blockSize <= 0) return CUDA_ERROR_INVALID_VALUE;
  const auto& k = *f->info;
  // The block must fit by threads and registers at all; then shared memory decides.
  if (blocks_per_sm(k, blockSize, 0) < numBlocks) {
    *dynamicSmemSize = 0;
    return CUDA_SUCCESS;
  }
  int64_t per_block = int64_t(h100::kSharedPerSm) / numBlocks - h100::kReservedSharedPerBlock -
                      int64_t(k.static_shared_bytes);
  int64_t cap = int64_t(h100::kSharedPerBlockOptin) - int64_t(k.static_shared_bytes);
  *dynamicSmemSize = size_t(std::max<int64_t>(0, std::min(per_block, cap)));
  return CUDA_SUCCESS;
  SIM_END
}

}  // extern "C"
