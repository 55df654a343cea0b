// Launches (fire-and-forget, checked here first), host functions, and the
// occupancy helpers that take a callback.
#include <pthread.h>
#include <signal.h>

#include <atomic>
#include <condition_variable>
#include <cstdlib>
#include <cstring>
#include <mutex>
#include <thread>
#include <vector>

#include "call.h"
#include "forward.h"
#include "callbacks.h"
#include "custom.h"
#include "functions.h"
#include "handles.h"
#include "kernel_params.h"
#include "log.h"
#include "wire/futex.h"
#include "wire/opcodes.h"
#include "wire/payloads.h"

namespace sing::shim {
thread_local bool t_in_host_function = false;

// Checks what a driver checks at launch time, kernelParams (or the `extra`
// buffer) against the function's layout included.  Returns the error the
// real driver would return synchronously.
CUresult check_kernel_params(CUfunction f, const unsigned grid[3], const unsigned block[3], unsigned shared,
                             void** params, void** extra, FunctionInfo** out, const void** packed) {
  if (!g_initialized.load(std::memory_order_acquire)) return CUDA_ERROR_NOT_INITIALIZED;
  if (!f) return CUDA_ERROR_INVALID_HANDLE;
  CUresult err;
  FunctionInfo* info = function_info(reinterpret_cast<uint64_t>(f), &err);
  if (!info) return err;
  for (int i = 0; i < 3; ++i)
    if (grid[i] == 0 || block[i] == 0) return CUDA_ERROR_INVALID_VALUE;
  if (block[0] > 1024 || block[1] > 1024 || block[2] > 64) return CUDA_ERROR_INVALID_VALUE;
  if (grid[0] > 0x7fffffffu || grid[1] > 65535 || grid[2] > 65535) return CUDA_ERROR_INVALID_VALUE;
  const uint64_t threads = uint64_t(block[0]) * block[1] * block[2];
  if (threads > info->max_threads) return CUDA_ERROR_INVALID_VALUE;
  if (shared > info->max_dynamic_shared.load(std::memory_order_relaxed)) return CUDA_ERROR_INVALID_VALUE;
  if (params && extra) return CUDA_ERROR_INVALID_VALUE;
  *out = info;
  *packed = nullptr;
  if (params) {
    for (size_t i = 0; i < info->params.size(); ++i)
      if (!params[i]) return CUDA_ERROR_INVALID_VALUE;
  } else if (extra) {
    const void* p = nullptr;
    size_t size = SIZE_MAX;
    for (void** e = extra; *e != CU_LAUNCH_PARAM_END; e += 2) {
      if (e[0] == CU_LAUNCH_PARAM_BUFFER_POINTER) p = e[1];
      else if (e[0] == CU_LAUNCH_PARAM_BUFFER_SIZE) size = *static_cast<size_t*>(e[1]);
      else return CUDA_ERROR_INVALID_VALUE;
    }
    if (!p || size != info->param_bytes) return CUDA_ERROR_INVALID_VALUE;
    *packed = p;
  } else if (!info->params.empty()) {
    return CUDA_ERROR_INVALID_VALUE;
  }
  return CUDA_SUCCESS;
}

void write_kernel_params(const FunctionInfo& info, void** params, const void* packed, uint8_t* out) {
  if (packed) {
    std::memcpy(out, packed, info.param_bytes);
    return;
  }
  std::memset(out, 0, info.param_bytes);
  if (params)
    for (const auto& [offset, size] : info.params) std::memcpy(out + offset, *params++, size);
}

CUresult pack_kernel_params(CUfunction f, const unsigned grid[3], const unsigned block[3], unsigned shared, void** params,
                            void** extra, std::vector<uint8_t>* buf, bool* has_params) {
  FunctionInfo* info = nullptr;
  const void* packed = nullptr;
  CUresult r = check_kernel_params(f, grid, block, shared, params, extra, &info, &packed);
  if (r != CUDA_SUCCESS) return r;
  *has_params = !info->params.empty();
  buf->resize(info->param_bytes);
  write_kernel_params(*info, params, packed, buf->data());
  return CUDA_SUCCESS;
}

}  // namespace sing::shim

namespace sing::shim::custom {

using namespace sing::wire;

namespace {

// The hot path of every app: everything is checked first (an error must come
// at the call and publish nothing), then the record is written straight into
// the ring, parameters included, with no buffer or size pass in between.
// The layout is what wire::Writer would produce (each part padded to 8 bytes
// with zeros): the proxy reads it with wire::Reader.
CUresult send_launch(uint16_t op, CUfunction f, const unsigned grid[3], const unsigned block[3], unsigned shared,
                     CUstream stream, const CUlaunchAttribute* attrs, unsigned num_attrs, void** params,
                     void** extra) {
  FunctionInfo* info = nullptr;
  const void* packed = nullptr;
  CUresult r = check_kernel_params(f, grid, block, shared, params, extra, &info, &packed);
  if (r != CUDA_SUCCESS) return r;
  if (num_attrs > 32 || (num_attrs && !attrs)) return CUDA_ERROR_INVALID_VALUE;
  if ((r = check_handle(stream)) != CUDA_SUCCESS) return r;
  // Whether a cooperative grid fits the device is the driver's to say, at
  // the call: those launches wait for the answer; the rest are fire-and-forget.
  bool cooperative = op == kOp_cuLaunchCooperativeKernel || op == kOp_cuLaunchCooperativeKernel_ptsz;
  for (unsigned i = 0; i < num_attrs; ++i)
    cooperative |= attrs[i].id == CU_LAUNCH_ATTRIBUTE_COOPERATIVE && attrs[i].value.cooperative;
  const bool has_params = !info->params.empty();
  constexpr uint32_t kAttrBytes = align8(sizeof(CUlaunchAttribute));
  static_assert(sizeof(LaunchRequest) % 8 == 0);
  const uint64_t size = sizeof(LaunchRequest) + uint64_t(num_attrs) * kAttrBytes +
                        (has_params ? align8(info->param_bytes) : 0);
  if (size > kMaxRecordBytes) return CUDA_ERROR_INVALID_VALUE;
  LaunchRequest req{};
  req.function = reinterpret_cast<uint64_t>(f);
  std::memcpy(req.grid, grid, sizeof(req.grid));
  std::memcpy(req.block, block, sizeof(req.block));
  req.shared_bytes = shared;
  req.param_bytes = info->param_bytes;
  req.stream = reinterpret_cast<uint64_t>(stream);
  req.num_attrs = num_attrs;
  req.has_params = has_params;
  return with_restart([&]() -> CUresult {
    CUresult err;
    Channel* ch = call_channel(op, &err);
    if (!ch) return err;
    if (lacks_context(ch, stream)) return CUDA_ERROR_INVALID_CONTEXT;
    uint8_t* p = ch->begin(op, uint32_t(size), cooperative);
    if (!p) return ch->failure();
    std::memcpy(p, &req, sizeof(req));
    p += sizeof(req);
    for (unsigned i = 0; i < num_attrs; ++i, p += kAttrBytes) {
      std::memcpy(p, &attrs[i], sizeof(CUlaunchAttribute));
      std::memset(p + sizeof(CUlaunchAttribute), 0, kAttrBytes - sizeof(CUlaunchAttribute));
    }
    if (has_params) {
      write_kernel_params(*info, params, packed, p);
      std::memset(p + info->param_bytes, 0, align8(info->param_bytes) - info->param_bytes);
    }
    ch->publish();
    return cooperative ? ch->wait() : CUDA_SUCCESS;
  });
}

template <uint16_t Op>
CUresult launch(CUfunction f, unsigned gx, unsigned gy, unsigned gz, unsigned bx, unsigned by, unsigned bz,
                unsigned shared, CUstream stream, void** params, void** extra) {
  const unsigned grid[3] = {gx, gy, gz}, block[3] = {bx, by, bz};
  return send_launch(Op, f, grid, block, shared, stream, nullptr, 0, params, extra);
}

template <uint16_t Op>
CUresult launch_ex(const CUlaunchConfig* config, CUfunction f, void** params, void** extra) {
  if (!config) return CUDA_ERROR_INVALID_VALUE;
  const unsigned grid[3] = {config->gridDimX, config->gridDimY, config->gridDimZ};
  const unsigned block[3] = {config->blockDimX, config->blockDimY, config->blockDimZ};
  return send_launch(Op, f, grid, block, config->sharedMemBytes, config->hStream, config->attrs, config->numAttrs,
                     params, extra);
}

// --- host functions ---------------------------------------------------

// The app's side of host functions: a dispatcher thread sleeps on the
// segment's cb_posted word and hands every posted slot to a worker thread;
// workers are started as needed, so a host function that blocks (waiting for
// another stream, say) never holds up the callbacks of other streams.
class Callbacks {
 public:
  static Callbacks& get() {
    static auto* c = new Callbacks();  // immortal: threads may outlive main()
    return *c;
  }

  // Made at the first host function (ensure_callback_thread), so its exit
  // guard is registered as late as it can be and runs early in exit(): before
  // the destructors of libraries loaded earlier (nvrtc, the interpreter's
  // runtime) that a callback may still use.
  Callbacks() {
    std::atexit([] { get().exiting_.store(true, std::memory_order_release); });
  }

  // One dispatcher per connection epoch: after a reattach the old one ends
  // (its segment is gone) and the next host function starts a new one.
  void start() {
    Connection* conn = Connection::get();
    if (!conn) return;
    std::lock_guard<std::mutex> lock(mu_);
    const uint32_t epoch = conn->epoch();
    if (running_ && started_epoch_ == epoch) return;
    conn_ = conn;
    running_ = true;
    started_epoch_ = epoch;
    spawn([this, epoch] { dispatch(epoch); });
  }

 private:
  template <class F>
  void spawn(F f) {
    // Signals stay with the app's own threads.
    sigset_t all, old;
    sigfillset(&all);
    pthread_sigmask(SIG_SETMASK, &all, &old);
    std::thread(f).detach();
    pthread_sigmask(SIG_SETMASK, &old, nullptr);
  }

  void dispatch(uint32_t epoch) {
    SegmentHeader* seg = conn_->segment();
    while (!conn_->lost() && conn_->epoch() == epoch) {
      if (exiting()) return;
      uint32_t seen = seg->cb_posted.load(std::memory_order_acquire);
      for (auto& slot : seg->cb) {
        uint32_t expected = kSlotPosted;
        if (slot.state.compare_exchange_strong(expected, kSlotTaken)) hand_over(&slot);
      }
      futex_wait(&seg->cb_posted, seen, 100'000'000);
      if (!conn_->proxy_alive()) return;
    }
  }

  void hand_over(CallbackSlot* slot) {
    std::unique_lock<std::mutex> lock(mu_);
    queue_.push_back(slot);
    if (idle_ == 0) {
      lock.unlock();
      spawn([this] { work(); });
    } else {
      cv_.notify_one();
    }
  }

  void work() {
    std::unique_lock<std::mutex> lock(mu_);
    for (;;) {
      while (queue_.empty()) {
        ++idle_;
        cv_.wait(lock);
        --idle_;
      }
      if (exiting()) return;
      CallbackSlot* slot = queue_.front();
      queue_.erase(queue_.begin());
      lock.unlock();
      run(slot);
      lock.lock();
    }
  }

  static void run(CallbackSlot* slot) {
    t_in_host_function = true;
    if (slot->kind == kStreamCallback) {
      reinterpret_cast<CUstreamCallback>(slot->fn)(reinterpret_cast<CUstream>(slot->stream), CUresult(slot->status),
                                                  reinterpret_cast<void*>(slot->user_data));
    } else {
      reinterpret_cast<CUhostFn>(slot->fn)(reinterpret_cast<void*>(slot->user_data));
    }
    t_in_host_function = false;
    if (slot->kind == kUserObjectDestructor) {
      // Posted fire-and-forget: the slot is free again now.
      Connection* conn = Connection::get();
      slot->state.store(kSlotFree, std::memory_order_release);
      if (conn) futex_wake_all(&conn->segment()->cb_posted);
      return;
    }
    slot->state.store(kSlotDone, std::memory_order_release);
    futex_wake_all(&slot->state);
  }

  // The process is exiting: callbacks still queued are dropped, as the
  // simulated GPU drops queued work (and the real driver tears the context
  // down).  A host function run now would call into an interpreter that has
  // been finalised (CPython 3.11 crashes in PyGILState_Ensure) or into
  // libraries whose static destructors have run.
  bool exiting() const { return exiting_.load(std::memory_order_acquire); }

  std::atomic<bool> exiting_{false};
  Connection* conn_ = nullptr;
  bool running_ = false;
  uint32_t started_epoch_ = 0;
  std::mutex mu_;
  std::condition_variable cv_;
  std::vector<CallbackSlot*> queue_;
  int idle_ = 0;
};

}  // namespace
}  // namespace sing::shim::custom

void sing::shim::ensure_callback_thread() { custom::Callbacks::get().start(); }

namespace sing::shim::custom {
namespace {

template <uint16_t Op>
CUresult host_fn(CUstream stream, uint64_t fn, void* data) {
  if (!fn) return CUDA_ERROR_INVALID_VALUE;
  CUresult err;
  if (!call_channel(Op, &err)) return err;
  if ((err = check_handle(stream)) != CUDA_SUCCESS) return err;
  ensure_callback_thread();
  return async_call(Op, [&](Writer& w) {
    w.put<uint64_t>(reinterpret_cast<uint64_t>(stream));
    w.put<uint64_t>(fn);
    w.put<uint64_t>(reinterpret_cast<uint64_t>(data));
  });
}

// --- occupancy with a callback ------------------------------------------

// The block size with the highest occupancy, as CUDA's occupancy calculator
// picks it: try every multiple of the warp size, ask the proxy how many
// blocks fit, keep the best.
CUresult potential_block_size(int* min_grid, int* block_size, CUfunction f, CUoccupancyB2DSize b2d, size_t dyn,
                              int limit, unsigned flags) {
  if (!min_grid || !block_size) return CUDA_ERROR_INVALID_VALUE;
  CUresult err;
  FunctionInfo* info = function_info(reinterpret_cast<uint64_t>(f), &err);
  if (!info) return err;
  CUdevice dev;
  CUresult r = Forward<kOp_cuCtxGetDevice, decltype(::cuCtxGetDevice)>::sync(&dev);
  if (r != CUDA_SUCCESS) return r;
  int sms = 0;
  r = Forward<kOp_cuDeviceGetAttribute, decltype(::cuDeviceGetAttribute)>::sync(
      &sms, CU_DEVICE_ATTRIBUTE_MULTIPROCESSOR_COUNT, dev);
  if (r != CUDA_SUCCESS) return r;
  int max_block = int(info->max_threads);
  if (limit > 0 && limit < max_block) max_block = limit;
  int best_blocks = 0, best_size = 0, best_occupancy = -1;
  for (int bs = (max_block / 32) * 32; bs >= 32; bs -= 32) {
    size_t smem = b2d ? b2d(bs) : dyn;
    int n = 0;
    r = Forward<kOp_cuOccupancyMaxActiveBlocksPerMultiprocessorWithFlags,
                decltype(::cuOccupancyMaxActiveBlocksPerMultiprocessorWithFlags)>::sync(&n, f, bs, smem, flags);
    if (r != CUDA_SUCCESS) return r;
    if (n * bs > best_occupancy) {
      best_occupancy = n * bs;
      best_blocks = n;
      best_size = bs;
    }
  }
  if (best_size == 0) return CUDA_ERROR_INVALID_VALUE;
  *block_size = best_size;
  *min_grid = best_blocks * sms;
  return CUDA_SUCCESS;
}

}  // namespace

CUresult cuLaunchKernel(CUfunction f, unsigned gx, unsigned gy, unsigned gz, unsigned bx, unsigned by, unsigned bz,
                        unsigned shared, CUstream stream, void** params, void** extra) {
  return launch<kOp_cuLaunchKernel>(f, gx, gy, gz, bx, by, bz, shared, stream, params, extra);
}
CUresult cuLaunchKernel_ptsz(CUfunction f, unsigned gx, unsigned gy, unsigned gz, unsigned bx, unsigned by,
                             unsigned bz, unsigned shared, CUstream stream, void** params, void** extra) {
  return launch<kOp_cuLaunchKernel_ptsz>(f, gx, gy, gz, bx, by, bz, shared, stream, params, extra);
}
CUresult cuLaunchCooperativeKernel(CUfunction f, unsigned gx, unsigned gy, unsigned gz, unsigned bx, unsigned by,
                                   unsigned bz, unsigned shared, CUstream stream, void** params) {
  return launch<kOp_cuLaunchCooperativeKernel>(f, gx, gy, gz, bx, by, bz, shared, stream, params, nullptr);
}
CUresult cuLaunchCooperativeKernel_ptsz(CUfunction f, unsigned gx, unsigned gy, unsigned gz, unsigned bx,
                                        unsigned by, unsigned bz, unsigned shared, CUstream stream, void** params) {
  return launch<kOp_cuLaunchCooperativeKernel_ptsz>(f, gx, gy, gz, bx, by, bz, shared, stream, params, nullptr);
}
CUresult cuLaunchKernelEx(const CUlaunchConfig* config, CUfunction f, void** params, void** extra) {
  return launch_ex<kOp_cuLaunchKernelEx>(config, f, params, extra);
}
CUresult cuLaunchKernelEx_ptsz(const CUlaunchConfig* config, CUfunction f, void** params, void** extra) {
  return launch_ex<kOp_cuLaunchKernelEx_ptsz>(config, f, params, extra);
}

CUresult cuLaunchHostFunc(CUstream stream, CUhostFn fn, void* data) {
  return host_fn<kOp_cuLaunchHostFunc>(stream, reinterpret_cast<uint64_t>(fn), data);
}
CUresult cuLaunchHostFunc_ptsz(CUstream stream, CUhostFn fn, void* data) {
  return host_fn<kOp_cuLaunchHostFunc_ptsz>(stream, reinterpret_cast<uint64_t>(fn), data);
}
CUresult cuStreamAddCallback(CUstream stream, CUstreamCallback cb, void* data, unsigned int flags) {
  if (flags != 0) return CUDA_ERROR_INVALID_VALUE;
  return host_fn<kOp_cuStreamAddCallback>(stream, reinterpret_cast<uint64_t>(cb), data);
}
CUresult cuStreamAddCallback_ptsz(CUstream stream, CUstreamCallback cb, void* data, unsigned int flags) {
  if (flags != 0) return CUDA_ERROR_INVALID_VALUE;
  return host_fn<kOp_cuStreamAddCallback_ptsz>(stream, reinterpret_cast<uint64_t>(cb), data);
}

CUresult cuFuncSetAttribute(CUfunction f, CUfunction_attribute attrib, int value) {
  CUresult r = Forward<kOp_cuFuncSetAttribute, decltype(::cuFuncSetAttribute)>::sync(f, attrib, value);
  if (r == CUDA_SUCCESS && attrib == CU_FUNC_ATTRIBUTE_MAX_DYNAMIC_SHARED_SIZE_BYTES) {
    CUresult err;
    if (FunctionInfo* info = function_info(reinterpret_cast<uint64_t>(f), &err))
      info->max_dynamic_shared.store(uint32_t(value));
  }
  return r;
}

CUresult cuOccupancyMaxPotentialBlockSize(int* minGridSize, int* blockSize, CUfunction func,
                                          CUoccupancyB2DSize blockSizeToDynamicSMemSize, size_t dynamicSMemSize,
                                          int blockSizeLimit) {
  return potential_block_size(minGridSize, blockSize, func, blockSizeToDynamicSMemSize, dynamicSMemSize,
                              blockSizeLimit, 0);
}

CUresult cuOccupancyMaxPotentialBlockSizeWithFlags(int* minGridSize, int* blockSize, CUfunction func,
                                                   CUoccupancyB2DSize blockSizeToDynamicSMemSize,
                                                   size_t dynamicSMemSize, int blockSizeLimit, unsigned int flags) {
  return potential_block_size(minGridSize, blockSize, func, blockSizeToDynamicSMemSize, dynamicSMemSize,
                              blockSizeLimit, flags);
}

}  // namespace sing::shim::custom
