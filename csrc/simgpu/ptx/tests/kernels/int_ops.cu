// Integer and bit-manipulation instructions, many through inline PTX so each
// instruction form is exercised exactly.
#include <cstdint>

#define ASM1(op, d, a) asm(op " %0, %1;" : "=r"(d) : "r"(a))
#define ASM2(op, d, a, b) asm(op " %0, %1, %2;" : "=r"(d) : "r"(a), "r"(b))
#define ASM3(op, d, a, b, c) asm(op " %0, %1, %2, %3;" : "=r"(d) : "r"(a), "r"(b), "r"(c))

extern "C" __global__ void int32_ops(const unsigned* A, const unsigned* B, const unsigned* C, unsigned* out, int n) {
  int i = blockIdx.x * blockDim.x + threadIdx.x;
  if (i >= n) return;
  unsigned a = A[i], b = B[i], c = C[i], r;
  int sa = int(a), sb = int(b);
  unsigned* o = out + i * 80;
  int k = 0;
  o[k++] = a + b;
  o[k++] = a - b;
  o[k++] = a * b;
  o[k++] = __umulhi(a, b);
  o[k++] = unsigned(__mulhi(sa, sb));
  o[k++] = b ? a / b : 0;
  o[k++] = b ? a % b : 0;
  o[k++] = (sb != 0 && !(sa == INT32_MIN && sb == -1)) ? unsigned(sa / sb) : 0;
  o[k++] = (sb != 0 && !(sa == INT32_MIN && sb == -1)) ? unsigned(sa % sb) : 0;
  o[k++] = min(a, b);
  o[k++] = unsigned(min(sa, sb));
  o[k++] = unsigned(max(sa, sb));
  o[k++] = a >> (b & 31);
  o[k++] = unsigned(sa >> (b & 31));
  o[k++] = a << (b & 31);
  ASM2("shl.b32", r, a, b); o[k++] = r;            // shift >= 32 gives 0
  ASM2("shr.s32", r, a, b); o[k++] = r;            // clamps to sign fill
  o[k++] = __popc(a);
  o[k++] = __clz(a);
  o[k++] = __brev(a);
  ASM1("bfind.u32", r, a); o[k++] = r;
  ASM1("bfind.s32", r, a); o[k++] = r;
  ASM1("bfind.shiftamt.u32", r, a); o[k++] = r;
  ASM3("bfe.u32", r, a, b, c); o[k++] = r;
  ASM3("bfe.s32", r, a, b, c); o[k++] = r;
  asm("bfi.b32 %0, %1, %2, %3, %4;" : "=r"(r) : "r"(a), "r"(b), "r"(c), "r"(c >> 8)); o[k++] = r;
  o[k++] = __byte_perm(a, b, c);
  asm("prmt.b32 %0, %1, %2, %3;" : "=r"(r) : "r"(a), "r"(b), "r"(c)); o[k++] = r;
  asm("prmt.b32.f4e %0, %1, %2, %3;" : "=r"(r) : "r"(a), "r"(b), "r"(c)); o[k++] = r;
  asm("prmt.b32.b4e %0, %1, %2, %3;" : "=r"(r) : "r"(a), "r"(b), "r"(c)); o[k++] = r;
  asm("prmt.b32.rc8 %0, %1, %2, %3;" : "=r"(r) : "r"(a), "r"(b), "r"(c)); o[k++] = r;
  asm("prmt.b32.ecl %0, %1, %2, %3;" : "=r"(r) : "r"(a), "r"(b), "r"(c)); o[k++] = r;
  asm("prmt.b32.ecr %0, %1, %2, %3;" : "=r"(r) : "r"(a), "r"(b), "r"(c)); o[k++] = r;
  asm("prmt.b32.rc16 %0, %1, %2, %3;" : "=r"(r) : "r"(a), "r"(b), "r"(c)); o[k++] = r;
  ASM3("shf.l.wrap.b32", r, a, b, c); o[k++] = r;
  ASM3("shf.l.clamp.b32", r, a, b, c); o[k++] = r;
  ASM3("shf.r.wrap.b32", r, a, b, c); o[k++] = r;
  ASM3("shf.r.clamp.b32", r, a, b, c); o[k++] = r;
  asm("lop3.b32 %0, %1, %2, %3, 0x96;" : "=r"(r) : "r"(a), "r"(b), "r"(c)); o[k++] = r;
  asm("lop3.b32 %0, %1, %2, %3, 0xE8;" : "=r"(r) : "r"(a), "r"(b), "r"(c)); o[k++] = r;
  o[k++] = __sad(sa, sb, c);
  o[k++] = __usad(a, b, c);
  o[k++] = unsigned(__mul24(sa, sb));
  o[k++] = __umul24(a, b);
  ASM3("mad24.hi.s32", r, a, b, c); o[k++] = r;
  o[k++] = unsigned(__dp4a(sa, sb, int(c)));
  o[k++] = __dp4a(a, b, c);
  o[k++] = __dp2a_lo(a, b, c);
  o[k++] = unsigned(__dp2a_hi(sa, sb, int(c)));
  ASM3("mad.hi.u32", r, a, b, c); o[k++] = r;
  ASM3("mad.hi.sat.s32", r, a, b, c); o[k++] = r;
  ASM2("add.sat.s32", r, a, b); o[k++] = r;
  ASM2("sub.sat.s32", r, a, b); o[k++] = r;
  {  // 64-bit add via carry chain
    unsigned lo, hi;
    asm("add.cc.u32 %0, %2, %3;\n\taddc.u32 %1, %4, %5;" : "=r"(lo), "=r"(hi) : "r"(a), "r"(b), "r"(c), "r"(a ^ b));
    o[k++] = lo; o[k++] = hi;
    asm("sub.cc.u32 %0, %2, %3;\n\tsubc.cc.u32 %1, %4, %5;" : "=r"(lo), "=r"(hi) : "r"(a), "r"(b), "r"(c), "r"(a ^ b));
    o[k++] = lo; o[k++] = hi;
  }
  ASM1("cnot.b32", r, a & 3); o[k++] = r;
  ASM1("not.b32", r, a); o[k++] = r;
  ASM1("neg.s32", r, a); o[k++] = r;
  ASM1("abs.s32", r, a); o[k++] = r;
  ASM2("szext.wrap.s32", r, a, b); o[k++] = r;
  ASM2("szext.clamp.u32", r, a, b); o[k++] = r;
  ASM2("bmsk.clamp.b32", r, a & 63, b & 63); o[k++] = r;
  ASM2("max.relu.s32", r, a, b); o[k++] = r;
  o[k++] = unsigned(k);
}

extern "C" __global__ void int64_ops(const unsigned long long* A, const unsigned long long* B, unsigned long long* out, int n) {
  int i = blockIdx.x * blockDim.x + threadIdx.x;
  if (i >= n) return;
  unsigned long long a = A[i], b = B[i];
  long long sa = (long long)a, sb = (long long)b;
  unsigned long long* o = out + i * 24;
  int k = 0;
  o[k++] = a + b;
  o[k++] = a * b;
  o[k++] = __umul64hi(a, b);
  o[k++] = (unsigned long long)__mul64hi(sa, sb);
  o[k++] = b ? a / b : 0;
  o[k++] = b ? a % b : 0;
  o[k++] = (sb != 0 && !(sa == INT64_MIN && sb == -1)) ? (unsigned long long)(sa / sb) : 0;
  o[k++] = (sb != 0 && !(sa == INT64_MIN && sb == -1)) ? (unsigned long long)(sa % sb) : 0;
  o[k++] = a >> (b & 63);
  o[k++] = (unsigned long long)(sa >> (b & 63));
  o[k++] = __popcll(a);
  o[k++] = __clzll(a);
  o[k++] = __brevll(a);
  o[k++] = (unsigned long long)(unsigned(a) * (unsigned long long)unsigned(b));   // mul.wide.u32
  o[k++] = (unsigned long long)((long long)int(a) * (long long)int(b));          // mul.wide.s32
  o[k++] = min(sa, sb);
  o[k++] = max(a, b);
  o[k++] = __ffsll((long long)a);
  unsigned long long r;
  asm("bfe.s64 %0, %1, %2, %3;" : "=l"(r) : "l"(a), "r"(unsigned(b)), "r"(unsigned(b >> 8))); o[k++] = r;
  asm("bfi.b64 %0, %1, %2, %3, %4;" : "=l"(r) : "l"(a), "l"(b), "r"(unsigned(b >> 16)), "r"(unsigned(b >> 24))); o[k++] = r;
  asm("mad.wide.s32 %0, %1, %2, %3;" : "=l"(r) : "r"(int(a)), "r"(int(b)), "l"(a)); o[k++] = r;
  o[k++] = a ^ (b & (a * 3));
  o[k++] = (unsigned long long)(short(a) * short(b));   // 16-bit path
  o[k++] = (unsigned long long)k;
}

// CUDA SIMD intrinsics (video instructions and packed 16-bit ops) and fns.
extern "C" __global__ void simd_ops(const unsigned* A, const unsigned* B, unsigned* out, int n) {
  int i = blockIdx.x * blockDim.x + threadIdx.x;
  if (i >= n) return;
  unsigned a = A[i], b = B[i];
  unsigned* o = out + i * 12;
  o[0] = __vabsdiffu4(a, b);
  o[1] = __vadd4(a, b);
  o[2] = __vsub2(a, b);
  o[3] = __vmaxs2(a, b);
  o[4] = __vsads4(a, b);
  o[5] = __vaddss2(a, b);
  o[6] = __vminu4(a, b);
  o[7] = __vavgu4(a, b);
  o[8] = __vcmpgtu4(a, b);
  o[9] = __fns(a, b & 31, int(b >> 27) - 16);
  o[10] = __vabsdiffs2(a, b);
  o[11] = 11;
}
