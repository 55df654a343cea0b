// Function level of the compiler: symbol tables, frame layout, operand
// resolution, emission.  The module level is in compile_module.cpp and the
// instruction families in compile_{alu,mem,ctrl,async}.cpp.
#include "ptx/compile.h"

#include <algorithm>
#include <cassert>
#include <cmath>
#include <cstring>
#include <functional>
#include <set>

#include "ptx/exec.h"
#include "ptx/fp.h"
#include "ptx/ops.h"

namespace simgpu::ptx {

namespace {

uint32_t align_up(uint32_t v, uint32_t a) { return (v + a - 1) & ~(a - 1); }

// Per-frame and per-warp limits that keep a hostile module from asking for
// absurd amounts of memory.
constexpr uint32_t kMaxFrame = 8u << 20;

const CompileTable& table() {
  static const CompileTable t = [] {
    CompileTable t;
    register_alu(t);
    register_mem(t);
    register_ctrl(t);
    register_warp(t);
    register_async(t);
    return t;
  }();
  return t;
}

bool compatible(Ty inst, Ty reg) {
  if (inst == Ty::Pred || reg == Ty::Pred) return inst == reg;
  if (ty_size(inst) != ty_size(reg)) return false;
  TyKind ki = ty_kind(inst), kr = ty_kind(reg);
  if (ki == TyKind::Bits || kr == TyKind::Bits) return true;
  if (ki == TyKind::Float) return kr == TyKind::Float;
  return kr == TyKind::Unsigned || kr == TyKind::Signed;
}

}  // namespace

// ---------------------------------------------------------------- Mods

bool Mods::take(const char* m) {
  for (size_t i = 0; i < v_.size(); ++i)
    if (!used_[i] && v_[i] == m) {
      used_[i] = true;
      return true;
    }
  return false;
}

bool Mods::take_any(std::initializer_list<const char*> ms, std::string* which) {
  for (size_t i = 0; i < v_.size(); ++i) {
    if (used_[i]) continue;
    for (const char* m : ms)
      if (v_[i] == m) {
        used_[i] = true;
        if (which) *which = m;
        return true;
      }
  }
  return false;
}

Ty Mods::take_type() {
  for (size_t i = 0; i < v_.size(); ++i) {
    if (used_[i]) continue;
    Ty t = ty_parse(v_[i]);
    if (t != Ty::None) {
      used_[i] = true;
      return t;
    }
  }
  return Ty::None;
}

Rnd Mods::take_rnd() {
  static const struct { const char* n; Rnd r; } k[] = {
      {".rn", Rnd::RN},   {".rz", Rnd::RZ},   {".rm", Rnd::RM},   {".rp", Rnd::RP},
      {".rna", Rnd::RNA}, {".rni", Rnd::RNI}, {".rzi", Rnd::RZI}, {".rmi", Rnd::RMI},
      {".rpi", Rnd::RPI},
  };
  for (auto& e : k)
    if (take(e.n)) return e.r;
  return Rnd::None;
}

uint32_t Mods::take_vec() {
  if (take(".v2")) return 2;
  if (take(".v4")) return 4;
  return 1;
}

void Mods::drop_hints() {
  for (size_t i = 0; i < v_.size(); ++i) {
    if (used_[i]) continue;
    const std::string& s = v_[i];
    if (s == ".ca" || s == ".cg" || s == ".cs" || s == ".lu" || s == ".cv" || s == ".wb" ||
        s == ".wt" || s == ".nc" || s.rfind(".L1::", 0) == 0 || s.rfind(".L2::", 0) == 0 ||
        s == ".unified" || s.rfind(".level::", 0) == 0)
      used_[i] = true;
  }
}

bool Mods::take_sem(std::string* which) {
  std::string w;
  bool atomic = false;
  if (take_any({".volatile", ".relaxed", ".acquire", ".release", ".acq_rel", ".sc", ".mmio"}, &w))
    atomic = true;
  if (take(".weak")) w = ".weak";
  if (which) *which = w;
  return atomic;
}

void Mods::take_scope() { take_any({".cta", ".cluster", ".gpu", ".sys"}); }

std::string Mods::leftover() const {
  for (size_t i = 0; i < v_.size(); ++i)
    if (!used_[i]) return v_[i];
  return {};
}

// ---------------------------------------------------------------- FnCompiler

FnCompiler::FnCompiler(ModuleCtx& m, const ast::Func& f, uint32_t index)
    : mc(m), fn(f), out(m.ir.funcs[index]), findex(index), is_kernel(f.is_entry) {}

void FnCompiler::fail(const std::string& msg) const {
  uint32_t line = cur ? cur->line : fn.line;
  throw CompileError{line, msg};
}

void FnCompiler::unsupported(const std::string& why) const {
  std::string t = cur ? cur->text : std::string("?");
  fail("unsupported instruction '" + t + "'" + (why.empty() ? "" : " (" + why + ")"));
}

void FnCompiler::finish_mods(const Mods& m) const {
  std::string l = m.leftover();
  if (!l.empty()) unsupported("modifier " + l);
}

void FnCompiler::want_ops(size_t n) const { want_ops(n, n); }
void FnCompiler::want_ops(size_t lo, size_t hi) const {
  size_t n = cur->ops.size();
  if (n < lo || n > hi)
    fail("wrong number of operands for '" + cur->op + "' (" + std::to_string(n) + ")");
}

const Sym* FnCompiler::lookup(const std::string& name) const {
  for (auto it = scopes_.rbegin(); it != scopes_.rend(); ++it) {
    auto f = it->syms.find(name);
    if (f != it->syms.end()) return &f->second;
  }
  return nullptr;
}

const Sym& FnCompiler::reg(const ast::Operand& o) const {
  if (o.kind != ast::Operand::Name) fail("expected a register operand");
  const Sym* s = lookup(o.name);
  if (!s) fail("undeclared register '" + o.name + "'");
  if (s->kind != Sym::Reg) fail("'" + o.name + "' is not a register");
  if (o.ival != 0) fail("offset on register '" + o.name + "'");
  return *s;
}

uint32_t FnCompiler::alloc_reg(uint32_t bytes, uint32_t align) {
  reg_top_ = align_up(reg_top_, align);
  uint32_t off = reg_top_;
  reg_top_ += bytes;
  if (reg_top_ > kMaxFrame) fail("function '" + fn.name + "' needs too many registers");
  return off | kRegSpace;
}

uint32_t FnCompiler::temp(unsigned size) {
  if (size == 0) return alloc_reg(4, 4);
  return alloc_reg(32 * size, 32);
}

uint32_t FnCompiler::cc_slot() {
  if (cc_ == kNoPc) cc_ = temp(4);
  return cc_;
}

uint32_t FnCompiler::const_slot(uint64_t bits, unsigned size) {
  if (size < 8) bits &= (uint64_t(1) << (8 * size)) - 1;
  auto key = std::make_pair(bits, size);
  auto it = consts_.find(key);
  if (it != consts_.end()) return it->second;
  const_top_ = align_up(const_top_, 32);
  uint32_t off = const_top_;
  const_top_ += 32 * size;
  if (const_top_ > kMaxFrame) fail("too many constants");
  image_.resize(const_top_, 0);
  for (int l = 0; l < 32; ++l) std::memcpy(&image_[off + l * size], &bits, size);
  consts_[key] = off;
  return off;
}

uint32_t FnCompiler::addr_const(uint32_t var, int64_t addend, unsigned size) {
  auto key = std::make_tuple(var, addend, size);
  auto it = addr_consts_.find(key);
  if (it != addr_consts_.end()) return it->second;
  const_top_ = align_up(const_top_, 32);
  uint32_t off = const_top_;
  const_top_ += 32 * size;
  image_.resize(const_top_, 0);
  out.relocs.push_back(ConstReloc{off, var, addend, uint8_t(size)});
  addr_consts_[key] = off;
  return off;
}

uint64_t FnCompiler::imm_bits(const ast::Operand& o, Ty t) const {
  unsigned size = ty_size(t);
  if (o.kind == ast::Operand::Int) {
    if (ty_is_float(t)) {
      // Integer literals in floating-point instructions denote the value.
      double v = double(o.ival);
      return fp::encode_value(v, t);
    }
    return uint64_t(o.ival);
  }
  if (o.kind == ast::Operand::Float) {
    if (ty_is_float(t)) {
      if (o.f32_hex && t == Ty::F32) {
        float f = float(o.fval);
        uint32_t b;
        std::memcpy(&b, &f, 4);
        return b;
      }
      return fp::encode_value(o.fval, t);
    }
    // A floating literal in a bit-size instruction stands for its bits.
    if (size == 4) {
      float f = float(o.fval);
      uint32_t b;
      std::memcpy(&b, &f, 4);
      return b;
    }
    if (size == 8) {
      uint64_t b;
      std::memcpy(&b, &o.fval, 8);
      return b;
    }
    fail("floating-point literal for a " + std::string(ty_name(t)) + " operand");
  }
  fail("expected a literal");
}

uint32_t FnCompiler::src(const ast::Operand& o, Ty t) {
  using K = ast::Operand;
  switch (o.kind) {
    case K::Int:
    case K::Float:
      if (t == Ty::Pred) fail("literal used as predicate");
      if (ty_size(t) > 8) fail("literal for a 128-bit operand");
      return const_slot(imm_bits(o, t), ty_size(t));
    case K::Name: {
      if (o.neg) fail("'!' is only allowed on predicate operands");
      const Sym* s = lookup(o.name);
      if (s && s->kind == Sym::Reg) {
        if (o.ival) fail("offset on register '" + o.name + "'");
        if (!compatible(t, s->type))
          fail("operand '" + o.name + "' has type ." + ty_name(s->type) + ", instruction expects ." +
               ty_name(t));
        return s->off;
      }
      if (!s && o.name[0] == '%' && sreg_id(o.name.c_str()) >= 0) {
        uint32_t tmp = temp(ty_size(t));
        OpFn f = sel_sreg(unsigned(sreg_id(o.name.c_str())), ty_size(t));
        if (!f) fail("special register " + o.name + " read as ." + ty_name(t));
        Inst& in = emit(f);
        in.o[0] = tmp;
        in.aux = unsigned(sreg_id(o.name.c_str()));
        in.aux2 = ty_size(t);
        if (o.name.rfind("%envreg", 0) == 0) out.grid_sync = true;
        return tmp;
      }
      // Address of a symbol.
      if (!ty_is_int(t) || (ty_size(t) != 8 && ty_size(t) != 4))
        fail("symbol '" + o.name + "' used as a ." + ty_name(t) + " value");
      ast::Operand m = o;
      m.kind = K::Mem;
      MemRef r = mem(m);
      if (r.base == MemRef::RegAddr) fail("unexpected register");
      int64_t off = 0;
      uint32_t base = addr_reg(r, ty_size(t), off);
      if (off == 0) return base;
      uint32_t tmp = temp(ty_size(t));
      Inst& in = emit(sel_int(IOp::Add, ty_size(t) == 8 ? Ty::U64 : Ty::U32));
      in.o[0] = tmp;
      in.o[1] = base;
      in.o[2] = const_slot(uint64_t(off), ty_size(t));
      return tmp;
    }
    case K::Sink:
      fail("'_' used as a source operand");
    default:
      fail("unexpected operand shape for '" + cur->op + "'");
  }
}

uint32_t FnCompiler::dst(const ast::Operand& o, Ty t) {
  if (o.kind == ast::Operand::Sink) return temp(t == Ty::Pred ? 0 : ty_size(t));
  const Sym& s = reg(o);
  if (o.neg) fail("'!' on a destination");
  if (!compatible(t, s.type))
    fail("operand '" + o.name + "' has type ." + ty_name(s.type) + ", instruction expects ." +
         ty_name(t));
  return s.off;
}

uint32_t FnCompiler::src_pred(const ast::Operand& o, bool* neg) {
  if (o.kind == ast::Operand::Int) {
    // A literal predicate (mov.pred %p, 0): a constant mask word.
    if (neg) *neg = false;
    return const_slot(o.ival ? 0xffffffffu : 0u, 4);
  }
  if (o.kind != ast::Operand::Name) fail("expected a predicate operand");
  const Sym* s = lookup(o.name);
  if (!s) fail("undeclared register '" + o.name + "'");
  if (s->kind != Sym::Reg || s->type != Ty::Pred) fail("'" + o.name + "' is not a predicate");
  if (neg) *neg = o.neg;
  else if (o.neg) fail("'!' not allowed here");
  return s->off;
}

uint32_t FnCompiler::dst_pred(const ast::Operand& o) {
  if (o.kind == ast::Operand::Sink) return temp(0);
  return src_pred(o, nullptr);
}

uint32_t FnCompiler::src_relaxed(const ast::Operand& o, Ty t) {
  if (o.kind != ast::Operand::Name) return src(o, t);
  const Sym* s = lookup(o.name);
  if (!s || s->kind != Sym::Reg || s->type == Ty::Pred || t == Ty::Pred) return src(o, t);
  unsigned rs = ty_size(s->type), ts = ty_size(t);
  if (rs <= ts) return src(o, t);
  TyKind ki = ty_kind(t), kr = ty_kind(s->type);
  bool ok = ki == TyKind::Bits || kr == TyKind::Bits || (ki == TyKind::Float) == (kr == TyKind::Float);
  if (!ok) fail("operand '" + o.name + "' has type ." + ty_name(s->type) + ", instruction expects ." + ty_name(t));
  uint32_t tmp = temp(ts);
  Inst& in = emit(sel_resize(ts, rs, false));
  in.o[0] = tmp;
  in.o[1] = s->off;
  return tmp;
}

uint32_t FnCompiler::dst_relaxed(const ast::Operand& o, Ty t) {
  if (o.kind != ast::Operand::Name) return dst(o, t);
  const Sym* s = lookup(o.name);
  if (!s || s->kind != Sym::Reg || s->type == Ty::Pred || t == Ty::Pred) return dst(o, t);
  unsigned rs = ty_size(s->type), ts = ty_size(t);
  if (rs <= ts) return dst(o, t);
  TyKind ki = ty_kind(t), kr = ty_kind(s->type);
  bool ok = ki == TyKind::Bits || kr == TyKind::Bits || (ki == TyKind::Float) == (kr == TyKind::Float);
  if (!ok) fail("operand '" + o.name + "' has type ." + ty_name(s->type) + ", instruction expects ." + ty_name(t));
  uint32_t tmp = temp(ts);
  post_.push_back({tmp, s->off});
  post_types_.push_back({t, s->type});
  return tmp;
}

void FnCompiler::flush_post() {
  for (size_t i = 0; i < post_.size(); ++i) {
    Ty t = post_types_[i].first, r = post_types_[i].second;
    Inst& in = emit(sel_resize(ty_size(r), ty_size(t), ty_is_signed(t)));
    in.o[0] = post_[i].second;
    in.o[1] = post_[i].first;
  }
  post_.clear();
  post_types_.clear();
}

MemRef FnCompiler::mem(const ast::Operand& o) {
  if (o.kind != ast::Operand::Mem) fail("expected a memory operand [..]");
  if (!o.elems.empty()) fail("texture-style address operand for '" + cur->op + "'");
  MemRef r;
  r.off = o.ival;
  if (o.name.empty()) {
    r.base = MemRef::Abs;
    return r;
  }
  const Sym* s = lookup(o.name);
  if (s) {
    r.sym = s;
    switch (s->kind) {
      case Sym::Reg:
        if (s->type == Ty::Pred || (ty_size(s->type) != 8 && ty_size(s->type) != 4))
          fail("register '" + o.name + "' cannot hold an address");
        r.base = MemRef::RegAddr;
        r.reg = s->off;
        r.reg64 = ty_size(s->type) == 8;
        return r;
      case Sym::FParam: r.base = MemRef::FParam; return r;
      case Sym::KParam: r.base = MemRef::KParam; return r;
      case Sym::Local: r.base = MemRef::Local; return r;
      case Sym::Shared:
        r.base = MemRef::Shared;
        r.shared_off = s->off;
        return r;
    }
  }
  auto v = mc.vars.find(o.name);
  if (v != mc.vars.end()) {
    const ModVar& mv = v->second;
    if (mv.space == ast::VarSpace::Shared) {
      if (mv.dyn_shared) {
        r.base = MemRef::DynShared;
      } else {
        r.base = MemRef::Shared;
        r.shared_off = mv.shared_off;
      }
      return r;
    }
    r.base = MemRef::Var;
    r.var = mv.global;
    return r;
  }
  auto f = mc.funcs.find(o.name);
  if (f != mc.funcs.end()) {
    r.base = MemRef::Abs;
    r.off = int64_t(uint64_t(r.off) + kFuncWin + uint64_t(f->second) * 16);
    return r;
  }
  fail("undeclared identifier '" + o.name + "'");
}

uint32_t FnCompiler::addr_reg(const MemRef& r, unsigned width, int64_t& off) {
  off = r.off;
  switch (r.base) {
    case MemRef::RegAddr:
      if ((width == 8) != r.reg64) {
        uint32_t tmp = temp(width);
        Inst& in = emit(sel_resize(width, r.reg64 ? 8 : 4, false));
        in.o[0] = tmp;
        in.o[1] = r.reg;
        return tmp;
      }
      return r.reg;
    case MemRef::Var:
      return addr_const(r.var, 0, width);
    case MemRef::Shared:
      return const_slot(r.shared_off, width);
    case MemRef::KParam:
      return const_slot(r.sym->off, width);
    case MemRef::Abs: {
      uint32_t s = const_slot(uint64_t(off), width);
      off = 0;
      return s;
    }
    case MemRef::DynShared: {
      uint32_t tmp = temp(width);
      Inst& in = emit(sel_dyn_shared(width));
      in.o[0] = tmp;
      in.imm = 0;
      return tmp;
    }
    case MemRef::Local: {
      uint32_t tmp = temp(width);
      Inst& in = emit(sel_local_base(width));
      in.o[0] = tmp;
      in.imm = r.sym->off;
      return tmp;
    }
    case MemRef::FParam:
      fail("the address of a function parameter cannot be taken");
  }
  fail("bad address");
}

Inst& FnCompiler::emit_unguarded(OpFn f) {
  assert(f && "handler selection must be checked by the caller");
  Inst in;
  in.fn = f;
  in.self = pc();
  in.src = uint32_t(mc.ir.texts.size() - 1);
  mc.ir.code.push_back(in);
  return mc.ir.code.back();
}

Inst& FnCompiler::emit(OpFn f) {
  if (!f) unsupported();
  uint32_t g = kTrueWord, x = 0;
  if (cur && !cur->guard.empty()) {
    ast::Operand o;
    o.kind = ast::Operand::Name;
    o.name = cur->guard;
    g = src_pred(o, nullptr);
    x = cur->guard_neg ? ~0u : 0u;
  }
  Inst& in = emit_unguarded(f);
  in.guard = g;
  in.gxor = x;
  return in;
}

void FnCompiler::mark_flow(uint32_t at, Flow f, uint32_t t) { flow_[at] = FlowInfo{f, t}; }

void FnCompiler::branch_to(Inst& in, const std::string& label) {
  fixups_.push_back({in.self, label});
}

uint32_t FnCompiler::table_index(const std::string& label) const {
  auto it = tables_.find(label);
  if (it == tables_.end()) fail("undeclared branch table '" + label + "'");
  return it->second.empty() ? 0 : it->second[0];
}

void FnCompiler::declare(const ast::VarDecl& d, bool is_param_list, bool is_ret) {
  auto& scope = scopes_.back().syms;
  auto add = [&](const std::string& name, const Sym& s) {
    if (scope.count(name)) throw CompileError{d.line, "redeclaration of '" + name + "'"};
    scope.emplace(name, s);
  };
  if (d.type == Ty::None) throw CompileError{d.line, "declaration without type"};
  uint32_t esize = ty_size(d.type) * d.vec;
  uint64_t count = d.elem_count();
  if (std::find(d.dims.begin(), d.dims.end(), 0) != d.dims.end() && d.space != ast::VarSpace::Shared)
    throw CompileError{d.line, "array of unknown size '" + d.name + "'"};
  uint64_t bytes64 = uint64_t(esize) * count;
  if (bytes64 > kMaxFrame) throw CompileError{d.line, "variable '" + d.name + "' is too large"};
  uint32_t bytes = uint32_t(bytes64);
  uint32_t align = d.align ? d.align : std::max<uint32_t>(1, ty_size(d.type) * d.vec);

  switch (d.space) {
    case ast::VarSpace::Reg: {
      if (d.vec != 1 || !d.dims.empty())
        throw CompileError{d.line, "unsupported register declaration '" + d.name + "'"};
      if (d.type == Ty::TF32 || d.type == Ty::E4M3x2 || d.type == Ty::E5M2x2)
        throw CompileError{d.line, "unsupported register type ." + std::string(ty_name(d.type))};
      int n = d.range < 0 ? 1 : d.range;
      unsigned sz = ty_size(d.type);
      for (int i = 0; i < n; ++i) {
        Sym s;
        s.kind = Sym::Reg;
        s.type = d.type;
        s.size = sz;
        s.off = d.type == Ty::Pred ? alloc_reg(4, 4) : alloc_reg(32 * sz, 32);
        s.stride = sz;
        reg_units_ += d.type == Ty::Pred ? 0 : std::max(1u, sz / 4);
        add(d.range < 0 ? d.name : d.name + std::to_string(i), s);
        if (is_param_list) {
          Slot sl{s.off, sz, sz};
          (is_ret ? out.rets : out.params).push_back(sl);
        }
      }
      return;
    }
    case ast::VarSpace::Param: {
      if (is_kernel && is_param_list) {
        Sym s;
        s.kind = Sym::KParam;
        s.type = d.type;
        s.size = bytes;
        kparam_top_ = align_up(kparam_top_, align);
        s.off = kparam_top_;
        kparam_top_ += bytes;
        kparams_.push_back(ParamInfo{s.off, bytes, align});
        add(d.name, s);
        return;
      }
      Sym s;
      s.kind = Sym::FParam;
      s.type = d.type;
      s.size = bytes;
      s.stride = align_up(std::max<uint32_t>(bytes, 1), align);
      s.off = alloc_reg(32 * s.stride, 32);
      add(d.name, s);
      if (is_param_list) (is_ret ? out.rets : out.params).push_back(Slot{s.off, s.size, s.stride});
      return;
    }
    case ast::VarSpace::Local: {
      Sym s;
      s.kind = Sym::Local;
      s.type = d.type;
      s.size = bytes;
      local_top_ = align_up(local_top_, align);
      s.off = local_top_;
      local_top_ += bytes;
      add(d.name, s);
      return;
    }
    case ast::VarSpace::Shared: {
      if (!is_kernel) throw CompileError{d.line, ".shared declared inside a .func"};
      Sym s;
      s.kind = Sym::Shared;
      s.type = d.type;
      s.size = bytes;
      shared_top_ = align_up(shared_top_, align);
      s.off = shared_top_;
      shared_top_ += bytes;
      if (shared_top_ > (1u << 30)) throw CompileError{d.line, "too much shared memory"};
      add(d.name, s);
      return;
    }
    default:
      throw CompileError{d.line, "unsupported declaration of '" + d.name + "' in function scope"};
  }
}

void FnCompiler::instruction(const ast::Instr& in) {
  cur = &in;
  mc.ir.texts.push_back("line " + std::to_string(in.line) + ": " + in.text);
  auto it = table().find(in.op);
  if (it == table().end()) unsupported();
  it->second(*this, in);
  flush_post();
  cur = nullptr;
}

void FnCompiler::compile() {
  scopes_.emplace_back();
  shared_top_ = mc.ir.module_shared_bytes;
  for (const ast::VarDecl& d : fn.rets) declare(d, true, true);
  for (const ast::VarDecl& d : fn.params) declare(d, true, false);
  first_pc_ = pc();
  out.entry_pc = first_pc_;
  mc.ir.texts.push_back("line " + std::to_string(fn.line) + ": " + fn.name);
  for (const ast::Stmt& s : fn.body) {
    switch (s.kind) {
      case ast::Stmt::Open:
        scopes_.emplace_back();
        break;
      case ast::Stmt::Close:
        if (scopes_.size() <= 1) throw CompileError{s.line, "unbalanced '}'"};
        scopes_.pop_back();
        break;
      case ast::Stmt::Decl:
        declare(s.decl, false, false);
        break;
      case ast::Stmt::Label:
        if (labels_.count(s.label)) throw CompileError{s.line, "duplicate label '" + s.label + "'"};
        labels_[s.label] = pc();
        break;
      case ast::Stmt::BranchTargets: {
        if (tables_.count(s.label)) throw CompileError{s.line, "duplicate label '" + s.label + "'"};
        mc.ir.branch_tables.emplace_back();
        uint32_t idx = uint32_t(mc.ir.branch_tables.size() - 1);
        tables_[s.label] = {idx};
        for (const std::string& t : s.targets) table_fixups_.push_back({idx, t});
        break;
      }
      case ast::Stmt::CallProto:
        protos_.insert(s.label);
        break;
      case ast::Stmt::Inst:
        instruction(s.inst);
        break;
    }
  }
  // The unique exit: every `ret` of a .func branches here; kernels exit.
  mc.ir.texts.push_back("line " + std::to_string(fn.line) + ": end of " + fn.name);
  Inst& ex = emit_unguarded(is_kernel ? sel_exit() : sel_ret());
  out.exit_pc = ex.self;
  mark_flow(ex.self, Flow::Exit);
  out.end_pc = pc();
  for (auto& fx : fixups_) {
    uint32_t target;
    if (fx.second == kExitLabel) {
      target = out.exit_pc;
    } else {
      auto it = labels_.find(fx.second);
      if (it == labels_.end()) {
        const std::string& t = mc.ir.texts[mc.ir.code[fx.first].src];
        throw CompileError{uint32_t(std::strtoul(t.c_str() + 5, nullptr, 10)),
                           "undefined label '" + fx.second + "'"};
      }
      target = it->second;
    }
    mc.ir.code[fx.first].aux = target;
    mark_flow(fx.first, Flow::Branch, target);
  }
  for (auto& fx : table_fixups_) {
    auto it = labels_.find(fx.second);
    if (it == labels_.end()) throw CompileError{fn.line, "undefined label '" + fx.second + "'"};
    mc.ir.branch_tables[fx.first].push_back(it->second);
  }
  finalize();
}

void FnCompiler::finalize() {
  uint32_t cbase = align_up(const_top_, kFrameAlign);
  image_.resize(cbase, 0);
  uint32_t t = ~0u;
  std::memcpy(&image_[kTrueWord], &t, 4);
  out.frame_size = align_up(cbase + reg_top_, kFrameAlign);
  if (out.frame_size > kMaxFrame) throw CompileError{fn.line, "frame of '" + fn.name + "' is too large"};
  auto fix = [&](uint32_t& o) {
    if (o & kRegSpace) o = cbase + (o & ~kRegSpace);
  };
  for (uint32_t p = first_pc_; p < out.end_pc; ++p) {
    Inst& in = mc.ir.code[p];
    for (uint32_t& o : in.o) fix(o);
    fix(in.guard);
  }
  for (Slot& s : out.params) fix(s.off);
  for (Slot& s : out.rets) fix(s.off);
  for (uint32_t cs : my_calls_) {
    CallSite& c = mc.ir.calls[cs];
    for (Slot& s : c.args) fix(s.off);
    for (Slot& s : c.rets) fix(s.off);
    fix(c.target_off);
  }
  out.const_image = std::move(image_);
  out.local_size = align_up(local_top_, 16);
  out.shared_top = shared_top_;
  out.kparam_bytes = kparam_top_;
  out.kparams = kparams_;
  out.num_regs = reg_units_;

  // Reconvergence points of every branch.
  uint32_t n = out.end_pc - first_pc_;
  std::vector<uint8_t> kind(n, 0);
  std::vector<uint32_t> target(n, 0);
  for (auto& [at, fi] : flow_) {
    kind[at - first_pc_] = uint8_t(fi.f);
    target[at - first_pc_] = fi.t;
  }
  compute_reconvergence(mc.ir, first_pc_, out.end_pc, out.exit_pc, kind, target);
}

}  // namespace simgpu::ptx
