// The shim and the proxy may be built apart (and a restored job may meet a
// newer proxy): every shared structure's size and field offsets are pinned
// here, so a change to them is deliberate and comes with a version bump.
#include <gtest/gtest.h>

#include <cstddef>

#include "driver_api.h"

#include "wire/control.h"
#include "wire/graph.h"
#include "wire/layout.h"
#include "wire/payloads.h"

using namespace sing::wire;

TEST(WireLayout, VersionIsPinned) { EXPECT_EQ(kVersion, 4u); }

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
  EXPECT_EQ(offsetof(Channel, worker_sleeping), 128u);
  EXPECT_EQ(offsetof(Channel, doorbell), 192u);
  EXPECT_EQ(offsetof(Channel, done_seq), 256u);
  EXPECT_EQ(offsetof(Channel, result), 264u);
  EXPECT_EQ(offsetof(Channel, stage_released), 320u);
  EXPECT_EQ(offsetof(Channel, stage_acked), 384u);
  EXPECT_EQ(offsetof(Channel, response), 448u);
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
  EXPECT_EQ(uint32_t(kUserObjectDestructor), 2u);
  EXPECT_EQ(offsetof(CallbackSlot, state), 32u);
  EXPECT_EQ(sizeof(SegmentHeader), 20480u);
  EXPECT_EQ(segment_bytes(), sizeof(SegmentHeader) + uint64_t(kMaxChannels) * sizeof(Channel));
}

TEST(WireLayout, Payloads) {
  EXPECT_EQ(sizeof(CopyRequest), 40u);
  EXPECT_EQ(offsetof(CopyRequest, chunk), 4u);
  EXPECT_EQ(sizeof(StageChunk), 40u);
  EXPECT_EQ(offsetof(StageChunk, offset), 24u);
  EXPECT_EQ(offsetof(StageChunk, total), 32u);
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
  EXPECT_EQ(sizeof(ShareHost), 24u);
  EXPECT_EQ(offsetof(ShareHost, addr), 8u);
  EXPECT_EQ(sizeof(HostShared), 8u);
  EXPECT_EQ(uint32_t(MsgType::ShareHost), 5u);
  EXPECT_EQ(uint32_t(MsgType::UnshareHost), 6u);
  EXPECT_EQ(uint32_t(MsgType::HostShared), 7u);
  EXPECT_EQ(sizeof(FdMsg), 16u);
  EXPECT_EQ(offsetof(FdMsg, ticket), 8u);
  EXPECT_EQ(uint32_t(MsgType::FdToProxy), 10u);
  EXPECT_EQ(uint32_t(MsgType::FdFromProxy), 11u);
  EXPECT_EQ(uint32_t(MsgType::FdReply), 12u);
}

TEST(WireLayout, GraphRecords) {
  EXPECT_EQ(sizeof(GraphNodeAdd), 16u);
  EXPECT_EQ(sizeof(KernelNodeParams), 56u);
  EXPECT_EQ(offsetof(KernelNodeParams, grid), 16u);
  EXPECT_EQ(offsetof(KernelNodeParams, shared_bytes), 40u);
  EXPECT_EQ(offsetof(KernelNodeParams, has_params), 48u);
  EXPECT_EQ(sizeof(HostNodeParams), 16u);
  EXPECT_EQ(sizeof(MemAllocNodeRequest), 16u);
  EXPECT_EQ(sizeof(ListRequest), 24u);
  EXPECT_EQ(offsetof(ListRequest, arrays), 16u);
  EXPECT_EQ(sizeof(ListAnswer), 16u);
  EXPECT_EQ(sizeof(CaptureInfo), 32u);
  EXPECT_EQ(offsetof(CaptureInfo, graph), 16u);
  EXPECT_EQ(kMaxGraphIds, 16384u);
  // Vendor structs sent as they are: their ABI is fixed by the driver API.
  EXPECT_EQ(sizeof(CUDA_MEMSET_NODE_PARAMS), 40u);
  EXPECT_EQ(sizeof(CUDA_MEMCPY3D), 200u);
  EXPECT_EQ(sizeof(CUmemPoolProps), 88u);
  EXPECT_EQ(sizeof(CUmemAccessDesc), 12u);
  EXPECT_EQ(sizeof(CUgraphEdgeData), 8u);
}
