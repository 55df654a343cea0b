// The driver API through its exported entry points, under AddressSanitizer
// and UBSan: concurrency, hostile handles, object lifetimes.  Kernels are
// covered by the Python programs (they need the PTX engine); these tests use
// copies, memsets, host functions and events only.
#include <cuda.h>

#include <gtest/gtest.h>

#include <atomic>
#include <cstring>
#include <thread>
#include <vector>

namespace {

class Driver : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_EQ(cuInit(0), CUDA_SUCCESS);
    ASSERT_EQ(cuDeviceGet(&dev_, 0), CUDA_SUCCESS);
    ASSERT_EQ(cuDevicePrimaryCtxRetain(&ctx_, dev_), CUDA_SUCCESS);
    ASSERT_EQ(cuCtxSetCurrent(ctx_), CUDA_SUCCESS);
  }
  void TearDown() override {
    cuCtxSynchronize();
    cuDevicePrimaryCtxRelease(dev_);
  }
  CUdevice dev_ = 0;
  CUcontext ctx_ = nullptr;
};

TEST_F(Driver, RandomHandlesAreRejectedNotDereferenced) {
  // Addresses that are mapped, unmapped or misaligned: none may be touched.
  std::vector<uintptr_t> bogus = {0x1, 0x10, 0xdeadbeef, 0x7fff00001234, reinterpret_cast<uintptr_t>(&dev_)};
  for (uintptr_t h : bogus) {
    if (h > 2) {
      EXPECT_EQ(cuStreamQuery(reinterpret_cast<CUstream>(h)), CUDA_ERROR_INVALID_HANDLE);
      EXPECT_EQ(cuStreamDestroy(reinterpret_cast<CUstream>(h)), CUDA_ERROR_INVALID_HANDLE);
    }
    EXPECT_EQ(cuEventQuery(reinterpret_cast<CUevent>(h)), CUDA_ERROR_INVALID_HANDLE);
    EXPECT_EQ(cuEventDestroy(reinterpret_cast<CUevent>(h)), CUDA_ERROR_INVALID_HANDLE);
    EXPECT_EQ(cuModuleUnload(reinterpret_cast<CUmodule>(h)), CUDA_ERROR_INVALID_HANDLE);
    EXPECT_EQ(cuCtxPushCurrent(reinterpret_cast<CUcontext>(h)), CUDA_ERROR_INVALID_CONTEXT);
    EXPECT_EQ(cuGraphDestroy(reinterpret_cast<CUgraph>(h)), CUDA_ERROR_INVALID_VALUE);
    EXPECT_EQ(cuGraphExecDestroy(reinterpret_cast<CUgraphExec>(h)), CUDA_ERROR_INVALID_VALUE);
    EXPECT_EQ(cuMemPoolDestroy(reinterpret_cast<CUmemoryPool>(h)), CUDA_ERROR_INVALID_VALUE);
    EXPECT_EQ(cuMemRelease(h), CUDA_ERROR_INVALID_VALUE);
    EXPECT_EQ(cuLibraryUnload(reinterpret_cast<CUlibrary>(h)), CUDA_ERROR_INVALID_HANDLE);
    int v;
    EXPECT_EQ(cuFuncGetAttribute(&v, CU_FUNC_ATTRIBUTE_NUM_REGS, reinterpret_cast<CUfunction>(h)),
              CUDA_ERROR_INVALID_HANDLE);
  }
}

TEST_F(Driver, ConcurrentAllocCopyFreeAcrossThreads) {
  constexpr int kThreads = 6, kRounds = 200;
  std::atomic<int> failures{0};
  std::vector<std::thread> ts;
  for (int t = 0; t < kThreads; ++t) {
    ts.emplace_back([&, t] {
      if (cuCtxSetCurrent(ctx_) != CUDA_SUCCESS) ++failures;
      CUstream s;
      if (cuStreamCreate(&s, CU_STREAM_NON_BLOCKING) != CUDA_SUCCESS) ++failures;
      std::vector<uint32_t> host(1024), back(1024);
      for (int r = 0; r < kRounds; ++r) {
        CUdeviceptr d;
        size_t n = 64 + size_t((r * 37 + t * 11) % 4000);
        if (cuMemAlloc(&d, n * 4) != CUDA_SUCCESS) {
          ++failures;
          continue;
        }
        for (size_t i = 0; i < std::min<size_t>(n, 1024); ++i) host[i] = uint32_t(t * 100000 + r * 10 + i);
        size_t m = std::min<size_t>(n, 1024);
        cuMemcpyHtoDAsync(d, host.data(), m * 4, s);
        cuMemsetD32Async(d, uint32_t(r), 3, s);
        cuMemcpyDtoHAsync(back.data(), d, m * 4, s);
        if (cuStreamSynchronize(s) != CUDA_SUCCESS) ++failures;
        host[0] = host[1] = host[2] = uint32_t(r);
        if (std::memcmp(host.data(), back.data(), m * 4) != 0) ++failures;
        if (cuMemFree(d) != CUDA_SUCCESS) ++failures;
      }
      cuStreamDestroy(s);
    });
  }
  for (auto& t : ts) t.join();
  EXPECT_EQ(failures.load(), 0);
}

void CUDA_CB count_up(void* p) { static_cast<std::atomic<int>*>(p)->fetch_add(1); }

TEST_F(Driver, DestroyWhileWorkIsQueuedIsSafe) {
  // Streams and events destroyed with work still queued behind a blocked host
  // function: the work completes, nothing is freed under it.
  std::atomic<bool> release{false};
  std::atomic<int> ran{0};
  auto block = [](void* p) { while (!static_cast<std::atomic<bool>*>(p)->load()) std::this_thread::yield(); };
  for (int i = 0; i < 8; ++i) {
    CUstream s;
    CUevent e;
    ASSERT_EQ(cuStreamCreate(&s, 0), CUDA_SUCCESS);
    ASSERT_EQ(cuEventCreate(&e, 0), CUDA_SUCCESS);
    ASSERT_EQ(cuLaunchHostFunc(s, block, &release), CUDA_SUCCESS);
    ASSERT_EQ(cuEventRecord(e, s), CUDA_SUCCESS);
    ASSERT_EQ(cuLaunchHostFunc(s, count_up, &ran), CUDA_SUCCESS);
    ASSERT_EQ(cuEventDestroy(e), CUDA_SUCCESS);
    ASSERT_EQ(cuStreamDestroy(s), CUDA_SUCCESS);
    EXPECT_EQ(cuStreamQuery(s), CUDA_ERROR_INVALID_HANDLE);
  }
  release = true;
  ASSERT_EQ(cuCtxSynchronize(), CUDA_SUCCESS);
  EXPECT_EQ(ran.load(), 8);
}

TEST_F(Driver, CreatedContextTeardownFreesEverything) {
  size_t free0, total;
  ASSERT_EQ(cuMemGetInfo(&free0, &total), CUDA_SUCCESS);
  for (int i = 0; i < 5; ++i) {
    CUcontext c;
    ASSERT_EQ(cuCtxCreate(&c, nullptr, 0, dev_), CUDA_SUCCESS);
    CUdeviceptr d;
    ASSERT_EQ(cuMemAlloc(&d, 64 << 20), CUDA_SUCCESS);
    void* h;
    ASSERT_EQ(cuMemAllocHost(&h, 1 << 20), CUDA_SUCCESS);
    CUstream s;
    ASSERT_EQ(cuStreamCreate(&s, 0), CUDA_SUCCESS);
    CUevent e;
    ASSERT_EQ(cuEventCreate(&e, 0), CUDA_SUCCESS);
    ASSERT_EQ(cuMemsetD8Async(d, 1, 64 << 20, s), CUDA_SUCCESS);
    ASSERT_EQ(cuEventRecord(e, s), CUDA_SUCCESS);
    ASSERT_EQ(cuCtxDestroy(c), CUDA_SUCCESS);  // with all of that still alive
    EXPECT_EQ(cuStreamQuery(s), CUDA_ERROR_INVALID_HANDLE);
    EXPECT_EQ(cuEventQuery(e), CUDA_ERROR_INVALID_HANDLE);
  }
  ASSERT_EQ(cuCtxSetCurrent(ctx_), CUDA_SUCCESS);
  size_t free1;
  ASSERT_EQ(cuMemGetInfo(&free1, &total), CUDA_SUCCESS);
  EXPECT_EQ(free1, free0);
}

TEST_F(Driver, ContextDestroyedMidCaptureLeaksNothing) {
  // An open capture and its streams hold each other: unless teardown abandons the captures,
  // LeakSanitizer fails this binary at exit (the proxy's fuzzer found it).
  CUcontext c;
  ASSERT_EQ(cuCtxCreate(&c, nullptr, 0, dev_), CUDA_SUCCESS);
  CUdeviceptr d;
  ASSERT_EQ(cuMemAlloc(&d, 1 << 20), CUDA_SUCCESS);
  CUstream s;
  ASSERT_EQ(cuStreamCreate(&s, CU_STREAM_NON_BLOCKING), CUDA_SUCCESS);
  ASSERT_EQ(cuStreamBeginCapture(s, CU_STREAM_CAPTURE_MODE_RELAXED), CUDA_SUCCESS);
  ASSERT_EQ(cuMemsetD8Async(d, 1, 1 << 20, s), CUDA_SUCCESS);
  ASSERT_EQ(cuStreamBeginCapture(CU_STREAM_PER_THREAD, CU_STREAM_CAPTURE_MODE_RELAXED), CUDA_SUCCESS);
  ASSERT_EQ(cuMemsetD8Async(d, 2, 1 << 20, CU_STREAM_PER_THREAD), CUDA_SUCCESS);
  ASSERT_EQ(cuCtxDestroy(c), CUDA_SUCCESS);  // both captures still open
  EXPECT_EQ(cuStreamQuery(s), CUDA_ERROR_INVALID_HANDLE);
  ASSERT_EQ(cuCtxSetCurrent(ctx_), CUDA_SUCCESS);
}

TEST_F(Driver, EventsAcrossThreadsAndStreams) {
  constexpr int kPairs = 4;
  std::vector<CUstream> a(kPairs), b(kPairs);
  std::vector<CUevent> ev(kPairs);
  std::vector<std::vector<uint32_t>> out(kPairs, std::vector<uint32_t>(4096));
  std::vector<CUdeviceptr> buf(kPairs);
  for (int i = 0; i < kPairs; ++i) {
    ASSERT_EQ(cuStreamCreate(&a[i], CU_STREAM_NON_BLOCKING), CUDA_SUCCESS);
    ASSERT_EQ(cuStreamCreate(&b[i], CU_STREAM_NON_BLOCKING), CUDA_SUCCESS);
    ASSERT_EQ(cuEventCreate(&ev[i], CU_EVENT_DISABLE_TIMING), CUDA_SUCCESS);
    ASSERT_EQ(cuMemAlloc(&buf[i], 4096 * 4), CUDA_SUCCESS);
  }
  std::vector<std::thread> ts;
  for (int i = 0; i < kPairs; ++i) {
    ts.emplace_back([&, i] {
      cuCtxSetCurrent(ctx_);
      for (int r = 0; r < 50; ++r) {
        cuMemsetD32Async(buf[i], uint32_t(r * 7 + i), 4096, a[i]);
        cuEventRecord(ev[i], a[i]);
        cuStreamWaitEvent(b[i], ev[i], 0);
        cuMemcpyDtoHAsync(out[i].data(), buf[i], 4096 * 4, b[i]);
        cuStreamSynchronize(b[i]);
        for (uint32_t v : out[i])
          if (v != uint32_t(r * 7 + i)) {
            ADD_FAILURE() << "pair " << i << " round " << r;
            return;
          }
      }
    });
  }
  for (auto& t : ts) t.join();
  for (int i = 0; i < kPairs; ++i) {
    cuStreamDestroy(a[i]);
    cuStreamDestroy(b[i]);
    cuEventDestroy(ev[i]);
    cuMemFree(buf[i]);
  }
}

TEST_F(Driver, GraphLaunchedFromManyThreads) {
  CUgraph g;
  ASSERT_EQ(cuGraphCreate(&g, 0), CUDA_SUCCESS);
  std::atomic<int> ran{0};
  CUDA_HOST_NODE_PARAMS hp{count_up, &ran};
  CUgraphNode n1, n2;
  ASSERT_EQ(cuGraphAddHostNode(&n1, g, nullptr, 0, &hp), CUDA_SUCCESS);
  ASSERT_EQ(cuGraphAddHostNode(&n2, g, &n1, 1, &hp), CUDA_SUCCESS);
  CUgraphExec x;
  ASSERT_EQ(cuGraphInstantiateWithFlags(&x, g, 0), CUDA_SUCCESS);
  ASSERT_EQ(cuGraphDestroy(g), CUDA_SUCCESS);  // the executable does not need the graph
  std::vector<std::thread> ts;
  for (int t = 0; t < 4; ++t)
    ts.emplace_back([&] {
      cuCtxSetCurrent(ctx_);
      CUstream s;
      cuStreamCreate(&s, CU_STREAM_NON_BLOCKING);
      for (int i = 0; i < 25; ++i) cuGraphLaunch(x, s);
      cuStreamSynchronize(s);
      cuStreamDestroy(s);
    });
  for (auto& t : ts) t.join();
  ASSERT_EQ(cuCtxSynchronize(), CUDA_SUCCESS);
  EXPECT_EQ(ran.load(), 4 * 25 * 2);
  EXPECT_EQ(cuGraphExecDestroy(x), CUDA_SUCCESS);
}

TEST_F(Driver, VmmFixedAddressSurvivesFreeAndReserve) {
  CUdeviceptr a;
  const size_t g = 2 << 20;
  ASSERT_EQ(cuMemAddressReserve(&a, 16 * g, 0, 0, 0), CUDA_SUCCESS);
  ASSERT_EQ(cuMemAddressFree(a, 16 * g), CUDA_SUCCESS);
  for (int i = 0; i < 3; ++i) {
    CUdeviceptr b;
    ASSERT_EQ(cuMemAddressReserve(&b, 16 * g, 0, a, 0), CUDA_SUCCESS);
    EXPECT_EQ(b, a);
    ASSERT_EQ(cuMemAddressFree(b, 16 * g), CUDA_SUCCESS);
  }
}

}  // namespace
