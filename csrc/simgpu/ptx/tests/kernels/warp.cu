// Warp-wide operations, including partial warps and divergent callers.
#include <cooperative_groups.h>
#include <cooperative_groups/reduce.h>
namespace cg = cooperative_groups;

extern "C" __global__ void shuffles(const int* in, int* out) {
  int t = threadIdx.x;
  int v = in[t];
  int* o = out + t * 12;
  int s = v;
  for (int d = 16; d > 0; d >>= 1) s += __shfl_down_sync(0xffffffff, s, d);
  o[0] = __shfl_sync(0xffffffff, s, 0);                 // warp sum broadcast
  o[1] = __shfl_up_sync(0xffffffff, v, 3, 16);          // segments of 16
  o[2] = __shfl_xor_sync(0xffffffff, v, 5);
  o[3] = __shfl_sync(0xffffffff, v, (t * 7) % 32, 8);   // idx within segments of 8
  o[4] = __shfl_down_sync(0xffffffff, v, 6, 16);
  int r, p;
  asm("{ .reg .pred q; shfl.sync.up.b32 %0|q, %2, 2, 0, -1; selp.u32 %1, 1, 0, q; }" : "=r"(r), "=r"(p) : "r"(v));
  o[5] = r;
  o[6] = p;
  // inclusive scan
  int sc = v;
  for (int d = 1; d < 32; d <<= 1) {
    int x = __shfl_up_sync(0xffffffff, sc, d);
    if ((t & 31) >= d) sc += x;
  }
  o[7] = sc;
}

extern "C" __global__ void votes(const int* in, unsigned* out) {
  int t = threadIdx.x;
  int v = in[t];
  unsigned* o = out + t * 12;
  o[0] = __ballot_sync(0xffffffff, v > 10);
  o[1] = __all_sync(0xffffffff, v >= 0);
  o[2] = __any_sync(0xffffffff, v == 7);
  o[3] = __uni_sync(0xffffffff, v & 0x100);
  o[4] = __activemask();
  if ((t & 31) < 20) {  // divergent: only 20 lanes
    unsigned m = __activemask();
    o[5] = m;
    o[6] = __ballot_sync(m, v & 1);
    o[7] = __popc(__ballot_sync(m, 1));
  }
  o[8] = __match_any_sync(0xffffffff, v % 5);
  int pred;
  o[9] = __match_all_sync(0xffffffff, v / 1000, &pred);
  o[10] = pred;
  o[11] = __match_any_sync(0xffffffff, (unsigned long long)(v % 3) << 40);
}

extern "C" __global__ void reduxes(const int* in, int* out) {
  int t = threadIdx.x;
  int v = in[t];
  int* o = out + t * 8;
  o[0] = __reduce_add_sync(0xffffffff, v);
  o[1] = __reduce_min_sync(0xffffffff, v);
  o[2] = __reduce_max_sync(0xffffffff, unsigned(v));
  o[3] = __reduce_and_sync(0xffffffff, unsigned(v));
  o[4] = __reduce_or_sync(0xffffffff, unsigned(v));
  o[5] = __reduce_xor_sync(0xffffffff, unsigned(v));
  auto tile = cg::tiled_partition<16>(cg::this_thread_block());
  o[6] = cg::reduce(tile, v, cg::plus<int>());
  unsigned leader;
  asm volatile("{ .reg .pred p; elect.sync %0|p, 0xffffffff; }" : "=r"(leader));
  o[7] = leader;
}
