// The pre-decoded program the interpreter runs.
//
// Every PTX instruction becomes one or a few `Inst`s whose handler is already
// specialised by opcode, type and modifiers.  Operands are byte offsets into
// the warp's register frame, where every register occupies 32 lanes side by
// side (a .b32 register is 128 contiguous bytes, a predicate is one 32-bit
// mask).  Immediates live in a constant region at the start of each frame,
// copied from the function's image when the frame is created, so handlers
// never distinguish registers from immediates.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "ptx/engine.h"

namespace simgpu::ptx {

struct Ctx;
struct Inst;

// Returns one of the kNext/kReload/kSuspend codes below.
using OpFn = int (*)(Ctx&, const Inst&, uint32_t mask);

enum : int {
  kNext = 0,     // continue with the next instruction
  kReload = 1,   // the handler changed pc/active/frame: reload warp state
  kSuspend = 2,  // leave the dispatch loop (barrier, yield, exit, fault)
};

constexpr uint32_t kNoPc = 0xFFFFFFFFu;

struct Inst {
  OpFn fn = nullptr;
  uint32_t o[6] = {0, 0, 0, 0, 0, 0};  // operand offsets in the frame
  uint32_t guard = 0;                  // offset of the guard predicate word
  uint32_t gxor = 0;                   // ~0u for @!p
  int64_t imm = 0;                     // address offset / immediate parameter
  uint32_t aux = 0;                    // handler specific
  uint32_t aux2 = 0;                   // handler specific
  uint32_t self = 0;                   // own index in Program code
  uint32_t src = 0;                    // index into ProgramIR::texts
};

// Frame offsets every function shares.
constexpr uint32_t kTrueWord = 0;      // always 0xFFFFFFFF: the guard of unguarded code
constexpr uint32_t kFrameAlign = 64;

// A relocation: the address of module variable `var` (+addend) broadcast
// into 32 lanes of 8 (or 4) bytes at `offset` of a function's constant image.
struct ConstReloc {
  uint32_t offset = 0;
  uint32_t var = 0;
  int64_t addend = 0;
  uint8_t width = 8;
};

struct Slot {
  uint32_t off = 0;    // frame offset
  uint32_t size = 0;   // bytes per lane
  uint32_t stride = 0; // bytes between lanes
};

struct FuncIR {
  std::string name;
  bool is_entry = false;
  bool is_builtin = false;          // vprintf, __assertfail (no code)
  bool defined = false;
  uint32_t entry_pc = kNoPc;        // first instruction
  uint32_t end_pc = kNoPc;          // one past the last instruction
  uint32_t exit_pc = kNoPc;         // the unique exit instruction
  uint32_t frame_size = kFrameAlign;
  std::vector<uint8_t> const_image; // frame bytes [0, const_image.size())
  std::vector<ConstReloc> relocs;
  uint32_t local_size = 0;          // .local bytes of one activation (per thread)
  std::vector<Slot> params, rets;   // callee-side parameter slots
  std::vector<uint32_t> decl_params, decl_rets;  // sizes as declared
  bool declared = false;
  std::vector<uint32_t> callees;    // functions called directly
  bool calls_indirect = false;
  bool address_taken = false;       // used as a value (function pointer)
  bool grid_sync = false;           // reads the grid-sync workspace (%envreg1/2)
  // Contains barriers, warp-synchronous collectives or calls: lanes of a warp
  // must not run ahead of their siblings here.
  bool lockstep = false;
  uint32_t num_regs = 0;            // 32-bit register units declared
  // Kernels only.
  uint32_t shared_top = 0;          // static shared bytes (module + kernel scope)
  uint32_t kparam_bytes = 0;
  std::vector<ParamInfo> kparams;
};

struct CallSite {
  uint32_t callee = kNoPc;          // function index; kNoPc for indirect calls
  uint32_t target_off = 0;          // indirect: frame offset of the address register
  std::vector<Slot> args;           // caller-side slots, in parameter order
  std::vector<Slot> rets;
};

// Stack reserve of kernels with recursive calls (lazily mapped memory).
constexpr uint64_t kRecursionLocal = 64u << 10;    // per thread
constexpr uint64_t kRecursionFrames = 4u << 20;    // register frames per warp

struct KernelIR {
  uint32_t func = 0;                // index into funcs
  uint32_t local_per_thread = 0;    // deepest call chain's .local bytes (+ stack reserve)
  uint32_t regstack_per_warp = 0;   // deepest chain of frames
  bool recursive = false;
};

// Module-scope variable relocation inside another variable's initializer:
// `.global .u64 p = generic(x)+4`.
struct DataReloc {
  uint32_t holder = 0;   // variable whose bytes hold the address
  uint64_t offset = 0;   // byte offset inside holder
  uint32_t target = 0;   // variable (or function when is_func) addressed
  bool is_func = false;
  int64_t addend = 0;
  uint8_t width = 8;
};

struct ProgramIR {
  std::vector<Inst> code;
  std::vector<std::string> texts;   // source text of instructions, "line N: text"
  std::vector<FuncIR> funcs;
  std::vector<CallSite> calls;
  std::vector<std::vector<uint32_t>> branch_tables;  // brx.idx targets (pcs)
  std::vector<KernelIR> kernel_ir;  // parallel to kernels
  std::vector<KernelInfo> kernels;
  std::vector<GlobalVar> globals;
  std::vector<DataReloc> data_relocs;
  uint32_t module_shared_bytes = 0;   // module-scope .shared (at offset 0 of every kernel)
  uint32_t dyn_shared_align = 16;     // alignment of the dynamic (extern) window
  uint32_t mem_sites = 0;            // number of address-range cache slots
};

}  // namespace simgpu::ptx
