// Host functions (cuLaunchHostFunc, cuStreamAddCallback) are the app's code:
// when the stream reaches one, the backend calls a trampoline here that posts
// it to a slot of the segment for the app to run, and waits until the app
// marks it done, so the stream stays blocked exactly as long as on a real
// driver.  Each stream waits for its own slot only: callbacks of different
// streams run concurrently in the app, as they do on a GPU.
//
// A function that runs once (cuLaunchHostFunc on a stream that is not
// capturing) has a record freed by its run; graph host nodes and host
// functions captured into a graph run once per graph launch and keep theirs
// for the client's lifetime (hostfn.h).
#include <cstring>

#include "handler_util.h"
#include "hostfn.h"
#include "log.h"
#include "wire/futex.h"

namespace sing::proxy {

namespace {

// Posts a call of the app's function to a free callback slot and wakes the
// app's dispatcher; null when the client is going away.
wire::CallbackSlot* post(Client& c, uint64_t fn, uint64_t user_data, uint64_t stream, uint32_t kind) {
  wire::SegmentHeader* seg = c.segment();
  wire::CallbackSlot* slot = nullptr;
  // A free slot; all taken means the app is running that many callbacks.
  while (!slot && !c.closing.load()) {
    {
      std::lock_guard<std::mutex> lock(c.cb_mu);
      for (uint32_t i = 0; i < wire::kCallbackSlots && !slot; ++i) {
        wire::CallbackSlot& s = seg->cb[(c.cb_next + i) % wire::kCallbackSlots];
        if (s.state.load(std::memory_order_acquire) == wire::kSlotFree) {
          slot = &s;
          c.cb_next = (c.cb_next + i + 1) % wire::kCallbackSlots;
        }
      }
      if (slot) {
        slot->fn = fn;
        slot->user_data = user_data;
        slot->stream = stream;
        slot->kind = kind;
        slot->status = 0;
        slot->state.store(wire::kSlotPosted, std::memory_order_release);
      }
    }
    if (!slot) wire::futex_wait(&seg->cb_posted, seg->cb_posted.load(), 10'000'000);
  }
  if (!slot) return nullptr;
  seg->cb_posted.fetch_add(1, std::memory_order_seq_cst);
  wire::futex_wake_all(&seg->cb_posted);
  return slot;
}

void CUDA_CB trampoline(void* data) {
  auto* p = static_cast<HostRecord*>(data);
  Client& c = *p->client;
  wire::CallbackSlot* slot = post(c, p->fn, p->user_data, p->stream, p->kind);
  if (p->once) delete p;
  if (!slot) return;
  wire::SegmentHeader* seg = c.segment();
  // A client that goes away releases us through `closing` (its shutdown
  // waits for its streams).
  for (;;) {
    uint32_t st = slot->state.load(std::memory_order_acquire);
    if (st == wire::kSlotDone) break;
    if (c.closing.load()) return;
    wire::futex_wait(&slot->state, st, 100'000'000);
  }
  slot->state.store(wire::kSlotFree, std::memory_order_release);
  wire::futex_wake_all(&seg->cb_posted);  // someone may wait for a free slot
}

// {u64 stream, u64 fn, u64 user_data}
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
  const uint32_t kind = is_callback ? wire::kStreamCallback : wire::kHostFn;
  const bool ptsz = Op == wire::kOp_cuLaunchHostFunc_ptsz || Op == wire::kOp_cuStreamAddCallback_ptsz;
  // Captured into a graph, the function runs at every launch of the graph.
  CUstreamCaptureStatus status = CU_STREAM_CAPTURE_STATUS_NONE;
  auto is_capturing = ptsz ? BACKEND(cuStreamIsCapturing_ptsz) : BACKEND(cuStreamIsCapturing);
  if (is_capturing(stream.real, &status) != CUDA_SUCCESS) status = CU_STREAM_CAPTURE_STATUS_NONE;
  auto launch = ptsz ? BACKEND(cuLaunchHostFunc_ptsz) : BACKEND(cuLaunchHostFunc);
  if (status != CU_STREAM_CAPTURE_STATUS_NONE && is_callback) {
    // Stream callbacks cannot be captured: the capture ends invalidated, as
    // on a driver (which a synchronization of the capturing stream does).
    (ptsz ? BACKEND(cuStreamSynchronize_ptsz) : BACKEND(cuStreamSynchronize))(stream.real);
    return CUDA_ERROR_STREAM_CAPTURE_UNSUPPORTED;
  }
  if (status != CU_STREAM_CAPTURE_STATUS_NONE) {
    HostRecord* p = persistent_host_record(c.client, fn, data, reinterpret_cast<uint64_t>(stream.app), kind);
    if (!p) return CUDA_ERROR_OUT_OF_MEMORY;
    return launch(stream.real, trampoline, p);
  }
  auto* p = new HostRecord{&c.client, fn, data, reinterpret_cast<uint64_t>(stream.app), kind, true};
  r = launch(stream.real, trampoline, p);
  if (r != CUDA_SUCCESS) delete p;
  return r;
}

}  // namespace

CUhostFn host_trampoline() { return trampoline; }

void post_user_destructor(Client& c, uint64_t fn, uint64_t ptr) {
  // Nobody waits: the app frees the slot once the destructor has run.
  post(c, fn, ptr, 0, wire::kUserObjectDestructor);
}

HostRecord* persistent_host_record(Client& c, uint64_t fn, uint64_t user_data, uint64_t stream, uint32_t kind) {
  std::lock_guard<std::mutex> lock(c.host_records.mu);
  auto& slot = c.host_records.by_key[{fn, user_data, stream, kind}];
  if (!slot) {
    slot.reset(new HostRecord{&c, fn, user_data, stream, kind, false});
    c.host_records.live.insert(slot.get());
  }
  return slot.get();
}

bool host_record_lookup(Client& c, CUhostFn fn, void* data, uint64_t* app_fn, uint64_t* app_data) {
  if (fn != trampoline) return false;
  std::lock_guard<std::mutex> lock(c.host_records.mu);
  if (!c.host_records.live.count(data)) return false;
  auto* p = static_cast<const HostRecord*>(data);
  *app_fn = p->fn;
  *app_data = p->user_data;
  return true;
}

namespace custom {
template <uint16_t Op>
CUresult hostfn(Call& c) {
  return host_fn<Op>(c);
}
}  // namespace custom

}  // namespace sing::proxy

PROXY_TWIN(cuLaunchHostFunc, cuLaunchHostFunc_ptsz, hostfn)
PROXY_TWIN(cuStreamAddCallback, cuStreamAddCallback_ptsz, hostfn)
