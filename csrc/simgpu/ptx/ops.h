// Handler selection: the compiler asks for the handler specialised for an
// operation, type and modifiers; null means the combination is not
// supported.  Operand layout (Inst::o) per family is documented here and is
// the contract between compile_*.cpp and ops_*.cpp.
#pragma once

#include <cstdint>

#include "ptx/ir.h"
#include "ptx/types.h"

namespace simgpu::ptx {

// ---- integer (ops_int.cpp) -------------------------------------------------
// Binary: o = {d, a, b}; Shl/Shr/Bfind..: b is u32.  MulWide: d twice as wide.
// Unary: o = {d, a}; Popc/Clz/Bfind*: d is u32.
// Ternary: o = {d, a, b, c}; MadWide: c and d twice as wide.
// Bfe: o = {d, a, pos(u32), len(u32)}.  Bfi: o = {d, a, b, pos, len}.
// Prmt: o = {d, a, b, c}, aux = mode.  Lop3: o = {d, a, b, c}, imm = lut.
// Carry ops: o[3] (binary) / o[4] (mad) = carry slot (u32 per lane).
enum class IOp : uint8_t {
  Add, Sub, MulLo, MulHi, MulWide, Div, Rem, Min, Max, And, Or, Xor, Shl, Shr,
  AddSat, SubSat, Mul24Lo, Mul24Hi, MinRelu, MaxRelu,
  Neg, Abs, Not, Cnot, Popc, Clz, Brev, Bfind, BfindShift, Mov,
  MadLo, MadHi, MadWide, Mad24Lo, Mad24Hi, MadHiSat, Sad,
  Bfe, Bfi, Prmt, ShfLWrap, ShfLClamp, ShfRWrap, ShfRClamp, Lop3,
  AddCC, AddC, AddCCC, SubCC, SubC, SubCCC,
  MadLoCC, MadHiCC, MadcLo, MadcHi, MadcLoCC, MadcHiCC,
  Szext, SzextClamp, Bmsk, BmskClamp,
};
OpFn sel_int(IOp op, Ty t);
// dp4a/dp2a: o = {d, a, b, c}; aux = (a signed) | (b signed) << 1 | (dp2a hi) << 2.
OpFn sel_dp(bool dp2a);
// Packed 16-bit integers (.s16x2/.u16x2): o = {d, a, b}; op 0 add, 1 sub,
// 2 min, 3 max; sat_or_relu is .sat for add/sub and .relu for min/max.
OpFn sel_x2(int op, bool is_signed, bool sat_or_relu);
// SIMD video instructions (vadd4, vabsdiff4, ...): see ops_simd.cpp for aux.
OpFn sel_video();
// fns.b32: o = {d, mask, base, offset}.
OpFn sel_fns();
// Predicate logic on whole masks: o = {d, a, b}; aux bit0/1 negate a/b.
enum class POp : uint8_t { And, Or, Xor, Not, Mov };
OpFn sel_pred(POp op);
// Register copies of `size` bytes per lane: o = {d, a}.
OpFn sel_mov(unsigned size);
// Pack/unpack: o[0] = wide, o[1..n] = parts (kTrueWord-free: sinks are scratch).
OpFn sel_pack(unsigned wide, unsigned parts);
OpFn sel_unpack(unsigned wide, unsigned parts);
// Zero/sign extension and truncation between integer widths: o = {d, a}.
OpFn sel_resize(unsigned dsize, unsigned ssize, bool sign);

// ---- f32/f64 (ops_float.cpp) -----------------------------------------------
enum class FOp : uint8_t {
  Add, Sub, Mul, Div, DivApprox, DivFull, Min, Max, MinNaN, MaxNaN, MinXs, MaxXs, Copysign,
  Fma, Neg, Abs, Sqrt, SqrtApprox, Rcp, RcpApprox, RcpApproxFtz64, Rsqrt, RsqrtFtz64,
  Sin, Cos, Lg2, Ex2, Tanh, Mov,
};
// o = {d, a, b, c} as the op needs; `rnd` None means the default (.rn).
OpFn sel_float(FOp op, Ty t, Rnd rnd, bool ftz, bool sat);
// testp.{finite,infinite,number,notanumber,normal,subnormal}: o = {p, a}.
OpFn sel_testp(int which, Ty t);

// ---- f16/bf16 scalar and packed (ops_half.cpp) -----------------------------
OpFn sel_half(FOp op, Ty t, bool ftz, bool sat, bool relu);

// ---- comparisons (ops_cmp.cpp) ---------------------------------------------
// setp: o = {p, q, a, b, c}; q may be a scratch slot; aux bit0: negate c.
//   For .f16x2/.bf16x2, p gets the low half and q the high half.
OpFn sel_setp(Cmp cmp, Ty t, BoolOp comb, bool ftz);
// set: o = {d, a, b, c}; d is .u32/.s32/.f32 (or the packed type for f16x2).
OpFn sel_set(Cmp cmp, Ty dt, Ty st, BoolOp comb, bool ftz);
// selp: o = {d, a, b, c(pred)}.
OpFn sel_selp(unsigned size);
// slct: o = {d, a, b, c}; c is .s32 or .f32.
OpFn sel_slct(unsigned size, bool cf32, bool ftz);

// ---- conversions (ops_cvt.cpp) ---------------------------------------------
// o = {d, a} (and b for the packing forms cvt.*x2.f32 d, a, b).
OpFn sel_cvt(Ty dt, Ty st, Rnd rnd, bool ftz, bool sat, bool relu, bool satfinite);
// cvt.pack.sat.{u8,s8,u16,s16}.s32: o = {d, a, b, c}.
OpFn sel_cvt_pack(Ty dt, bool c_present);

// ---- memory (ops_mem.cpp) --------------------------------------------------
enum class MSp : uint8_t { Global, Shared, Local, Generic, Param };
// ld: o[0..vec) = destinations, o[4] = address; st: o[0..vec) = sources.
// imm = constant offset, aux = address-cache site, aux2 unused.
OpFn sel_ld(MSp sp, unsigned width, unsigned vec, bool addr64, bool atomic);
OpFn sel_st(MSp sp, unsigned width, unsigned vec, bool addr64, bool atomic);
// Kernel parameter read by constant offset: o = {d}; imm = offset.
OpFn sel_ld_kparam(unsigned width);
// Copy between frame slots with lane strides (func params, call sequences):
// o = {d, s}; aux = d stride, aux2 = s stride; imm = d_off << 32 | s_off;
// copies `width` bytes per lane.
OpFn sel_pcopy(unsigned width);
// d = local address of the current activation's .local frame + imm.
OpFn sel_local_base(unsigned dsize);
// d = dynamic-shared base offset + imm.
OpFn sel_dyn_shared(unsigned dsize);
// cvta: o = {d, a}; to_generic adds the window base, otherwise subtracts.
OpFn sel_cvta(MSp sp, bool to_generic, unsigned size);
// isspacep: o = {p, a}.
OpFn sel_isspacep(MSp sp, bool is_const);
// prefetch / discard / applypriority: accepted, no effect.
OpFn sel_nop();

// ---- atomics (ops_atom.cpp) ------------------------------------------------
enum class AOp : uint8_t { Add, Min, Max, Inc, Dec, And, Or, Xor, Exch, Cas };
// o = {d, -, b, c, addr}; d is scratch for red; imm offset; aux = cache site.
OpFn sel_atom(AOp op, Ty t, MSp sp, bool addr64);

// ---- warp (ops_warp.cpp) ---------------------------------------------------
// shfl.sync: o = {d, p, a, b, c, membermask}; aux = mode (0 up,1 down,2 bfly,3 idx).
OpFn sel_shfl(int mode);
// vote.sync: o = {d, a(pred), membermask}; aux: 0 all, 1 any, 2 uni, 3 ballot; aux2 bit0 negate a.
OpFn sel_vote(int mode);
// match.sync: o = {d, a, membermask, p}; all: p receives the predicate.
OpFn sel_match(bool all, unsigned size);
// redux.sync: o = {d, a, membermask}.
enum class RedOp : uint8_t { Add, Min, Max, And, Or, Xor };
OpFn sel_redux(RedOp op, bool is_signed);
OpFn sel_activemask();
// elect.sync: o = {d, p, membermask}.
OpFn sel_elect();

// ---- control (ops_ctrl.cpp) ------------------------------------------------
OpFn sel_bra();            // aux = target pc, aux2 = reconvergence pc
OpFn sel_brx();            // o = {index}; aux = table, aux2 = reconvergence pc
OpFn sel_call();           // aux = call site
OpFn sel_ret();            // the unique exit of a .func
OpFn sel_exit();
OpFn sel_trap();           // aux: 0 trap, 1 brkpt
// bar: o = {id, count, pred, d}; aux = kind (0 sync, 1 arrive, 2 red.popc,
// 3 red.and, 4 red.or), aux2 bit0: count present, bit1: negate pred.
OpFn sel_bar();
OpFn sel_bar_warp();       // bar.warp.sync: o = {membermask}
OpFn sel_nanosleep();      // yields the warp
OpFn sel_cluster_barrier(bool wait);  // barrier.cluster.arrive / .wait
OpFn sel_mapa(unsigned size);         // o = {d, a, rank}
OpFn sel_fence();          // membar/fence
// Special registers: o = {d}; aux = which (see ops_sreg.cpp), aux2 = size.
OpFn sel_sreg(unsigned which, unsigned size);   // null when the size is wrong
int sreg_id(const char* name);   // -1 when unknown
OpFn sel_vprintf();        // call site in aux
OpFn sel_assertfail();

// ---- asynchronous copies and mbarrier (ops_async.cpp) ----------------------
// cp.async: o = {dst(shared addr), src(global addr), srcsize}; aux = site;
// aux2 = cp-size | has_srcsize << 8 | ignore_src << 9; imm = dst_off, ... see ops_async.
OpFn sel_cp_async(bool dst64, bool src64);
enum class MbOp : uint8_t {
  Init, Inval, Arrive, ArriveDrop, ArriveNoComplete, ExpectTx, CompleteTx, ArriveExpectTx,
  ArriveDropExpectTx, TestWait, TryWait, TestWaitParity, TryWaitParity, PendingCount, CpAsyncArrive,
  CpAsyncArriveNoinc,
};
OpFn sel_mbarrier(MbOp op, MSp sp, bool addr64);
OpFn sel_cp_bulk(bool to_shared, MSp dsp, MSp ssp);

}  // namespace simgpu::ptx
