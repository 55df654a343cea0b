/* A plain C driver-API program linked with -lcuda: vector addition from
 * hand-written PTX, launched on two streams, checked on the host.
 * Exit 0 on success, 77 when the simulator's PTX engine is not built, 1 on failure. */
#include <cuda.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define CHECK(call)                                                       \
  do {                                                                    \
    CUresult rc_ = (call);                                                \
    if (rc_ != CUDA_SUCCESS) {                                            \
      const char* name_ = NULL;                                           \
      cuGetErrorName(rc_, &name_);                                        \
      fprintf(stderr, "%s:%d: %s -> %s\n", __FILE__, __LINE__, #call, name_); \
      return 1;                                                           \
    }                                                                     \
  } while (0)

static const char kPtx[] =
    ".version 8.0\n"
    ".target sm_90\n"
    ".address_size 64\n"
    ".visible .entry vadd(.param .u64 a, .param .u64 b, .param .u64 c, .param .u32 n) {\n"
    "  .reg .pred %p; .reg .b32 %r<6>; .reg .f32 %f<4>; .reg .b64 %rd<8>;\n"
    "  ld.param.u64 %rd1, [a]; ld.param.u64 %rd2, [b]; ld.param.u64 %rd3, [c]; ld.param.u32 %r1, [n];\n"
    "  mov.u32 %r2, %ctaid.x; mov.u32 %r3, %ntid.x; mov.u32 %r4, %tid.x;\n"
    "  mad.lo.s32 %r2, %r2, %r3, %r4;\n"
    "  setp.ge.s32 %p, %r2, %r1;\n"
    "  @%p bra DONE;\n"
    "  mul.wide.s32 %rd4, %r2, 4;\n"
    "  add.s64 %rd5, %rd1, %rd4; add.s64 %rd6, %rd2, %rd4; add.s64 %rd7, %rd3, %rd4;\n"
    "  ld.global.f32 %f1, [%rd5]; ld.global.f32 %f2, [%rd6];\n"
    "  add.f32 %f3, %f1, %f2;\n"
    "  st.global.f32 [%rd7], %f3;\n"
    "DONE:\n"
    "  ret;\n"
    "}\n";

int main(void) {
  enum { N = 1 << 16 };
  CUdevice dev;
  CUcontext ctx;
  CUmodule mod;
  CUfunction vadd;
  char log[1024] = {0};
  CUjit_option opts[] = {CU_JIT_ERROR_LOG_BUFFER, CU_JIT_ERROR_LOG_BUFFER_SIZE_BYTES};
  void* vals[] = {log, (void*)(size_t)sizeof log};

  CHECK(cuInit(0));
  CHECK(cuDeviceGet(&dev, 0));
  CHECK(cuCtxCreate(&ctx, NULL, 0, dev));
  CUresult rc = cuModuleLoadDataEx(&mod, kPtx, 2, opts, vals);
  if (rc != CUDA_SUCCESS && strstr(log, "PTX engine not built")) {
    printf("SKIP: the PTX engine is not built yet\n");
    return 77;
  }
  CHECK(rc);
  CHECK(cuModuleGetFunction(&vadd, mod, "vadd"));

  float* a = malloc(N * sizeof(float));
  float* b = malloc(N * sizeof(float));
  float* c;
  CHECK(cuMemAllocHost((void**)&c, N * sizeof(float)));
  for (int i = 0; i < N; ++i) {
    a[i] = (float)i * 0.5f;
    b[i] = (float)(N - i);
  }
  CUdeviceptr da, db, dc;
  CHECK(cuMemAlloc(&da, N * sizeof(float)));
  CHECK(cuMemAlloc(&db, N * sizeof(float)));
  CHECK(cuMemAlloc(&dc, N * sizeof(float)));
  CUstream s[2];
  for (int k = 0; k < 2; ++k) CHECK(cuStreamCreate(&s[k], CU_STREAM_NON_BLOCKING));
  /* Each stream does half: copy in, add, copy out. */
  for (int k = 0; k < 2; ++k) {
    size_t off = (size_t)k * (N / 2);
    CUdeviceptr pa = da + off * sizeof(float), pb = db + off * sizeof(float), pc = dc + off * sizeof(float);
    unsigned n = N / 2;
    CHECK(cuMemcpyHtoDAsync(pa, a + off, n * sizeof(float), s[k]));
    CHECK(cuMemcpyHtoDAsync(pb, b + off, n * sizeof(float), s[k]));
    void* args[] = {&pa, &pb, &pc, &n};
    CHECK(cuLaunchKernel(vadd, (n + 255) / 256, 1, 1, 256, 1, 1, 0, s[k], args, NULL));
    CHECK(cuMemcpyDtoHAsync(c + off, pc, n * sizeof(float), s[k]));
  }
  CHECK(cuCtxSynchronize());
  double sum = 0;
  for (int i = 0; i < N; ++i) {
    if (c[i] != a[i] + b[i]) {
      fprintf(stderr, "mismatch at %d: %f != %f\n", i, c[i], a[i] + b[i]);
      return 1;
    }
    sum += c[i];
  }
  printf("RESULT {\"sum\": %.1f}\n", sum);
  CHECK(cuMemFreeHost(c));
  CHECK(cuCtxDestroy(ctx));
  free(a);
  free(b);
  return 0;
}
