// The PTX engine: loads PTX text and runs its kernels on the CPU.
//
// This header is the whole contract between the simulated driver
// (csrc/simgpu/driver) and the interpreter (csrc/simgpu/ptx).  The driver owns
// memory, streams and ordering; the engine owns parsing, validation and
// execution of one launch at a time per caller (several callers may run
// launches concurrently; the engine shares its worker threads among them).
//
// Address model: in libsimgpu a device address IS a host virtual address in
// the process that runs the simulator (device memory, mapped host memory and
// managed memory are all mmap'ed there).  A kernel may touch only the ranges
// the driver passes in `Launch::memory`; anything else is an illegal address,
// detected before the access, so a faulty kernel never crashes the process.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

namespace simgpu::ptx {

struct Dim3 {
  uint32_t x = 1, y = 1, z = 1;
  uint64_t count() const { return uint64_t(x) * y * z; }
};

// One kernel parameter in the packed parameter buffer (PTX .param layout:
// declaration order, each aligned to its .align or natural alignment).
struct ParamInfo {
  uint32_t offset = 0;
  uint32_t size = 0;
  uint32_t align = 1;
};

struct KernelInfo {
  std::string name;
  std::vector<ParamInfo> params;
  uint32_t param_bytes = 0;           // size of the packed buffer
  uint32_t static_shared_bytes = 0;   // .shared variables of the kernel and module
  uint32_t local_bytes = 0;           // .local per thread
  uint32_t num_regs = 0;              // what cuFuncGetAttribute(NUM_REGS) reports
  uint32_t max_threads_per_block = 1024;  // from .maxntid, else the device limit
  Dim3 reqntid{0, 0, 0};              // .reqntid, zeros when absent
  uint32_t min_ctas_per_sm = 0;       // .minnctapersm, 0 when absent
  bool uses_grid_sync = false;        // needs a cooperative launch to be correct
};

enum class Space : uint8_t { Global, Const };

// A module-scope .global or .const variable.  The driver allocates device
// memory for it (size/align), copies `init` there (zero-filled past its end),
// and reports the address with Program::bind_global before any launch.
// Copy `init` before binding: initializers holding the address of another
// variable (`.u64 p = generic(x)`) are written into that memory by
// bind_global once both variables are bound.
struct GlobalVar {
  std::string name;
  Space space = Space::Global;
  uint64_t size = 0;
  uint32_t align = 1;
  std::vector<uint8_t> init;
  bool is_extern = false;
};

// Memory a launch may touch: sorted, disjoint [begin, end) ranges.  The arrays
// stay valid and unchanged until run() returns.
struct MemoryView {
  const uint64_t* begin = nullptr;
  const uint64_t* end = nullptr;
  std::size_t count = 0;
};

enum class Fault : uint8_t {
  None,
  IllegalAddress,      // -> CUDA_ERROR_ILLEGAL_ADDRESS
  MisalignedAddress,   // -> CUDA_ERROR_MISALIGNED_ADDRESS
  IllegalInstruction,  // -> CUDA_ERROR_ILLEGAL_INSTRUCTION
  Trap,                // trap / brkpt / failed assert -> CUDA_ERROR_ASSERT (assert) or LAUNCH_FAILED
  Assert,              // __assertfail -> CUDA_ERROR_ASSERT
  LaunchFailed,        // anything else -> CUDA_ERROR_LAUNCH_FAILED
};

struct Outcome {
  Fault fault = Fault::None;
  uint64_t address = 0;   // faulting address, when there is one
  std::string detail;     // human-readable: kernel, block, thread, instruction
};

class Program;

struct Launch {
  const Program* program = nullptr;
  int kernel = -1;                    // index into program->kernels()
  Dim3 grid, block;
  uint32_t dynamic_shared_bytes = 0;
  const uint8_t* params = nullptr;    // KernelInfo::param_bytes bytes
  bool cooperative = false;           // grid-wide sync allowed; all blocks co-resident
  MemoryView memory;
  uint32_t sm_count = 132;            // for %nsmid / %smid
  int device_ordinal = 0;
};

class Program {
 public:
  virtual ~Program() = default;

  // Parses and validates `ptx`.  On failure returns null and sets `error` to a
  // message naming the line and, for unsupported PTX, the instruction.
  static std::unique_ptr<Program> load(std::string_view ptx, std::string& error);

  virtual const std::vector<KernelInfo>& kernels() const = 0;
  virtual const std::vector<GlobalVar>& globals() const = 0;
  virtual int find_kernel(std::string_view name) const = 0;   // -1 when absent
  virtual int find_global(std::string_view name) const = 0;   // -1 when absent
  virtual void bind_global(int index, uint64_t address) = 0;

  // Runs the whole grid and returns when every thread has exited or the
  // launch faulted.  Thread-safe: launches of the same Program may run
  // concurrently (from different streams).
  virtual Outcome run(const Launch& launch) const = 0;
};

// Worker threads the engine runs blocks on (default: hardware concurrency,
// SINGULARITY_SIM_THREADS overrides).  Exposed for tests and benchmarks.
unsigned worker_count();

// Thread-instructions executed by this process so far (for the benchmark).
uint64_t instructions_retired();

}  // namespace simgpu::ptx
