// The shim and the proxy may be built apart (and a restored job may meet a
// newer proxy): every shared structure's size and field offsets are pinned
// here, so a change to them is deliberate and comes with a version bump.
#include <gtest/gtest.h>

#include <cstddef>

#include "wire/control.h"
#include "wire/layout.h"
#include "wire/payloads.h"

using namespace sing::wire;

TEST(WireLayout, VersionIsPinned) { EXPECT_EQ(kVersion, 1u); }

TEST(WireLayout, RecordHeader) {
  EXPECT_EQ(sizeof(RecordHeader), 16u);
  EXPECT_EQ(offsetof(RecordHeader, length), 0u);
  EXPECT_EQ(offsetof(RecordHeader, opcode), 4u);
  EXPECT_EQ(offsetof(RecordHeader, flags), 6u);
  EXPECT_EQ(offsetof(RecordHeader, ticket), 8u);
}

TEST(WireLayout, ChannelFieldsOnSeparateLines) {
  EXPECT_EQ(offsetof(Channel, tail), 0u);
  EXPECT_EQ(offsetof(Channel, state), 8u);
  EXPECT_EQ(offsetof(Channel, head), 64u);
  EXPECT_EQ(offsetof(Channel, doorbell), 128u);
  EXPECT_EQ(offsetof(Channel, done_seq), 192u);
  EXPECT_EQ(offsetof(Channel, result), 200u);
  EXPECT_EQ(offsetof(Channel, stage_released), 256u);
  EXPECT_EQ(offsetof(Channel, stage_acked), 320u);
  EXPECT_EQ(offsetof(Channel, response), 384u);
  EXPECT_EQ(offsetof(Channel, ring), 266240u);
  EXPECT_EQ(offsetof(Channel, stage), 266240u + kRingBytes);
  EXPECT_EQ(sizeof(Channel), 266240u + kRingBytes + kStageSlots * kStageSlotBytes);
}

TEST(WireLayout, Segment) {
  EXPECT_EQ(offsetof(SegmentHeader, magic), 0u);
  EXPECT_EQ(offsetof(SegmentHeader, next_ticket), 64u);
  EXPECT_EQ(offsetof(SegmentHeader, command_seq), 128u);
  EXPECT_EQ(offsetof(SegmentHeader, reattach_token), 136u);
  EXPECT_EQ(offsetof(SegmentHeader, ack_seq), 192u);
  EXPECT_EQ(offsetof(SegmentHeader, cb_posted), 256u);
  EXPECT_EQ(offsetof(SegmentHeader, cb), 320u);
  EXPECT_EQ(sizeof(CallbackSlot), 64u);
  EXPECT_EQ(offsetof(CallbackSlot, state), 32u);
  EXPECT_EQ(sizeof(SegmentHeader), 20480u);
  EXPECT_EQ(segment_bytes(), sizeof(SegmentHeader) + uint64_t(kMaxChannels) * sizeof(Channel));
}

TEST(WireLayout, Payloads) {
  EXPECT_EQ(sizeof(CopyRequest), 40u);
  EXPECT_EQ(sizeof(StageChunk), 24u);
  EXPECT_EQ(sizeof(LaunchRequest), 56u);
  EXPECT_EQ(offsetof(LaunchRequest, stream), 40u);
  EXPECT_EQ(sizeof(HostBlockRequest), 24u);
  EXPECT_EQ(sizeof(FunctionInfo), 16u);
  EXPECT_EQ(sizeof(ImageRequest), 24u);
  EXPECT_EQ(sizeof(JitOption), 16u);
}

TEST(WireLayout, ControlMessages) {
  EXPECT_EQ(sizeof(Hello), 120u);
  EXPECT_EQ(sizeof(Welcome), 160u);
  EXPECT_EQ(sizeof(OpenChannel), 8u);
  EXPECT_EQ(sizeof(ChannelOpened), 8u);
}
