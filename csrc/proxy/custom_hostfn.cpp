// Host functions (cuLaunchHostFunc, cuStreamAddCallback) are the app's code:
// when the stream reaches one, the backend calls a trampoline here that asks
// the app's callback thread to run it and waits until it has, so the stream
// stays blocked exactly as long as on a real driver.
#include <cstring>

#include "handler_util.h"
#include "log.h"
#include "wire/futex.h"
#include "wire/payloads.h"

namespace sing::proxy {

namespace {

struct Pending {
  Client* client;
  wire::CallbackSlotV slot;
};

void CUDA_CB trampoline(void* data) {
  auto* p = static_cast<Pending*>(data);
  Client& c = *p->client;
  wire::SegmentHeader* seg = c.segment();
  uint32_t index;
  {
    std::lock_guard<std::mutex> lock(c.cb_mu);
    index = c.cb_next;
    // A full ring means the app stopped running callbacks: wait for room.
    while (!c.closing.load() && index - seg->cb_head.load() >= wire::kCallbackSlots) {
      uint32_t seen = seg->cb_head.load();
      wire::futex_wait(&seg->cb_head, seen, 100'000'000);
    }
    if (c.closing.load()) {
      delete p;
      return;
    }
    c.cb_next = index + 1;
    std::memcpy(seg->cb[index % wire::kCallbackSlots], &p->slot, sizeof(p->slot));
    seg->cb_tail.store(index + 1, std::memory_order_seq_cst);
    wire::futex_wake_all(&seg->cb_tail);
  }
  delete p;
  // Block this stream until the app has run it.  A client that goes away
  // releases us through `closing` (its shutdown waits for its streams).
  while (!c.closing.load() && int32_t(seg->cb_head.load(std::memory_order_acquire) - (index + 1)) < 0) {
    uint32_t seen = seg->cb_head.load();
    if (int32_t(seen - (index + 1)) >= 0) break;
    wire::futex_wait(&seg->cb_head, seen, 100'000'000);
  }
}

// {u64 stream, u64 fn, u64 user_data, u32 kind}
template <uint16_t Op>
CUresult host_fn(Call& c) {
  Arg<CUstream> stream;
  CUresult r = stream.decode(c);
  uint64_t fn = c.in.get<uint64_t>();
  uint64_t data = c.in.get<uint64_t>();
  if (!c.in.ok() || !c.in.at_end()) return CUDA_ERROR_INVALID_VALUE;
  if (r != CUDA_SUCCESS) return r;
  if (!fn) return CUDA_ERROR_INVALID_VALUE;
  const bool is_callback = Op == wire::kOp_cuStreamAddCallback || Op == wire::kOp_cuStreamAddCallback_ptsz;
  auto* p = new Pending{&c.client, {fn, data, reinterpret_cast<uint64_t>(stream.app),
                                    is_callback ? wire::kStreamCallback : wire::kHostFn, 0}};
  const bool ptsz = Op == wire::kOp_cuLaunchHostFunc_ptsz || Op == wire::kOp_cuStreamAddCallback_ptsz;
  auto launch = ptsz ? BACKEND(cuLaunchHostFunc_ptsz) : BACKEND(cuLaunchHostFunc);
  r = launch(stream.real, trampoline, p);
  if (r != CUDA_SUCCESS) delete p;
  return r;
}

}  // namespace

namespace custom {
template <uint16_t Op>
CUresult hostfn(Call& c) {
  return host_fn<Op>(c);
}
}  // namespace custom

}  // namespace sing::proxy

PROXY_TWIN(cuLaunchHostFunc, cuLaunchHostFunc_ptsz, hostfn)
PROXY_TWIN(cuStreamAddCallback, cuStreamAddCallback_ptsz, hostfn)
