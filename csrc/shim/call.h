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
template <class Fill>
Answer sync_call(uint16_t op, Fill fill, bool gate = true) {
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
  if (!p) return {kProxyLost, nullptr};
  wire::Writer w(p, sizer.size());
  fill(w);
  ch->publish();
  return {ch->wait(), ch};
}

template <class Fill>
CUresult async_call(uint16_t op, Fill fill) {
  CUresult err = CUDA_SUCCESS;
  Channel* ch = call_channel(op, &err);
  if (!ch) return err;
  wire::Writer sizer;
  fill(sizer);
  if (sizer.size() > wire::kMaxRecordBytes) return CUDA_ERROR_INVALID_VALUE;
  uint8_t* p = ch->begin(op, sizer.size(), false);
  if (!p) return kProxyLost;
  wire::Writer w(p, sizer.size());
  fill(w);
  ch->publish();
  return CUDA_SUCCESS;
}

}  // namespace sing::shim

