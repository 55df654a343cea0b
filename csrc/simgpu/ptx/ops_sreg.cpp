// Special registers (%tid, %clock64, %lanemask_lt, ...).
#include <time.h>

#include <cstring>
#include <string>

#include "ptx/lanes.h"
#include "ptx/ops.h"

namespace simgpu::ptx {

namespace {

enum Sreg : unsigned {
  TidX, TidY, TidZ, NtidX, NtidY, NtidZ, CtaidX, CtaidY, CtaidZ, NctaidX, NctaidY, NctaidZ,
  LaneId, WarpId, NWarpId, SmId, NSmId, GridId, LmEq, LmLe, LmLt, LmGe, LmGt,
  Clock, ClockHi, Clock64, GTimer, GTimerLo, GTimerHi, DynSmem, TotalSmem, AggrSmem,
  ClCtaidX, ClCtaidY, ClCtaidZ, ClNctaidX, ClNctaidY, ClNctaidZ, ClIdX, ClIdY, ClIdZ,
  NClIdX, NClIdY, NClIdZ, ClCtaRank, ClNctaRank, IsExplicitCluster, GraphExec,
  ResSmemBegin, ResSmemEnd, ResSmemCap,
  Pm0 = 64,       // %pm0..%pm7
  Pm64 = 72,      // %pm0_64..%pm7_64
  EnvReg = 96,    // %envreg0..%envreg31
  kCount = 128,
};

struct Name { const char* n; unsigned id; };
const Name kNames[] = {
    {"%tid.x", TidX}, {"%tid.y", TidY}, {"%tid.z", TidZ}, {"%ntid.x", NtidX}, {"%ntid.y", NtidY},
    {"%ntid.z", NtidZ}, {"%ctaid.x", CtaidX}, {"%ctaid.y", CtaidY}, {"%ctaid.z", CtaidZ},
    {"%nctaid.x", NctaidX}, {"%nctaid.y", NctaidY}, {"%nctaid.z", NctaidZ}, {"%laneid", LaneId},
    {"%warpid", WarpId}, {"%nwarpid", NWarpId}, {"%smid", SmId}, {"%nsmid", NSmId}, {"%gridid", GridId},
    {"%lanemask_eq", LmEq}, {"%lanemask_le", LmLe}, {"%lanemask_lt", LmLt}, {"%lanemask_ge", LmGe},
    {"%lanemask_gt", LmGt}, {"%clock", Clock}, {"%clock_hi", ClockHi}, {"%clock64", Clock64},
    {"%globaltimer", GTimer}, {"%globaltimer_lo", GTimerLo}, {"%globaltimer_hi", GTimerHi},
    {"%dynamic_smem_size", DynSmem}, {"%total_smem_size", TotalSmem}, {"%aggr_smem_size", AggrSmem},
    {"%cluster_ctaid.x", ClCtaidX}, {"%cluster_ctaid.y", ClCtaidY}, {"%cluster_ctaid.z", ClCtaidZ},
    {"%cluster_nctaid.x", ClNctaidX}, {"%cluster_nctaid.y", ClNctaidY}, {"%cluster_nctaid.z", ClNctaidZ},
    {"%clusterid.x", ClIdX}, {"%clusterid.y", ClIdY}, {"%clusterid.z", ClIdZ},
    {"%nclusterid.x", NClIdX}, {"%nclusterid.y", NClIdY}, {"%nclusterid.z", NClIdZ},
    {"%cluster_ctarank", ClCtaRank}, {"%cluster_nctarank", ClNctaRank},
    {"%is_explicit_cluster", IsExplicitCluster}, {"%current_graph_exec", GraphExec},
    {"%reserved_smem_offset_begin", ResSmemBegin}, {"%reserved_smem_offset_end", ResSmemEnd},
    {"%reserved_smem_offset_cap", ResSmemCap},
};

unsigned sreg_size(unsigned id) {
  switch (id) {
    case GridId: case Clock64: case GTimer: case GraphExec: return 8;
    case IsExplicitCluster: return 0;
    default: return (id >= Pm64 && id < Pm64 + 8) ? 8 : 4;
  }
}

uint64_t now_ns(clockid_t clk) {
  timespec ts;
  clock_gettime(clk, &ts);
  return uint64_t(ts.tv_sec) * 1000000000ull + uint64_t(ts.tv_nsec);
}

// A steady count at a nominal 2 GHz: programs that time or spin on clock64
// see it advance at the rate a GPU's would.
uint64_t cycles() { return now_ns(CLOCK_MONOTONIC) * 2; }

uint64_t value(const Ctx& c, unsigned id, uint32_t lane) {
  const Warp& w = *c.w;
  const BlockState& b = *c.b;
  const LaunchState& L = *c.L;
  const Launch& la = *L.launch;
  switch (id) {
    case TidX: return w.tid[0][lane];
    case TidY: return w.tid[1][lane];
    case TidZ: return w.tid[2][lane];
    case NtidX: return la.block.x;
    case NtidY: return la.block.y;
    case NtidZ: return la.block.z;
    case CtaidX: case ClIdX: return b.ctaid[0];
    case CtaidY: case ClIdY: return b.ctaid[1];
    case CtaidZ: case ClIdZ: return b.ctaid[2];
    case NctaidX: case NClIdX: return la.grid.x;
    case NctaidY: case NClIdY: return la.grid.y;
    case NctaidZ: case NClIdZ: return la.grid.z;
    case LaneId: return lane;
    case WarpId: return w.id;
    case NWarpId: return 64;
    case SmId: return la.sm_count ? b.linear % la.sm_count : 0;
    case NSmId: return la.sm_count;
    case GridId: return L.gridid;
    case LmEq: return 1u << lane;
    case LmLe: return lane == 31 ? ~0u : (2u << lane) - 1;
    case LmLt: return (1u << lane) - 1;
    case LmGe: return ~((1u << lane) - 1);
    case LmGt: return lane == 31 ? 0u : ~((2u << lane) - 1);
    case Clock: return uint32_t(cycles());
    case ClockHi: return uint32_t(cycles() >> 32);
    case Clock64: return cycles();
    case GTimer: return now_ns(CLOCK_REALTIME);
    case GTimerLo: return uint32_t(now_ns(CLOCK_REALTIME));
    case GTimerHi: return uint32_t(now_ns(CLOCK_REALTIME) >> 32);
    case DynSmem: return la.dynamic_shared_bytes;
    case TotalSmem: case AggrSmem: return L.shared_size;
    case ClCtaidX: case ClCtaidY: case ClCtaidZ: return 0;
    case ClNctaidX: case ClNctaidY: case ClNctaidZ: return 1;
    case ClCtaRank: return 0;
    case ClNctaRank: return 1;
    default: break;
  }
  if (id == EnvReg + 1) return uint32_t(L.grid_ws >> 32);
  if (id == EnvReg + 2) return uint32_t(L.grid_ws);
  return 0;
}

template <unsigned N>
int h_sreg(Ctx& c, const Inst& in, uint32_t m) {
  using T = typename UInt<N>::T;
  alignas(32) T t[32];
  switch (in.aux) {
    case TidX: case TidY: case TidZ: {
      const uint32_t* src = c.w->tid[in.aux - TidX];
      for (int i = 0; i < 32; ++i) t[i] = T(src[i]);
      break;
    }
    case LaneId:
      for (int i = 0; i < 32; ++i) t[i] = T(i);
      break;
    case LmEq: case LmLe: case LmLt: case LmGe: case LmGt:
      for (int i = 0; i < 32; ++i) t[i] = T(value(c, in.aux, uint32_t(i)));
      break;
    default: {
      // Uniform across the warp: compute once.
      T v = T(value(c, in.aux, 0));
      for (int i = 0; i < 32; ++i) t[i] = v;
    }
  }
  merge(R<T>(c, in.o[0]), t, m);
  return kNext;
}

int h_sreg_pred(Ctx& c, const Inst& in, uint32_t m) {
  set_pred(c, in.o[0], 0, m);  // %is_explicit_cluster: never launched with clusters
  return kNext;
}

}  // namespace

int sreg_id(const char* name) {
  for (const Name& n : kNames)
    if (std::strcmp(n.n, name) == 0) return int(n.id);
  auto num = [&](const char* prefix, unsigned base, unsigned count) -> int {
    size_t pl = std::strlen(prefix);
    if (std::strncmp(name, prefix, pl) != 0) return -1;
    const char* p = name + pl;
    if (!*p) return -1;
    unsigned v = 0;
    for (; *p; ++p) {
      if (*p < '0' || *p > '9') return -1;
      v = v * 10 + unsigned(*p - '0');
      if (v >= count) return -1;
    }
    return int(base + v);
  };
  int r;
  if ((r = num("%envreg", EnvReg, 32)) >= 0) return r;
  if (std::strncmp(name, "%pm", 3) == 0 && name[3] >= '0' && name[3] <= '7') {
    unsigned d = unsigned(name[3] - '0');
    if (name[4] == 0) return int(Pm0 + d);
    if (std::strcmp(name + 4, "_64") == 0) return int(Pm64 + d);
  }
  return -1;
}

OpFn sel_sreg(unsigned which, unsigned size) {
  if (which >= kCount) return nullptr;
  unsigned natural = sreg_size(which);
  if (natural == 0) return size == 0 ? &h_sreg_pred : nullptr;
  if (natural == 8) return size == 8 ? &h_sreg<8> : nullptr;
  if (size == 4) return &h_sreg<4>;
  if (size == 2) return &h_sreg<2>;
  if (size == 8 && which >= EnvReg) return &h_sreg<8>;
  return nullptr;
}

}  // namespace simgpu::ptx
