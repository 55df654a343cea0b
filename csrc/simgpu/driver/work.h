// Units of device work.  An entry point describes its work as a Work value;
// a stream runs it (exec.cpp), stream capture turns it into a graph node
// (capture.cpp), and a graph node holds one (graph.cpp).  Keeping one
// description for all three is what makes captured and explicit graphs
// behave exactly like the stream calls they stand for.
#pragma once

#include "core.h"
#include "ptx/engine.h"

#include <cstring>

#include <variant>
#include <vector>

namespace simgpu {

struct Function;
struct Event;
struct Stream;
struct Context;
struct Graph;
struct MemPool;

// A kernel's packed parameters: inline up to 128 bytes (most kernels), so a
// launch allocates nothing for them.  16-byte aligned, as the .param space is.
class ParamBuffer {
 public:
  ParamBuffer() = default;
  ParamBuffer(const ParamBuffer& o) { copy_from(o); }
  ParamBuffer& operator=(const ParamBuffer& o) {
    if (this != &o) copy_from(o);
    return *this;
  }
  ParamBuffer(ParamBuffer&& o) noexcept { move_from(o); }
  ParamBuffer& operator=(ParamBuffer&& o) noexcept {
    if (this != &o) move_from(o);
    return *this;
  }
  // Resizes to n zero bytes.
  void assign(size_t n, uint8_t = 0) {
    heap_.reset();
    size_ = uint32_t(n);
    if (n > kInline) heap_.reset(new uint8_t[n]);
    std::memset(data(), 0, n);
  }
  uint8_t* data() { return heap_ ? heap_.get() : inline_; }
  const uint8_t* data() const { return heap_ ? heap_.get() : inline_; }
  size_t size() const { return size_; }

 private:
  static constexpr size_t kInline = 128;
  void copy_from(const ParamBuffer& o) {
    assign(o.size_);
    std::memcpy(data(), o.data(), o.size_);
  }
  void move_from(ParamBuffer& o) {
    size_ = o.size_;
    heap_ = std::move(o.heap_);
    if (!heap_) std::memcpy(inline_, o.inline_, size_);
    o.size_ = 0;
  }
  uint32_t size_ = 0;
  std::unique_ptr<uint8_t[]> heap_;
  alignas(16) uint8_t inline_[kInline];
};

struct KernelWork {
  std::shared_ptr<Function> fn;  // keeps its module (program, globals) alive
  ptx::Dim3 grid, block;
  uint32_t shared_bytes = 0;
  bool cooperative = false;
  ParamBuffer params;            // packed, KernelInfo::param_bytes
};

// A strided 3D copy between addresses of this process (device addresses are
// host addresses here).  1D copies have height = depth = 1.
struct CopyWork {
  uint64_t dst = 0, src = 0;
  uint64_t width = 0, height = 1, depth = 1;  // bytes, rows, slices
  uint64_t dst_pitch = 0, dst_slice = 0;      // bytes between rows / slices
  uint64_t src_pitch = 0, src_slice = 0;
  // Pageable host source copied aside at enqueue time: like CUDA, the caller
  // may reuse its buffer as soon as the call returns.
  std::shared_ptr<std::vector<uint8_t>> staged;
};

struct MemsetWork {
  uint64_t dst = 0;
  uint64_t pitch = 0;      // bytes between rows
  uint32_t value = 0;
  uint32_t elem = 1;       // 1, 2 or 4 bytes
  uint64_t width = 0;      // elements per row
  uint64_t height = 1;
};

struct HostWork {
  CUhostFn fn = nullptr;
  void* user = nullptr;
};

struct CallbackWork {  // cuStreamAddCallback: also runs after a fault, with the error
  CUstreamCallback fn = nullptr;
  void* user = nullptr;
  CUstream handle = nullptr;
};

struct EventRecordWork {
  std::shared_ptr<Event> event;
  uint64_t gen = 0;   // stream path: which record this is; graph path: 0 = record at execution
};

struct EventWaitWork {  // graph nodes only: waits for the event's last record at execution
  std::shared_ptr<Event> event;
};

struct WaitWork {  // wait for another stream to reach a point
  std::shared_ptr<Stream> stream;
  uint64_t seq = 0;
};

struct MemValueWork {  // cuStreamWriteValue* / cuStreamWaitValue*
  uint64_t addr = 0;
  uint64_t value = 0;
  bool wait = false;
  bool is64 = false;
  unsigned flags = 0;
};

struct PoolFreeWork {  // cuMemFreeAsync reaching its point in the stream
  std::shared_ptr<MemPool> pool;
  uint64_t addr = 0;
  uint64_t gen = 0;  // the block's generation when freed (a reuse since then makes this a no-op)
};

struct GraphMemWork {  // graph mem alloc / free nodes: memory is owned by the graph
  uint64_t addr = 0;
  uint64_t size = 0;
  bool alloc = true;
};

struct GraphBody;
struct GraphBodyWork {  // an instantiated graph run as one unit of stream work
  std::shared_ptr<const GraphBody> body;
};

struct EmptyWork {};

using Work = std::variant<EmptyWork, KernelWork, CopyWork, MemsetWork, HostWork, CallbackWork, EventRecordWork,
                          EventWaitWork, WaitWork, MemValueWork, PoolFreeWork, GraphMemWork, GraphBodyWork>;

// Runs one unit of work on a stream worker (or inline on the caller when the
// stream is idle).  Kernel faults become the context's sticky error.
void execute(Work& w, Stream& s);
// What the work is when the context already has a sticky error: most work is
// dropped; callbacks still run and are told the error.
void abandon(Work& w, Stream& s, CUresult err);

}  // namespace simgpu
