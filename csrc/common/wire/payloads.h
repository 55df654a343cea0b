// Fixed layouts of the records of hand-written calls (CUSTOM entries and
// control records).  Shared by the shim and the proxy; sizes pinned by tests.
#pragma once
#include <cstdint>

namespace sing::wire {

// cuMemcpy* with a host side.
enum CopyMode : uint32_t {
  kCopyDirect = 0,        // both pointers are valid in the proxy (device or shared host memory)
  kCopyStagedFinish = 1,  // H2D chunks were sent as kOpStageH2D records; answer their first error
  kCopyStagedD2H = 2,     // the proxy streams the data back through the stage slots
};
struct CopyRequest {
  uint32_t mode;
  uint32_t chunk;   // kCopyStagedD2H: bytes per stage chunk, 1..kStageSlotBytes (the app picks); else 0
  uint64_t dst;
  uint64_t src;
  uint64_t bytes;
  uint64_t stream;  // the app's handle (async variants)
};
static_assert(sizeof(CopyRequest) == 40);

// kOpStageH2D: one filled stage slot to copy to the device.
struct StageChunk {
  uint16_t op;      // the driver op being served (legacy/per-thread, sync/async)
  uint16_t slot;
  uint32_t bytes;
  uint64_t dst;     // of this chunk
  uint64_t stream;
  // Where the chunk lies in the whole copy: the first chunk (offset 0) has the
  // whole destination checked, so that a copy running past its allocation
  // fails before any byte moves, as on a driver.
  uint64_t offset;
  uint64_t total;
};
static_assert(sizeof(StageChunk) == 40);

// cuLaunchKernel / cuLaunchCooperativeKernel / cuLaunchKernelEx.  Followed by
// `num_attrs` CUlaunchAttribute and then `param_bytes` of packed parameters.
struct LaunchRequest {
  uint64_t function;
  uint32_t grid[3];
  uint32_t block[3];
  uint32_t shared_bytes;
  uint32_t param_bytes;
  uint64_t stream;
  uint32_t num_attrs;
  uint32_t has_params;  // 0: the kernel takes no parameters (no buffer passed)
};
static_assert(sizeof(LaunchRequest) == 56);

// cuMemAllocHost, cuMemHostAlloc, cuMemAllocManaged, cuMemFreeHost: a block
// of the shared host range the proxy must register with (or drop from) its
// driver.
struct HostBlockRequest {
  uint64_t ptr;
  uint64_t bytes;
  uint32_t kind;   // 1 pinned, 2 managed
  uint32_t flags;
};
static_assert(sizeof(HostBlockRequest) == 24);

// Answer to kOpFunctionInfo: what the shim needs to pack and check launches.
struct FunctionInfo {
  uint32_t num_params;
  uint32_t param_bytes;          // end of the last parameter
  uint32_t max_threads;          // CU_FUNC_ATTRIBUTE_MAX_THREADS_PER_BLOCK
  uint32_t max_dynamic_shared;   // CU_FUNC_ATTRIBUTE_MAX_DYNAMIC_SHARED_SIZE_BYTES
  // followed by num_params pairs {offset, size} (uint32 each)
};
static_assert(sizeof(FunctionInfo) == 16);


}  // namespace sing::wire

namespace sing::wire {

// cuModuleLoad*, cuLibraryLoad*: the image and its options.  Followed by
// num_jit JitOption, num_lib JitOption (library options), then the image
// itself unless it was sent ahead as a blob (kOpBlobAppend).
struct ImageRequest {
  uint32_t from_blob;
  uint32_t num_jit;
  uint32_t num_lib;
  uint32_t reserved;
  uint64_t bytes;
};
static_assert(sizeof(ImageRequest) == 24);

// An option's value as an integer.  For the log buffers the value is the
// buffer's size: the proxy uses its own buffers and sends their text back.
struct JitOption {
  uint32_t option;
  uint32_t reserved;
  uint64_t value;
};
static_assert(sizeof(JitOption) == 16);

}  // namespace sing::wire

namespace sing::wire {

// cuMemcpy2D/3D/3DPeer: the descriptor follows, with any pageable host side
// already replaced by a staging buffer in the shared host range.
enum CopyShape : uint32_t { kCopy2D = 0, kCopy3D = 1, kCopy3DPeer = 2 };
struct ShapedCopyRequest {
  uint32_t shape;
  uint32_t sync_stream;  // a host side was staged: finish before answering
  uint64_t stream;       // the app's handle (async variants)
};
static_assert(sizeof(ShapedCopyRequest) == 16);

}  // namespace sing::wire
