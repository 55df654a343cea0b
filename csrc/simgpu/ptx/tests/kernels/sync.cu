// Barriers, cooperative grid sync, asynchronous copies with pipelines and
// barriers (the code libcu++ and cooperative groups generate for sm_90).
#include <cooperative_groups.h>
#include <cooperative_groups/memcpy_async.h>
#include <cuda/barrier>
#include <cuda/pipeline>
namespace cg = cooperative_groups;

extern "C" __global__ void bar_reduce(const int* in, int* out) {
  int t = threadIdx.x;
  int v = in[t];
  out[t * 3 + 0] = __syncthreads_count(v > 3);
  out[t * 3 + 1] = __syncthreads_and(v >= 0);
  out[t * 3 + 2] = __syncthreads_or(v == 42);
}

// Warp specialisation with named barriers: warps 0-1 produce, 2-3 consume.
extern "C" __global__ void named_barriers(int* out, int rounds) {
  __shared__ int buf[64];
  int t = threadIdx.x;
  int acc = 0;
  for (int r = 0; r < rounds; ++r) {
    if (t < 64) {
      buf[t] = t * r;
      asm volatile("bar.arrive 1, 128;");          // data ready
      asm volatile("bar.sync 2, 128;");            // wait until consumed
    } else {
      asm volatile("bar.sync 1, 128;");
      acc += buf[t - 64];
      asm volatile("bar.arrive 2, 128;");
    }
  }
  if (t >= 64) out[t - 64] = acc;
}

extern "C" __global__ void grid_sync(int* data, int* out, int n) {
  cg::grid_group g = cg::this_grid();
  int i = g.thread_rank();
  if (i < n) data[i] = i * 2;
  g.sync();
  // Every thread reads a value another block wrote before the sync.
  if (i < n) out[i] = data[(i + 97) % n] + 1;
  g.sync();
  if (i < n) data[i] = 0;
  g.sync();
  if (i < n) out[i] += data[(i + 13) % n];
}

extern "C" __global__ void deadlock(int* out) {
  int w = threadIdx.x / 32;
  if (w == 0) asm volatile("bar.sync 1, 64;");
  else asm volatile("bar.sync 2, 64;");
  out[threadIdx.x] = 1;
}

extern "C" __global__ void pipeline_copy(const float* in, float* out, int stages_total) {
  constexpr int kStages = 2, kChunk = 128;
  __shared__ float buf[kStages][kChunk];
#pragma nv_diag_suppress static_var_with_dynamic_init
  __shared__ cuda::pipeline_shared_state<cuda::thread_scope_block, kStages> state;
  auto block = cg::this_thread_block();
  auto p = cuda::make_pipeline(block, &state);
  int fetch = 0;
  for (int s = 0; s < stages_total; ++s) {
    for (; fetch < stages_total && fetch < s + kStages; ++fetch) {
      p.producer_acquire();
      cuda::memcpy_async(block, buf[fetch % kStages], in + fetch * kChunk, sizeof(float) * kChunk, p);
      p.producer_commit();
    }
    p.consumer_wait();
    out[s * kChunk + threadIdx.x] = buf[s % kStages][threadIdx.x] * 2.0f + float(s);
    p.consumer_release();
  }
}

extern "C" __global__ void barrier_copy(const float* in, float* out) {
  __shared__ alignas(16) float buf[256];
#pragma nv_diag_suppress static_var_with_dynamic_init
  __shared__ cuda::barrier<cuda::thread_scope_block> bar;
  auto block = cg::this_thread_block();
  if (block.thread_rank() == 0) init(&bar, block.size());
  block.sync();
  cuda::memcpy_async(block, buf, in, sizeof(buf), bar);
  bar.arrive_and_wait();
  out[threadIdx.x] = buf[255 - threadIdx.x];
  block.sync();
  // A second phase with the bulk (TMA) path: one thread issues the copy.
  cuda::barrier<cuda::thread_scope_block>::arrival_token tok;
  if (threadIdx.x == 0) cuda::memcpy_async(buf, in + 256, cuda::aligned_size_t<16>(sizeof(buf)), bar);
  tok = bar.arrive();
  bar.wait(std::move(tok));
  out[256 + threadIdx.x] = buf[threadIdx.x] + 1.0f;
}

extern "C" __global__ void cg_copy(const int* in, int* out) {
  __shared__ int buf[512];
  auto block = cg::this_thread_block();
  cg::memcpy_async(block, buf, in, sizeof(buf));
  cg::wait(block);
  out[threadIdx.x] = buf[(threadIdx.x * 3) % 512];
}

extern "C" __global__ void raw_cp_async(const int* in, int* out) {
  __shared__ alignas(16) int buf[128];
  int t = threadIdx.x;
  unsigned dst = unsigned(__cvta_generic_to_shared(&buf[t * 4]));
  int src_size = (t % 4) * 4;   // partial copies zero-fill the rest
  asm volatile("cp.async.cg.shared.global [%0], [%1], 16, %2;" ::"r"(dst), "l"(in + t * 4), "r"(src_size));
  asm volatile("cp.async.commit_group;");
  asm volatile("cp.async.wait_group 0;");
  __syncthreads();
  for (int k = 0; k < 4; ++k) out[t * 4 + k] = buf[t * 4 + k];
}
