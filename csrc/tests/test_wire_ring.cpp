// The request ring under two real threads (built under ThreadSanitizer in
// `make test-native`): every record arrives once, in order, intact, across
// many wrap-arounds; and a corrupt producer index is detected, not followed.
#include <gtest/gtest.h>

#include <memory>
#include <random>
#include <thread>

#include "wire/ring.h"

using namespace sing::wire;

namespace {
std::unique_ptr<Channel> fresh_channel() {
  auto ch = std::make_unique<Channel>();
  ch->tail.store(0);
  ch->head.store(0);
  return ch;
}
}  // namespace

TEST(WireRing, SpscOrderAndContentAcrossWraps) {
  auto ch = fresh_channel();
  constexpr uint64_t kRecords = 50000;
  std::thread producer([&] {
    RingProducer p(ch.get());
    std::mt19937 rng(1);
    for (uint64_t i = 0; i < kRecords; ++i) {
      uint32_t payload = 8 + (rng() % 4096) / 8 * 8;
      RecordHeader* h;
      while (!(h = p.try_reserve(payload))) std::this_thread::yield();
      h->opcode = uint16_t(i & 0x7fff);
      h->ticket = i;
      auto* body = reinterpret_cast<uint64_t*>(h + 1);
      for (uint32_t k = 0; k < payload / 8; ++k) body[k] = i * 31 + k;
      p.publish();
    }
  });
  RingConsumer c(ch.get());
  std::mt19937 rng(1);
  for (uint64_t i = 0; i < kRecords; ++i) {
    uint32_t payload = 8 + (rng() % 4096) / 8 * 8;
    const RecordHeader* h;
    RingConsumer::Status s;
    while ((s = c.peek(&h)) == RingConsumer::Status::Empty) std::this_thread::yield();
    ASSERT_EQ(s, RingConsumer::Status::Record);
    ASSERT_EQ(h->ticket, i);
    ASSERT_EQ(h->opcode, uint16_t(i & 0x7fff));
    ASSERT_EQ(h->length, record_length(payload));
    auto* body = reinterpret_cast<const uint64_t*>(h + 1);
    for (uint32_t k = 0; k < payload / 8; ++k) ASSERT_EQ(body[k], i * 31 + k);
    c.advance();
  }
  producer.join();
  const RecordHeader* h;
  EXPECT_EQ(c.peek(&h), RingConsumer::Status::Empty);
}

TEST(WireRing, FullRingRefusesUntilConsumed) {
  auto ch = fresh_channel();
  RingProducer p(ch.get());
  uint32_t n = 0;
  while (p.try_reserve(kMaxRecordBytes - 64)) {
    p.publish();
    ++n;
  }
  EXPECT_GT(n, 0u);
  RingConsumer c(ch.get());
  const RecordHeader* h;
  ASSERT_EQ(c.peek(&h), RingConsumer::Status::Record);
  c.advance();
  EXPECT_NE(p.try_reserve(kMaxRecordBytes - 64), nullptr);
}

TEST(WireRing, HostileIndicesAreReportedNotFollowed) {
  auto ch = fresh_channel();
  RingConsumer c(ch.get());
  const RecordHeader* h;
  ch->tail.store(uint64_t(kRingBytes) * 3);  // more than a ring ahead
  EXPECT_EQ(c.peek(&h), RingConsumer::Status::Corrupt);

  auto ch2 = fresh_channel();
  RingConsumer c2(ch2.get());
  auto* rec = reinterpret_cast<RecordHeader*>(ch2->ring);
  rec->length = 8;  // shorter than a header
  ch2->tail.store(64);
  EXPECT_EQ(c2.peek(&h), RingConsumer::Status::Corrupt);

  auto ch3 = fresh_channel();
  RingConsumer c3(ch3.get());
  rec = reinterpret_cast<RecordHeader*>(ch3->ring);
  rec->length = 4096;  // beyond what was published
  ch3->tail.store(64);
  EXPECT_EQ(c3.peek(&h), RingConsumer::Status::Corrupt);
}
