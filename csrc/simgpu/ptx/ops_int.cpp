// Integer, bit-manipulation and predicate-logic handlers.
#include <climits>
#include <type_traits>

#include "ptx/lanes.h"
#include "ptx/ops.h"

namespace simgpu::ptx {

namespace {

template <class T> using U = std::make_unsigned_t<T>;
template <class T> using S = std::make_signed_t<T>;
template <class T> constexpr unsigned kBits = sizeof(T) * 8;

template <class T> struct Wide;
template <> struct Wide<uint16_t> { using T = uint32_t; };
template <> struct Wide<int16_t> { using T = int32_t; };
template <> struct Wide<uint32_t> { using T = uint64_t; };
template <> struct Wide<int32_t> { using T = int64_t; };
template <> struct Wide<uint64_t> { using T = unsigned __int128; };
template <> struct Wide<int64_t> { using T = __int128; };

template <class T> inline T wrap_add(T a, T b) { return T(U<T>(a) + U<T>(b)); }
template <class T> inline T wrap_sub(T a, T b) { return T(U<T>(a) - U<T>(b)); }
template <class T> inline T wrap_mul(T a, T b) {
  using UT = std::conditional_t<(sizeof(T) < 4), uint32_t, U<T>>;
  return T(UT(U<T>(a)) * UT(U<T>(b)));
}
template <class T> inline T mul_hi(T a, T b) {
  using W = typename Wide<T>::T;
  return T((W(a) * W(b)) >> kBits<T>);
}

template <class T> inline T idiv(T a, T b) {
  if (b == 0) return T(~U<T>(0));
  if constexpr (std::is_signed_v<T>) {
    if (a == std::numeric_limits<T>::min() && b == T(-1)) return a;
  }
  return T(a / b);
}
template <class T> inline T irem(T a, T b) {
  if (b == 0) return a;
  if constexpr (std::is_signed_v<T>) {
    if (b == T(-1)) return 0;
  }
  return T(a % b);
}

template <class T> inline T shl(T a, uint32_t b) { return b >= kBits<T> ? T(0) : T(U<T>(a) << b); }
template <class T> inline T shr(T a, uint32_t b) {
  if constexpr (std::is_signed_v<T>) return b >= kBits<T> ? T(a < 0 ? -1 : 0) : T(a >> b);
  else return b >= kBits<T> ? T(0) : T(a >> b);
}

template <class T> inline uint32_t popc(T a) { return uint32_t(__builtin_popcountll(uint64_t(U<T>(a)))); }
template <class T> inline uint32_t clz(T a) {
  uint64_t v = uint64_t(U<T>(a));
  return v == 0 ? kBits<T> : uint32_t(__builtin_clzll(v)) - (64 - kBits<T>);
}
template <class T> inline T brev(T a) {
  U<T> v = U<T>(a), r = 0;
  for (unsigned i = 0; i < kBits<T>; ++i) r |= U<T>((v >> i) & 1) << (kBits<T> - 1 - i);
  return T(r);
}
template <class T> inline uint32_t bfind(T a, bool shiftamt) {
  U<T> v = U<T>(a);
  if constexpr (std::is_signed_v<T>) {
    if (a < 0) v = U<T>(~v);
  }
  if (v == 0) return 0xffffffffu;
  uint32_t msb = 63 - uint32_t(__builtin_clzll(uint64_t(v)));
  return shiftamt ? kBits<T> - 1 - msb : msb;
}

template <class T> inline T bfe(T a, uint32_t bpos, uint32_t blen) {
  constexpr uint32_t msb = kBits<T> - 1;
  uint32_t pos = bpos & 0xff, len = blen & 0xff;
  U<T> v = U<T>(a);
  bool sbit = false;
  if constexpr (std::is_signed_v<T>) {
    if (len != 0) sbit = (v >> std::min(pos + len - 1, msb)) & 1;
  }
  U<T> r = 0;
  for (uint32_t i = 0; i < kBits<T>; ++i) {
    bool bit = (i < len && pos + i <= msb) ? ((v >> (pos + i)) & 1) : sbit;
    r |= U<T>(bit) << i;
  }
  return T(r);
}
template <class T> inline T bfi(T a, T b, uint32_t bpos, uint32_t blen) {
  constexpr uint32_t msb = kBits<T> - 1;
  uint32_t pos = bpos & 0xff, len = blen & 0xff;
  U<T> r = U<T>(b);
  for (uint32_t i = 0; i < len && pos + i <= msb; ++i) {
    U<T> bit = (U<T>(a) >> i) & 1;
    r = (r & ~(U<T>(1) << (pos + i))) | (bit << (pos + i));
  }
  return T(r);
}

inline uint32_t prmt(uint32_t a, uint32_t b, uint32_t c, uint32_t mode) {
  uint64_t x = uint64_t(b) << 32 | a;
  auto byte = [&](unsigned i) { return uint32_t(x >> (8 * i)) & 0xff; };
  auto sext = [&](unsigned i) { return (byte(i) & 0x80) ? 0xffu : 0u; };
  uint32_t r = 0;
  switch (mode) {
    case 0: {  // default: 4 selectors in c
      for (unsigned k = 0; k < 4; ++k) {
        uint32_t s = (c >> (4 * k)) & 0xf;
        uint32_t v = (s & 8) ? sext(s & 7) : byte(s & 7);
        r |= v << (8 * k);
      }
      return r;
    }
    case 1: {  // f4e: forward 4 extract
      unsigned s = c & 3;
      for (unsigned k = 0; k < 4; ++k) r |= byte((s + k) & 7) << (8 * k);
      return r;
    }
    case 2: {  // b4e: backward 4 extract
      unsigned s = c & 3;
      for (unsigned k = 0; k < 4; ++k) r |= byte((s - k + 8) & 7) << (8 * k);
      return r;
    }
    case 3: {  // rc8: replicate byte
      unsigned s = c & 3;
      for (unsigned k = 0; k < 4; ++k) r |= byte(s) << (8 * k);
      return r;
    }
    case 4: {  // ecl: edge clamp left
      unsigned s = c & 3;
      for (unsigned k = 0; k < 4; ++k) r |= byte(std::max(s, k)) << (8 * k);
      return r;
    }
    case 5: {  // ecr: edge clamp right
      unsigned s = c & 3;
      for (unsigned k = 0; k < 4; ++k) r |= byte(std::min(s, k)) << (8 * k);
      return r;
    }
    default: {  // rc16: replicate half-word
      unsigned s = c & 1;
      uint32_t h = byte(2 * s) | byte(2 * s + 1) << 8;
      return h | h << 16;
    }
  }
}

inline uint32_t lop3(uint32_t a, uint32_t b, uint32_t c, uint32_t lut) {
  uint32_t r = 0;
  for (unsigned k = 0; k < 8; ++k)
    if ((lut >> k) & 1) r |= ((k & 4) ? a : ~a) & ((k & 2) ? b : ~b) & ((k & 1) ? c : ~c);
  return r;
}

inline int32_t mul24(int64_t a, int64_t b, bool hi) {
  int64_t p = a * b;  // 48-bit product of 24-bit operands
  return hi ? int32_t(uint32_t(uint64_t(p) >> 16)) : int32_t(uint32_t(uint64_t(p)));
}

template <class T> inline T sat_s32(int64_t v) {
  return T(v > INT32_MAX ? INT32_MAX : (v < INT32_MIN ? INT32_MIN : v));
}

template <IOp OP, class T>
int h_int(Ctx& c, const Inst& in, uint32_t m) {
  using UT = U<T>;
  if constexpr (OP == IOp::Add) return map2<T, T, T>(c, in, m, [](T a, T b) { return wrap_add(a, b); });
  else if constexpr (OP == IOp::Sub) return map2<T, T, T>(c, in, m, [](T a, T b) { return wrap_sub(a, b); });
  else if constexpr (OP == IOp::MulLo) return map2<T, T, T>(c, in, m, [](T a, T b) { return wrap_mul(a, b); });
  else if constexpr (OP == IOp::MulHi) return map2<T, T, T>(c, in, m, [](T a, T b) { return mul_hi(a, b); });
  else if constexpr (OP == IOp::MulWide) {
    using W = typename Wide<T>::T;
    return map2<W, T, T>(c, in, m, [](T a, T b) { return W(W(a) * W(b)); });
  } else if constexpr (OP == IOp::Div) return map2<T, T, T>(c, in, m, [](T a, T b) { return idiv(a, b); });
  else if constexpr (OP == IOp::Rem) return map2<T, T, T>(c, in, m, [](T a, T b) { return irem(a, b); });
  else if constexpr (OP == IOp::Min) return map2<T, T, T>(c, in, m, [](T a, T b) { return a < b ? a : b; });
  else if constexpr (OP == IOp::Max) return map2<T, T, T>(c, in, m, [](T a, T b) { return a > b ? a : b; });
  else if constexpr (OP == IOp::MinRelu)
    return map2<T, T, T>(c, in, m, [](T a, T b) { T r = a < b ? a : b; return r < 0 ? T(0) : r; });
  else if constexpr (OP == IOp::MaxRelu)
    return map2<T, T, T>(c, in, m, [](T a, T b) { T r = a > b ? a : b; return r < 0 ? T(0) : r; });
  else if constexpr (OP == IOp::And) return map2<T, T, T>(c, in, m, [](T a, T b) { return T(a & b); });
  else if constexpr (OP == IOp::Or) return map2<T, T, T>(c, in, m, [](T a, T b) { return T(a | b); });
  else if constexpr (OP == IOp::Xor) return map2<T, T, T>(c, in, m, [](T a, T b) { return T(a ^ b); });
  else if constexpr (OP == IOp::Shl) return map2<T, T, uint32_t>(c, in, m, [](T a, uint32_t b) { return shl(a, b); });
  else if constexpr (OP == IOp::Shr) return map2<T, T, uint32_t>(c, in, m, [](T a, uint32_t b) { return shr(a, b); });
  else if constexpr (OP == IOp::AddSat)
    return map2<T, T, T>(c, in, m, [](T a, T b) { return sat_s32<T>(int64_t(a) + int64_t(b)); });
  else if constexpr (OP == IOp::SubSat)
    return map2<T, T, T>(c, in, m, [](T a, T b) { return sat_s32<T>(int64_t(a) - int64_t(b)); });
  else if constexpr (OP == IOp::Mul24Lo || OP == IOp::Mul24Hi) {
    constexpr bool hi = OP == IOp::Mul24Hi;
    return map2<T, T, T>(c, in, m, [](T a, T b) {
      int64_t x, y;
      if constexpr (std::is_signed_v<T>) {
        x = int64_t(int32_t(uint32_t(a) << 8) >> 8);
        y = int64_t(int32_t(uint32_t(b) << 8) >> 8);
      } else {
        x = int64_t(a & 0xffffff);
        y = int64_t(b & 0xffffff);
      }
      return T(mul24(x, y, hi));
    });
  }
  else if constexpr (OP == IOp::Neg) return map1<T, T>(c, in, m, [](T a) { return T(UT(0) - UT(a)); });
  else if constexpr (OP == IOp::Abs)
    return map1<T, T>(c, in, m, [](T a) { return a < 0 ? T(UT(0) - UT(a)) : a; });
  else if constexpr (OP == IOp::Not) return map1<T, T>(c, in, m, [](T a) { return T(~a); });
  else if constexpr (OP == IOp::Cnot) return map1<T, T>(c, in, m, [](T a) { return T(a == 0 ? 1 : 0); });
  else if constexpr (OP == IOp::Popc) return map1<uint32_t, T>(c, in, m, [](T a) { return popc(a); });
  else if constexpr (OP == IOp::Clz) return map1<uint32_t, T>(c, in, m, [](T a) { return clz(a); });
  else if constexpr (OP == IOp::Brev) return map1<T, T>(c, in, m, [](T a) { return brev(a); });
  else if constexpr (OP == IOp::Bfind) return map1<uint32_t, T>(c, in, m, [](T a) { return bfind(a, false); });
  else if constexpr (OP == IOp::BfindShift) return map1<uint32_t, T>(c, in, m, [](T a) { return bfind(a, true); });
  else if constexpr (OP == IOp::Mov) return map1<T, T>(c, in, m, [](T a) { return a; });
  else if constexpr (OP == IOp::MadLo)
    return map3<T, T, T, T>(c, in, m, [](T a, T b, T cc) { return wrap_add(wrap_mul(a, b), cc); });
  else if constexpr (OP == IOp::MadHi)
    return map3<T, T, T, T>(c, in, m, [](T a, T b, T cc) { return wrap_add(mul_hi(a, b), cc); });
  else if constexpr (OP == IOp::MadHiSat)
    return map3<T, T, T, T>(c, in, m, [](T a, T b, T cc) { return sat_s32<T>(int64_t(mul_hi(a, b)) + int64_t(cc)); });
  else if constexpr (OP == IOp::MadWide) {
    using W = typename Wide<T>::T;
    return map3<W, T, T, W>(c, in, m, [](T a, T b, W cc) {
      using UW = std::make_unsigned_t<W>;
      return W(UW(W(a) * W(b)) + UW(cc));
    });
  } else if constexpr (OP == IOp::Mad24Lo || OP == IOp::Mad24Hi) {
    constexpr bool hi = OP == IOp::Mad24Hi;
    return map3<T, T, T, T>(c, in, m, [](T a, T b, T cc) {
      int64_t x, y;
      if constexpr (std::is_signed_v<T>) {
        x = int64_t(int32_t(uint32_t(a) << 8) >> 8);
        y = int64_t(int32_t(uint32_t(b) << 8) >> 8);
      } else {
        x = int64_t(a & 0xffffff);
        y = int64_t(b & 0xffffff);
      }
      return wrap_add(T(mul24(x, y, hi)), cc);
    });
  } else if constexpr (OP == IOp::Sad)
    return map3<T, T, T, T>(c, in, m, [](T a, T b, T cc) { return wrap_add(cc, T(a > b ? UT(a) - UT(b) : UT(b) - UT(a))); });
  else if constexpr (OP == IOp::Bfe)
    return map3<T, T, uint32_t, uint32_t>(c, in, m, [](T a, uint32_t p, uint32_t l) { return bfe(a, p, l); });
  else if constexpr (OP == IOp::Bfi)
    return map4<T, T, T, uint32_t, uint32_t>(c, in, m, [](T a, T b, uint32_t p, uint32_t l) { return bfi(a, b, p, l); });
  else if constexpr (OP == IOp::Prmt) {
    uint32_t mode = in.aux;
    return map3<uint32_t, uint32_t, uint32_t, uint32_t>(c, in, m, [mode](uint32_t a, uint32_t b, uint32_t s) { return prmt(a, b, s, mode); });
  } else if constexpr (OP == IOp::ShfLWrap || OP == IOp::ShfLClamp || OP == IOp::ShfRWrap || OP == IOp::ShfRClamp) {
    constexpr bool left = OP == IOp::ShfLWrap || OP == IOp::ShfLClamp;
    constexpr bool wrap = OP == IOp::ShfLWrap || OP == IOp::ShfRWrap;
    return map3<uint32_t, uint32_t, uint32_t, uint32_t>(c, in, m, [](uint32_t a, uint32_t b, uint32_t s) {
      uint32_t n = wrap ? (s & 31) : (s > 32 ? 32 : s);
      uint64_t x = uint64_t(b) << 32 | a;
      if (left) return uint32_t(n == 32 ? a : uint32_t((x << n) >> 32));
      return uint32_t(n == 32 ? b : uint32_t(x >> n));
    });
  } else if constexpr (OP == IOp::Lop3) {
    uint32_t lut = uint32_t(in.imm);
    return map3<T, T, T, T>(c, in, m, [lut](T a, T b, T cc) {
      if constexpr (sizeof(T) == 8) {
        return T(uint64_t(lop3(uint32_t(a), uint32_t(b), uint32_t(cc), lut)) |
                 uint64_t(lop3(uint32_t(uint64_t(a) >> 32), uint32_t(uint64_t(b) >> 32), uint32_t(uint64_t(cc) >> 32), lut)) << 32);
      } else {
        return T(lop3(uint32_t(a), uint32_t(b), uint32_t(cc), lut));
      }
    });
  } else if constexpr (OP == IOp::AddCC || OP == IOp::AddC || OP == IOp::AddCCC || OP == IOp::SubCC ||
                       OP == IOp::SubC || OP == IOp::SubCCC) {
    constexpr bool sub = OP == IOp::SubCC || OP == IOp::SubC || OP == IOp::SubCCC;
    constexpr bool cin = OP == IOp::AddC || OP == IOp::AddCCC || OP == IOp::SubC || OP == IOp::SubCCC;
    constexpr bool cout = OP == IOp::AddCC || OP == IOp::AddCCC || OP == IOp::SubCC || OP == IOp::SubCCC;
    T* d = R<T>(c, in.o[0]);
    const T* a = R<const T>(c, in.o[1]);
    const T* b = R<const T>(c, in.o[2]);
    uint32_t* cf = R<uint32_t>(c, in.o[3]);
    SIM_FOR_LANES(m, i) {
      using W = unsigned __int128;
      W x = W(UT(a[i])), y = W(UT(b[i])), k = cin ? W(cf[i] & 1) : 0;
      W r = sub ? x - y - k : x + y + k;
      d[i] = T(UT(r));
      if (cout) cf[i] = uint32_t((r >> kBits<T>) & 1);
    }
    return kNext;
  } else if constexpr (OP == IOp::MadLoCC || OP == IOp::MadHiCC || OP == IOp::MadcLo || OP == IOp::MadcHi ||
                       OP == IOp::MadcLoCC || OP == IOp::MadcHiCC) {
    constexpr bool hi = OP == IOp::MadHiCC || OP == IOp::MadcHi || OP == IOp::MadcHiCC;
    constexpr bool cin = OP == IOp::MadcLo || OP == IOp::MadcHi || OP == IOp::MadcLoCC || OP == IOp::MadcHiCC;
    constexpr bool cout = OP == IOp::MadLoCC || OP == IOp::MadHiCC || OP == IOp::MadcLoCC || OP == IOp::MadcHiCC;
    T* d = R<T>(c, in.o[0]);
    const T* a = R<const T>(c, in.o[1]);
    const T* b = R<const T>(c, in.o[2]);
    const T* cc = R<const T>(c, in.o[3]);
    uint32_t* cf = R<uint32_t>(c, in.o[4]);
    SIM_FOR_LANES(m, i) {
      using W = unsigned __int128;
      T p = hi ? mul_hi(a[i], b[i]) : wrap_mul(a[i], b[i]);
      W r = W(UT(p)) + W(UT(cc[i])) + (cin ? W(cf[i] & 1) : 0);
      d[i] = T(UT(r));
      if (cout) cf[i] = uint32_t((r >> kBits<T>) & 1);
    }
    return kNext;
  } else if constexpr (OP == IOp::Szext || OP == IOp::SzextClamp) {
    constexpr bool clamp = OP == IOp::SzextClamp;
    return map2<T, T, uint32_t>(c, in, m, [](T a, uint32_t b) {
      uint32_t n = clamp ? (b > 32 ? 32 : b) : (b & 31);
      if (n == 0) return T(0);
      if (n >= 32) return a;
      uint32_t v = uint32_t(a) & ((1u << n) - 1);
      if constexpr (std::is_signed_v<T>) {
        if ((v >> (n - 1)) & 1) v |= ~((1u << n) - 1);
      }
      return T(v);
    });
  } else if constexpr (OP == IOp::Bmsk || OP == IOp::BmskClamp) {
    constexpr bool clamp = OP == IOp::BmskClamp;
    return map2<T, T, uint32_t>(c, in, m, [](T a, uint32_t b) {
      uint32_t pos = clamp ? (uint32_t(a) > 32 ? 32 : uint32_t(a)) : (uint32_t(a) & 31);
      uint32_t len = clamp ? (b > 32 ? 32 : b) : (b & 31);
      uint64_t mask = len >= 64 ? ~0ull : ((uint64_t(1) << len) - 1);
      return T(uint32_t((mask << pos) & 0xffffffffu));
    });
  } else {
    static_assert(sizeof(T) == 0, "unhandled integer op");
  }
}

template <IOp OP>
OpFn by_type(Ty t) {
  switch (t) {
    case Ty::U16: case Ty::B16: return &h_int<OP, uint16_t>;
    case Ty::S16: return &h_int<OP, int16_t>;
    case Ty::U32: case Ty::B32: return &h_int<OP, uint32_t>;
    case Ty::S32: return &h_int<OP, int32_t>;
    case Ty::U64: case Ty::B64: return &h_int<OP, uint64_t>;
    case Ty::S64: return &h_int<OP, int64_t>;
    default: return nullptr;
  }
}

template <IOp OP>
OpFn only32(Ty t) {
  switch (t) {
    case Ty::U32: case Ty::B32: return &h_int<OP, uint32_t>;
    case Ty::S32: return &h_int<OP, int32_t>;
    default: return nullptr;
  }
}

template <IOp OP>
OpFn no64(Ty t) {
  switch (t) {
    case Ty::U16: return &h_int<OP, uint16_t>;
    case Ty::S16: return &h_int<OP, int16_t>;
    case Ty::U32: return &h_int<OP, uint32_t>;
    case Ty::S32: return &h_int<OP, int32_t>;
    default: return nullptr;
  }
}

template <IOp OP>
OpFn bits_only(Ty t) {
  switch (t) {
    case Ty::B16: case Ty::U16: case Ty::S16: return &h_int<OP, uint16_t>;
    case Ty::B32: case Ty::U32: case Ty::S32: return &h_int<OP, uint32_t>;
    case Ty::B64: case Ty::U64: case Ty::S64: return &h_int<OP, uint64_t>;
    default: return nullptr;
  }
}

// ---- predicates, moves, packing

template <POp OP>
int h_pred(Ctx& c, const Inst& in, uint32_t m) {
  uint32_t na = (in.aux & 1) ? ~0u : 0u, nb = (in.aux & 2) ? ~0u : 0u;
  uint32_t a = pred_word(c, in.o[1]) ^ na;
  uint32_t r;
  if constexpr (OP == POp::Not) r = ~a;
  else if constexpr (OP == POp::Mov) r = a;
  else {
    uint32_t b = pred_word(c, in.o[2]) ^ nb;
    if constexpr (OP == POp::And) r = a & b;
    else if constexpr (OP == POp::Or) r = a | b;
    else r = a ^ b;
  }
  set_pred(c, in.o[0], r, m);
  return kNext;
}

template <unsigned N>
int h_mov(Ctx& c, const Inst& in, uint32_t m) {
  using T = typename UInt<N>::T;
  if constexpr (N == 16) {
    T* d = R<T>(c, in.o[0]);
    const T* a = R<const T>(c, in.o[1]);
    SIM_FOR_LANES(m, i) d[i] = a[i];
    return kNext;
  } else {
    return map1<T, T>(c, in, m, [](T a) { return a; });
  }
}

int h_movp(Ctx& c, const Inst& in, uint32_t m) {
  set_pred(c, in.o[0], pred_word(c, in.o[1]), m);
  return kNext;
}

template <unsigned W, unsigned P>
int h_pack(Ctx& c, const Inst& in, uint32_t m) {
  constexpr unsigned ps = W / P;
  uint8_t* d = c.frame + in.o[0];
  SIM_FOR_LANES(m, i) {
    for (unsigned k = 0; k < P; ++k) std::memcpy(d + i * W + k * ps, c.frame + in.o[1 + k] + i * ps, ps);
  }
  return kNext;
}
template <unsigned W, unsigned P>
int h_unpack(Ctx& c, const Inst& in, uint32_t m) {
  constexpr unsigned ps = W / P;
  const uint8_t* s = c.frame + in.o[0];
  SIM_FOR_LANES(m, i) {
    for (unsigned k = 0; k < P; ++k) std::memcpy(c.frame + in.o[1 + k] + i * ps, s + i * W + k * ps, ps);
  }
  return kNext;
}

template <unsigned D, unsigned S, bool SIGN>
int h_resize(Ctx& c, const Inst& in, uint32_t m) {
  using TD = typename UInt<D>::T;
  using TS = typename UInt<S>::T;
  return map1<TD, TS>(c, in, m, [](TS a) {
    if constexpr (SIGN && D > S) {
      using SS = std::make_signed_t<TS>;
      using SD = std::make_signed_t<TD>;
      return TD(SD(SS(a)));
    } else {
      return TD(a);
    }
  });
}

int h_dp(Ctx& c, const Inst& in, uint32_t m) {
  bool sa = in.aux & 1, sb = in.aux & 2, dp2 = in.aux & 8, hi = in.aux & 4;
  return map3<uint32_t, uint32_t, uint32_t, uint32_t>(c, in, m, [=](uint32_t a, uint32_t b, uint32_t cc) {
    int64_t acc = int64_t(int32_t(cc));
    if (!dp2) {
      for (int k = 0; k < 4; ++k) {
        int64_t x = sa ? int64_t(int8_t(a >> (8 * k))) : int64_t((a >> (8 * k)) & 0xff);
        int64_t y = sb ? int64_t(int8_t(b >> (8 * k))) : int64_t((b >> (8 * k)) & 0xff);
        acc += x * y;
      }
    } else {
      for (int k = 0; k < 2; ++k) {
        int64_t x = sa ? int64_t(int16_t(a >> (16 * k))) : int64_t((a >> (16 * k)) & 0xffff);
        int bk = (hi ? 2 : 0) + k;
        int64_t y = sb ? int64_t(int8_t(b >> (8 * bk))) : int64_t((b >> (8 * bk)) & 0xff);
        acc += x * y;
      }
    }
    return uint32_t(uint64_t(acc));
  });
}

}  // namespace

OpFn sel_int(IOp op, Ty t) {
  switch (op) {
    case IOp::Add: return by_type<IOp::Add>(t);
    case IOp::Sub: return by_type<IOp::Sub>(t);
    case IOp::MulLo: return by_type<IOp::MulLo>(t);
    case IOp::MulHi: return by_type<IOp::MulHi>(t);
    case IOp::MulWide: return no64<IOp::MulWide>(t);
    case IOp::Div: return by_type<IOp::Div>(t);
    case IOp::Rem: return by_type<IOp::Rem>(t);
    case IOp::Min: return by_type<IOp::Min>(t);
    case IOp::Max: return by_type<IOp::Max>(t);
    case IOp::MinRelu: return t == Ty::S32 ? &h_int<IOp::MinRelu, int32_t> : nullptr;
    case IOp::MaxRelu: return t == Ty::S32 ? &h_int<IOp::MaxRelu, int32_t> : nullptr;
    case IOp::And: return bits_only<IOp::And>(t);
    case IOp::Or: return bits_only<IOp::Or>(t);
    case IOp::Xor: return bits_only<IOp::Xor>(t);
    case IOp::Shl: return bits_only<IOp::Shl>(t);
    case IOp::Shr: return by_type<IOp::Shr>(t);
    case IOp::AddSat: return t == Ty::S32 ? &h_int<IOp::AddSat, int32_t> : nullptr;
    case IOp::SubSat: return t == Ty::S32 ? &h_int<IOp::SubSat, int32_t> : nullptr;
    case IOp::Mul24Lo: return only32<IOp::Mul24Lo>(t);
    case IOp::Mul24Hi: return only32<IOp::Mul24Hi>(t);
    case IOp::Neg: return t == Ty::S16 || t == Ty::S32 || t == Ty::S64 ? by_type<IOp::Neg>(t) : nullptr;
    case IOp::Abs: return t == Ty::S16 || t == Ty::S32 || t == Ty::S64 ? by_type<IOp::Abs>(t) : nullptr;
    case IOp::Not: return bits_only<IOp::Not>(t);
    case IOp::Cnot: return bits_only<IOp::Cnot>(t);
    case IOp::Popc: return t == Ty::B32 ? &h_int<IOp::Popc, uint32_t> : t == Ty::B64 ? &h_int<IOp::Popc, uint64_t> : nullptr;
    case IOp::Clz: return t == Ty::B32 ? &h_int<IOp::Clz, uint32_t> : t == Ty::B64 ? &h_int<IOp::Clz, uint64_t> : nullptr;
    case IOp::Brev: return t == Ty::B32 ? &h_int<IOp::Brev, uint32_t> : t == Ty::B64 ? &h_int<IOp::Brev, uint64_t> : nullptr;
    case IOp::Bfind:
      switch (t) {
        case Ty::U32: return &h_int<IOp::Bfind, uint32_t>;
        case Ty::S32: return &h_int<IOp::Bfind, int32_t>;
        case Ty::U64: return &h_int<IOp::Bfind, uint64_t>;
        case Ty::S64: return &h_int<IOp::Bfind, int64_t>;
        default: return nullptr;
      }
    case IOp::BfindShift:
      switch (t) {
        case Ty::U32: return &h_int<IOp::BfindShift, uint32_t>;
        case Ty::S32: return &h_int<IOp::BfindShift, int32_t>;
        case Ty::U64: return &h_int<IOp::BfindShift, uint64_t>;
        case Ty::S64: return &h_int<IOp::BfindShift, int64_t>;
        default: return nullptr;
      }
    case IOp::Mov: return bits_only<IOp::Mov>(t);
    case IOp::MadLo: return by_type<IOp::MadLo>(t);
    case IOp::MadHi: return by_type<IOp::MadHi>(t);
    case IOp::MadHiSat: return t == Ty::S32 ? &h_int<IOp::MadHiSat, int32_t> : nullptr;
    case IOp::MadWide: return no64<IOp::MadWide>(t);
    case IOp::Mad24Lo: return only32<IOp::Mad24Lo>(t);
    case IOp::Mad24Hi: return only32<IOp::Mad24Hi>(t);
    case IOp::Sad: return by_type<IOp::Sad>(t);
    case IOp::Bfe:
      switch (t) {
        case Ty::U32: return &h_int<IOp::Bfe, uint32_t>;
        case Ty::S32: return &h_int<IOp::Bfe, int32_t>;
        case Ty::U64: return &h_int<IOp::Bfe, uint64_t>;
        case Ty::S64: return &h_int<IOp::Bfe, int64_t>;
        default: return nullptr;
      }
    case IOp::Bfi: return t == Ty::B32 ? &h_int<IOp::Bfi, uint32_t> : t == Ty::B64 ? &h_int<IOp::Bfi, uint64_t> : nullptr;
    case IOp::Prmt: return t == Ty::B32 ? &h_int<IOp::Prmt, uint32_t> : nullptr;
    case IOp::ShfLWrap: return t == Ty::B32 ? &h_int<IOp::ShfLWrap, uint32_t> : nullptr;
    case IOp::ShfLClamp: return t == Ty::B32 ? &h_int<IOp::ShfLClamp, uint32_t> : nullptr;
    case IOp::ShfRWrap: return t == Ty::B32 ? &h_int<IOp::ShfRWrap, uint32_t> : nullptr;
    case IOp::ShfRClamp: return t == Ty::B32 ? &h_int<IOp::ShfRClamp, uint32_t> : nullptr;
    case IOp::Lop3: return t == Ty::B32 ? &h_int<IOp::Lop3, uint32_t> : nullptr;
#define CARRY(OPX) \
    case IOp::OPX: \
      switch (t) { \
        case Ty::U32: return &h_int<IOp::OPX, uint32_t>; \
        case Ty::S32: return &h_int<IOp::OPX, int32_t>; \
        case Ty::U64: return &h_int<IOp::OPX, uint64_t>; \
        case Ty::S64: return &h_int<IOp::OPX, int64_t>; \
        default: return nullptr; \
      }
    CARRY(AddCC) CARRY(AddC) CARRY(AddCCC) CARRY(SubCC) CARRY(SubC) CARRY(SubCCC)
    CARRY(MadLoCC) CARRY(MadHiCC) CARRY(MadcLo) CARRY(MadcHi) CARRY(MadcLoCC) CARRY(MadcHiCC)
#undef CARRY
    case IOp::Szext: return t == Ty::U32 ? &h_int<IOp::Szext, uint32_t> : t == Ty::S32 ? &h_int<IOp::Szext, int32_t> : nullptr;
    case IOp::SzextClamp: return t == Ty::U32 ? &h_int<IOp::SzextClamp, uint32_t> : t == Ty::S32 ? &h_int<IOp::SzextClamp, int32_t> : nullptr;
    case IOp::Bmsk: return t == Ty::B32 ? &h_int<IOp::Bmsk, uint32_t> : nullptr;
    case IOp::BmskClamp: return t == Ty::B32 ? &h_int<IOp::BmskClamp, uint32_t> : nullptr;
  }
  return nullptr;
}

OpFn sel_dp(bool) { return &h_dp; }

OpFn sel_pred(POp op) {
  switch (op) {
    case POp::And: return &h_pred<POp::And>;
    case POp::Or: return &h_pred<POp::Or>;
    case POp::Xor: return &h_pred<POp::Xor>;
    case POp::Not: return &h_pred<POp::Not>;
    case POp::Mov: return &h_pred<POp::Mov>;
  }
  return nullptr;
}

OpFn sel_mov(unsigned size) {
  switch (size) {
    case 0: return &h_movp;
    case 1: return &h_mov<1>;
    case 2: return &h_mov<2>;
    case 4: return &h_mov<4>;
    case 8: return &h_mov<8>;
    case 16: return &h_mov<16>;
  }
  return nullptr;
}

OpFn sel_pack(unsigned wide, unsigned parts) {
  switch (wide * 100 + parts) {
    case 202: return &h_pack<2, 2>;
    case 402: return &h_pack<4, 2>;
    case 404: return &h_pack<4, 4>;
    case 802: return &h_pack<8, 2>;
    case 804: return &h_pack<8, 4>;
    case 1602: return &h_pack<16, 2>;
    case 1604: return &h_pack<16, 4>;
  }
  return nullptr;
}

OpFn sel_unpack(unsigned wide, unsigned parts) {
  switch (wide * 100 + parts) {
    case 202: return &h_unpack<2, 2>;
    case 402: return &h_unpack<4, 2>;
    case 404: return &h_unpack<4, 4>;
    case 802: return &h_unpack<8, 2>;
    case 804: return &h_unpack<8, 4>;
    case 1602: return &h_unpack<16, 2>;
    case 1604: return &h_unpack<16, 4>;
  }
  return nullptr;
}

OpFn sel_resize(unsigned d, unsigned s, bool sign) {
#define RS(D, S)                                                      \
  if (d == D && s == S) return sign ? &h_resize<D, S, true> : &h_resize<D, S, false>;
  RS(1, 1) RS(1, 2) RS(1, 4) RS(1, 8) RS(2, 1) RS(2, 2) RS(2, 4) RS(2, 8)
  RS(4, 1) RS(4, 2) RS(4, 4) RS(4, 8) RS(8, 1) RS(8, 2) RS(8, 4) RS(8, 8)
#undef RS
  return nullptr;
}

}  // namespace simgpu::ptx
