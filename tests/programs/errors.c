/* Error handling seen from C (linked with -lcuda): the codes a driver
 * returns before cuInit, for bad arguments and handles, and every error
 * code's name and string.  Exit 0 when all match. */
#include <cuda.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

static int failures;

static void expect(CUresult got, CUresult want, const char* what) {
  if (got != want) {
    const char *g = "?", *w = "?";
    cuGetErrorName(got, &g);
    cuGetErrorName(want, &w);
    fprintf(stderr, "%s: got %s, want %s\n", what, g, w);
    ++failures;
  }
}

int main(void) {
  CUdevice dev;
  CUcontext ctx;
  CUdeviceptr p;
  int count;
  const char* s;

  expect(cuDeviceGetCount(&count), CUDA_ERROR_NOT_INITIALIZED, "count before cuInit");
  expect(cuMemAlloc(&p, 16), CUDA_ERROR_NOT_INITIALIZED, "alloc before cuInit");
  expect(cuGetErrorName((CUresult)9999, &s), CUDA_ERROR_INVALID_VALUE, "name of an unknown code");
  expect(cuGetErrorString((CUresult)9999, &s), CUDA_ERROR_INVALID_VALUE, "string of an unknown code");
  expect(cuGetErrorString(CUDA_ERROR_ILLEGAL_ADDRESS, &s), CUDA_SUCCESS, "string");
  if (strcmp(s, "an illegal memory access was encountered") != 0) ++failures;
  expect(cuGetErrorName(CUDA_ERROR_OUT_OF_MEMORY, &s), CUDA_SUCCESS, "name");
  if (strcmp(s, "CUDA_ERROR_OUT_OF_MEMORY") != 0) ++failures;

  expect(cuInit(0), CUDA_SUCCESS, "cuInit");
  expect(cuDeviceGet(&dev, 0), CUDA_SUCCESS, "device 0");
  expect(cuDeviceGet(&dev, 99), CUDA_ERROR_INVALID_DEVICE, "device 99");
  expect(cuDeviceGet(NULL, 0), CUDA_ERROR_INVALID_VALUE, "NULL out pointer");
  expect(cuMemAlloc(&p, 16), CUDA_ERROR_INVALID_CONTEXT, "alloc without a context");
  expect(cuCtxCreate(&ctx, NULL, 0, dev), CUDA_SUCCESS, "context");
  expect(cuMemAlloc(&p, 0), CUDA_ERROR_INVALID_VALUE, "zero-byte allocation");
  expect(cuMemAlloc(&p, 1024), CUDA_SUCCESS, "allocation");
  expect(cuMemFree(p + 4), CUDA_ERROR_INVALID_VALUE, "free of an interior pointer");
  expect(cuMemFree(p), CUDA_SUCCESS, "free");
  expect(cuMemFree(p), CUDA_ERROR_INVALID_VALUE, "double free");
  expect(cuStreamSynchronize((CUstream)(uintptr_t)0x12345670), CUDA_ERROR_INVALID_HANDLE, "random stream");
  expect(cuEventQuery((CUevent)(uintptr_t)0x12345670), CUDA_ERROR_INVALID_HANDLE, "random event");
  expect(cuModuleGetFunction(NULL, (CUmodule)(uintptr_t)0x12345670, "k"), CUDA_ERROR_INVALID_HANDLE,
         "random module");
  expect(cuLaunchKernel((CUfunction)(uintptr_t)0x12345670, 1, 1, 1, 1, 1, 1, 0, 0, NULL, NULL),
         CUDA_ERROR_INVALID_HANDLE, "random function");
  expect(cuCtxPushCurrent((CUcontext)(uintptr_t)0x12345670), CUDA_ERROR_INVALID_CONTEXT, "random context");
  const void* table = (const void*)1;
  CUuuid id;
  memset(&id, 0, sizeof id);
  expect(cuGetExportTable(&table, &id), CUDA_ERROR_NOT_SUPPORTED, "export tables");
  expect(cuCtxDestroy(ctx), CUDA_SUCCESS, "destroy");
  expect(cuCtxDestroy(ctx), CUDA_ERROR_INVALID_CONTEXT, "destroy twice");
  expect(cuMemAlloc(&p, 16), CUDA_ERROR_INVALID_CONTEXT, "no context left");

  /* Every code between 0 and 1000 either has a name and a string, or both fail. */
  int named = 0;
  for (int code = 0; code < 1000; ++code) {
    const char *n = NULL, *t = NULL;
    CUresult a = cuGetErrorName((CUresult)code, &n);
    CUresult b = cuGetErrorString((CUresult)code, &t);
    if (a != b || (a == CUDA_SUCCESS && (!n || !t || strncmp(n, "CUDA_", 5) != 0))) {
      fprintf(stderr, "code %d inconsistent\n", code);
      ++failures;
    }
    named += a == CUDA_SUCCESS;
  }
  if (failures) return 1;
  printf("RESULT {\"named_codes\": %d}\n", named);
  return 0;
}
