// Instruction compilers: cp.async (+ bulk) and mbarrier.
#include "ptx/compile.h"
#include "ptx/ops.h"

namespace simgpu::ptx {

namespace {

using ast::Instr;
using ast::Operand;

// A register slot holding base+offset of a memory operand, at `width` bytes.
uint32_t full_address(FnCompiler& fc, const Operand& o, unsigned width) {
  MemRef r = fc.mem(o);
  if (r.base == MemRef::FParam || r.base == MemRef::KParam) fc.fail("parameter used as a copy address");
  int64_t off = 0;
  uint32_t base = fc.addr_reg(r, width, off);
  if (off == 0) return base;
  uint32_t t = fc.temp(width);
  Inst& e = fc.emit(sel_int(IOp::Add, width == 8 ? Ty::U64 : Ty::U32));
  e.o[0] = t, e.o[1] = base, e.o[2] = fc.const_slot(uint64_t(off), width);
  return t;
}

bool reg64(FnCompiler& fc, const Operand& o) {
  if (o.kind != Operand::Mem) fc.fail("expected a memory operand");
  const Sym* s = fc.lookup(o.name);
  return !(s && s->kind == Sym::Reg && s->size == 4);
}

void c_cp_async_bulk(FnCompiler& fc, const Instr& in, Mods& m) {
  if (m.take(".commit_group")) {
    fc.finish_mods(m);
    fc.emit(sel_nop());
    return;
  }
  if (m.take(".wait_group") || m.take(".wait_group.read")) {
    m.take(".read");
    fc.finish_mods(m);
    fc.want_ops(1);
    fc.emit(sel_nop());
    return;
  }
  if (m.take(".prefetch")) {
    m.take(".L2");
    m.take(".global");
    m.drop_hints();
    fc.finish_mods(m);
    fc.emit(sel_nop());
    return;
  }
  if (m.take(".tensor")) fc.unsupported("tensor-memory-accelerator copies");
  bool to_shared_cluster = m.take(".shared::cluster");
  bool from_global = m.take(".global");
  bool to_global = false;
  bool from_shared = false;
  if (!to_shared_cluster) {
    // cp.async.bulk.global.shared::cta.bulk_group
    to_global = from_global;
    from_global = false;
    from_shared = m.take(".shared::cta");
  } else {
    from_shared = m.take(".shared::cta");
  }
  bool mbar = m.take(".mbarrier::complete_tx::bytes");
  bool group = m.take(".bulk_group");
  m.drop_hints();
  fc.finish_mods(m);
  size_t n = in.ops.size();
  if (to_shared_cluster && (from_global || from_shared) && mbar) {
    if (n < 4) fc.fail("wrong number of operands for cp.async.bulk");
    uint32_t d = full_address(fc, in.ops[0], 8), s = full_address(fc, in.ops[1], 8);
    uint32_t sz = fc.src(in.ops[2], Ty::U32), mb = full_address(fc, in.ops[3], 8);
    OpFn h = sel_cp_bulk(true, MSp::Shared, from_global ? MSp::Global : MSp::Shared);
    uint32_t site = fc.site();
    Inst& e = fc.emit(h);
    e.o[0] = d, e.o[1] = s, e.o[2] = sz, e.o[3] = mb;
    e.aux = site;
    return;
  }
  if (to_global && from_shared && group) {
    if (n < 3) fc.fail("wrong number of operands for cp.async.bulk");
    uint32_t d = full_address(fc, in.ops[0], 8), s = full_address(fc, in.ops[1], 8);
    uint32_t sz = fc.src(in.ops[2], Ty::U32);
    OpFn h = sel_cp_bulk(false, MSp::Global, MSp::Shared);
    uint32_t site = fc.site();
    Inst& e = fc.emit(h);
    e.o[0] = d, e.o[1] = s, e.o[2] = sz, e.o[3] = kTrueWord;
    e.aux = site;
    return;
  }
  fc.unsupported();
}

void c_cp(FnCompiler& fc, const Instr& in) {
  Mods m(in.mods);
  if (!m.take(".async")) fc.unsupported();
  if (m.take(".bulk")) return c_cp_async_bulk(fc, in, m);
  if (m.take(".commit_group") || m.take(".wait_all")) {
    fc.finish_mods(m);
    fc.want_ops(0);
    fc.emit(sel_nop());
    return;
  }
  if (m.take(".wait_group")) {
    fc.finish_mods(m);
    fc.want_ops(1);
    fc.emit(sel_nop());
    return;
  }
  if (m.take(".mbarrier")) {
    if (!m.take(".arrive")) fc.unsupported();
    bool noinc = m.take(".noinc");
    bool shared = m.take_any({".shared", ".shared::cta"});
    if (m.take_type() != Ty::B64) fc.unsupported();
    fc.finish_mods(m);
    fc.want_ops(1);
    bool a64 = reg64(fc, in.ops[0]);
    MemRef r = fc.mem(in.ops[0]);
    int64_t off = 0;
    uint32_t addr = fc.addr_reg(r, a64 ? 8 : 4, off);
    OpFn h = sel_mbarrier(noinc ? MbOp::CpAsyncArriveNoinc : MbOp::CpAsyncArrive, shared ? MSp::Shared : MSp::Generic, a64);
    if (!h) fc.unsupported();
    uint32_t site = fc.site();
    Inst& e = fc.emit(h);
    e.o[4] = addr;
    e.imm = off;
    e.aux = site;
    return;
  }
  unsigned kind;
  if (m.take(".ca")) kind = 0;
  else if (m.take(".cg")) kind = 1;
  else fc.unsupported();
  if (!m.take_any({".shared", ".shared::cta"}) || !m.take(".global")) fc.unsupported();
  bool hint = m.take(".L2::cache_hint");
  m.drop_hints();
  fc.finish_mods(m);
  size_t n = in.ops.size();
  if (n < 3 || n > 5) fc.fail("wrong number of operands for cp.async");
  if (in.ops[2].kind != Operand::Int) fc.fail("cp.async size must be a literal");
  int64_t cpsize = in.ops[2].ival;
  if (cpsize != 4 && cpsize != 8 && cpsize != 16) fc.fail("cp.async size must be 4, 8 or 16");
  if (kind == 1 && cpsize != 16) fc.fail("cp.async.cg copies 16 bytes");
  bool d64 = reg64(fc, in.ops[0]);
  uint32_t d = full_address(fc, in.ops[0], d64 ? 8 : 4);
  uint32_t s = full_address(fc, in.ops[1], 8);
  size_t extra = n - 3 - (hint ? 1 : 0);
  uint32_t ssz = kTrueWord, ign = kTrueWord;
  uint32_t flags = uint32_t(cpsize);
  if (extra == 1) {
    const Operand& x = in.ops[3];
    const Sym* sym = x.kind == Operand::Name ? fc.lookup(x.name) : nullptr;
    if (sym && sym->kind == Sym::Reg && sym->type == Ty::Pred) {
      bool neg = false;
      ign = fc.src_pred(x, &neg);
      if (neg) fc.unsupported("negated ignore-src predicate");
      flags |= 0x200;
    } else {
      ssz = fc.src(x, Ty::U32);
      flags |= 0x100;
    }
  } else if (extra != 0) {
    fc.fail("wrong number of operands for cp.async");
  }
  uint32_t site = fc.site();
  Inst& e = fc.emit(sel_cp_async(d64, true));
  e.o[0] = d, e.o[1] = s, e.o[2] = ssz, e.o[3] = ign;
  e.aux = site;
  e.aux2 = flags;
}

void c_mbarrier(FnCompiler& fc, const Instr& in) {
  Mods m(in.mods);
  MbOp op;
  bool has_dst = false, has_arg = false, arg64 = false, pred_dst = false, count_dst = false;
  bool parity = false;
  if (m.take(".init")) { op = MbOp::Init; has_arg = true; }
  else if (m.take(".inval")) op = MbOp::Inval;
  else if (m.take(".arrive")) {
    bool exp = m.take(".expect_tx");
    bool nc = m.take(".noComplete");
    op = exp ? MbOp::ArriveExpectTx : nc ? MbOp::ArriveNoComplete : MbOp::Arrive;
    has_dst = true;
  } else if (m.take(".arrive_drop")) {
    bool exp = m.take(".expect_tx");
    m.take(".noComplete");
    op = exp ? MbOp::ArriveDropExpectTx : MbOp::ArriveDrop;
    has_dst = true;
  } else if (m.take(".expect_tx")) { op = MbOp::ExpectTx; has_arg = true; }
  else if (m.take(".complete_tx")) { op = MbOp::CompleteTx; has_arg = true; }
  else if (m.take(".test_wait")) { parity = m.take(".parity"); op = parity ? MbOp::TestWaitParity : MbOp::TestWait; pred_dst = true; has_arg = true; arg64 = !parity; }
  else if (m.take(".try_wait")) { parity = m.take(".parity"); op = parity ? MbOp::TryWaitParity : MbOp::TryWait; pred_dst = true; has_arg = true; arg64 = !parity; }
  else if (m.take(".pending_count")) { op = MbOp::PendingCount; count_dst = true; }
  else fc.unsupported();
  m.take_sem();
  m.take_scope();
  bool shared = m.take_any({".shared", ".shared::cta", ".shared::cluster"});
  Ty t = m.take_type();
  fc.finish_mods(m);
  if (t != Ty::B64) fc.unsupported();
  if (op == MbOp::PendingCount) {
    fc.want_ops(2);
    uint32_t d = fc.dst(in.ops[0], Ty::U32), s = fc.src(in.ops[1], Ty::B64);
    Inst& e = fc.emit(sel_mbarrier(op, MSp::Shared, false));
    e.o[0] = d, e.o[2] = s;
    return;
  }
  (void)count_dst;
  size_t k = 0, n = in.ops.size();
  uint32_t d = kTrueWord;
  if (has_dst || pred_dst) {
    if (n == 0) fc.fail("missing destination");
    d = pred_dst ? fc.dst_pred(in.ops[0]) : fc.dst(in.ops[0], Ty::B64);
    k = 1;
  }
  if (k >= n) fc.fail("missing mbarrier address");
  bool a64 = reg64(fc, in.ops[k]);
  MemRef r = fc.mem(in.ops[k]);
  int64_t off = 0;
  uint32_t addr = fc.addr_reg(r, a64 ? 8 : 4, off);
  ++k;
  uint32_t arg = kTrueWord;
  uint32_t aux2 = 0;
  bool optional_count = op == MbOp::Arrive || op == MbOp::ArriveDrop || op == MbOp::ArriveNoComplete;
  bool need_arg = has_arg || op == MbOp::ArriveExpectTx || op == MbOp::ArriveDropExpectTx || op == MbOp::ArriveNoComplete;
  if (k < n && (need_arg || optional_count)) {
    arg = fc.src(in.ops[k], arg64 ? Ty::B64 : Ty::U32);
    if (optional_count) aux2 = 1;
    ++k;
  } else if (need_arg) {
    fc.fail("missing mbarrier operand");
  }
  if ((op == MbOp::TryWait || op == MbOp::TryWaitParity) && k < n) {
    fc.src(in.ops[k], Ty::U32);  // suspend-time hint
    ++k;
  }
  if (k != n) fc.fail("wrong number of operands for mbarrier");
  OpFn h = sel_mbarrier(op, shared ? MSp::Shared : MSp::Generic, a64);
  if (!h) fc.unsupported();
  uint32_t site = fc.site();
  Inst& e = fc.emit(h);
  e.o[0] = d, e.o[2] = arg, e.o[4] = addr;
  e.imm = off;
  e.aux = site;
  e.aux2 = aux2;
}

}  // namespace

void register_async(CompileTable& t) {
  t["cp"] = &c_cp;
  t["mbarrier"] = &c_mbarrier;
}

}  // namespace simgpu::ptx
