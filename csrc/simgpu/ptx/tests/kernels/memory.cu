// State spaces, parameters, module variables, generic addressing, faults.
#include <cstdint>

struct Params {
  int a;
  double b;
  char c[5];
  short s;
};

__device__ int gtable[6] = {3, 1, 4, 1, 5, 9};
__device__ int* gptr = &gtable[2];
__device__ float gscalar = 2.5f;
__constant__ float ctable[4] = {0.5f, 1.5f, 2.5f, 3.5f};
__constant__ long long cbig = 0x123456789abcdefll;
__shared__ int module_shared[32];

__device__ __noinline__ int load_generic(const int* p) { return *p; }
__device__ __noinline__ int where(const void* p) {
  return __isGlobal(p) | __isShared(p) << 1 | __isLocal(p) << 2 | __isConstant(p) << 3;
}

extern "C" __global__ void spaces(const Params prm, int* out, int sel) {
  extern __shared__ int dyn[];
  __shared__ int stat[64];
  int t = threadIdx.x;
  stat[t] = t * 3;
  dyn[t] = t * 5 + prm.a;
  module_shared[t % 32] = t;
  __syncthreads();
  int local[16];
  for (int k = 0; k < 16; ++k) local[k] = k * t + prm.s;
  int* o = out + t * 16;
  o[0] = stat[63 - t] + dyn[(t + 1) % blockDim.x];
  o[1] = local[(t * 7 + sel) % 16];
  o[2] = int(prm.b * 10.0) + prm.c[t % 5];
  o[3] = gtable[t % 6] + *gptr;
  o[4] = int(ctable[t % 4] * 2.0f) + int(cbig >> (t % 40));
  o[5] = load_generic((t & 1) ? &stat[t] : &gtable[t % 6]);
  o[6] = load_generic(&local[t % 16]);
  o[7] = where(&stat[0]) | where(out) << 4 | where(&local[1]) << 8 | where(&ctable[1]) << 12;
  o[8] = module_shared[(t + 3) % 32];
  o[9] = int(gscalar * 4.0f);
  gtable[5] = 9;  // same value: racing stores are harmless
}

extern "C" __global__ void vectors(const float4* in, float4* out, const int2* pairs, int2* pout, const int* ro, int* rout) {
  int t = threadIdx.x;
  float4 v = in[t];
  out[t] = make_float4(v.w, v.z, v.y, v.x);
  int2 p = pairs[t];
  pout[t] = make_int2(p.x + p.y, p.x - p.y);
  rout[t] = __ldg(&ro[t]) * 2;
}

struct Big {
  int v[8];
};
extern "C" __global__ void grid_const(const __grid_constant__ Big b, int* out) {
  const int* p = &b.v[0];  // address of a kernel parameter
  out[threadIdx.x] = p[threadIdx.x % 8] + b.v[7];
}

// Faults: each variant performs one bad access in one thread.
extern "C" __global__ void faults(int* buf, int which) {
  int t = threadIdx.x;
  __shared__ int sh[8];
  if (t != 5) return;
  switch (which) {
    case 0: buf[1 << 20] = 1; break;                             // far out of bounds
    case 1: *(int*)((char*)buf + 2) = 7; break;                  // misaligned
    case 2: { volatile int* z = nullptr; *z = 3; break; }        // null
    case 3: { volatile int* s = sh; s[t * 1000] = 1; break; }    // shared out of bounds
    case 4: buf[-1] = 2; break;                                  // just below the allocation
    case 5: { int v; asm volatile("ld.local.u32 %0, [%1];" : "=r"(v) : "l"(1ll << 30)); buf[0] = v; break; }
    case 6: {  // 16-byte vector access at a 4-byte aligned address
      float x, y, z, w;
      asm volatile("ld.global.v4.f32 {%0, %1, %2, %3}, [%4];" : "=f"(x), "=f"(y), "=f"(z), "=f"(w) : "l"(buf + 1));
      buf[0] = int(x + y + z + w);
      break;
    }
  }
}
