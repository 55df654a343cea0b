// Loads, stores, parameter copies and address-space conversions.  Every lane's
// access is translated and checked before any lane touches memory, so a
// faulting instruction has no partial effect.
#include <cinttypes>
#include <cstdio>
#include <type_traits>

#include "ptx/lanes.h"
#include "ptx/mem_access.h"
#include "ptx/ops.h"
#include "ptx/program.h"

namespace simgpu::ptx {

namespace {

// Host address of lane i is base + off[i].
template <MSp SP, unsigned SZ, class AT>
inline int addresses(Ctx& c, const Inst& in, uint32_t m, uint8_t*& base, uint64_t* off, bool write,
                     const char* what) {
  if constexpr (SP == MSp::Global || SP == MSp::Shared || SP == MSp::Local) {
    if (__builtin_expect(translate_fast<SP, SZ, AT>(c, in, m, base, off), 1)) return kNext;
  }
  uint8_t* ptr[32];
  if (int r = translate<SP, SZ, AT>(c, in, m, ptr, write, what)) return r;
  base = nullptr;
  SIM_FOR_LANES(m, i) off[i] = reinterpret_cast<uint64_t>(ptr[i]);
  return kNext;
}

// Full warp, scalar element, one window: check every lane branch-free, then
// gather straight from the address register (no per-lane pointer array).
template <MSp SP, unsigned W, class AT>
inline bool full_warp_load(Ctx& c, const Inst& in) {
  using T = typename UInt<W>::T;
  const AT* addr = R<const AT>(c, in.o[4]);
  const uint64_t imm = uint64_t(in.imm);
  uint64_t lo, len;
  const uint8_t* base;
  if constexpr (SP == MSp::Global || SP == MSp::Generic) {
    // Generic addresses that all hit the cached global range are global
    // (every window lies above the ranges of Launch::memory).
    lo = c.mc[in.aux].lo;
    len = c.mc[in.aux].len;
    base = nullptr;
  } else if constexpr (SP == MSp::Shared) {
    lo = 0;
    len = c.L->shared_size >= W ? c.L->shared_size - W + 1 : 0;
    base = c.b->shared;
  } else {
    lo = 0;
    len = c.L->local_stride >= W ? c.L->local_stride - W + 1 : 0;
    base = c.w->local;
  }
  uint32_t bad = 0;
  for (int i = 0; i < 32; ++i) {
    uint64_t a = uint64_t(addr[i]) + imm;
    bad |= uint32_t((a & (W - 1)) != 0) | uint32_t(a - lo >= len);
  }
  if (bad) return false;
  alignas(32) T t[32];
  if constexpr (SP == MSp::Local) {
    const uint64_t stride = c.L->local_stride;
    for (int i = 0; i < 32; ++i) std::memcpy(&t[i], base + uint64_t(i) * stride + uint64_t(addr[i]) + imm, W);
  } else {
    for (int i = 0; i < 32; ++i) std::memcpy(&t[i], base + uint64_t(addr[i]) + imm, W);
  }
  std::memcpy(R<T>(c, in.o[0]), t, sizeof t);
  return true;
}

template <MSp SP, unsigned W, unsigned V, bool A64, bool ATOMIC>
int h_ld(Ctx& c, const Inst& in, uint32_t m) {
  using T = typename UInt<W>::T;
  using AT = std::conditional_t<A64, uint64_t, uint32_t>;
  if (m == 0) return kNext;
  if constexpr (V == 1 && !ATOMIC && W <= 8 && SP != MSp::Param) {
    if (m == ~0u && full_warp_load<SP, W, AT>(c, in)) return kNext;
  }
  uint8_t* base;
  uint64_t off[32];
  if (int r = addresses<SP, W * V, AT>(c, in, m, base, off, false, "load")) return r;
  if constexpr (ATOMIC && V > 1 && W * V <= 8) {
    // One single-copy-atomic access for the whole vector (CUB's look-back
    // reads {status, value} pairs this way).
    using VT = typename UInt<W * V>::T;
    SIM_FOR_LANES(m, i) {
      VT v = __atomic_load_n(reinterpret_cast<VT*>(base + off[i]), __ATOMIC_ACQUIRE);
      for (unsigned k = 0; k < V; ++k) std::memcpy(&R<T>(c, in.o[k])[i], reinterpret_cast<uint8_t*>(&v) + k * W, W);
    }
    return kNext;
  }
  for (unsigned k = 0; k < V; ++k) {
    T* d = R<T>(c, in.o[k]);
    if constexpr (!ATOMIC && W <= 8) {
      if (m == ~0u && base) {
        if constexpr (V == 1) {
          // Consecutive lanes at consecutive addresses (the common coalesced
          // access): one block copy.
          bool contig = true;
          for (int i = 0; i < 32; ++i) contig &= off[i] == off[0] + uint64_t(i) * W;
          if (contig) {
            std::memcpy(d, base + off[0], 32 * W);
            continue;
          }
        }
        alignas(32) T t[32];
        for (int i = 0; i < 32; ++i) std::memcpy(&t[i], base + off[i] + k * W, W);
        std::memcpy(d, t, sizeof t);
        continue;
      }
    }
    SIM_FOR_LANES(m, i) {
      uint8_t* p = base + off[i] + k * W;
      if constexpr (ATOMIC && W <= 8) {
        d[i] = __atomic_load_n(reinterpret_cast<T*>(p), __ATOMIC_ACQUIRE);
      } else {
        std::memcpy(&d[i], p, W);
      }
    }
  }
  return kNext;
}

template <MSp SP, unsigned W, unsigned V, bool A64, bool ATOMIC>
int h_st(Ctx& c, const Inst& in, uint32_t m) {
  using T = typename UInt<W>::T;
  using AT = std::conditional_t<A64, uint64_t, uint32_t>;
  if (m == 0) return kNext;
  uint8_t* base;
  uint64_t off[32];
  if (int r = addresses<SP, W * V, AT>(c, in, m, base, off, true, "store")) return r;
  if constexpr (ATOMIC && V > 1 && W * V <= 8) {
    using VT = typename UInt<W * V>::T;
    SIM_FOR_LANES(m, i) {
      VT v;
      for (unsigned k = 0; k < V; ++k) std::memcpy(reinterpret_cast<uint8_t*>(&v) + k * W, &R<const T>(c, in.o[k])[i], W);
      __atomic_store_n(reinterpret_cast<VT*>(base + off[i]), v, __ATOMIC_RELEASE);
    }
    return kNext;
  }
  if constexpr (!ATOMIC && V == 1 && W <= 8) {
    if (m == ~0u && base) {
      bool contig = true;
      for (int i = 0; i < 32; ++i) contig &= off[i] == off[0] + uint64_t(i) * W;
      if (contig) {
        std::memcpy(base + off[0], R<const T>(c, in.o[0]), 32 * W);
        return kNext;
      }
    }
  }
  for (unsigned k = 0; k < V; ++k) {
    const T* s = R<const T>(c, in.o[k]);
    SIM_FOR_LANES(m, i) {
      uint8_t* p = base + off[i] + k * W;
      if constexpr (ATOMIC && W <= 8) {
        __atomic_store_n(reinterpret_cast<T*>(p), s[i], __ATOMIC_RELEASE);
      } else {
        std::memcpy(p, &s[i], W);
      }
    }
  }
  return kNext;
}

template <bool LD, MSp SP, bool A64, bool ATOMIC>
OpFn pick_wv(unsigned w, unsigned v) {
#define WV(W, V)                                                                   \
  if (w == W && v == V) {                                                          \
    if constexpr (!ATOMIC || W <= 8)                                               \
      return LD ? &h_ld<SP, W, V, A64, ATOMIC> : &h_st<SP, W, V, A64, ATOMIC>;     \
    else                                                                           \
      return nullptr;                                                              \
  }
  WV(1, 1) WV(1, 2) WV(1, 4) WV(2, 1) WV(2, 2) WV(2, 4) WV(4, 1) WV(4, 2) WV(4, 4) WV(8, 1) WV(8, 2) WV(16, 1)
#undef WV
  return nullptr;
}

template <bool LD>
OpFn pick(MSp sp, unsigned w, unsigned v, bool a64, bool atomic) {
  switch (sp) {
    case MSp::Global:
      if (!a64) return nullptr;
      return atomic ? pick_wv<LD, MSp::Global, true, true>(w, v) : pick_wv<LD, MSp::Global, true, false>(w, v);
    case MSp::Generic:
      if (!a64) return nullptr;
      return atomic ? pick_wv<LD, MSp::Generic, true, true>(w, v) : pick_wv<LD, MSp::Generic, true, false>(w, v);
    case MSp::Shared:
      return a64 ? pick_wv<LD, MSp::Shared, true, false>(w, v) : pick_wv<LD, MSp::Shared, false, false>(w, v);
    case MSp::Local:
      return a64 ? pick_wv<LD, MSp::Local, true, false>(w, v) : pick_wv<LD, MSp::Local, false, false>(w, v);
    case MSp::Param:
      if (!LD) return nullptr;
      return a64 ? pick_wv<LD, MSp::Param, true, false>(w, v) : pick_wv<LD, MSp::Param, false, false>(w, v);
  }
  return nullptr;
}

template <unsigned W>
int h_ld_kparam(Ctx& c, const Inst& in, uint32_t m) {
  using T = typename UInt<W>::T;
  T v;
  std::memcpy(&v, c.L->launch->params + in.imm, W);
  broadcast(R<T>(c, in.o[0]), v, m);
  return kNext;
}

template <unsigned W>
int h_pcopy(Ctx& c, const Inst& in, uint32_t m) {
  uint8_t* d = c.frame + in.o[0] + uint32_t(uint64_t(in.imm) >> 32);
  const uint8_t* s = c.frame + in.o[1] + uint32_t(in.imm);
  SIM_FOR_LANES(m, i) std::memcpy(d + size_t(i) * in.aux, s + size_t(i) * in.aux2, W);
  return kNext;
}

template <class T>
int h_local_base(Ctx& c, const Inst& in, uint32_t m) {
  broadcast(R<T>(c, in.o[0]), T(uint64_t(c.w->local_sp) + uint64_t(in.imm)), m);
  return kNext;
}

template <class T>
int h_dyn_shared(Ctx& c, const Inst& in, uint32_t m) {
  broadcast(R<T>(c, in.o[0]), T(uint64_t(c.L->dyn_base) + uint64_t(in.imm)), m);
  return kNext;
}

template <class T, uint64_t BASE, bool TO_GENERIC>
int h_cvta(Ctx& c, const Inst& in, uint32_t m) {
  return map1<T, T>(c, in, m, [](T a) { return TO_GENERIC ? T(uint64_t(a) + BASE) : T(uint64_t(a) - BASE); });
}

template <MSp SP>
int h_isspacep(Ctx& c, const Inst& in, uint32_t m) {
  const uint64_t* a = R<const uint64_t>(c, in.o[1]);
  uint32_t r = collect([&](int i) {
    uint64_t x = a[i];
    switch (SP) {
      case MSp::Global: return x < kSharedWin;
      case MSp::Shared: return x - kSharedWin < kWinSize;
      case MSp::Local: return x - kLocalWin < kWinSize;
      case MSp::Param: return x - kParamWin < kWinSize;
      default: return false;
    }
  });
  set_pred(c, in.o[0], r, m);
  return kNext;
}

int h_isconst(Ctx& c, const Inst& in, uint32_t m) {
  const uint64_t* a = R<const uint64_t>(c, in.o[1]);
  const ProgramIR& ir = *c.ir;
  uint32_t r = 0;
  SIM_FOR_LANES(m, i) {
    for (size_t g = 0; g < ir.globals.size(); ++g) {
      if (ir.globals[g].space != Space::Const) continue;
      uint64_t base = c.L->prog->global_address(uint32_t(g));
      if (base && a[i] - base < ir.globals[g].size) r |= 1u << i;
    }
  }
  set_pred(c, in.o[0], r, m);
  return kNext;
}

}  // namespace

OpFn sel_ld(MSp sp, unsigned w, unsigned v, bool a64, bool atomic) { return pick<true>(sp, w, v, a64, atomic); }
OpFn sel_st(MSp sp, unsigned w, unsigned v, bool a64, bool atomic) { return pick<false>(sp, w, v, a64, atomic); }

OpFn sel_ld_kparam(unsigned w) {
  switch (w) {
    case 1: return &h_ld_kparam<1>;
    case 2: return &h_ld_kparam<2>;
    case 4: return &h_ld_kparam<4>;
    case 8: return &h_ld_kparam<8>;
  }
  return nullptr;
}

OpFn sel_pcopy(unsigned w) {
  switch (w) {
    case 1: return &h_pcopy<1>;
    case 2: return &h_pcopy<2>;
    case 4: return &h_pcopy<4>;
    case 8: return &h_pcopy<8>;
    case 16: return &h_pcopy<16>;
  }
  return nullptr;
}

OpFn sel_local_base(unsigned s) {
  return s == 8 ? &h_local_base<uint64_t> : s == 4 ? &h_local_base<uint32_t> : nullptr;
}
OpFn sel_dyn_shared(unsigned s) {
  return s == 8 ? &h_dyn_shared<uint64_t> : s == 4 ? &h_dyn_shared<uint32_t> : nullptr;
}

OpFn sel_cvta(MSp sp, bool to_generic, unsigned size) {
#define CV(BASE)                                                                        \
  if (size == 8) return to_generic ? &h_cvta<uint64_t, BASE, true> : &h_cvta<uint64_t, BASE, false>; \
  if (size == 4) return to_generic ? &h_cvta<uint32_t, BASE, true> : &h_cvta<uint32_t, BASE, false>; \
  return nullptr;
  switch (sp) {
    case MSp::Shared: CV(kSharedWin)
    case MSp::Local: CV(kLocalWin)
    case MSp::Param: CV(kParamWin)
    case MSp::Global:
    case MSp::Generic: CV(0)
  }
#undef CV
  return nullptr;
}

OpFn sel_isspacep(MSp sp, bool is_const) {
  if (is_const) return &h_isconst;
  switch (sp) {
    case MSp::Global: return &h_isspacep<MSp::Global>;
    case MSp::Shared: return &h_isspacep<MSp::Shared>;
    case MSp::Local: return &h_isspacep<MSp::Local>;
    case MSp::Param: return &h_isspacep<MSp::Param>;
    default: return nullptr;
  }
}

}  // namespace simgpu::ptx
