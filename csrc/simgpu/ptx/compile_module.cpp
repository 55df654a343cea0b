// Module level of the compiler: variables and their initializers, function
// declarations, kernels' metadata from their call graphs.
#include <algorithm>
#include <cstring>

#include "ptx/compile.h"
#include "ptx/exec.h"
#include "ptx/fp.h"

namespace simgpu::ptx {

namespace {

uint32_t align_up(uint32_t v, uint32_t a) { return (v + a - 1) & ~(a - 1); }
constexpr uint64_t kMaxVar = uint64_t(1) << 36;

}  // namespace

// ---------------------------------------------------------------- module

namespace {

void write_le(std::vector<uint8_t>& buf, uint64_t off, uint64_t v, unsigned size) {
  for (unsigned i = 0; i < size; ++i) buf[off + i] = uint8_t(v >> (8 * i));
}

void layout_var(ModuleCtx& mc, const ast::VarDecl& d) {
  if (mc.vars.count(d.name) || mc.funcs.count(d.name))
    throw CompileError{d.line, "redeclaration of '" + d.name + "'"};
  if (d.type == Ty::None || d.type == Ty::Pred) throw CompileError{d.line, "bad variable type"};
  unsigned scalar = ty_size(d.type);
  uint64_t esize = uint64_t(scalar) * d.vec;
  bool unsized = std::find(d.dims.begin(), d.dims.end(), 0) != d.dims.end();
  uint64_t count = d.elem_count();
  if (unsized) {
    if (d.dims.size() != 1) throw CompileError{d.line, "unsupported multi-dimensional unsized array"};
    count = d.has_init ? (d.init.size() + d.vec - 1) / d.vec : 0;
  }
  uint64_t size = esize * count;
  if (size > kMaxVar) throw CompileError{d.line, "variable '" + d.name + "' is too large"};
  uint32_t align = d.align ? d.align : uint32_t(std::max<uint64_t>(1, esize));
  ModVar mv;
  mv.space = d.space;
  mv.size = size;
  mv.type = d.type;
  switch (d.space) {
    case ast::VarSpace::Shared: {
      if (d.has_init) throw CompileError{d.line, ".shared variables cannot be initialized"};
      if (d.is_extern || unsized) {
        mv.dyn_shared = true;
        mc.ir.dyn_shared_align = std::max(mc.ir.dyn_shared_align, align);
      } else {
        uint32_t off = align_up(mc.ir.module_shared_bytes, align);
        if (off + size > (1u << 30)) throw CompileError{d.line, "too much shared memory"};
        mv.shared_off = off;
        mc.ir.module_shared_bytes = uint32_t(off + size);
      }
      break;
    }
    case ast::VarSpace::Global:
    case ast::VarSpace::Const: {
      GlobalVar g;
      g.name = d.name;
      g.space = d.space == ast::VarSpace::Global ? Space::Global : Space::Const;
      g.size = size;
      g.align = align;
      g.is_extern = d.is_extern;
      uint32_t index = uint32_t(mc.ir.globals.size());
      if (d.has_init) {
        if (d.init.size() > count * d.vec)
          throw CompileError{d.line, "too many initializers for '" + d.name + "'"};
        if (size > (uint64_t(1) << 30)) throw CompileError{d.line, "initialized variable too large"};
        g.init.assign(size, 0);
        for (size_t i = 0; i < d.init.size(); ++i) {
          const ast::InitItem& it = d.init[i];
          uint64_t off = i * scalar;
          switch (it.kind) {
            case ast::InitItem::Int:
              if (ty_is_float(d.type))
                write_le(g.init, off, fp::encode_value(double(int64_t(it.ival)), d.type), scalar);
              else
                write_le(g.init, off, it.ival, scalar);
              break;
            case ast::InitItem::Float: {
              uint64_t bits;
              if (ty_is_float(d.type)) {
                if (it.f32_hex && d.type == Ty::F32) {
                  float f = float(it.fval);
                  uint32_t b;
                  std::memcpy(&b, &f, 4);
                  bits = b;
                } else {
                  bits = fp::encode_value(it.fval, d.type);
                }
              } else if (scalar == 4) {
                float f = float(it.fval);
                uint32_t b;
                std::memcpy(&b, &f, 4);
                bits = b;
              } else if (scalar == 8) {
                std::memcpy(&bits, &it.fval, 8);
              } else {
                throw CompileError{d.line, "floating-point initializer for ." + std::string(ty_name(d.type))};
              }
              write_le(g.init, off, bits, scalar);
              break;
            }
            case ast::InitItem::Addr: {
              if (scalar != 8 && scalar != 4)
                throw CompileError{d.line, "address initializer in a " + std::to_string(scalar) + "-byte element"};
              auto f = mc.funcs.find(it.sym);
              if (f != mc.funcs.end()) {
                write_le(g.init, off, kFuncWin + uint64_t(f->second) * 16 + uint64_t(it.offset), scalar);
                break;
              }
              auto v = mc.vars.find(it.sym);
              if (v == mc.vars.end() && it.sym != d.name)
                throw CompileError{d.line, "undeclared symbol '" + it.sym + "' in initializer"};
              uint32_t target = it.sym == d.name ? index : v->second.global;
              if (it.sym != d.name && v->second.space == ast::VarSpace::Shared)
                throw CompileError{d.line, "address of a .shared variable in an initializer"};
              DataReloc r;
              r.holder = index;
              r.offset = off;
              r.target = target;
              r.addend = it.offset;
              r.width = uint8_t(scalar);
              mc.ir.data_relocs.push_back(r);
              break;
            }
          }
        }
      }
      mc.ir.globals.push_back(std::move(g));
      mv.global = index;
      break;
    }
    default:
      throw CompileError{d.line, "unsupported module-scope variable '" + d.name + "'"};
  }
  mc.vars.emplace(d.name, mv);
}

struct ChainInfo {
  uint64_t local = 0, frames = 0, regs = 0;
  bool recursive = false, grid_sync = false;
};

// Deepest call chain from function f (memoised; cycles mark recursion).
ChainInfo chain(const ProgramIR& ir, uint32_t f, std::vector<int>& state, std::vector<ChainInfo>& memo) {
  if (state[f] == 2) return memo[f];
  if (state[f] == 1) {
    ChainInfo r;
    r.recursive = true;
    return r;
  }
  state[f] = 1;
  const FuncIR& fn = ir.funcs[f];
  ChainInfo best;
  std::vector<uint32_t> callees = fn.callees;
  if (fn.calls_indirect)
    for (uint32_t i = 0; i < ir.funcs.size(); ++i)
      if (ir.funcs[i].defined && !ir.funcs[i].is_entry && ir.funcs[i].address_taken) callees.push_back(i);
  for (uint32_t c : callees) {
    if (!ir.funcs[c].defined) continue;
    ChainInfo ci = chain(ir, c, state, memo);
    best.local = std::max(best.local, ci.local);
    best.frames = std::max(best.frames, ci.frames);
    best.regs = std::max(best.regs, ci.regs);
    best.recursive |= ci.recursive;
    best.grid_sync |= ci.grid_sync;
  }
  ChainInfo r;
  r.local = best.local + fn.local_size;
  r.frames = best.frames + fn.frame_size;
  r.regs = best.regs + fn.num_regs;
  r.recursive = best.recursive;
  r.grid_sync = best.grid_sync || fn.grid_sync;
  state[f] = 2;
  memo[f] = r;
  return r;
}

}  // namespace

void compile_module(const ast::Module& m, ProgramIR& ir) {
  if (m.address_size != 64) throw CompileError{0, "unsupported .address_size " + std::to_string(m.address_size)};
  ModuleCtx mc(m, ir);
  // Functions first: initializers may take their addresses.
  std::vector<int> def_of(m.funcs.size(), -1);
  for (size_t i = 0; i < m.funcs.size(); ++i) {
    const ast::Func& f = m.funcs[i];
    auto it = mc.funcs.find(f.name);
    uint32_t idx;
    if (it == mc.funcs.end()) {
      idx = uint32_t(ir.funcs.size());
      ir.funcs.emplace_back();
      ir.funcs.back().name = f.name;
      ir.funcs.back().is_entry = f.is_entry;
      mc.funcs[f.name] = idx;
    } else {
      idx = it->second;
      if (ir.funcs[idx].is_entry != f.is_entry)
        throw CompileError{f.line, "'" + f.name + "' declared both as .entry and .func"};
    }
    if (ir.funcs[idx].decl_params.empty() && ir.funcs[idx].decl_rets.empty()) {
      auto bytes = [](const ast::VarDecl& d) {
        uint64_t n = uint64_t(ty_size(d.type)) * d.vec * d.elem_count();
        return uint32_t(std::min<uint64_t>(n, UINT32_MAX));
      };
      for (const ast::VarDecl& d : f.params) ir.funcs[idx].decl_params.push_back(bytes(d));
      for (const ast::VarDecl& d : f.rets) ir.funcs[idx].decl_rets.push_back(bytes(d));
      ir.funcs[idx].declared = true;
    }
    if (f.has_body) {
      if (ir.funcs[idx].defined) throw CompileError{f.line, "redefinition of '" + f.name + "'"};
      ir.funcs[idx].defined = true;
      def_of[i] = int(idx);
    }
  }
  for (FuncIR& f : ir.funcs)
    if (!f.defined && (f.name == "vprintf" || f.name == "__assertfail")) f.is_builtin = true;
  for (const ast::VarDecl& d : m.vars) layout_var(mc, d);
  for (size_t i = 0; i < m.funcs.size(); ++i) {
    if (def_of[i] < 0) continue;
    FnCompiler fc(mc, m.funcs[i], uint32_t(def_of[i]));
    fc.compile();
  }
  // Kernels.
  std::vector<int> state(ir.funcs.size(), 0);
  std::vector<ChainInfo> memo(ir.funcs.size());
  for (size_t i = 0; i < m.funcs.size(); ++i) {
    if (def_of[i] < 0 || !m.funcs[i].is_entry) continue;
    const ast::Func& f = m.funcs[i];
    uint32_t idx = uint32_t(def_of[i]);
    const FuncIR& fir = ir.funcs[idx];
    std::fill(state.begin(), state.end(), 0);
    ChainInfo ci = chain(ir, idx, state, memo);
    KernelInfo k;
    k.name = f.name;
    k.params = fir.kparams;
    k.param_bytes = fir.kparam_bytes;
    k.static_shared_bytes = fir.shared_top;
    k.local_bytes = uint32_t(std::min<uint64_t>(ci.local, UINT32_MAX));
    k.num_regs = uint32_t(std::clamp<uint64_t>(ci.regs, 1, 255));
    if (f.maxntid[0]) k.max_threads_per_block = std::min<uint32_t>(1024, f.maxntid[0] * f.maxntid[1] * f.maxntid[2]);
    if (f.reqntid[0]) {
      k.reqntid = Dim3{f.reqntid[0], f.reqntid[1], f.reqntid[2]};
      k.max_threads_per_block = std::min<uint32_t>(k.max_threads_per_block, f.reqntid[0] * f.reqntid[1] * f.reqntid[2]);
    }
    k.min_ctas_per_sm = f.minnctapersm;
    k.uses_grid_sync = ci.grid_sync;
    KernelIR kir;
    kir.func = idx;
    kir.recursive = ci.recursive;
    // Recursion has no static bound: reserve generously (the memory is
    // mapped lazily, so only the depth actually reached costs anything).
    kir.local_per_thread = uint32_t(ci.local + (ci.recursive ? kRecursionLocal : 0));
    kir.regstack_per_warp = uint32_t(ci.frames + (ci.recursive ? kRecursionFrames : 0));
    ir.kernels.push_back(std::move(k));
    ir.kernel_ir.push_back(kir);
  }
}

}  // namespace simgpu::ptx
