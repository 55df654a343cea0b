// Instruction compilers: control flow, calls, barriers, fences, warp-wide ops.
#include "ptx/compile.h"
#include "ptx/ops.h"

namespace simgpu::ptx {

namespace {

using ast::Instr;
using ast::Operand;
using Flow = FnCompiler::Flow;

void c_bra(FnCompiler& fc, const Instr& in) {
  Mods m(in.mods);
  m.take(".uni");
  fc.finish_mods(m);
  fc.want_ops(1);
  if (in.ops[0].kind != Operand::Name) fc.fail("bra needs a label");
  Inst& e = fc.emit(sel_bra());
  fc.branch_to(e, in.ops[0].name);
}

void c_brx(FnCompiler& fc, const Instr& in) {
  Mods m(in.mods);
  if (!m.take(".idx")) fc.unsupported();
  m.take(".uni");
  fc.finish_mods(m);
  fc.want_ops(2);
  if (in.ops[1].kind != Operand::Name) fc.fail("brx.idx needs a .branchtargets label");
  uint32_t idx = fc.src(in.ops[0], Ty::U32);
  uint32_t table = fc.table_index(in.ops[1].name);
  Inst& e = fc.emit(sel_brx());
  e.o[0] = idx;
  e.aux = table;
  fc.mark_flow(e.self, Flow::Table);
}

Slot slot_of(FnCompiler& fc, const Operand& o, uint32_t want_size) {
  if (fc.is_imm(o)) {
    if (want_size == 0 || want_size > 8) fc.fail("literal argument of unknown size");
    Ty t = ty_bits(want_size);
    uint32_t s = fc.const_slot(fc.imm_bits(o, t), want_size);
    return Slot{s, want_size, want_size};
  }
  if (o.kind != Operand::Name) fc.fail("bad call argument");
  const Sym* s = fc.lookup(o.name);
  if (!s) fc.fail("undeclared call argument '" + o.name + "'");
  if (s->kind == Sym::FParam) return Slot{s->off, s->size, s->stride};
  if (s->kind == Sym::Reg && s->type != Ty::Pred) return Slot{s->off, s->size, s->size};
  fc.fail("call argument '" + o.name + "' is neither a .param nor a register");
}

void c_call(FnCompiler& fc, const Instr& in) {
  fc.out.lockstep = true;
  Mods m(in.mods);
  m.take(".uni");
  fc.finish_mods(m);
  size_t k = 0;
  const Operand* rets = nullptr;
  if (k < in.ops.size() && in.ops[k].kind == Operand::List) rets = &in.ops[k++];
  if (k >= in.ops.size()) fc.fail("call without a target");
  const Operand& target = in.ops[k++];
  const Operand* args = nullptr;
  if (k < in.ops.size() && in.ops[k].kind == Operand::List) args = &in.ops[k++];
  const Operand* proto = k < in.ops.size() ? &in.ops[k++] : nullptr;
  if (k != in.ops.size()) fc.fail("malformed call");
  if (target.kind != Operand::Name) fc.fail("call target must be a function or a register");

  uint32_t cs_index = fc.call_site_new();
  const Sym* reg = fc.lookup(target.name);
  uint32_t callee = kNoPc;
  const FuncIR* f = nullptr;
  if (reg) {
    if (reg->kind != Sym::Reg || reg->size != 8) fc.fail("indirect call through a non-64-bit value");
    if (!proto || proto->kind != Operand::Name) fc.fail("indirect call without a prototype");
    fc.mc.ir.calls[cs_index].target_off = reg->off;
    fc.out.calls_indirect = true;
  } else {
    auto it = fc.mc.funcs.find(target.name);
    if (it == fc.mc.funcs.end()) fc.fail("call to undeclared function '" + target.name + "'");
    callee = it->second;
    f = &fc.mc.ir.funcs[callee];
    if (f->is_entry) fc.fail("call to a kernel");
    if (!f->defined && !f->is_builtin)
      fc.unsupported("call to external function '" + target.name + "' that the module does not define");
  }
  std::vector<Slot> a, r;
  size_t na = args ? args->elems.size() : 0, nr = rets ? rets->elems.size() : 0;
  for (size_t i = 0; i < na; ++i) {
    uint32_t want = (f && !f->is_builtin && i < f->decl_params.size()) ? f->decl_params[i] : 8;
    a.push_back(slot_of(fc, args->elems[i], want));
  }
  for (size_t i = 0; i < nr; ++i) {
    uint32_t want = (f && !f->is_builtin && i < f->decl_rets.size()) ? f->decl_rets[i] : 4;
    if (rets->elems[i].kind == Operand::Sink) {
      uint32_t t = fc.temp(want);
      r.push_back(Slot{t, want, want});
    } else {
      r.push_back(slot_of(fc, rets->elems[i], want));
    }
  }
  if (f && f->defined) {
    if (a.size() != f->decl_params.size() || r.size() != f->decl_rets.size())
      fc.fail("call to '" + target.name + "' with " + std::to_string(a.size()) + " arguments and " +
              std::to_string(r.size()) + " results does not match its declaration");
    for (size_t i = 0; i < a.size(); ++i)
      if (a[i].size != f->decl_params[i]) fc.fail("argument " + std::to_string(i) + " of call to '" + target.name + "' has the wrong size");
    for (size_t i = 0; i < r.size(); ++i)
      if (r[i].size != f->decl_rets[i]) fc.fail("result " + std::to_string(i) + " of call to '" + target.name + "' has the wrong size");
    fc.out.callees.push_back(callee);
  }
  CallSite& cs = fc.mc.ir.calls[cs_index];
  cs.callee = callee;
  cs.args = std::move(a);
  cs.rets = std::move(r);
  OpFn h = sel_call();
  if (f && f->is_builtin) {
    if (f->name == "vprintf") {
      if (cs.args.size() != 2 || cs.rets.size() > 1) fc.fail("vprintf takes (format, arguments)");
      h = sel_vprintf();
    } else {
      if (cs.args.size() != 5) fc.fail("__assertfail takes five arguments");
      h = sel_assertfail();
      Inst& e = fc.emit(h);
      e.aux = cs_index;
      fc.mark_flow(e.self, Flow::Exit);
      return;
    }
  }
  Inst& e = fc.emit(h);
  e.aux = cs_index;
}

void c_ret(FnCompiler& fc, const Instr& in) {
  Mods m(in.mods);
  m.take(".uni");
  fc.finish_mods(m);
  fc.want_ops(0);
  if (fc.is_kernel) {
    Inst& e = fc.emit(sel_exit());
    fc.mark_flow(e.self, Flow::Exit);
    return;
  }
  Inst& e = fc.emit(sel_bra());
  fc.branch_to(e, FnCompiler::kExitLabel);
}

void c_exit(FnCompiler& fc, const Instr& in) {
  Mods m(in.mods);
  fc.finish_mods(m);
  fc.want_ops(0);
  Inst& e = fc.emit(sel_exit());
  fc.mark_flow(e.self, Flow::Exit);
}

void c_trap(FnCompiler& fc, const Instr& in) {
  Mods m(in.mods);
  fc.finish_mods(m);
  fc.want_ops(0);
  Inst& e = fc.emit(sel_trap());
  e.aux = in.op == "brkpt" ? 1 : 0;
  fc.mark_flow(e.self, Flow::Exit);
}

void c_bar(FnCompiler& fc, const Instr& in) {
  fc.out.lockstep = true;
  Mods m(in.mods);
  if (m.take(".cluster")) {
    bool wait = m.take(".wait");
    if (!wait && !m.take(".arrive")) fc.unsupported();
    m.take_any({".release", ".relaxed", ".acquire"});
    m.take(".aligned");
    fc.finish_mods(m);
    fc.want_ops(0);
    fc.emit(sel_cluster_barrier(wait));
    return;
  }
  if (m.take(".warp")) {
    if (!m.take(".sync")) fc.unsupported();
    fc.finish_mods(m);
    fc.want_ops(1);
    uint32_t mask = fc.src(in.ops[0], Ty::B32);
    Inst& e = fc.emit(sel_bar_warp());
    e.o[0] = mask;
    return;
  }
  m.take(".cta");
  uint32_t kind;
  if (m.take(".sync")) kind = 0;
  else if (m.take(".arrive")) kind = 1;
  else if (m.take(".red")) {
    if (m.take(".popc")) kind = 2;
    else if (m.take(".and")) kind = 3;
    else if (m.take(".or")) kind = 4;
    else fc.unsupported();
  } else if (in.mods.empty() && in.op == "bar") {
    kind = 0;  // `bar 0;` is the old spelling of bar.sync
  } else {
    fc.unsupported();
  }
  m.take(".aligned");
  Ty rt = Ty::None;
  if (kind >= 2) rt = m.take_type();
  fc.finish_mods(m);
  size_t base = kind >= 2 ? 1 : 0;
  size_t n = in.ops.size();
  bool has_count;
  if (kind >= 2) {
    if (n != 3 && n != 4) fc.fail("wrong number of operands for bar.red");
    has_count = n == 4;
  } else {
    if (n != 1 && n != 2) fc.fail("wrong number of operands for bar");
    has_count = n == 2;
    if (kind == 1 && !has_count) fc.fail("bar.arrive needs a thread count");
  }
  uint32_t id = fc.src(in.ops[base], Ty::U32);
  uint32_t cnt = has_count ? fc.src(in.ops[base + 1], Ty::U32) : kTrueWord;
  uint32_t pred = kTrueWord, d = kTrueWord;
  bool neg = false;
  if (kind >= 2) {
    pred = fc.src_pred(in.ops[n - 1], &neg);
    if (kind == 2) {
      if (rt != Ty::U32) fc.unsupported();
      d = fc.dst(in.ops[0], Ty::U32);
    } else {
      if (rt != Ty::Pred) fc.unsupported();
      d = fc.dst_pred(in.ops[0]);
    }
  }
  Inst& e = fc.emit(sel_bar());
  e.o[0] = id, e.o[1] = cnt, e.o[2] = pred, e.o[3] = d;
  e.aux = kind;
  e.aux2 = (has_count ? 1u : 0u) | (neg ? 2u : 0u);
}

void c_fence(FnCompiler& fc, const Instr& in) {
  // membar.{cta,gl,sys}, fence{.sc,.acq_rel}.scope, fence.proxy.*, fence.mbarrier_init.*:
  // every form orders memory at most as strongly as a full host fence.
  static const char* const known[] = {
      ".cta", ".gl", ".sys", ".gpu", ".cluster", ".sc", ".acq_rel", ".acquire", ".release", ".proxy",
      ".mbarrier_init", ".alias", ".async", ".global", ".shared", ".shared::cta", ".shared::cluster",
      ".tensormap", ".generic", ".tensormap::generic", ".to_proxy", ".from_proxy", ".op_restrict",
      ".sync_restrict::shared::cta", ".sync_restrict::shared::cluster", ".async::generic"};
  for (const std::string& x : in.mods) {
    bool ok = false;
    for (const char* k : known) ok = ok || x == k;
    if (!ok) fc.unsupported("modifier " + x);
  }
  for (const Operand& o : in.ops)
    if (o.kind == Operand::Mem) fc.mem(o);
    else if (o.kind != Operand::Int) fc.src(o, Ty::U32);
  fc.emit(sel_fence());
}

void c_nanosleep(FnCompiler& fc, const Instr& in) {
  Mods m(in.mods);
  m.take(".u32");
  fc.finish_mods(m);
  fc.want_ops(1);
  fc.src(in.ops[0], Ty::U32);
  fc.emit(sel_nanosleep());
}

void c_nop(FnCompiler& fc, const Instr& in) {
  // pmevent, griddepcontrol, setmaxnreg: no observable effect here.
  Mods m(in.mods);
  m.take_any({".mask", ".launch_dependents", ".wait", ".inc", ".dec", ".sync", ".aligned", ".u32"});
  m.take_any({".sync", ".aligned", ".u32"});
  m.take_any({".aligned", ".u32"});
  fc.finish_mods(m);
  for (const Operand& o : in.ops)
    if (o.kind != Operand::Int) fc.src(o, Ty::U32);
}

// mapa{.shared::cluster}.u32/u64 d, a, rank
void c_mapa(FnCompiler& fc, const Instr& in) {
  Mods m(in.mods);
  m.take(".shared::cluster");
  Ty t = m.take_type();
  fc.finish_mods(m);
  if (t != Ty::U32 && t != Ty::U64 && t != Ty::B32 && t != Ty::B64) fc.unsupported();
  fc.want_ops(3);
  uint32_t a = fc.src(in.ops[1], t), r = fc.src(in.ops[2], Ty::U32), d = fc.dst(in.ops[0], t);
  Inst& e = fc.emit(sel_mapa(ty_size(t)));
  e.o[0] = d, e.o[1] = a, e.o[2] = r;
}

// getctarank{.shared::cluster}.u32 d, a: every address belongs to CTA 0.
void c_getctarank(FnCompiler& fc, const Instr& in) {
  Mods m(in.mods);
  m.take(".shared::cluster");
  Ty t = m.take_type();
  fc.finish_mods(m);
  if (t != Ty::U32 && t != Ty::U64 && t != Ty::B32 && t != Ty::B64) fc.unsupported();
  fc.want_ops(2);
  fc.src(in.ops[1], t);
  uint32_t d = fc.dst(in.ops[0], Ty::U32);
  Inst& e = fc.emit(sel_mov(4));
  e.o[0] = d, e.o[1] = fc.const_slot(0, 4);
}

// discard.global.L2 [a], 128; applypriority.global.L2::evict_normal [a], 128:
// cache management without visible effect.
void c_hint(FnCompiler& fc, const Instr& in) {
  Mods m(in.mods);
  m.take(".global");
  m.take(".L2");
  m.drop_hints();
  fc.finish_mods(m);
  fc.want_ops(2);
  fc.mem(in.ops[0]);
  if (in.ops[1].kind != Operand::Int || in.ops[1].ival != 128) fc.fail("cache hint size must be 128");
}

// ---- warp-wide

void c_shfl(FnCompiler& fc, const Instr& in) {
  fc.out.lockstep = true;
  Mods m(in.mods);
  if (!m.take(".sync")) fc.unsupported("shfl without .sync is not available on sm_70+");
  int mode = -1;
  if (m.take(".up")) mode = 0;
  else if (m.take(".down")) mode = 1;
  else if (m.take(".bfly")) mode = 2;
  else if (m.take(".idx")) mode = 3;
  Ty t = m.take_type();
  fc.finish_mods(m);
  if (mode < 0 || t != Ty::B32) fc.unsupported();
  fc.want_ops(5);
  const Operand& dp = in.ops[0];
  uint32_t d = fc.dst(dp, Ty::B32);
  uint32_t p;
  if (!dp.name2.empty()) {
    Operand po;
    po.kind = dp.name2 == "_" ? Operand::Sink : Operand::Name;
    po.name = dp.name2;
    p = fc.dst_pred(po);
  } else {
    p = fc.temp(0);
  }
  uint32_t a = fc.src(in.ops[1], Ty::B32), b = fc.src(in.ops[2], Ty::B32), c = fc.src(in.ops[3], Ty::B32);
  uint32_t mm = fc.src(in.ops[4], Ty::B32);
  Inst& e = fc.emit(sel_shfl(mode));
  e.o[0] = d, e.o[1] = p, e.o[2] = a, e.o[3] = b, e.o[4] = c, e.o[5] = mm;
}

void c_vote(FnCompiler& fc, const Instr& in) {
  fc.out.lockstep = true;
  Mods m(in.mods);
  if (!m.take(".sync")) fc.unsupported("vote without .sync is not available on sm_70+");
  int mode = -1;
  if (m.take(".all")) mode = 0;
  else if (m.take(".any")) mode = 1;
  else if (m.take(".uni")) mode = 2;
  else if (m.take(".ballot")) mode = 3;
  Ty t = m.take_type();
  fc.finish_mods(m);
  if (mode < 0 || (mode == 3 ? t != Ty::B32 : t != Ty::Pred)) fc.unsupported();
  fc.want_ops(3);
  bool neg = false;
  uint32_t d = mode == 3 ? fc.dst(in.ops[0], Ty::B32) : fc.dst_pred(in.ops[0]);
  uint32_t a = fc.src_pred(in.ops[1], &neg);
  uint32_t mm = fc.src(in.ops[2], Ty::B32);
  Inst& e = fc.emit(sel_vote(mode));
  e.o[0] = d, e.o[1] = a, e.o[2] = mm;
  e.aux2 = neg ? 1 : 0;
}

void c_match(FnCompiler& fc, const Instr& in) {
  fc.out.lockstep = true;
  Mods m(in.mods);
  bool all = m.take(".all");
  bool any = m.take(".any");
  if (!m.take(".sync") || all == any) fc.unsupported();
  Ty t = m.take_type();
  fc.finish_mods(m);
  if (t != Ty::B32 && t != Ty::B64) fc.unsupported();
  fc.want_ops(3);
  const Operand& dp = in.ops[0];
  uint32_t d = fc.dst(dp, Ty::B32);
  uint32_t p = fc.temp(0);
  if (!dp.name2.empty()) {
    if (!all) fc.fail("match.any has no predicate result");
    Operand po;
    po.kind = dp.name2 == "_" ? Operand::Sink : Operand::Name;
    po.name = dp.name2;
    p = fc.dst_pred(po);
  }
  uint32_t a = fc.src(in.ops[1], t), mm = fc.src(in.ops[2], Ty::B32);
  Inst& e = fc.emit(sel_match(all, ty_size(t)));
  e.o[0] = d, e.o[1] = a, e.o[2] = mm, e.o[3] = p;
}

void c_redux(FnCompiler& fc, const Instr& in) {
  fc.out.lockstep = true;
  Mods m(in.mods);
  if (!m.take(".sync")) fc.unsupported();
  RedOp op;
  if (m.take(".add")) op = RedOp::Add;
  else if (m.take(".min")) op = RedOp::Min;
  else if (m.take(".max")) op = RedOp::Max;
  else if (m.take(".and")) op = RedOp::And;
  else if (m.take(".or")) op = RedOp::Or;
  else if (m.take(".xor")) op = RedOp::Xor;
  else fc.unsupported();
  Ty t = m.take_type();
  fc.finish_mods(m);
  bool arith = op == RedOp::Add || op == RedOp::Min || op == RedOp::Max;
  if (arith ? (t != Ty::U32 && t != Ty::S32) : t != Ty::B32) fc.unsupported();
  fc.want_ops(3);
  uint32_t d = fc.dst(in.ops[0], t), a = fc.src(in.ops[1], t), mm = fc.src(in.ops[2], Ty::B32);
  Inst& e = fc.emit(sel_redux(op, t == Ty::S32));
  e.o[0] = d, e.o[1] = a, e.o[2] = mm;
}

void c_activemask(FnCompiler& fc, const Instr& in) {
  Mods m(in.mods);
  if (m.take_type() != Ty::B32) fc.unsupported();
  fc.finish_mods(m);
  fc.want_ops(1);
  uint32_t d = fc.dst(in.ops[0], Ty::B32);
  Inst& e = fc.emit(sel_activemask());
  e.o[0] = d;
}

void c_elect(FnCompiler& fc, const Instr& in) {
  fc.out.lockstep = true;
  Mods m(in.mods);
  if (!m.take(".sync")) fc.unsupported();
  fc.finish_mods(m);
  fc.want_ops(2);
  const Operand& dp = in.ops[0];
  uint32_t d = fc.dst(dp, Ty::B32);
  uint32_t p = fc.temp(0);
  if (!dp.name2.empty()) {
    Operand po;
    po.kind = dp.name2 == "_" ? Operand::Sink : Operand::Name;
    po.name = dp.name2;
    p = fc.dst_pred(po);
  }
  uint32_t mm = fc.src(in.ops[1], Ty::B32);
  Inst& e = fc.emit(sel_elect());
  e.o[0] = d, e.o[1] = p, e.o[2] = mm;
}

}  // namespace

void register_ctrl(CompileTable& t) {
  t["bra"] = &c_bra;
  t["brx"] = &c_brx;
  t["call"] = &c_call;
  t["ret"] = &c_ret;
  t["exit"] = &c_exit;
  t["trap"] = &c_trap;
  t["brkpt"] = &c_trap;
  t["bar"] = &c_bar;
  t["barrier"] = &c_bar;
  t["membar"] = &c_fence;
  t["fence"] = &c_fence;
  t["nanosleep"] = &c_nanosleep;
  t["pmevent"] = &c_nop;
  t["discard"] = &c_hint;
  t["mapa"] = &c_mapa;
  t["getctarank"] = &c_getctarank;
  t["applypriority"] = &c_hint;
  t["griddepcontrol"] = &c_nop;
}

void register_warp(CompileTable& t) {
  t["shfl"] = &c_shfl;
  t["vote"] = &c_vote;
  t["match"] = &c_match;
  t["redux"] = &c_redux;
  t["activemask"] = &c_activemask;
  t["elect"] = &c_elect;
}

}  // namespace simgpu::ptx
