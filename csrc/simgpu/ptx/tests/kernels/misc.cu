// Special registers, big blocks, mbarrier through raw PTX.
#include <cooperative_groups.h>
#include <cstdint>
namespace cg = cooperative_groups;

extern "C" __global__ void sregs(unsigned* out, unsigned long long* clocks) {
  int t = threadIdx.x + blockDim.x * blockIdx.x;
  unsigned* o = out + t * 16;
  unsigned v;
  asm("mov.u32 %0, %%laneid;" : "=r"(v)); o[0] = v;
  asm("mov.u32 %0, %%warpid;" : "=r"(v)); o[1] = v;
  asm("mov.u32 %0, %%lanemask_lt;" : "=r"(v)); o[2] = v;
  asm("mov.u32 %0, %%lanemask_ge;" : "=r"(v)); o[3] = v;
  asm("mov.u32 %0, %%lanemask_eq;" : "=r"(v)); o[4] = v;
  asm("mov.u32 %0, %%nsmid;" : "=r"(v)); o[5] = v;
  asm("mov.u32 %0, %%smid;" : "=r"(v)); o[6] = v < o[5];
  asm("mov.u32 %0, %%dynamic_smem_size;" : "=r"(v)); o[7] = v;
  asm("mov.u32 %0, %%total_smem_size;" : "=r"(v)); o[8] = v;
  asm("mov.u32 %0, %%cluster_nctarank;" : "=r"(v)); o[9] = v;
  unsigned long long g;
  asm("mov.u64 %0, %%gridid;" : "=l"(g)); o[10] = g != 0;
  extern __shared__ int dyn[];
  dyn[threadIdx.x % 8] = 1;
  unsigned long long c0 = clock64(), t0;
  asm volatile("mov.u64 %0, %%globaltimer;" : "=l"(t0));
  for (int i = 0; i < 100; ++i) __nanosleep(10);
  unsigned long long c1 = clock64(), t1;
  asm volatile("mov.u64 %0, %%globaltimer;" : "=l"(t1));
  clocks[t * 2] = c1 - c0;
  clocks[t * 2 + 1] = t1 - t0;
}

extern "C" __global__ void big_block(int* out) {
  __shared__ int s[1024];
  int t = threadIdx.x + threadIdx.y * blockDim.x;
  s[t] = t;
  __syncthreads();
  int sum = 0;
  for (int k = 0; k < 8; ++k) sum += s[(t + k * 128) % 1024];
  __syncthreads();
  s[1023 - t] = sum;
  __syncthreads();
  out[t] = s[t];
}

// Raw mbarrier protocol: thread 0 initialises for all threads, every thread
// arrives, one thread also arrive_drops; phases flip; expect_tx/complete_tx.
extern "C" __global__ void mbar(unsigned* out) {
  __shared__ unsigned long long bar;
  unsigned addr = unsigned(__cvta_generic_to_shared(&bar));
  int t = threadIdx.x;
  unsigned n = blockDim.x;
  if (t == 0) asm volatile("mbarrier.init.shared.b64 [%0], %1;" ::"r"(addr), "r"(n));
  __syncthreads();
  unsigned long long state;
  asm volatile("mbarrier.arrive.shared.b64 %0, [%1];" : "=l"(state) : "r"(addr));
  unsigned done = 0;
  while (!done) asm volatile("{ .reg .pred p; mbarrier.try_wait.shared.b64 p, [%1], %2; selp.u32 %0, 1, 0, p; }" : "=r"(done) : "r"(addr), "l"(state));
  out[t * 5] = done;
  // Phase 1: thread 0 leaves the barrier for good, the others arrive.
  if (t == 0) asm volatile("mbarrier.arrive_drop.shared.b64 _, [%0];" ::"r"(addr));
  else asm volatile("mbarrier.arrive.shared.b64 _, [%0];" ::"r"(addr));
  done = 0;
  while (!done) asm volatile("{ .reg .pred p; mbarrier.try_wait.parity.shared.b64 p, [%1], 1; selp.u32 %0, 1, 0, p; }" : "=r"(done) : "r"(addr));
  out[t * 5 + 1] = done;
  __syncthreads();
  // Phase 2: expected count is now n - 1; add a transaction count.
  if (t == 1) asm volatile("mbarrier.expect_tx.shared.b64 [%0], 64;" ::"r"(addr));
  __syncthreads();
  if (t != 0) asm volatile("mbarrier.arrive.shared.b64 %0, [%1];" : "=l"(state) : "r"(addr));
  __syncthreads();
  unsigned pending;
  asm volatile("mbarrier.pending_count.b64 %0, %1;" : "=r"(pending) : "l"(state));
  unsigned before;
  asm volatile("{ .reg .pred p; mbarrier.test_wait.parity.shared.b64 p, [%1], 0; selp.u32 %0, 1, 0, p; }" : "=r"(before) : "r"(addr));
  __syncthreads();
  if (t == 2) asm volatile("mbarrier.complete_tx.shared.b64 [%0], 64;" ::"r"(addr));
  __syncthreads();
  unsigned after;
  asm volatile("{ .reg .pred p; mbarrier.test_wait.parity.shared.b64 p, [%1], 0; selp.u32 %0, 1, 0, p; }" : "=r"(after) : "r"(addr));
  out[t * 5 + 2] = before;
  out[t * 5 + 3] = after;
  out[t * 5 + 4] = pending;
  asm volatile("fence.proxy.async.shared::cta;");
  asm volatile("fence.mbarrier_init.release.cluster;");
}

// Thread-block-cluster code launched without clusters: a cluster of one CTA.
extern "C" __global__ void cluster_of_one(int* out) {
  __shared__ int s[64];
  auto cl = cg::this_cluster();
  s[threadIdx.x] = threadIdx.x * 3;
  cl.sync();
  int* mine = cl.map_shared_rank(s, 0);
  out[threadIdx.x] = mine[63 - threadIdx.x] + 100 * int(cl.block_rank()) + 1000 * int(cl.num_blocks());
  cl.sync();
}
