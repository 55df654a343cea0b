// Atomics under contention from many blocks (run by several workers).
#include <cuda_fp16.h>

extern "C" __global__ void contend(int* icnt, float* fsum, double* dsum, unsigned* umax, int* imin, unsigned* wrap,
                                   unsigned* dec, unsigned long long* cas64, unsigned* bits, __half* hsum,
                                   unsigned* exch, int* red_block) {
  int g = blockIdx.x * blockDim.x + threadIdx.x;
  atomicAdd(icnt, 1);
  atomicAdd(fsum, float(g % 8));          // integer-valued: exact in any order
  atomicAdd(dsum, double(g) * 0.5);
  atomicMax(umax, unsigned(g * 2654435761u >> 8));
  atomicMin(imin, -g * 3 + 1000);
  atomicInc(wrap, 99u);                   // counts modulo 100
  atomicDec(dec, 1000000u);
  // lock-free increment through 64-bit CAS
  unsigned long long old = *cas64, seen;
  do {
    seen = old;
    old = atomicCAS(cas64, seen, seen + 3);
  } while (old != seen);
  atomicOr(&bits[g % 4], 1u << (g % 32));
  atomicXor(&bits[4], 1u << (g % 16));
  atomicAnd(&bits[5], ~(1u << (g % 32)));
  atomicAdd(hsum, __float2half(1.0f));    // saturates precision: checked loosely
  atomicExch(exch, unsigned(g));
  atomicAdd_block(red_block, 1);          // result unused: compiles to red
}

extern "C" __global__ void shared_histogram(const unsigned char* data, int n, unsigned* hist) {
  __shared__ unsigned h[64];
  for (int i = threadIdx.x; i < 64; i += blockDim.x) h[i] = 0;
  __syncthreads();
  for (int i = blockIdx.x * blockDim.x + threadIdx.x; i < n; i += gridDim.x * blockDim.x) atomicAdd(&h[data[i] % 64], 1u);
  __syncthreads();
  for (int i = threadIdx.x; i < 64; i += blockDim.x) atomicAdd(&hist[i], h[i]);
}

// The "last block finishes the job" pattern (threadFenceReduction sample).
__device__ unsigned blocks_done = 0;
extern "C" __global__ void last_block_sum(const int* in, int* partial, int* total) {
  __shared__ int s[128];
  __shared__ bool last;
  int t = threadIdx.x;
  s[t] = in[blockIdx.x * blockDim.x + t];
  __syncthreads();
  for (int w = 64; w > 0; w >>= 1) {
    if (t < w) s[t] += s[t + w];
    __syncthreads();
  }
  if (t == 0) {
    partial[blockIdx.x] = s[0];
    __threadfence();
    unsigned ticket = atomicInc(&blocks_done, gridDim.x);
    last = ticket == gridDim.x - 1;
  }
  __syncthreads();
  if (last && t == 0) {
    int sum = 0;
    for (int b = 0; b < gridDim.x; ++b) sum += ((volatile int*)partial)[b];
    *total = sum;
    blocks_done = 0;
  }
}

// Single-pass chained scan: each block publishes {flag, inclusive prefix} as
// one 8-byte relaxed vector store; its successor spins on the pair (the
// look-back protocol of CUB's device scan).  Blocks depend on blocks claimed
// earlier, which every worker schedule must allow.
extern "C" __global__ void chained_scan(const int* in, int* out, unsigned* status) {
  __shared__ int s[128];
  __shared__ int prefix;
  int t = threadIdx.x, b = blockIdx.x;
  s[t] = in[b * 128 + t];
  __syncthreads();
  for (int d = 1; d < 128; d <<= 1) {
    int v = t >= d ? s[t - d] : 0;
    __syncthreads();
    s[t] += v;
    __syncthreads();
  }
  if (t == 0) {
    int p = 0;
    if (b > 0) {
      unsigned flag = 0, val = 0;
      const unsigned* prev = status + 2 * (b - 1);
      do {
        asm volatile("ld.relaxed.gpu.global.v2.u32 {%0, %1}, [%2];" : "=r"(flag), "=r"(val) : "l"(prev));
      } while (flag == 0);
      p = int(val);
    }
    prefix = p;
    unsigned total = unsigned(p + s[127]);
    asm volatile("st.relaxed.gpu.global.v2.u32 [%0], {%1, %2};" ::"l"(status + 2 * b), "r"(1u), "r"(total));
  }
  __syncthreads();
  out[b * 128 + t] = s[t] + prefix;
}
