// Warp-wide element loops.  Results are computed for all 32 lanes into a
// temporary and then merged under the mask: both loops vectorise, and a
// destination that aliases a source is harmless.  Functors therefore must be
// total (no traps, no UB) for any input, including inactive lanes' garbage.
#pragma once

#include <cstdint>
#include <cstring>

#include "ptx/exec.h"

namespace simgpu::ptx {

template <class D>
inline void merge(D* __restrict d, const D* __restrict t, uint32_t m) {
  if (m == ~0u) {
    std::memcpy(d, t, 32 * sizeof(D));
    return;
  }
  for (int i = 0; i < 32; ++i) d[i] = ((m >> i) & 1) ? t[i] : d[i];
}

template <class D, class A, class F>
inline int map1(Ctx& c, const Inst& in, uint32_t m, F f) {
  const A* a = R<const A>(c, in.o[1]);
  alignas(32) D t[32];
  for (int i = 0; i < 32; ++i) t[i] = f(a[i]);
  merge(R<D>(c, in.o[0]), t, m);
  return kNext;
}

template <class D, class A, class B, class F>
inline int map2(Ctx& c, const Inst& in, uint32_t m, F f) {
  const A* a = R<const A>(c, in.o[1]);
  const B* b = R<const B>(c, in.o[2]);
  alignas(32) D t[32];
  for (int i = 0; i < 32; ++i) t[i] = f(a[i], b[i]);
  merge(R<D>(c, in.o[0]), t, m);
  return kNext;
}

template <class D, class A, class B, class C, class F>
inline int map3(Ctx& c, const Inst& in, uint32_t m, F f) {
  const A* a = R<const A>(c, in.o[1]);
  const B* b = R<const B>(c, in.o[2]);
  const C* cc = R<const C>(c, in.o[3]);
  alignas(32) D t[32];
  for (int i = 0; i < 32; ++i) t[i] = f(a[i], b[i], cc[i]);
  merge(R<D>(c, in.o[0]), t, m);
  return kNext;
}

template <class D, class A, class B, class C, class E, class F>
inline int map4(Ctx& c, const Inst& in, uint32_t m, F f) {
  const A* a = R<const A>(c, in.o[1]);
  const B* b = R<const B>(c, in.o[2]);
  const C* cc = R<const C>(c, in.o[3]);
  const E* e = R<const E>(c, in.o[4]);
  alignas(32) D t[32];
  for (int i = 0; i < 32; ++i) t[i] = f(a[i], b[i], cc[i], e[i]);
  merge(R<D>(c, in.o[0]), t, m);
  return kNext;
}

// d = v in every lane of m.
template <class D>
inline void broadcast(D* d, D v, uint32_t m) {
  alignas(32) D t[32];
  for (int i = 0; i < 32; ++i) t[i] = v;
  merge(d, t, m);
}

// Predicate result: bit i of the returned mask from f(lane i).
template <class F>
inline uint32_t collect(F f) {
  uint32_t r = 0;
  for (int i = 0; i < 32; ++i) r |= uint32_t(f(i) ? 1 : 0) << i;
  return r;
}

template <unsigned N> struct UInt;
template <> struct UInt<1> { using T = uint8_t; };
template <> struct UInt<2> { using T = uint16_t; };
template <> struct UInt<4> { using T = uint32_t; };
template <> struct UInt<8> { using T = uint64_t; };
struct U128 { uint64_t lo, hi; };
template <> struct UInt<16> { using T = U128; };

}  // namespace simgpu::ptx
