/* Driver-level microbenchmarks, run once directly on a driver and once
 * through the shim and proxy by benchmarks/overhead.py; prints one JSON
 * object.  Written against the driver API only, linked with -lcuda, so the
 * same binary measures both sides.
 *
 *   bench sync N        latency of a call that must reach the driver
 *   bench launch N      app-thread cost of an async launch, and launch throughput
 *   bench copy SIZES... pinned and pageable H2D/D2H bandwidth per size
 */
#include <cuda.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static const char kPtx[] =
    ".version 8.0\n.target sm_90\n.address_size 64\n"
    ".visible .entry empty(.param .u64 p)\n{\n\tret;\n}\n";

#define CHECK(x)                                                              \
  do {                                                                        \
    CUresult r_ = (x);                                                        \
    if (r_ != CUDA_SUCCESS) {                                                 \
      const char* s_ = NULL;                                                  \
      cuGetErrorName(r_, &s_);                                                \
      fprintf(stderr, "%s:%d: %s failed: %s\n", __FILE__, __LINE__, #x, s_);  \
      exit(1);                                                                \
    }                                                                         \
  } while (0)

static double now_ns(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return ts.tv_sec * 1e9 + ts.tv_nsec;
}

static int cmp_double(const void* a, const void* b) {
  double x = *(const double*)a, y = *(const double*)b;
  return x < y ? -1 : x > y;
}

static void bench_sync(int n) {
  CUdevice dev;
  double* t = malloc(sizeof(double) * n);
  for (int i = 0; i < 1000; ++i) CHECK(cuCtxGetDevice(&dev)); /* warm-up */
  for (int i = 0; i < n; ++i) {
    double a = now_ns();
    CHECK(cuCtxGetDevice(&dev));
    t[i] = now_ns() - a;
  }
  qsort(t, n, sizeof(double), cmp_double);
  printf("{\"sync_median_us\": %.4f, \"sync_p99_us\": %.4f}\n", t[n / 2] / 1e3, t[(int)(n * 0.99)] / 1e3);
  free(t);
}

static void bench_launch(int n) {
  CUmodule mod;
  CUfunction f;
  CUstream s;
  CHECK(cuModuleLoadData(&mod, kPtx));
  CHECK(cuModuleGetFunction(&f, mod, "empty"));
  CHECK(cuStreamCreate(&s, CU_STREAM_NON_BLOCKING));
  uint64_t arg = 0;
  void* params[] = {&arg};
  for (int i = 0; i < 100; ++i) CHECK(cuLaunchKernel(f, 1, 1, 1, 32, 1, 1, 0, s, params, NULL));
  CHECK(cuStreamSynchronize(s));
  /* Submission cost seen by the app thread, in batches so the queue never
   * fills; then end-to-end throughput including execution. */
  double submit = 0;
  int batch = 256, done = 0;
  double t0 = now_ns();
  while (done < n) {
    double a = now_ns();
    for (int i = 0; i < batch; ++i) CHECK(cuLaunchKernel(f, 1, 1, 1, 32, 1, 1, 0, s, params, NULL));
    submit += now_ns() - a;
    done += batch;
    CHECK(cuStreamSynchronize(s));
  }
  double total = now_ns() - t0;
  printf("{\"async_submit_ns\": %.2f, \"launches_per_s\": %.1f}\n", submit / done, done / (total / 1e9));
  CHECK(cuStreamDestroy(s));
  CHECK(cuModuleUnload(mod));
}

static double copy_gbps(int h2d, void* host, CUdeviceptr dev, size_t bytes) {
  int reps = bytes >= (64u << 20) ? 3 : bytes >= (1u << 20) ? 20 : 200;
  double best = 1e30;
  for (int r = 0; r < reps; ++r) {
    double a = now_ns();
    if (h2d) CHECK(cuMemcpyHtoD(dev, host, bytes));
    else CHECK(cuMemcpyDtoH(host, dev, bytes));
    double t = now_ns() - a;
    if (t < best) best = t;
  }
  return bytes / best; /* bytes per ns == GB/s */
}

static void bench_copy(int argc, char** argv) {
  size_t max = 0;
  for (int i = 0; i < argc; ++i) {
    size_t b = strtoull(argv[i], NULL, 0);
    if (b > max) max = b;
  }
  void* pinned;
  CUdeviceptr dev;
  CHECK(cuMemAllocHost(&pinned, max));
  CHECK(cuMemAlloc(&dev, max));
  char* pageable = malloc(max);
  memset(pageable, 1, max);
  memset(pinned, 1, max);
  printf("{\"copies\": [");
  for (int i = 0; i < argc; ++i) {
    size_t b = strtoull(argv[i], NULL, 0);
    printf("%s{\"bytes\": %zu, \"pinned_h2d\": %.3f, \"pinned_d2h\": %.3f, \"pageable_h2d\": %.3f, "
           "\"pageable_d2h\": %.3f}",
           i ? ", " : "", b, copy_gbps(1, pinned, dev, b), copy_gbps(0, pinned, dev, b),
           copy_gbps(1, pageable, dev, b), copy_gbps(0, pageable, dev, b));
  }
  printf("]}\n");
  CHECK(cuMemFree(dev));
  CHECK(cuMemFreeHost(pinned));
  free(pageable);
}

int main(int argc, char** argv) {
  if (argc < 2) {
    fprintf(stderr, "usage: bench sync N | launch N | copy SIZES...\n");
    return 2;
  }
  CUdevice dev;
  CUcontext ctx;
  CHECK(cuInit(0));
  CHECK(cuDeviceGet(&dev, 0));
  CHECK(cuDevicePrimaryCtxRetain(&ctx, dev));
  CHECK(cuCtxSetCurrent(ctx));
  if (!strcmp(argv[1], "sync")) bench_sync(argc > 2 ? atoi(argv[2]) : 100000);
  else if (!strcmp(argv[1], "launch")) bench_launch(argc > 2 ? atoi(argv[2]) : 20000);
  else if (!strcmp(argv[1], "copy")) bench_copy(argc - 2, argv + 2);
  else return 2;
  CHECK(cuDevicePrimaryCtxRelease(dev));
  return 0;
}
