// The request ring of a channel: a single-producer single-consumer byte ring
// of {RecordHeader, payload} records.  The app's thread produces, the proxy's
// worker consumes.  Indices are monotonic byte counts; each side caches the
// other's index and reloads it only when the cached value says "full" or
// "empty".  A record never wraps: the producer pads to the ring's end first.
//
// Waiting and waking are the callers' business (spin, then futex).
#pragma once
#include <cstdint>
#include <cstring>

#include "control.h"
#include "layout.h"

namespace sing::wire {

inline constexpr uint32_t record_length(uint32_t payload) {
  return (uint32_t(sizeof(RecordHeader)) + payload + 15u) & ~15u;
}

class RingProducer {
 public:
  RingProducer() = default;
  explicit RingProducer(Channel* ch) : ch_(ch), tail_(ch->tail.load(std::memory_order_relaxed)) {}

  // Room for a record with `payload` bytes, header zeroed but for `length`;
  // null when the consumer has not freed enough yet.
  RecordHeader* try_reserve(uint32_t payload) {
    const uint32_t length = record_length(payload);
    const uint64_t pos = tail_ % kRingBytes;
    const uint32_t pad = pos + length > kRingBytes ? uint32_t(kRingBytes - pos) : 0;
    if (!fits(pad + length)) {
      head_cache_ = ch_->head.load(std::memory_order_acquire);
      if (!fits(pad + length)) return nullptr;
    }
    if (pad) {
      auto* h = reinterpret_cast<RecordHeader*>(ch_->ring + pos);
      *h = RecordHeader{pad, kOpPad, 0, 0};
      tail_ += pad;
    }
    auto* h = reinterpret_cast<RecordHeader*>(ch_->ring + tail_ % kRingBytes);
    *h = RecordHeader{length, 0, 0, 0};
    pending_ = tail_ + length;
    return h;
  }

  // Makes the reserved record (and any padding before it) visible.
  void publish() {
    tail_ = pending_;
    ch_->tail.store(tail_, std::memory_order_seq_cst);
  }

 private:
  bool fits(uint64_t bytes) const { return tail_ + bytes - head_cache_ <= kRingBytes; }

  Channel* ch_ = nullptr;
  uint64_t tail_ = 0;
  uint64_t pending_ = 0;
  uint64_t head_cache_ = 0;
};

class RingConsumer {
 public:
  enum class Status { Record, Empty, Corrupt };

  RingConsumer() = default;
  explicit RingConsumer(Channel* ch) : ch_(ch), head_(ch->head.load(std::memory_order_relaxed)) {}

  // The next record (padding skipped), checked against the ring's bounds:
  // the producer is another process and may be broken or hostile.
  Status peek(const RecordHeader** out) {
    for (;;) {
      if (tail_cache_ == head_) tail_cache_ = ch_->tail.load(std::memory_order_acquire);
      if (tail_cache_ == head_) return Status::Empty;
      if (tail_cache_ < head_ || tail_cache_ - head_ > kRingBytes) return Status::Corrupt;
      const uint64_t pos = head_ % kRingBytes;
      const auto* h = reinterpret_cast<const RecordHeader*>(ch_->ring + pos);
      const uint32_t length = h->length;
      if (length < sizeof(RecordHeader) || length % 16 || pos + length > kRingBytes ||
          head_ + length > tail_cache_)
        return Status::Corrupt;
      if (h->opcode == kOpPad) {
        head_ += length;
        ch_->head.store(head_, std::memory_order_release);
        continue;
      }
      length_ = length;
      *out = h;
      return Status::Record;
    }
  }

  // Frees the record returned by the last peek.
  void advance() {
    head_ += length_;
    ch_->head.store(head_, std::memory_order_release);
  }

  // Whether the producer has published anything beyond what was consumed
  // (a fresh look at its index: used right before sleeping).
  bool has_more() const { return ch_->tail.load(std::memory_order_seq_cst) != head_; }

 private:
  Channel* ch_ = nullptr;
  uint64_t head_ = 0;
  uint64_t tail_cache_ = 0;
  uint32_t length_ = 0;
};

}  // namespace sing::wire
