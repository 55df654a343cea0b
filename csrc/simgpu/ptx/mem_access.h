// Per-lane address translation shared by loads, stores, atomics and async copies.
#pragma once

#include <cinttypes>
#include <cstdio>
#include <type_traits>

#include "ptx/exec.h"
#include "ptx/ops.h"

namespace simgpu::ptx {

inline const char* space_name(MSp sp) {
  switch (sp) {
    case MSp::Global: return "global";
    case MSp::Shared: return "shared";
    case MSp::Local: return "local";
    case MSp::Generic: return "generic";
    case MSp::Param: return "param";
  }
  return "?";
}

inline int mem_fault(Ctx& c, const Inst& in, uint32_t lane, uint64_t a, bool misaligned, unsigned size, MSp sp,
                     const char* what) {
  char buf[128];
  std::snprintf(buf, sizeof buf, "%s address 0x%" PRIx64 " (%u-byte %s %s)",
                misaligned ? "misaligned" : "illegal", a, size, space_name(sp), what);
  return raise_fault(c, in, misaligned ? Fault::MisalignedAddress : Fault::IllegalAddress, a, lane, buf);
}

template <MSp SP>
inline uint8_t* xlate(Ctx& c, MemCacheEntry& e, uint64_t a, unsigned size, unsigned lane, bool write) {
  if constexpr (SP == MSp::Global) {
    return global_ok(c, e, a, size) ? reinterpret_cast<uint8_t*>(a) : nullptr;
  } else if constexpr (SP == MSp::Shared) {
    return shared_xlate(c, a, size);
  } else if constexpr (SP == MSp::Local) {
    return local_xlate(c, a, size, lane);
  } else if constexpr (SP == MSp::Param) {
    if (write || a >= kWinSize || a + size > c.L->info->param_bytes) return nullptr;
    return const_cast<uint8_t*>(c.L->launch->params) + a;
  } else {
    return generic_xlate(c, e, a, size, lane, write);
  }
}

// Fast path for non-generic spaces: every active lane's address is checked
// against one window [lo, lo+len) with branch-free code, so the loops
// vectorise.  Lane i's host address is base + off[i] (inactive lanes get a
// harmless in-window offset).  Returns false when some active lane is out of
// the window or misaligned; the caller then takes the per-lane path, which
// reports the fault (or, for global memory, finds another range).
template <MSp SP, unsigned SZ, class AT>
inline bool translate_fast(Ctx& c, const Inst& in, uint32_t m, uint8_t*& base, uint64_t* off) {
  const AT* addr = R<const AT>(c, in.o[4]);
  const uint64_t imm = uint64_t(in.imm);
  uint64_t lo, len;
  if constexpr (SP == MSp::Global) {
    const MemCacheEntry& e = c.mc[in.aux];
    lo = e.lo;
    len = e.len;
    base = nullptr;
  } else if constexpr (SP == MSp::Shared) {
    lo = 0;
    len = c.L->shared_size >= SZ ? c.L->shared_size - SZ + 1 : 0;
    base = c.b->shared;
  } else {
    lo = 0;
    len = c.L->local_stride >= SZ ? c.L->local_stride - SZ + 1 : 0;
    base = c.w->local;
  }
  uint32_t bad = 0;
  for (int i = 0; i < 32; ++i) {
    uint64_t a = uint64_t(addr[i]) + imm;
    uint32_t act = (m >> i) & 1;
    uint32_t ok = ((a & (SZ - 1)) == 0) & (a - lo < len);
    bad |= act & (ok ^ 1);
    off[i] = act ? a : lo;
  }
  if (bad) return false;
  if constexpr (SP == MSp::Local) {
    const uint64_t stride = c.L->local_stride;
    for (int i = 0; i < 32; ++i) off[i] += uint64_t(i) * stride;
  }
  return true;
}

// Translates the address operand o[4] (+imm) of all lanes in m; returns kNext
// or the fault code.  Alignment is checked against SZ.
template <MSp SP, unsigned SZ, class AT>
inline int translate(Ctx& c, const Inst& in, uint32_t m, uint8_t** ptr, bool write, const char* what) {
  const AT* addr = R<const AT>(c, in.o[4]);
  const int64_t off = in.imm;
  MemCacheEntry& e = c.mc[in.aux];
  SIM_FOR_LANES(m, i) {
    uint64_t a = uint64_t(addr[i]) + uint64_t(off);
    if (a & (SZ - 1)) return mem_fault(c, in, i, a, true, SZ, SP, what);
    uint8_t* p = xlate<SP>(c, e, a, SZ, i, write);
    if (!p) return mem_fault(c, in, i, a, false, SZ, SP, what);
    ptr[i] = p;
  }
  return kNext;
}

}  // namespace simgpu::ptx
