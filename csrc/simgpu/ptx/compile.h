// Lowering of the parsed module to ProgramIR: symbol resolution, type checks,
// frame layout, and the per-instruction compilers (compile_*.cpp).
#pragma once

#include <cstdint>
#include <map>
#include <set>
#include <string>
#include <unordered_map>
#include <vector>

#include "ptx/ast.h"
#include "ptx/ir.h"
#include "ptx/types.h"

namespace simgpu::ptx {

struct CompileError {
  uint32_t line;
  std::string msg;
};

// Builds `ir` from `m`; throws CompileError.
void compile_module(const ast::Module& m, ProgramIR& ir);

// A module-scope variable.
struct ModVar {
  ast::VarSpace space;
  uint32_t global = kNoPc;     // index in ProgramIR::globals (.global/.const)
  uint32_t shared_off = 0;     // .shared: offset in every kernel's window
  bool dyn_shared = false;     // extern .shared: the dynamic window
  uint64_t size = 0;
  Ty type = Ty::None;
};

struct ModuleCtx {
  const ast::Module& m;
  ProgramIR& ir;
  std::unordered_map<std::string, ModVar> vars;
  std::unordered_map<std::string, uint32_t> funcs;  // name -> FuncIR index
  explicit ModuleCtx(const ast::Module& mod, ProgramIR& out) : m(mod), ir(out) {}
};

// What a name in a function body resolves to.
struct Sym {
  enum Kind : uint8_t {
    Reg,       // register: frame slot
    FParam,    // .param of a .func, or of a call sequence: frame slot with stride
    KParam,    // kernel .param: offset in the parameter buffer
    Shared,    // kernel-scope .shared: offset in the block window
    Local,     // .local: offset in the activation's local frame
  };
  Kind kind = Reg;
  Ty type = Ty::None;
  uint32_t off = 0;     // frame offset (Reg, FParam) or space offset
  uint32_t size = 0;    // bytes per lane (0 for predicates)
  uint32_t stride = 0;  // FParam lane stride
};

// A memory operand after resolution.
struct MemRef {
  enum Base : uint8_t { RegAddr, Var, KParam, FParam, Local, Shared, DynShared, Abs };
  Base base = Abs;
  uint32_t reg = 0;          // RegAddr: frame offset of the address register
  bool reg64 = true;         // RegAddr: width of that register
  uint32_t var = 0;          // Var: ProgramIR::globals index
  const Sym* sym = nullptr;  // FParam/KParam/Local/Shared
  uint32_t shared_off = 0;   // Shared (module or kernel scope)
  int64_t off = 0;
};

// Modifier list of one instruction; compilers take what they understand and
// finish with done(), which rejects anything left over.
class Mods {
 public:
  explicit Mods(const std::vector<std::string>& v) : v_(v), used_(v.size(), false) {}
  bool take(const char* m);
  bool take_any(std::initializer_list<const char*> ms, std::string* which = nullptr);
  Ty take_type();                  // first type modifier, None when absent
  Rnd take_rnd();
  uint32_t take_vec();             // 1 when absent
  // Cache, eviction and prefetch hints that do not change results.
  void drop_hints();
  // .relaxed/.acquire/.release/.acq_rel/.volatile/.weak/.mmio/.sc; returns true
  // when the access must be atomic with respect to other threads.
  bool take_sem(std::string* which = nullptr);
  void take_scope();               // .cta/.cluster/.gpu/.sys
  std::string leftover() const;    // first unconsumed modifier, empty when none
 private:
  const std::vector<std::string>& v_;
  std::vector<bool> used_;
};

class FnCompiler {
 public:
  FnCompiler(ModuleCtx& mc, const ast::Func& f, uint32_t index);
  void compile();

  // ---- used by the instruction compilers ----
  ModuleCtx& mc;
  const ast::Func& fn;
  FuncIR& out;
  uint32_t findex;
  bool is_kernel;
  const ast::Instr* cur = nullptr;   // instruction being compiled

  [[noreturn]] void fail(const std::string& msg) const;
  [[noreturn]] void unsupported(const std::string& why = {}) const;
  void finish_mods(const Mods& m) const;
  void want_ops(size_t n) const;
  void want_ops(size_t lo, size_t hi) const;

  const Sym* lookup(const std::string& name) const;
  const Sym& reg(const ast::Operand& o) const;  // a register operand

  // Operand slots.  `t` is the type the instruction reads/writes.
  uint32_t src(const ast::Operand& o, Ty t);
  uint32_t dst(const ast::Operand& o, Ty t);
  uint32_t src_pred(const ast::Operand& o, bool* neg = nullptr);
  uint32_t dst_pred(const ast::Operand& o);
  // ld/st/cvt allow registers wider than the instruction type: these insert
  // the narrowing/widening moves and return a slot of exactly type t.
  uint32_t src_relaxed(const ast::Operand& o, Ty t);
  uint32_t dst_relaxed(const ast::Operand& o, Ty t);
  void flush_post();                  // emits the widening moves of dst_relaxed
  uint32_t const_slot(uint64_t bits, unsigned size);
  uint32_t addr_const(uint32_t var, int64_t addend, unsigned size);
  uint32_t temp(unsigned size);       // fresh scratch slot (size 0: predicate)
  uint64_t imm_bits(const ast::Operand& o, Ty t) const;  // literal converted to t
  bool is_imm(const ast::Operand& o) const {
    return o.kind == ast::Operand::Int || o.kind == ast::Operand::Float;
  }

  MemRef mem(const ast::Operand& o);
  // Address of `r` in a register slot of the given width (materialising
  // symbol and runtime-relative bases); returns the slot, offset goes to off.
  uint32_t addr_reg(const MemRef& r, unsigned width, int64_t& off);

  Inst& emit(OpFn fn);                 // guard taken from `cur`
  Inst& emit_unguarded(OpFn fn);
  uint32_t pc() const { return uint32_t(mc.ir.code.size()); }
  uint32_t site() { return mc.ir.mem_sites++; }

  // Control flow bookkeeping for reconvergence analysis.
  enum class Flow : uint8_t { Normal, Branch, Table, Exit, Call };
  void mark_flow(uint32_t pc, Flow f, uint32_t target_or_table = 0);
  void branch_to(Inst& in, const std::string& label);   // fills aux with target pc
  uint32_t call_site_new() {
    mc.ir.calls.emplace_back();
    my_calls_.push_back(uint32_t(mc.ir.calls.size() - 1));
    return my_calls_.back();
  }
  bool has_proto(const std::string& name) const { return protos_.count(name) != 0; }
  static constexpr const char* kExitLabel = "\x01exit";
  Ty cc_type() const { return Ty::B32; }
  uint32_t cc_slot();                  // carry flag slot (per lane)
  uint32_t table_index(const std::string& label) const;

 private:
  struct Scope {
    std::unordered_map<std::string, Sym> syms;
  };
  std::vector<Scope> scopes_;
  std::unordered_map<std::string, uint32_t> labels_;
  std::unordered_map<std::string, std::vector<uint32_t>> tables_;   // .branchtargets
  std::vector<std::pair<uint32_t, std::string>> fixups_;  // inst index -> label
  std::vector<std::pair<uint32_t, std::string>> table_fixups_;
  std::vector<std::pair<uint32_t, uint32_t>> post_;       // (narrow temp, wide reg) pending widen
  std::vector<std::pair<Ty, Ty>> post_types_;
  std::map<std::pair<uint64_t, unsigned>, uint32_t> consts_;
  std::map<std::tuple<uint32_t, int64_t, unsigned>, uint32_t> addr_consts_;
  struct FlowInfo { Flow f; uint32_t t; };
  std::unordered_map<uint32_t, FlowInfo> flow_;
  uint32_t const_top_ = 4;   // after the always-true word
  uint32_t reg_top_ = 0;     // register space (biased later)
  uint32_t local_top_ = 0;
  uint32_t cc_ = kNoPc;
  uint32_t shared_top_ = 0;
  uint32_t kparam_top_ = 0;
  std::vector<ParamInfo> kparams_;
  std::vector<uint32_t> my_calls_;
  std::set<std::string> protos_;
  uint32_t first_pc_ = 0;
  std::vector<uint8_t> image_;
  uint32_t reg_units_ = 0;

  void declare(const ast::VarDecl& d, bool is_param_list, bool is_ret);
  uint32_t alloc_reg(uint32_t bytes, uint32_t align);
  void instruction(const ast::Instr& in);
  void finalize();
};

// Per-family registration of instruction compilers.
using CompileFn = void (*)(FnCompiler&, const ast::Instr&);
using CompileTable = std::unordered_map<std::string, CompileFn>;
void register_alu(CompileTable& t);
void register_mem(CompileTable& t);
void register_ctrl(CompileTable& t);
void register_warp(CompileTable& t);
void register_async(CompileTable& t);

// Compute immediate post-dominators and set aux2 (reconvergence pc) of every
// branch of the function [begin, end) whose unique exit is `exit_pc`.
void compute_reconvergence(ProgramIR& ir, uint32_t begin, uint32_t end, uint32_t exit_pc,
                           const std::vector<uint8_t>& kind, const std::vector<uint32_t>& target);

// Frame offsets in register space carry this bit until the frame is laid out.
constexpr uint32_t kRegSpace = 0x80000000u;

}  // namespace simgpu::ptx
