// Instruction compilers: ld/st, parameter traffic, cvta, isspacep, atomics.
#include "ptx/compile.h"
#include "ptx/ops.h"

namespace simgpu::ptx {

namespace {

using ast::Instr;
using ast::Operand;

enum class SpaceMod { None, Global, Shared, Local, Param, Const };

SpaceMod take_space(Mods& m) {
  if (m.take(".global")) return SpaceMod::Global;
  if (m.take_any({".shared", ".shared::cta", ".shared::cluster"})) return SpaceMod::Shared;
  if (m.take(".local")) return SpaceMod::Local;
  if (m.take_any({".param", ".param::entry", ".param::func"})) return SpaceMod::Param;
  if (m.take(".const")) return SpaceMod::Const;
  return SpaceMod::None;
}

MSp msp_of(SpaceMod s) {
  switch (s) {
    case SpaceMod::Global: case SpaceMod::Const: return MSp::Global;
    case SpaceMod::Shared: return MSp::Shared;
    case SpaceMod::Local: return MSp::Local;
    case SpaceMod::Param: return MSp::Param;
    default: return MSp::Generic;
  }
}

// The operands of a vector (or scalar) data operand.
std::vector<const Operand*> elems(FnCompiler& fc, const Operand& o, uint32_t vec) {
  std::vector<const Operand*> r;
  if (vec == 1) {
    if (o.kind == Operand::Vec) fc.fail("vector operand for a scalar access");
    r.push_back(&o);
    return r;
  }
  if (o.kind != Operand::Vec || o.elems.size() != vec) fc.fail("expected a vector of " + std::to_string(vec) + " elements");
  for (const Operand& e : o.elems) r.push_back(&e);
  return r;
}

// Address slot and offset for a space access through a register or symbol.
uint32_t address(FnCompiler& fc, const MemRef& r, MSp sp, bool& a64, int64_t& off) {
  if (r.base == MemRef::RegAddr) {
    a64 = r.reg64;
    if ((sp == MSp::Global || sp == MSp::Generic) && !a64) fc.fail("32-bit register used as a 64-bit address");
    off = r.off;
    return r.reg;
  }
  switch (r.base) {
    case MemRef::Var:
      if (sp != MSp::Global && sp != MSp::Generic) fc.fail("global variable accessed in the wrong state space");
      break;
    case MemRef::Shared:
    case MemRef::DynShared:
      if (sp == MSp::Generic) {
        // Generic access to a shared symbol: its generic address.
        a64 = true;
        int64_t o2 = 0;
        uint32_t s = fc.addr_reg(r, 8, o2);
        uint32_t t = fc.temp(8);
        Inst& e = fc.emit(sel_cvta(MSp::Shared, true, 8));
        e.o[0] = t, e.o[1] = s;
        off = o2;
        return t;
      }
      if (sp != MSp::Shared) fc.fail("shared variable accessed in the wrong state space");
      break;
    case MemRef::Local:
      if (sp != MSp::Local) fc.fail("local variable accessed in the wrong state space");
      break;
    case MemRef::KParam:
      if (sp != MSp::Param) fc.fail("parameter accessed in the wrong state space");
      break;
    case MemRef::Abs:
      break;
    default:
      fc.fail("bad address operand");
  }
  a64 = true;
  return fc.addr_reg(r, 8, off);
}

void c_ld(FnCompiler& fc, const Instr& in) {
  Mods m(in.mods);
  bool atomic = m.take_sem();
  m.take_scope();
  SpaceMod sm = take_space(m);
  m.drop_hints();
  uint32_t vec = m.take_vec();
  Ty t = m.take_type();
  fc.finish_mods(m);
  if (t == Ty::None || t == Ty::Pred) fc.fail("ld needs a data type");
  if (in.op == "ldu" && sm == SpaceMod::None) sm = SpaceMod::Global;
  fc.want_ops(2, 3);  // optional cache policy operand
  unsigned w = ty_size(t);
  std::vector<const Operand*> ds = elems(fc, in.ops[0], vec);
  MemRef r = fc.mem(in.ops[1]);
  std::vector<uint32_t> dst;
  for (const Operand* o : ds) dst.push_back(fc.dst_relaxed(*o, t));

  if (sm == SpaceMod::Param && (r.base == MemRef::KParam || r.base == MemRef::FParam)) {
    if (atomic) fc.unsupported();
    const Sym& s = *r.sym;
    if (r.off < 0 || uint64_t(r.off) + uint64_t(w) * vec > s.size) fc.fail("parameter access out of bounds");
    for (uint32_t k = 0; k < vec; ++k) {
      if (r.base == MemRef::KParam) {
        OpFn h = sel_ld_kparam(w);
        if (!h) fc.unsupported();
        Inst& e = fc.emit(h);
        e.o[0] = dst[k];
        e.imm = int64_t(s.off) + r.off + int64_t(k * w);
      } else {
        OpFn h = sel_pcopy(w);
        if (!h) fc.unsupported();
        Inst& e = fc.emit(h);
        e.o[0] = dst[k];
        e.o[1] = s.off;
        e.aux = w;
        e.aux2 = s.stride;
        e.imm = int64_t(uint64_t(r.off) + k * w);
      }
    }
    return;
  }
  if (r.base == MemRef::FParam) fc.fail("function parameter accessed outside the param space");
  MSp sp = msp_of(sm);
  bool a64 = true;
  int64_t off = 0;
  uint32_t addr = address(fc, r, sp, a64, off);
  OpFn h = sel_ld(sp, w, vec, a64, atomic);
  if (!h) fc.unsupported();
  uint32_t site = fc.site();
  Inst& e = fc.emit(h);
  for (uint32_t k = 0; k < vec; ++k) e.o[k] = dst[k];
  e.o[4] = addr;
  e.imm = off;
  e.aux = site;
}

void c_st(FnCompiler& fc, const Instr& in) {
  Mods m(in.mods);
  bool atomic = m.take_sem();
  m.take_scope();
  SpaceMod sm = take_space(m);
  m.drop_hints();
  uint32_t vec = m.take_vec();
  Ty t = m.take_type();
  fc.finish_mods(m);
  if (t == Ty::None || t == Ty::Pred) fc.fail("st needs a data type");
  fc.want_ops(2, 3);
  unsigned w = ty_size(t);
  MemRef r = fc.mem(in.ops[0]);
  std::vector<const Operand*> ss = elems(fc, in.ops[1], vec);
  std::vector<uint32_t> src;
  for (const Operand* o : ss) {
    if (o->kind == Operand::Sink) fc.fail("'_' as a stored value");
    src.push_back(fc.src_relaxed(*o, t));
  }
  if (sm == SpaceMod::Param) {
    if (r.base == MemRef::KParam) fc.fail("kernel parameters are read-only");
    if (r.base != MemRef::FParam) fc.unsupported("st.param through a register");
    const Sym& s = *r.sym;
    if (r.off < 0 || uint64_t(r.off) + uint64_t(w) * vec > s.size) fc.fail("parameter access out of bounds");
    for (uint32_t k = 0; k < vec; ++k) {
      OpFn h = sel_pcopy(w);
      if (!h) fc.unsupported();
      Inst& e = fc.emit(h);
      e.o[0] = s.off;
      e.o[1] = src[k];
      e.aux = s.stride;
      e.aux2 = w;
      e.imm = int64_t((uint64_t(r.off) + k * w) << 32);
    }
    return;
  }
  if (sm == SpaceMod::Const) fc.fail("store to the constant space");
  if (r.base == MemRef::FParam || r.base == MemRef::KParam) fc.fail("parameter stored outside the param space");
  MSp sp = msp_of(sm);
  bool a64 = true;
  int64_t off = 0;
  uint32_t addr = address(fc, r, sp, a64, off);
  OpFn h = sel_st(sp, w, vec, a64, atomic);
  if (!h) fc.unsupported();
  uint32_t site = fc.site();
  Inst& e = fc.emit(h);
  for (uint32_t k = 0; k < vec; ++k) e.o[k] = src[k];
  e.o[4] = addr;
  e.imm = off;
  e.aux = site;
}

void c_cvta(FnCompiler& fc, const Instr& in) {
  Mods m(in.mods);
  bool to = m.take(".to");
  SpaceMod sm = take_space(m);
  Ty t = m.take_type();
  fc.finish_mods(m);
  if (sm == SpaceMod::None || (t != Ty::U64 && t != Ty::U32 && t != Ty::B64 && t != Ty::B32)) fc.unsupported();
  fc.want_ops(2);
  OpFn h = sel_cvta(msp_of(sm), !to, ty_size(t));
  if (!h) fc.unsupported();
  uint32_t a = fc.src(in.ops[1], t);
  uint32_t d = fc.dst(in.ops[0], t);
  Inst& e = fc.emit(h);
  e.o[0] = d, e.o[1] = a;
}

void c_isspacep(FnCompiler& fc, const Instr& in) {
  Mods m(in.mods);
  SpaceMod sm = take_space(m);
  fc.finish_mods(m);
  if (sm == SpaceMod::None) fc.unsupported();
  fc.want_ops(2);
  OpFn h = sel_isspacep(msp_of(sm), sm == SpaceMod::Const);
  if (!h) fc.unsupported();
  uint32_t p = fc.dst_pred(in.ops[0]), a = fc.src(in.ops[1], Ty::U64);
  Inst& e = fc.emit(h);
  e.o[0] = p, e.o[1] = a;
}

void c_prefetch(FnCompiler& fc, const Instr& in) {
  Mods m(in.mods);
  take_space(m);
  m.take_any({".L1", ".L2", ".L1::evict_last", ".L2::evict_last", ".L1::evict_normal", ".L2::evict_normal", ".tensormap"});
  m.drop_hints();
  fc.finish_mods(m);
  fc.want_ops(1);
  fc.mem(in.ops[0]);  // validated; prefetching has no visible effect
}

void c_createpolicy(FnCompiler& fc, const Instr& in) {
  // Cache policies only steer the L2; the value is opaque to the program.
  Mods m(in.mods);
  m.take_any({".fractional", ".range"});
  m.drop_hints();
  m.take_any({".L2::evict_last", ".L2::evict_normal", ".L2::evict_first", ".L2::evict_unchanged"});
  m.take_any({".L2::evict_last", ".L2::evict_normal", ".L2::evict_first", ".L2::evict_unchanged"});
  m.take(".b64");
  fc.finish_mods(m);
  if (in.ops.empty()) fc.fail("createpolicy needs a destination");
  uint32_t d = fc.dst(in.ops[0], Ty::B64);
  uint32_t z = fc.const_slot(0, 8);
  Inst& e = fc.emit(sel_mov(8));
  e.o[0] = d, e.o[1] = z;
}

template <bool RED>
void c_atom(FnCompiler& fc, const Instr& in) {
  Mods m(in.mods);
  m.take_sem();
  m.take_scope();
  SpaceMod sm = take_space(m);
  static const struct { const char* n; AOp op; } ops[] = {
      {".add", AOp::Add}, {".min", AOp::Min}, {".max", AOp::Max}, {".inc", AOp::Inc}, {".dec", AOp::Dec},
      {".and", AOp::And}, {".or", AOp::Or},   {".xor", AOp::Xor}, {".exch", AOp::Exch}, {".cas", AOp::Cas},
  };
  int found = -1;
  for (int i = 0; i < 10; ++i)
    if (m.take(ops[i].n)) {
      if (found >= 0) fc.unsupported();
      found = i;
    }
  bool noftz = m.take(".noftz");
  bool hint = m.take(".L2::cache_hint");
  m.drop_hints();
  Ty t = m.take_type();
  fc.finish_mods(m);
  if (found < 0 || t == Ty::None) fc.unsupported();
  AOp op = ops[found].op;
  bool half = t == Ty::F16 || t == Ty::F16x2 || t == Ty::BF16 || t == Ty::BF16x2;
  if (half && !noftz && t != Ty::BF16 && t != Ty::BF16x2) fc.unsupported("f16 atomics need .noftz");
  if (sm == SpaceMod::Local || sm == SpaceMod::Param || sm == SpaceMod::Const) fc.fail("atomic on a read-only or thread-local space");
  size_t base = RED ? 0 : 1;
  size_t need = base + 2 + (op == AOp::Cas ? 1 : 0) + (hint ? 1 : 0);
  fc.want_ops(need);
  MSp sp = msp_of(sm);
  uint32_t d = RED ? fc.temp(ty_size(t)) : fc.dst(in.ops[0], t);
  MemRef r = fc.mem(in.ops[base]);
  uint32_t b = fc.src(in.ops[base + 1], t);
  uint32_t c = op == AOp::Cas ? fc.src(in.ops[base + 2], t) : b;
  bool a64 = true;
  int64_t off = 0;
  uint32_t addr = address(fc, r, sp, a64, off);
  OpFn h = sel_atom(op, t, sp, a64);
  if (!h) fc.unsupported();
  uint32_t site = fc.site();
  Inst& e = fc.emit(h);
  e.o[0] = d, e.o[2] = b, e.o[3] = c, e.o[4] = addr;
  e.imm = off;
  e.aux = site;
}

}  // namespace

void register_mem(CompileTable& t) {
  t["ld"] = &c_ld;
  t["ldu"] = &c_ld;
  t["st"] = &c_st;
  t["cvta"] = &c_cvta;
  t["isspacep"] = &c_isspacep;
  t["prefetch"] = &c_prefetch;
  t["prefetchu"] = &c_prefetch;
  t["createpolicy"] = &c_createpolicy;
  t["atom"] = &c_atom<false>;
  t["red"] = &c_atom<true>;
}

}  // namespace simgpu::ptx
