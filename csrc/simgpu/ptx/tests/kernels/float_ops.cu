// f32/f64 instructions with explicit rounding modes, ftz/sat, NaN rules,
// conversions and .approx functions, all through inline PTX.
#define F1(op, a) ({ float _r; asm(op " %0, %1;" : "=f"(_r) : "f"(a)); __float_as_uint(_r); })
#define F2(op, a, b) ({ float _r; asm(op " %0, %1, %2;" : "=f"(_r) : "f"(a), "f"(b)); __float_as_uint(_r); })
#define F3(op, a, b, c) ({ float _r; asm(op " %0, %1, %2, %3;" : "=f"(_r) : "f"(a), "f"(b), "f"(c)); __float_as_uint(_r); })
#define D1(op, a) ({ double _r; asm(op " %0, %1;" : "=d"(_r) : "d"(a)); __double_as_longlong(_r); })
#define D2(op, a, b) ({ double _r; asm(op " %0, %1, %2;" : "=d"(_r) : "d"(a), "d"(b)); __double_as_longlong(_r); })
#define D3(op, a, b, c) ({ double _r; asm(op " %0, %1, %2, %3;" : "=d"(_r) : "d"(a), "d"(b), "d"(c)); __double_as_longlong(_r); })
#define TESTP(op, a) ({ unsigned _r; asm("{ .reg .pred p; testp." op ".f32 p, %1; selp.u32 %0, 1, 0, p; }" : "=r"(_r) : "f"(a)); _r; })

extern "C" __global__ void f32_ops(const float* A, const float* B, const float* C, unsigned* out, int n) {
  int i = blockIdx.x * blockDim.x + threadIdx.x;
  if (i >= n) return;
  float a = A[i], b = B[i], c = C[i];
  unsigned* o = out + i * 64;
  int k = 0;
  o[k++] = F2("add.rn.f32", a, b);
  o[k++] = F2("add.rz.f32", a, b);
  o[k++] = F2("add.rm.f32", a, b);
  o[k++] = F2("add.rp.f32", a, b);
  o[k++] = F2("sub.rz.f32", a, b);
  o[k++] = F2("mul.rn.f32", a, b);
  o[k++] = F2("mul.rz.f32", a, b);
  o[k++] = F2("mul.rm.f32", a, b);
  o[k++] = F2("mul.rp.f32", a, b);
  o[k++] = F3("fma.rn.f32", a, b, c);
  o[k++] = F3("fma.rz.f32", a, b, c);
  o[k++] = F3("fma.rm.f32", a, b, c);
  o[k++] = F3("fma.rp.f32", a, b, c);
  o[k++] = F2("div.rn.f32", a, b);
  o[k++] = F2("div.rz.f32", a, b);
  o[k++] = F2("div.rm.f32", a, b);
  o[k++] = F2("div.rp.f32", a, b);
  o[k++] = F1("sqrt.rn.f32", a);
  o[k++] = F1("sqrt.rz.f32", a);
  o[k++] = F1("sqrt.rp.f32", a);
  o[k++] = F1("rcp.rn.f32", a);
  o[k++] = F1("rcp.rm.f32", a);
  o[k++] = F2("add.ftz.f32", a, b);
  o[k++] = F2("mul.rn.ftz.sat.f32", a, b);
  o[k++] = F3("fma.rn.sat.f32", a, b, c);
  o[k++] = F3("fma.rn.ftz.f32", a, b, c);
  o[k++] = F2("min.f32", a, b);
  o[k++] = F2("max.f32", a, b);
  o[k++] = F2("min.NaN.f32", a, b);
  o[k++] = F2("max.NaN.f32", a, b);
  o[k++] = F2("min.xorsign.abs.f32", a, b);
  o[k++] = F2("copysign.f32", a, b);
  o[k++] = F1("neg.f32", a);
  o[k++] = F1("abs.ftz.f32", a);
  o[k++] = TESTP("finite", a) | TESTP("infinite", a) << 1 | TESTP("number", a) << 2 |
           TESTP("notanumber", a) << 3 | TESTP("normal", a) << 4 | TESTP("subnormal", a) << 5;
  o[k++] = F1("cvt.rni.f32.f32", a);
  o[k++] = F1("cvt.rmi.f32.f32", a);
  o[k++] = F1("cvt.sat.f32.f32", a);
  o[k++] = F1("cvt.ftz.f32.f32", a);
  int s;
  asm("cvt.rni.s32.f32 %0, %1;" : "=r"(s) : "f"(a)); o[k++] = s;
  asm("cvt.rzi.s32.f32 %0, %1;" : "=r"(s) : "f"(a)); o[k++] = s;
  asm("cvt.rmi.s32.f32 %0, %1;" : "=r"(s) : "f"(a)); o[k++] = s;
  asm("cvt.rpi.u32.f32 %0, %1;" : "=r"(s) : "f"(a)); o[k++] = s;
  unsigned short h;
  asm("cvt.rzi.s16.f32 %0, %1;" : "=h"(h) : "f"(a)); o[k++] = h;
  unsigned u = __float_as_uint(b);
  float f;
  asm("cvt.rz.f32.u32 %0, %1;" : "=f"(f) : "r"(u)); o[k++] = __float_as_uint(f);
  asm("cvt.rm.f32.s32 %0, %1;" : "=f"(f) : "r"(u)); o[k++] = __float_as_uint(f);
  asm("cvt.rp.f32.s32 %0, %1;" : "=f"(f) : "r"(u)); o[k++] = __float_as_uint(f);
  unsigned long long w = (unsigned long long)__float_as_uint(b) << 32 | __float_as_uint(c);
  asm("cvt.rn.f32.u64 %0, %1;" : "=f"(f) : "l"(w)); o[k++] = __float_as_uint(f);
  asm("cvt.rz.f32.u64 %0, %1;" : "=f"(f) : "l"(w)); o[k++] = __float_as_uint(f);
  asm("cvt.rp.f32.s64 %0, %1;" : "=f"(f) : "l"(w)); o[k++] = __float_as_uint(f);
  o[k++] = unsigned(k);
}

// .approx functions: results checked against tolerances.
extern "C" __global__ void f32_approx(const float* A, const float* B, float* out, int n) {
  int i = blockIdx.x * blockDim.x + threadIdx.x;
  if (i >= n) return;
  float a = A[i], b = B[i];
  float* o = out + i * 16;
  int k = 0;
  o[k++] = __uint_as_float(F1("ex2.approx.f32", a));
  o[k++] = __uint_as_float(F1("lg2.approx.f32", b));
  o[k++] = __uint_as_float(F1("sin.approx.f32", a));
  o[k++] = __uint_as_float(F1("cos.approx.f32", a));
  o[k++] = __uint_as_float(F1("rsqrt.approx.f32", b));
  o[k++] = __uint_as_float(F1("rcp.approx.f32", a));
  o[k++] = __uint_as_float(F1("sqrt.approx.f32", b));
  o[k++] = __uint_as_float(F1("tanh.approx.f32", a));
  o[k++] = __uint_as_float(F2("div.approx.f32", a, b));
  o[k++] = __uint_as_float(F2("div.full.f32", a, b));
  o[k++] = __uint_as_float(F1("ex2.approx.ftz.f32", a));
  o[k++] = expf(a);          // libdevice code built on ex2.approx
  o[k++] = logf(b);
  o[k++] = sinf(a);
  o[k++] = powf(b, 1.7f);
  o[k++] = float(k);
}

extern "C" __global__ void f64_ops(const double* A, const double* B, const double* C, unsigned long long* out, int n) {
  int i = blockIdx.x * blockDim.x + threadIdx.x;
  if (i >= n) return;
  double a = A[i], b = B[i], c = C[i];
  unsigned long long* o = out + i * 40;
  int k = 0;
  o[k++] = D2("add.rn.f64", a, b);
  o[k++] = D2("add.rz.f64", a, b);
  o[k++] = D2("add.rm.f64", a, b);
  o[k++] = D2("add.rp.f64", a, b);
  o[k++] = D2("mul.rn.f64", a, b);
  o[k++] = D2("mul.rz.f64", a, b);
  o[k++] = D3("fma.rn.f64", a, b, c);
  o[k++] = D3("fma.rz.f64", a, b, c);
  o[k++] = D3("fma.rm.f64", a, b, c);
  o[k++] = D2("div.rn.f64", a, b);
  o[k++] = D2("div.rz.f64", a, b);
  o[k++] = D2("div.rp.f64", a, b);
  o[k++] = D1("sqrt.rn.f64", a);
  o[k++] = D1("sqrt.rm.f64", a);
  o[k++] = D1("rcp.rn.f64", a);
  o[k++] = D2("min.f64", a, b);
  o[k++] = D2("max.f64", a, b);
  o[k++] = D1("neg.f64", a);
  o[k++] = D1("abs.f64", a);
  float f;
  asm("cvt.rn.f32.f64 %0, %1;" : "=f"(f) : "d"(a)); o[k++] = __float_as_uint(f);
  asm("cvt.rz.f32.f64 %0, %1;" : "=f"(f) : "d"(a)); o[k++] = __float_as_uint(f);
  asm("cvt.rm.f32.f64 %0, %1;" : "=f"(f) : "d"(a)); o[k++] = __float_as_uint(f);
  asm("cvt.rp.f32.f64 %0, %1;" : "=f"(f) : "d"(a)); o[k++] = __float_as_uint(f);
  long long s;
  asm("cvt.rni.s64.f64 %0, %1;" : "=l"(s) : "d"(a)); o[k++] = s;
  asm("cvt.rzi.u64.f64 %0, %1;" : "=l"(s) : "d"(a)); o[k++] = s;
  int si;
  asm("cvt.rpi.s32.f64 %0, %1;" : "=r"(si) : "d"(a)); o[k++] = (unsigned)si;
  double d;
  unsigned long long w = __double_as_longlong(b);
  asm("cvt.rn.f64.u64 %0, %1;" : "=d"(d) : "l"(w)); o[k++] = __double_as_longlong(d);
  asm("cvt.rz.f64.s64 %0, %1;" : "=d"(d) : "l"(w)); o[k++] = __double_as_longlong(d);
  asm("cvt.rm.f64.u64 %0, %1;" : "=d"(d) : "l"(w)); o[k++] = __double_as_longlong(d);
  asm("cvt.f64.f32 %0, %1;" : "=d"(d) : "f"(float(c))); o[k++] = __double_as_longlong(d);
  asm("cvt.rpi.f64.f64 %0, %1;" : "=d"(d) : "d"(a)); o[k++] = __double_as_longlong(d);
  o[k++] = (unsigned long long)k;
}
