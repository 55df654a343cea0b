// libFuzzer target: arbitrary records decoded and served by the proxy, on a
// real client of a real backend (libsimgpu.so), exactly as a hostile app's
// records would be.  Any crash, sanitizer report or hang is a bug.
//
//   proxy_fuzz [libFuzzer flags]    (SINGULARITY_FUZZ_BACKEND=path/to/libsimgpu.so)
//
// Input: u16 opcode (little-endian) then the payload.  Opcode 0xfffe (no ring
// record has it: wire::ControlOp): the rest is a control-socket message of an
// attached app (app_messages.h); its first byte says whether a descriptor
// comes with it (bit 0: a fresh 1 MiB memfd, as ShareHost or FdToProxy carry).
#include <sys/mman.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>

#include "app_messages.h"
#include "backend.h"
#include "client.h"
#include "dispatch.h"
#include "wire/control.h"
#include "wire/payloads.h"

using namespace sing;
using namespace sing::proxy;

namespace {
constexpr uint16_t kControlMessage = 0xfffe;
Client* g_client;
Worker* g_worker;
alignas(16) uint8_t g_payload[wire::kMaxRecordBytes];

// Calls that wait for the app to act (run a host function, copy out a stage
// slot, write the word a stream waits for) would wait forever here: there is
// no app.  Everything else is fair.
bool waits_for_app(uint16_t op, const uint8_t* payload, size_t n) {
  switch (op) {
    case wire::kOp_cuStreamWaitValue32_v2:
    case wire::kOp_cuStreamWaitValue32_v2_ptsz:
    case wire::kOp_cuStreamWaitValue64_v2:
    case wire::kOp_cuStreamWaitValue64_v2_ptsz:
    case wire::kOp_cuLaunchHostFunc:
    case wire::kOp_cuLaunchHostFunc_ptsz:
    case wire::kOp_cuStreamAddCallback:
    case wire::kOp_cuStreamAddCallback_ptsz:
      return true;
    case wire::kOp_cuMemcpyDtoH_v2:
    case wire::kOp_cuMemcpyDtoH_v2_ptds:
    case wire::kOp_cuMemcpyDtoHAsync_v2:
    case wire::kOp_cuMemcpyDtoHAsync_v2_ptsz:
    case wire::kOp_cuMemcpy:
    case wire::kOp_cuMemcpy_ptds:
    case wire::kOp_cuMemcpyAsync:
    case wire::kOp_cuMemcpyAsync_ptsz: {
      uint32_t mode = 0;
      if (n >= 4) std::memcpy(&mode, payload, 4);
      return mode == wire::kCopyStagedD2H;
    }
    default:
      return false;
  }
}
}  // namespace

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  const char* lib = std::getenv("SINGULARITY_FUZZ_BACKEND");
  std::string error;
  if (!lib || !backend().load(lib, error)) {
    std::fprintf(stderr, "proxy_fuzz: set SINGULARITY_FUZZ_BACKEND to libsimgpu.so (%s)\n", error.c_str());
    std::exit(2);
  }
  if (BACKEND(cuInit)(0) != CUDA_SUCCESS) std::exit(2);
  CUcontext ctx;
  BACKEND(cuDevicePrimaryCtxRetain)(&ctx, 0);
  BACKEND(cuCtxSetCurrent)(ctx);
  const uint64_t va = 0x400000000000ull, va_size = 1ull << 36, host = va + va_size, host_size = 1ull << 28;
  int host_fd = memfd_create("fuzz-host", 0);
  if (host_fd < 0 || ftruncate(host_fd, off_t(host_size)) != 0) std::exit(2);
  g_client = new Client(1, getpid(), -1, "fuzz");
  int seg_fd = -1;
  bool busy = false;
  if (g_client->setup(va, va_size, host, host_size, host_fd, &seg_fd, error, &busy) != CUDA_SUCCESS) {
    std::fprintf(stderr, "proxy_fuzz: client setup failed: %s\n", error.c_str());
    std::exit(2);
  }
  close(host_fd);
  close(seg_fd);
  // Host functions a fuzzed call might still enqueue give up at once.
  g_client->closing.store(true);
  g_worker = new Worker(*g_client, 0);
  return 0;
}

// A control-socket message.  Pages it shares are unshared again at once, so
// that mappings do not pile up over a run; a descriptor handed back is closed.
static void control_message(const uint8_t* data, size_t size) {
  if (size < 1) return;
  int passed = -1;
  if (data[0] & 1) {
    passed = memfd_create("fuzz-passed", MFD_CLOEXEC);
    if (passed < 0 || ftruncate(passed, 1 << 20) != 0) std::abort();
  }
  AppReply reply;
  const bool ok = serve_app_message(*g_client, data + 1, size - 1, passed, &reply);
  if (reply.fd >= 0) close(reply.fd);
  wire::ShareHost msg;
  if (ok && size - 1 == sizeof(msg)) {
    std::memcpy(&msg, data + 1, sizeof(msg));
    wire::HostShared out;
    std::memcpy(&out, reply.bytes, sizeof(out));
    if (msg.type == wire::MsgType::ShareHost && out.result == CUDA_SUCCESS) g_client->unshare_host(msg.addr, msg.bytes);
  }
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size < 2 || size - 2 > sizeof(g_payload)) return 0;
  const uint16_t op = uint16_t(data[0] | (data[1] << 8));
  if (op == kControlMessage) {
    control_message(data + 2, size - 2);
    return 0;
  }
  const size_t n = size - 2;
  // The worker hands handlers 8-aligned payloads; so does this.
  std::memcpy(g_payload, data + 2, n);
  if (waits_for_app(op, g_payload, n)) return 0;
  static uint8_t response[wire::kResponseBytes];
  Call call{*g_client, *g_worker, wire::Reader(g_payload, uint32_t(n)), wire::Writer(response, sizeof(response)), op,
            true};
  dispatch(call);
  return 0;
}
