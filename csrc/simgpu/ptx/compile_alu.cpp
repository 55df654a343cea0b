// Instruction compilers: integer/float/half arithmetic, logic, mov, cvt,
// comparisons and selects.
#include <cstring>

#include "ptx/compile.h"
#include "ptx/ops.h"

namespace simgpu::ptx {

namespace {

using ast::Instr;
using ast::Operand;

bool is_half(Ty t) { return t == Ty::F16 || t == Ty::F16x2 || t == Ty::BF16 || t == Ty::BF16x2; }
bool is_f3264(Ty t) { return t == Ty::F32 || t == Ty::F64; }

Ty need_type(FnCompiler& fc, Mods& m) {
  Ty t = m.take_type();
  if (t == Ty::None) fc.fail("instruction '" + fc.cur->op + "' without a type");
  return t;
}

// Emits d = f(a[, b[, c[, e]]]) with the operand types given.
void emit_ops(FnCompiler& fc, const Instr& in, OpFn f, std::initializer_list<Ty> types) {
  if (!f) fc.unsupported();
  fc.want_ops(types.size());
  uint32_t slots[6] = {0, 0, 0, 0, 0, 0};
  size_t k = 0;
  for (Ty t : types) {
    slots[k] = k == 0 ? fc.dst(in.ops[0], t) : fc.src(in.ops[k], t);
    ++k;
  }
  Inst& e = fc.emit(f);
  for (size_t i = 0; i < k; ++i) e.o[i] = slots[i];
}

struct FMods {
  Rnd r = Rnd::None;
  bool ftz = false, sat = false, relu = false, approx = false, full = false, nan = false, xorsign = false;
  bool cc = false;
  Ty t = Ty::None;
};

FMods take_fmods(FnCompiler& fc, Mods& m) {
  FMods f;
  f.r = m.take_rnd();
  f.ftz = m.take(".ftz");
  f.sat = m.take(".sat");
  f.relu = m.take(".relu");
  f.approx = m.take(".approx");
  f.full = m.take(".full");
  f.nan = m.take(".NaN");
  f.xorsign = m.take(".xorsign");
  if (f.xorsign && !m.take(".abs")) fc.unsupported("xorsign without abs");
  f.cc = m.take(".cc");
  f.t = need_type(fc, m);
  fc.finish_mods(m);
  return f;
}

void no_int_mods(FnCompiler& fc, const FMods& f) {
  if (f.r != Rnd::None || f.ftz || f.relu || f.approx || f.full || f.nan || f.xorsign) fc.unsupported();
}

// add/sub/min/max on .s16x2/.u16x2 (not PTX scalar types, so handled first).
bool packed16(FnCompiler& fc, const Instr& in, int op) {
  bool s = false;
  for (const std::string& x : in.mods) {
    if (x == ".s16x2") s = true;
    else if (x == ".u16x2") s = false;
    else continue;
    Mods m(in.mods);
    m.take(x.c_str());
    bool flag = op <= 1 ? m.take(".sat") : m.take(".relu");
    fc.finish_mods(m);
    if (flag && op <= 1 && !s) fc.unsupported();
    emit_ops(fc, in, sel_x2(op, s, flag), {Ty::B32, Ty::B32, Ty::B32});
    return true;
  }
  return false;
}

// add / sub
template <bool SUB>
void c_addsub(FnCompiler& fc, const Instr& in) {
  if (packed16(fc, in, SUB ? 1 : 0)) return;
  Mods m(in.mods);
  FMods f = take_fmods(fc, m);
  Ty t = f.t;
  if (is_f3264(t)) {
    if (f.cc || f.approx || f.relu) fc.unsupported();
    emit_ops(fc, in, sel_float(SUB ? FOp::Sub : FOp::Add, t, f.r, f.ftz, f.sat), {t, t, t});
  } else if (is_half(t)) {
    if (f.cc || (f.r != Rnd::None && f.r != Rnd::RN)) fc.unsupported();
    emit_ops(fc, in, sel_half(SUB ? FOp::Sub : FOp::Add, t, f.ftz, f.sat, false), {t, t, t});
  } else {
    no_int_mods(fc, f);
    if (f.cc) {
      fc.want_ops(3);
      uint32_t d = fc.dst(in.ops[0], t), a = fc.src(in.ops[1], t), b = fc.src(in.ops[2], t), cc = fc.cc_slot();
      OpFn h = sel_int(SUB ? IOp::SubCC : IOp::AddCC, t);
      if (!h || f.sat) fc.unsupported();
      Inst& e = fc.emit(h);
      e.o[0] = d, e.o[1] = a, e.o[2] = b, e.o[3] = cc;
      return;
    }
    OpFn h = f.sat ? sel_int(SUB ? IOp::SubSat : IOp::AddSat, t) : sel_int(SUB ? IOp::Sub : IOp::Add, t);
    emit_ops(fc, in, h, {t, t, t});
  }
}

// addc / subc (carry in, optional .cc carry out)
template <bool SUB>
void c_addc(FnCompiler& fc, const Instr& in) {
  Mods m(in.mods);
  bool cc = m.take(".cc");
  Ty t = need_type(fc, m);
  fc.finish_mods(m);
  fc.want_ops(3);
  OpFn h = sel_int(SUB ? (cc ? IOp::SubCCC : IOp::SubC) : (cc ? IOp::AddCCC : IOp::AddC), t);
  if (!h) fc.unsupported();
  uint32_t d = fc.dst(in.ops[0], t), a = fc.src(in.ops[1], t), b = fc.src(in.ops[2], t), c = fc.cc_slot();
  Inst& e = fc.emit(h);
  e.o[0] = d, e.o[1] = a, e.o[2] = b, e.o[3] = c;
}

Ty wide_of(FnCompiler& fc, Ty t) {
  switch (t) {
    case Ty::U16: return Ty::U32;
    case Ty::S16: return Ty::S32;
    case Ty::U32: return Ty::U64;
    case Ty::S32: return Ty::S64;
    default: fc.unsupported("no wide form for ." + std::string(ty_name(t)));
  }
}

void c_mul(FnCompiler& fc, const Instr& in) {
  Mods m(in.mods);
  bool hi = m.take(".hi"), lo = m.take(".lo"), wide = m.take(".wide");
  FMods f = take_fmods(fc, m);
  Ty t = f.t;
  if (is_f3264(t)) {
    if (hi || lo || wide || f.cc) fc.unsupported();
    emit_ops(fc, in, sel_float(FOp::Mul, t, f.r, f.ftz, f.sat), {t, t, t});
  } else if (is_half(t)) {
    if (hi || lo || wide) fc.unsupported();
    emit_ops(fc, in, sel_half(FOp::Mul, t, f.ftz, f.sat, false), {t, t, t});
  } else {
    no_int_mods(fc, f);
    if (f.sat || f.cc || int(hi) + int(lo) + int(wide) > 1) fc.unsupported();
    if (wide) emit_ops(fc, in, sel_int(IOp::MulWide, t), {wide_of(fc, t), t, t});
    else emit_ops(fc, in, sel_int(hi ? IOp::MulHi : IOp::MulLo, t), {t, t, t});
  }
}

void c_mul24(FnCompiler& fc, const Instr& in) {
  Mods m(in.mods);
  bool hi = m.take(".hi");
  m.take(".lo");
  Ty t = need_type(fc, m);
  fc.finish_mods(m);
  emit_ops(fc, in, sel_int(hi ? IOp::Mul24Hi : IOp::Mul24Lo, t), {t, t, t});
}

void c_mad24(FnCompiler& fc, const Instr& in) {
  Mods m(in.mods);
  bool hi = m.take(".hi");
  m.take(".lo");
  Ty t = need_type(fc, m);
  fc.finish_mods(m);
  emit_ops(fc, in, sel_int(hi ? IOp::Mad24Hi : IOp::Mad24Lo, t), {t, t, t, t});
}

void c_fma(FnCompiler& fc, const Instr& in) {
  Mods m(in.mods);
  FMods f = take_fmods(fc, m);
  Ty t = f.t;
  if (is_f3264(t)) {
    if (f.relu) fc.unsupported();
    emit_ops(fc, in, sel_float(FOp::Fma, t, f.r, f.ftz, f.sat), {t, t, t, t});
  } else if (is_half(t)) {
    emit_ops(fc, in, sel_half(FOp::Fma, t, f.ftz, f.sat, f.relu), {t, t, t, t});
  } else {
    fc.unsupported();
  }
}

void c_mad(FnCompiler& fc, const Instr& in) {
  Mods m(in.mods);
  bool hi = m.take(".hi"), lo = m.take(".lo"), wide = m.take(".wide");
  FMods f = take_fmods(fc, m);
  Ty t = f.t;
  if (is_f3264(t)) {
    // mad.f32/f64 is fused on every target since sm_20.
    if (hi || lo || wide) fc.unsupported();
    emit_ops(fc, in, sel_float(FOp::Fma, t, f.r, f.ftz, f.sat), {t, t, t, t});
    return;
  }
  if (is_half(t)) fc.unsupported();
  no_int_mods(fc, f);
  if (f.cc) {
    if (!hi && !lo) fc.unsupported();
    fc.want_ops(4);
    uint32_t d = fc.dst(in.ops[0], t), a = fc.src(in.ops[1], t), b = fc.src(in.ops[2], t), c = fc.src(in.ops[3], t);
    OpFn h = sel_int(hi ? IOp::MadHiCC : IOp::MadLoCC, t);
    if (!h) fc.unsupported();
    uint32_t cc = fc.cc_slot();
    Inst& e = fc.emit(h);
    e.o[0] = d, e.o[1] = a, e.o[2] = b, e.o[3] = c, e.o[4] = cc;
    return;
  }
  if (wide) {
    if (f.sat) fc.unsupported();
    Ty w = wide_of(fc, t);
    emit_ops(fc, in, sel_int(IOp::MadWide, t), {w, t, t, w});
    return;
  }
  if (f.sat) {
    if (!hi) fc.unsupported();
    emit_ops(fc, in, sel_int(IOp::MadHiSat, t), {t, t, t, t});
    return;
  }
  emit_ops(fc, in, sel_int(hi ? IOp::MadHi : IOp::MadLo, t), {t, t, t, t});
}

void c_madc(FnCompiler& fc, const Instr& in) {
  Mods m(in.mods);
  bool hi = m.take(".hi");
  bool lo = m.take(".lo");
  bool cc = m.take(".cc");
  Ty t = need_type(fc, m);
  fc.finish_mods(m);
  if (!hi && !lo) fc.unsupported();
  fc.want_ops(4);
  OpFn h = sel_int(hi ? (cc ? IOp::MadcHiCC : IOp::MadcHi) : (cc ? IOp::MadcLoCC : IOp::MadcLo), t);
  if (!h) fc.unsupported();
  uint32_t d = fc.dst(in.ops[0], t), a = fc.src(in.ops[1], t), b = fc.src(in.ops[2], t), c = fc.src(in.ops[3], t);
  uint32_t cs = fc.cc_slot();
  Inst& e = fc.emit(h);
  e.o[0] = d, e.o[1] = a, e.o[2] = b, e.o[3] = c, e.o[4] = cs;
}

void c_sad(FnCompiler& fc, const Instr& in) {
  Mods m(in.mods);
  Ty t = need_type(fc, m);
  fc.finish_mods(m);
  emit_ops(fc, in, sel_int(IOp::Sad, t), {t, t, t, t});
}

void c_div(FnCompiler& fc, const Instr& in) {
  Mods m(in.mods);
  FMods f = take_fmods(fc, m);
  Ty t = f.t;
  if (is_f3264(t)) {
    FOp op = f.approx ? FOp::DivApprox : f.full ? FOp::DivFull : FOp::Div;
    if (op == FOp::Div && f.r == Rnd::None && t == Ty::F64) fc.unsupported("div.f64 needs a rounding mode");
    emit_ops(fc, in, sel_float(op, t, f.r, f.ftz, f.sat), {t, t, t});
  } else {
    no_int_mods(fc, f);
    if (f.sat || f.cc) fc.unsupported();
    emit_ops(fc, in, sel_int(IOp::Div, t), {t, t, t});
  }
}

void c_rem(FnCompiler& fc, const Instr& in) {
  Mods m(in.mods);
  Ty t = need_type(fc, m);
  fc.finish_mods(m);
  emit_ops(fc, in, sel_int(IOp::Rem, t), {t, t, t});
}

template <bool MAX>
void c_minmax(FnCompiler& fc, const Instr& in) {
  if (packed16(fc, in, MAX ? 3 : 2)) return;
  Mods m(in.mods);
  FMods f = take_fmods(fc, m);
  Ty t = f.t;
  FOp op = f.xorsign ? (MAX ? FOp::MaxXs : FOp::MinXs) : f.nan ? (MAX ? FOp::MaxNaN : FOp::MinNaN) : (MAX ? FOp::Max : FOp::Min);
  if (f.r != Rnd::None || f.sat || f.approx || f.cc) fc.unsupported();
  if (is_f3264(t)) {
    if (f.relu) fc.unsupported();
    emit_ops(fc, in, sel_float(op, t, Rnd::None, f.ftz, false), {t, t, t});
  } else if (is_half(t)) {
    if (f.relu) fc.unsupported();
    emit_ops(fc, in, sel_half(op, t, f.ftz, false, false), {t, t, t});
  } else {
    if (f.ftz || f.nan || f.xorsign) fc.unsupported();
    emit_ops(fc, in, sel_int(f.relu ? (MAX ? IOp::MaxRelu : IOp::MinRelu) : (MAX ? IOp::Max : IOp::Min), t), {t, t, t});
  }
}

template <bool ABS>
void c_negabs(FnCompiler& fc, const Instr& in) {
  Mods m(in.mods);
  FMods f = take_fmods(fc, m);
  Ty t = f.t;
  if (is_f3264(t)) emit_ops(fc, in, sel_float(ABS ? FOp::Abs : FOp::Neg, t, Rnd::None, f.ftz, false), {t, t});
  else if (is_half(t)) emit_ops(fc, in, sel_half(ABS ? FOp::Abs : FOp::Neg, t, f.ftz, false, false), {t, t});
  else {
    no_int_mods(fc, f);
    emit_ops(fc, in, sel_int(ABS ? IOp::Abs : IOp::Neg, t), {t, t});
  }
}

// Unary floating-point functions: sqrt, rcp, rsqrt, sin, cos, lg2, ex2, tanh.
template <FOp EXACT, FOp APPROX>
void c_fun(FnCompiler& fc, const Instr& in) {
  Mods m(in.mods);
  FMods f = take_fmods(fc, m);
  Ty t = f.t;
  if (is_half(t)) {
    if (!f.approx || (APPROX != FOp::Ex2 && APPROX != FOp::Tanh)) fc.unsupported();
    emit_ops(fc, in, sel_half(APPROX, t, f.ftz, false, false), {t, t});
    return;
  }
  FOp op;
  if (f.approx) {
    op = APPROX;
    if (APPROX == FOp::RcpApprox && t == Ty::F64) op = FOp::RcpApproxFtz64;
    if (APPROX == FOp::Rsqrt && t == Ty::F64) op = FOp::RsqrtFtz64;
    if (f.r != Rnd::None) fc.unsupported();
  } else {
    op = EXACT;
    if (EXACT == APPROX) fc.unsupported(".approx required");
    if (f.r == Rnd::None) fc.unsupported("rounding modifier required");
  }
  emit_ops(fc, in, sel_float(op, t, f.r, f.ftz, f.sat), {t, t});
}

void c_copysign(FnCompiler& fc, const Instr& in) {
  Mods m(in.mods);
  Ty t = need_type(fc, m);
  fc.finish_mods(m);
  emit_ops(fc, in, sel_float(FOp::Copysign, t, Rnd::None, false, false), {t, t, t});
}

void c_testp(FnCompiler& fc, const Instr& in) {
  Mods m(in.mods);
  static const char* ops[] = {".finite", ".infinite", ".number", ".notanumber", ".normal", ".subnormal"};
  int which = -1;
  for (int i = 0; i < 6; ++i)
    if (m.take(ops[i])) which = i;
  Ty t = need_type(fc, m);
  fc.finish_mods(m);
  if (which < 0) fc.unsupported();
  fc.want_ops(2);
  OpFn h = sel_testp(which, t);
  if (!h) fc.unsupported();
  uint32_t p = fc.dst_pred(in.ops[0]), a = fc.src(in.ops[1], t);
  Inst& e = fc.emit(h);
  e.o[0] = p, e.o[1] = a;
}

// and / or / xor / not / cnot: integer or predicate.
template <IOp OP, POp PO>
void c_logic(FnCompiler& fc, const Instr& in) {
  Mods m(in.mods);
  Ty t = need_type(fc, m);
  fc.finish_mods(m);
  bool unary = OP == IOp::Not || OP == IOp::Cnot;
  if (t == Ty::Pred) {
    if (OP == IOp::Cnot) fc.unsupported();
    fc.want_ops(unary ? 2 : 3);
    bool na = false, nb = false;
    uint32_t d = fc.dst_pred(in.ops[0]);
    uint32_t a = fc.src_pred(in.ops[1], &na);
    uint32_t b = unary ? kTrueWord : fc.src_pred(in.ops[2], &nb);
    Inst& e = fc.emit(sel_pred(PO));
    e.o[0] = d, e.o[1] = a, e.o[2] = b;
    e.aux = (na ? 1u : 0u) | (nb ? 2u : 0u);
    return;
  }
  if (unary) emit_ops(fc, in, sel_int(OP, t), {t, t});
  else emit_ops(fc, in, sel_int(OP, t), {t, t, t});
}

template <IOp OP>
void c_shift(FnCompiler& fc, const Instr& in) {
  Mods m(in.mods);
  Ty t = need_type(fc, m);
  fc.finish_mods(m);
  emit_ops(fc, in, sel_int(OP, t), {t, t, Ty::U32});
}

template <IOp OP>
void c_bitcount(FnCompiler& fc, const Instr& in) {
  Mods m(in.mods);
  bool shift = m.take(".shiftamt");
  Ty t = need_type(fc, m);
  fc.finish_mods(m);
  IOp op = OP;
  if (shift) {
    if (OP != IOp::Bfind) fc.unsupported();
    op = IOp::BfindShift;
  }
  emit_ops(fc, in, sel_int(op, t), {Ty::U32, t});
}

void c_brev(FnCompiler& fc, const Instr& in) {
  Mods m(in.mods);
  Ty t = need_type(fc, m);
  fc.finish_mods(m);
  emit_ops(fc, in, sel_int(IOp::Brev, t), {t, t});
}

void c_bfe(FnCompiler& fc, const Instr& in) {
  Mods m(in.mods);
  Ty t = need_type(fc, m);
  fc.finish_mods(m);
  emit_ops(fc, in, sel_int(IOp::Bfe, t), {t, t, Ty::U32, Ty::U32});
}

void c_bfi(FnCompiler& fc, const Instr& in) {
  Mods m(in.mods);
  Ty t = need_type(fc, m);
  fc.finish_mods(m);
  emit_ops(fc, in, sel_int(IOp::Bfi, t), {t, t, t, Ty::U32, Ty::U32});
}

void c_prmt(FnCompiler& fc, const Instr& in) {
  Mods m(in.mods);
  static const char* modes[] = {".f4e", ".b4e", ".rc8", ".ecl", ".ecr", ".rc16"};
  uint32_t mode = 0;
  for (int i = 0; i < 6; ++i)
    if (m.take(modes[i])) mode = uint32_t(i + 1);
  Ty t = need_type(fc, m);
  fc.finish_mods(m);
  OpFn h = sel_int(IOp::Prmt, t);
  if (!h) fc.unsupported();
  fc.want_ops(4);
  uint32_t d = fc.dst(in.ops[0], t), a = fc.src(in.ops[1], t), b = fc.src(in.ops[2], t), c = fc.src(in.ops[3], t);
  Inst& e = fc.emit(h);
  e.o[0] = d, e.o[1] = a, e.o[2] = b, e.o[3] = c;
  e.aux = mode;
}

void c_shf(FnCompiler& fc, const Instr& in) {
  Mods m(in.mods);
  bool l = m.take(".l"), r = m.take(".r");
  bool wrap = m.take(".wrap"), clamp = m.take(".clamp");
  Ty t = need_type(fc, m);
  fc.finish_mods(m);
  if (l == r || wrap == clamp) fc.unsupported();
  IOp op = l ? (wrap ? IOp::ShfLWrap : IOp::ShfLClamp) : (wrap ? IOp::ShfRWrap : IOp::ShfRClamp);
  emit_ops(fc, in, sel_int(op, t), {t, t, t, Ty::U32});
}

void c_lop3(FnCompiler& fc, const Instr& in) {
  Mods m(in.mods);
  Ty t = need_type(fc, m);
  fc.finish_mods(m);
  fc.want_ops(5);
  if (in.ops[4].kind != Operand::Int) fc.fail("lop3 needs an immediate lookup table");
  OpFn h = sel_int(IOp::Lop3, t);
  if (!h) fc.unsupported();
  uint32_t d = fc.dst(in.ops[0], t), a = fc.src(in.ops[1], t), b = fc.src(in.ops[2], t), c = fc.src(in.ops[3], t);
  Inst& e = fc.emit(h);
  e.o[0] = d, e.o[1] = a, e.o[2] = b, e.o[3] = c;
  e.imm = in.ops[4].ival & 0xff;
}

void c_dp(FnCompiler& fc, const Instr& in) {
  bool two = in.op == "dp2a";
  Mods m(in.mods);
  bool hi = m.take(".hi");
  if (two && !hi && !m.take(".lo")) fc.unsupported();
  Ty ta = need_type(fc, m), tb = need_type(fc, m);
  fc.finish_mods(m);
  fc.want_ops(4);
  Ty td = (ty_is_signed(ta) || ty_is_signed(tb)) ? Ty::S32 : Ty::U32;
  uint32_t d = fc.dst(in.ops[0], td), a = fc.src(in.ops[1], ta), b = fc.src(in.ops[2], tb), c = fc.src(in.ops[3], td);
  Inst& e = fc.emit(sel_dp(two));
  e.o[0] = d, e.o[1] = a, e.o[2] = b, e.o[3] = c;
  e.aux = (ty_is_signed(ta) ? 1u : 0u) | (ty_is_signed(tb) ? 2u : 0u) | (hi ? 4u : 0u) | (two ? 8u : 0u);
}

void c_szext(FnCompiler& fc, const Instr& in) {
  Mods m(in.mods);
  bool clamp = m.take(".clamp");
  bool wrap = m.take(".wrap");
  Ty t = need_type(fc, m);
  fc.finish_mods(m);
  if (clamp == wrap) fc.unsupported();
  bool bm = in.op == "bmsk";
  emit_ops(fc, in, sel_int(bm ? (clamp ? IOp::BmskClamp : IOp::Bmsk) : (clamp ? IOp::SzextClamp : IOp::Szext), t),
           {t, t, Ty::U32});
}

// SIMD video instructions: vop4/vop2.dtype.atype.btype{.sat}{.add|.min|.max} d, a, b, c
void c_video(FnCompiler& fc, const Instr& in) {
  static const char* ops[] = {"vadd", "vsub", "vabsdiff", "vmin", "vmax", "vavrg"};
  std::string name = in.op;
  int lanes = name.back() == '4' ? 4 : 2;
  name.pop_back();
  int op = -1;
  for (int i = 0; i < 6; ++i)
    if (name == ops[i]) op = i;
  if (op < 0) fc.unsupported();
  Mods m(in.mods);
  Ty dt = need_type(fc, m), at = need_type(fc, m), bt = need_type(fc, m);
  bool sat = m.take(".sat");
  int sec = m.take(".add") ? 1 : m.take(".min") ? 2 : m.take(".max") ? 3 : 0;
  fc.finish_mods(m);
  for (Ty t : {dt, at, bt})
    if (t != Ty::U32 && t != Ty::S32) fc.unsupported();
  fc.want_ops(4);
  for (const Operand& o : in.ops)
    if (o.kind == Operand::Name && o.name.find('.') != std::string::npos) fc.unsupported("lane selectors");
  uint32_t d = fc.dst(in.ops[0], Ty::B32), a = fc.src(in.ops[1], Ty::B32), b = fc.src(in.ops[2], Ty::B32),
           c = fc.src(in.ops[3], Ty::B32);
  Inst& e = fc.emit(sel_video());
  e.o[0] = d, e.o[1] = a, e.o[2] = b, e.o[3] = c;
  e.aux = uint32_t(op) | uint32_t(sec) << 4 | (at == Ty::S32 ? 0x100u : 0) | (bt == Ty::S32 ? 0x200u : 0) |
          (dt == Ty::S32 ? 0x400u : 0) | (sat ? 0x800u : 0) | uint32_t(lanes) << 12;
}

void c_fns(FnCompiler& fc, const Instr& in) {
  Mods m(in.mods);
  if (m.take_type() != Ty::B32) fc.unsupported();
  fc.finish_mods(m);
  emit_ops(fc, in, sel_fns(), {Ty::B32, Ty::B32, Ty::U32, Ty::S32});
}

// ---- mov

void c_mov(FnCompiler& fc, const Instr& in) {
  Mods m(in.mods);
  Ty t = need_type(fc, m);
  fc.finish_mods(m);
  fc.want_ops(2);
  const Operand& d = in.ops[0];
  const Operand& a = in.ops[1];
  if (t == Ty::Pred) {
    bool na = false;
    uint32_t dp = fc.dst_pred(d), ap = fc.src_pred(a, &na);
    Inst& e = fc.emit(sel_pred(POp::Mov));
    e.o[0] = dp, e.o[1] = ap;
    e.aux = na ? 1 : 0;
    return;
  }
  unsigned size = ty_size(t);
  if (a.kind == Operand::Vec || d.kind == Operand::Vec) {
    bool pack = a.kind == Operand::Vec;
    const Operand& v = pack ? a : d;
    size_t n = v.elems.size();
    if ((n != 2 && n != 4) || size % n) fc.fail("bad vector operand for mov");
    Ty pt = ty_bits(size / unsigned(n));
    uint32_t parts[4];
    for (size_t k = 0; k < n; ++k) parts[k] = pack ? fc.src(v.elems[k], pt) : fc.dst(v.elems[k], pt);
    uint32_t wide = pack ? fc.dst(d, t) : fc.src(a, t);
    OpFn h = pack ? sel_pack(size, unsigned(n)) : sel_unpack(size, unsigned(n));
    if (!h) fc.unsupported();
    Inst& e = fc.emit(h);
    e.o[0] = wide;
    for (size_t k = 0; k < n; ++k) e.o[1 + k] = parts[k];
    return;
  }
  if (a.kind == Operand::Name && a.name[0] == '%' && !fc.lookup(a.name) && sreg_id(a.name.c_str()) >= 0) {
    int id = sreg_id(a.name.c_str());
    OpFn h = sel_sreg(unsigned(id), size);
    if (!h) fc.fail("special register " + a.name + " read as ." + ty_name(t));
    if (a.name.rfind("%envreg", 0) == 0) fc.out.grid_sync = true;
    uint32_t dd = fc.dst(d, t);
    Inst& e = fc.emit(h);
    e.o[0] = dd;
    e.aux = unsigned(id);
    e.aux2 = size;
    return;
  }
  if (a.kind == Operand::Name && !fc.lookup(a.name)) {
    auto f = fc.mc.funcs.find(a.name);
    if (f != fc.mc.funcs.end()) fc.mc.ir.funcs[f->second].address_taken = true;
  }
  uint32_t s = fc.src(a, t);
  uint32_t dd = fc.dst(d, t);
  Inst& e = fc.emit(sel_mov(size));
  e.o[0] = dd, e.o[1] = s;
}

// ---- cvt

void c_cvt(FnCompiler& fc, const Instr& in) {
  Mods m(in.mods);
  Rnd r = m.take_rnd();
  bool ftz = m.take(".ftz"), sat = m.take(".sat"), relu = m.take(".relu"), satf = m.take(".satfinite");
  Ty dt = need_type(fc, m), st = need_type(fc, m);
  fc.finish_mods(m);
  bool irnd = r == Rnd::RNI || r == Rnd::RZI || r == Rnd::RMI || r == Rnd::RPI;
  bool df = ty_is_float(dt), sf = ty_is_float(st);
  if (sf && !df && !irnd) fc.fail("float-to-integer cvt needs an integer rounding modifier");
  if (!sf && !df && r != Rnd::None) fc.unsupported();
  if (irnd && !sf) fc.unsupported();
  if (ty_kind(dt) == TyKind::Bits || ty_kind(st) == TyKind::Bits) fc.unsupported("cvt on bit-size types");
  OpFn h = sel_cvt(dt, st, r, ftz, sat, relu, satf);
  if (!h) fc.unsupported();
  uint32_t aux = uint32_t(r) | (ftz ? 0x100u : 0) | (sat ? 0x200u : 0) | (relu ? 0x400u : 0) | (satf ? 0x800u : 0);
  bool pack2 = (dt == Ty::F16x2 || dt == Ty::BF16x2 || dt == Ty::E4M3x2 || dt == Ty::E5M2x2) && st == Ty::F32;
  if (pack2) {
    fc.want_ops(3);
    uint32_t a = fc.src(in.ops[1], Ty::F32), b = fc.src(in.ops[2], Ty::F32);
    uint32_t d = fc.dst(in.ops[0], dt);
    Inst& e = fc.emit(h);
    e.o[0] = d, e.o[1] = a, e.o[2] = b;
    e.aux = aux;
    return;
  }
  fc.want_ops(2);
  uint32_t a = fc.src_relaxed(in.ops[1], st);
  uint32_t d = fc.dst_relaxed(in.ops[0], dt);
  Inst& e = fc.emit(h);
  e.o[0] = d, e.o[1] = a;
  e.aux = aux;
}

// ---- comparisons

bool take_cmp(Mods& m, Cmp& c) {
  static const struct { const char* n; Cmp c; } k[] = {
      {".eq", Cmp::EQ},   {".ne", Cmp::NE},   {".lt", Cmp::LT},   {".le", Cmp::LE},   {".gt", Cmp::GT},
      {".ge", Cmp::GE},   {".lo", Cmp::LO},   {".ls", Cmp::LS},   {".hi", Cmp::HI},   {".hs", Cmp::HS},
      {".equ", Cmp::EQU}, {".neu", Cmp::NEU}, {".ltu", Cmp::LTU}, {".leu", Cmp::LEU}, {".gtu", Cmp::GTU},
      {".geu", Cmp::GEU}, {".num", Cmp::NUM}, {".nan", Cmp::NAN_},
  };
  for (auto& e : k)
    if (m.take(e.n)) {
      c = e.c;
      return true;
    }
  return false;
}

uint32_t take_comb(Mods& m) {
  if (m.take(".and")) return 1;
  if (m.take(".or")) return 2;
  if (m.take(".xor")) return 3;
  return 0;
}

void c_setp(FnCompiler& fc, const Instr& in) {
  Mods m(in.mods);
  Cmp cmp;
  if (!take_cmp(m, cmp)) fc.unsupported("missing comparison");
  uint32_t comb = take_comb(m);
  bool ftz = m.take(".ftz");
  Ty t = need_type(fc, m);
  fc.finish_mods(m);
  fc.want_ops(comb ? 4 : 3);
  OpFn h = sel_setp(cmp, t, BoolOp(comb), ftz);
  if (!h) fc.unsupported();
  const Operand& pq = in.ops[0];
  if (pq.kind != Operand::Name && pq.kind != Operand::Sink) fc.fail("setp needs a predicate destination");
  uint32_t p = fc.dst_pred(pq), q;
  if (!pq.name2.empty()) {
    Operand qo;
    qo.kind = pq.name2 == "_" ? Operand::Sink : Operand::Name;
    qo.name = pq.name2;
    q = fc.dst_pred(qo);
  } else {
    q = fc.temp(0);
  }
  uint32_t a = fc.src(in.ops[1], t), b = fc.src(in.ops[2], t);
  bool nc = false;
  uint32_t c = comb ? fc.src_pred(in.ops[3], &nc) : kTrueWord;
  Inst& e = fc.emit(h);
  e.o[0] = p, e.o[1] = q, e.o[2] = a, e.o[3] = b, e.o[4] = c;
  e.aux = comb | (nc ? 4u : 0u);
}

void c_set(FnCompiler& fc, const Instr& in) {
  Mods m(in.mods);
  Cmp cmp;
  if (!take_cmp(m, cmp)) fc.unsupported("missing comparison");
  uint32_t comb = take_comb(m);
  bool ftz = m.take(".ftz");
  Ty dt = need_type(fc, m), st = need_type(fc, m);
  fc.finish_mods(m);
  fc.want_ops(comb ? 4 : 3);
  bool x2 = st == Ty::F16x2 || st == Ty::BF16x2;
  uint32_t dk;
  if (x2) {
    if (dt == Ty::F16x2) dk = 2;
    else if (dt == Ty::BF16x2) dk = 4;
    else if (dt == Ty::U32 || dt == Ty::S32) dk = 3;
    else fc.unsupported();
  } else if (ty_size(dt) == 2) {
    if (dt == Ty::F16) dk = 5;
    else if (dt == Ty::BF16) dk = 6;
    else if (dt == Ty::U16 || dt == Ty::S16) dk = 7;
    else fc.unsupported();
  } else {
    if (dt == Ty::F32) dk = 1;
    else if (dt == Ty::U32 || dt == Ty::S32) dk = 0;
    else fc.unsupported();
  }
  OpFn h = sel_set(cmp, dt, st, BoolOp(comb), ftz);
  if (!h) fc.unsupported();
  uint32_t d = fc.dst(in.ops[0], dt), a = fc.src(in.ops[1], st), b = fc.src(in.ops[2], st);
  bool nc = false;
  uint32_t c = comb ? fc.src_pred(in.ops[3], &nc) : kTrueWord;
  Inst& e = fc.emit(h);
  e.o[0] = d, e.o[1] = a, e.o[2] = b, e.o[3] = c;
  e.aux = comb | (nc ? 4u : 0u) | (dk << 8);
}

void c_selp(FnCompiler& fc, const Instr& in) {
  Mods m(in.mods);
  Ty t = need_type(fc, m);
  fc.finish_mods(m);
  fc.want_ops(4);
  OpFn h = sel_selp(ty_size(t));
  if (!h || t == Ty::Pred) fc.unsupported();
  uint32_t d = fc.dst(in.ops[0], t), a = fc.src(in.ops[1], t), b = fc.src(in.ops[2], t);
  uint32_t c = fc.src_pred(in.ops[3]);
  Inst& e = fc.emit(h);
  e.o[0] = d, e.o[1] = a, e.o[2] = b, e.o[3] = c;
}

void c_slct(FnCompiler& fc, const Instr& in) {
  Mods m(in.mods);
  bool ftz = m.take(".ftz");
  Ty dt = need_type(fc, m), ct = need_type(fc, m);
  fc.finish_mods(m);
  if (ct != Ty::S32 && ct != Ty::F32) fc.unsupported();
  emit_ops(fc, in, sel_slct(ty_size(dt), ct == Ty::F32, ftz), {dt, dt, dt, ct});
}

}  // namespace

void register_alu(CompileTable& t) {
  t["add"] = &c_addsub<false>;
  t["sub"] = &c_addsub<true>;
  t["addc"] = &c_addc<false>;
  t["subc"] = &c_addc<true>;
  t["mul"] = &c_mul;
  t["mul24"] = &c_mul24;
  t["mad24"] = &c_mad24;
  t["mad"] = &c_mad;
  t["madc"] = &c_madc;
  t["fma"] = &c_fma;
  t["sad"] = &c_sad;
  t["div"] = &c_div;
  t["rem"] = &c_rem;
  t["min"] = &c_minmax<false>;
  t["max"] = &c_minmax<true>;
  t["neg"] = &c_negabs<false>;
  t["abs"] = &c_negabs<true>;
  t["sqrt"] = &c_fun<FOp::Sqrt, FOp::SqrtApprox>;
  t["rcp"] = &c_fun<FOp::Rcp, FOp::RcpApprox>;
  t["rsqrt"] = &c_fun<FOp::Rsqrt, FOp::Rsqrt>;
  t["sin"] = &c_fun<FOp::Sin, FOp::Sin>;
  t["cos"] = &c_fun<FOp::Cos, FOp::Cos>;
  t["lg2"] = &c_fun<FOp::Lg2, FOp::Lg2>;
  t["ex2"] = &c_fun<FOp::Ex2, FOp::Ex2>;
  t["tanh"] = &c_fun<FOp::Tanh, FOp::Tanh>;
  t["copysign"] = &c_copysign;
  t["testp"] = &c_testp;
  t["and"] = &c_logic<IOp::And, POp::And>;
  t["or"] = &c_logic<IOp::Or, POp::Or>;
  t["xor"] = &c_logic<IOp::Xor, POp::Xor>;
  t["not"] = &c_logic<IOp::Not, POp::Not>;
  t["cnot"] = &c_logic<IOp::Cnot, POp::Not>;
  t["shl"] = &c_shift<IOp::Shl>;
  t["shr"] = &c_shift<IOp::Shr>;
  t["popc"] = &c_bitcount<IOp::Popc>;
  t["clz"] = &c_bitcount<IOp::Clz>;
  t["bfind"] = &c_bitcount<IOp::Bfind>;
  t["brev"] = &c_brev;
  t["bfe"] = &c_bfe;
  t["bfi"] = &c_bfi;
  t["prmt"] = &c_prmt;
  t["shf"] = &c_shf;
  t["lop3"] = &c_lop3;
  t["dp4a"] = &c_dp;
  t["dp2a"] = &c_dp;
  t["szext"] = &c_szext;
  t["bmsk"] = &c_szext;
  for (const char* v : {"vadd4", "vsub4", "vabsdiff4", "vmin4", "vmax4", "vavrg4", "vadd2", "vsub2", "vabsdiff2",
                        "vmin2", "vmax2", "vavrg2"})
    t[v] = &c_video;
  t["fns"] = &c_fns;
  t["mov"] = &c_mov;
  t["cvt"] = &c_cvt;
  t["setp"] = &c_setp;
  t["set"] = &c_set;
  t["selp"] = &c_selp;
  t["slct"] = &c_slct;
}

}  // namespace simgpu::ptx
