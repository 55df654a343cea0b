// fp16 / bf16 arithmetic, comparisons and conversions (cuda_fp16/bf16 and
// inline PTX).
#include <cuda_bf16.h>
#include <cuda_fp16.h>

#define HB(x) __half_as_ushort(x)
#define BB(x) __bfloat16_as_ushort(x)

extern "C" __global__ void half_ops(const unsigned short* A, const unsigned short* B, const unsigned short* C,
                                    const float* F, unsigned short* out, int n) {
  int i = blockIdx.x * blockDim.x + threadIdx.x;
  if (i >= n) return;
  __half a = __ushort_as_half(A[i]), b = __ushort_as_half(B[i]), c = __ushort_as_half(C[i]);
  __nv_bfloat16 x = __ushort_as_bfloat16(A[i]), y = __ushort_as_bfloat16(B[i]), z = __ushort_as_bfloat16(C[i]);
  float f = F[i];
  unsigned short* o = out + i * 48;
  int k = 0;
  o[k++] = HB(__hadd(a, b));
  o[k++] = HB(__hsub(a, b));
  o[k++] = HB(__hmul(a, b));
  o[k++] = HB(__hfma(a, b, c));
  o[k++] = HB(__hfma_sat(a, b, c));
  o[k++] = HB(__hfma_relu(a, b, c));
  o[k++] = HB(__hmin(a, b));
  o[k++] = HB(__hmax_nan(a, b));
  o[k++] = HB(__hneg(a));
  o[k++] = HB(__habs(a));
  o[k++] = __hlt(a, b) | __hgeu(a, b) << 1 | __hisnan(a) << 2 | __hne(a, b) << 3;
  o[k++] = HB(__float2half_rn(f));
  o[k++] = HB(__float2half_rz(f));
  o[k++] = HB(__float2half_rd(f));
  o[k++] = HB(__float2half_ru(f));
  o[k++] = HB(__double2half((double)f * 1.000000119));
  o[k++] = HB(__int2half_rn(int(f * 1000.0f)));
  o[k++] = (unsigned short)__half2int_rz(a);
  {
    float r = __half2float(a);
    o[k++] = (unsigned short)(__float_as_uint(r) >> 16);
    o[k++] = (unsigned short)__float_as_uint(r);
  }
  o[k++] = BB(__hadd(x, y));
  o[k++] = BB(__hmul(x, y));
  o[k++] = BB(__hfma(x, y, z));
  o[k++] = BB(__hmax(x, y));
  o[k++] = BB(__float2bfloat16_rn(f));
  o[k++] = BB(__float2bfloat16_rz(f));
  o[k++] = BB(__float2bfloat16_rd(f));
  o[k++] = BB(__float2bfloat16_ru(f));
  o[k++] = __hlt(x, y) | __heq(x, y) << 1;
  {
    __half2 p = __halves2half2(a, b), q = __halves2half2(c, a);
    __half2 r = __hfma2(p, q, p);
    o[k++] = HB(__low2half(r));
    o[k++] = HB(__high2half(r));
    r = __hmul2(p, q);
    o[k++] = HB(__low2half(r));
    o[k++] = HB(__high2half(r));
    __nv_bfloat162 u = __halves2bfloat162(x, y), v = __halves2bfloat162(z, x);
    __nv_bfloat162 w = __hadd2(u, v);
    o[k++] = BB(__low2bfloat16(w));
    o[k++] = BB(__high2bfloat16(w));
    __half2 fp = __floats2half2_rn(f, -f * 3.0f);
    o[k++] = HB(__low2half(fp));
    o[k++] = HB(__high2half(fp));
  }
  unsigned short e;
  asm("ex2.approx.f16 %0, %1;" : "=h"(e) : "h"(HB(a)));
  o[k++] = e;
  o[k++] = (unsigned short)k;
}
