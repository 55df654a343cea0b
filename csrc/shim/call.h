// Helpers for hand-written entry points: build a record with a callable that
// writes its payload (called twice: once to measure, once to write), send
// it, and read the answer.
#pragma once
#include "connection.h"
#include "forward.h"
#include "wire/codec.h"

namespace sing::shim {

struct Answer {
  CUresult result;
  Channel* channel;
  wire::Reader reader() const {
    return channel ? wire::Reader(channel->response(), channel->response_length()) : wire::Reader(nullptr, 0);
  }
};

// `gate`: false for the few calls the driver answers before cuInit.
// `yield_ns`: how long the wait may yield the core before sleeping
// (Channel::wait).
template <class Fill>
Answer sync_call_once(uint16_t op, Fill& fill, bool gate, uint64_t yield_ns = 0) {
  CUresult err = CUDA_SUCCESS;
  Channel* ch;
  if (gate) {
    ch = call_channel(op, &err);
  } else {
    Connection* conn = Connection::get();
    ch = conn ? conn->channel(&err) : nullptr;
    if (!conn) err = Connection::connect_error();
  }
  if (!ch) return {err, nullptr};
  wire::Writer sizer;
  fill(sizer);
  if (sizer.size() > wire::kMaxRecordBytes) return {CUDA_ERROR_INVALID_VALUE, nullptr};
  uint8_t* p = ch->begin(op, sizer.size(), true);
  if (!p) return {ch->failure(), nullptr};
  wire::Writer w(p, sizer.size());
  fill(w);
  ch->publish();
  return {ch->wait(yield_ns), ch};
}

template <class Fill>
Answer sync_call(uint16_t op, Fill fill, bool gate = true, uint64_t yield_ns = 0) {
  for (;;) {
    Answer a = sync_call_once(op, fill, gate, yield_ns);
    if (a.result != kRestart) return a;
  }
}

template <class Fill>
CUresult async_call_once(uint16_t op, Fill& fill) {
  CUresult err = CUDA_SUCCESS;
  Channel* ch = call_channel(op, &err);
  if (!ch) return err;
  wire::Writer sizer;
  fill(sizer);
  if (sizer.size() > wire::kMaxRecordBytes) return CUDA_ERROR_INVALID_VALUE;
  uint8_t* p = ch->begin(op, sizer.size(), false);
  if (!p) return ch->failure();
  wire::Writer w(p, sizer.size());
  fill(w);
  ch->publish();
  return CUDA_SUCCESS;
}

template <class Fill>
CUresult async_call(uint16_t op, Fill fill) {
  return with_restart([&] { return async_call_once(op, fill); });
}

}  // namespace sing::shim

