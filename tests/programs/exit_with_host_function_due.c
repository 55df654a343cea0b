/* A host function that becomes due while the process is exiting must not
 * run: the interpreter or library it calls into may already be torn down
 * (CPython crashes in PyGILState_Ensure once finalised).  The driver drops
 * the work still queued when exit() begins, and so must the shim, which runs
 * host functions on its own threads.
 *
 * `first` holds the stream until the last exit handler releases it; `second`
 * becomes due after that, while the process is exiting, and must not run.
 * That handler was registered before cuInit, so it runs after every handler
 * the driver (or the shim) registers. */
#include <cuda.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

static int release_first, second_ran;

static void sleep_ms(long ms) {
  struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
  nanosleep(&ts, NULL);
}

static void CUDA_CB first(void* arg) {
  (void)arg;
  while (!__atomic_load_n(&release_first, __ATOMIC_ACQUIRE)) sleep_ms(1);
}

static void CUDA_CB second(void* arg) {
  (void)arg;
  __atomic_store_n(&second_ran, 1, __ATOMIC_RELEASE);
}

static void last_exit_handler(void) {
  __atomic_store_n(&release_first, 1, __ATOMIC_RELEASE);
  sleep_ms(300);  // ample time for `second` to be dispatched, were it going to be
  printf("RESULT {\"ran_during_exit\": %s}\n", __atomic_load_n(&second_ran, __ATOMIC_ACQUIRE) ? "true" : "false");
  fflush(stdout);
}

#define CHECK(call)                                            \
  do {                                                         \
    CUresult r_ = (call);                                      \
    if (r_ != CUDA_SUCCESS) {                                  \
      fprintf(stderr, "%s failed: %d\n", #call, (int)r_);     \
      return 1;                                                \
    }                                                          \
  } while (0)

int main(void) {
  CUdevice dev;
  CUcontext ctx;
  CUstream s;
  atexit(last_exit_handler);
  CHECK(cuInit(0));
  CHECK(cuDeviceGet(&dev, 0));
  CHECK(cuDevicePrimaryCtxRetain(&ctx, dev));
  CHECK(cuCtxSetCurrent(ctx));
  CHECK(cuStreamCreate(&s, CU_STREAM_NON_BLOCKING));
  CHECK(cuLaunchHostFunc(s, first, NULL));
  CHECK(cuLaunchHostFunc(s, second, NULL));
  return 0;
}
