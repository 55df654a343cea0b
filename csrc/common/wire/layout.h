// The shared segment between one client (the app's shim) and its proxy.
//
// Nothing here holds a pointer or a lock: fixed-width fields, atomics that are
// always lock-free, producer and consumer indices on separate cache lines.
// Sizes and offsets are pinned by tests (tests/native/test_wire_layout.cpp).
#pragma once
#include <atomic>
#include <cstddef>
#include <cstdint>

namespace sing::wire {

inline constexpr uint64_t kMagic = 0x58524f50474e4953ull;  // "SINGPROX"
// 2: worker_sleeping on a line of its own; 3: fd passing (FdMsg); 4: staged
// D2H copies in chunks the app names (CopyRequest::chunk), H2D chunks say
// where they lie in the whole copy (StageChunk::offset, total)
inline constexpr uint32_t kVersion = 4;

inline constexpr uint32_t kMaxChannels = 64;             // app threads that call CUDA at once
inline constexpr uint32_t kRingBytes = 1u << 20;         // request ring per channel
inline constexpr uint32_t kResponseBytes = 256u << 10;   // response payload per channel
inline constexpr uint32_t kStageSlots = 2;               // pageable copies: double buffering
inline constexpr uint32_t kStageSlotBytes = 4u << 20;    // per slot
inline constexpr uint32_t kMaxRecordBytes = kRingBytes / 4;

static_assert(std::atomic<uint64_t>::is_always_lock_free);
static_assert(std::atomic<uint32_t>::is_always_lock_free);

enum class ChannelState : uint32_t { Free = 0, Claimed = 1, Open = 2, Closing = 3 };

enum Command : uint32_t {
  kCmdNone = 0,
  kCmdQuiesce = 1,  // park every new call, acknowledge once none is being published
  kCmdResume = 2,   // let them go
  kCmdDetach = 3,   // close the socket, wait for a proxy to reattach to (same job, token)
};

// One record in a request ring: header + payload, 8-byte aligned.
struct RecordHeader {
  uint32_t length;   // header + payload, rounded up to 8
  uint16_t opcode;   // driver_api.def index, or a wire::Control opcode
  uint16_t flags;    // kRecordSync: the app waits for a response
  uint64_t ticket;   // global issue order across the client's channels
};
static_assert(sizeof(RecordHeader) == 16);
inline constexpr uint16_t kRecordSync = 1;

struct alignas(4096) Channel {
  // -- written by the app --
  alignas(64) std::atomic<uint64_t> tail;          // bytes published into the ring
  std::atomic<uint32_t> state;                     // ChannelState
  uint32_t owner_tid;
  // -- written by the proxy --
  alignas(64) std::atomic<uint64_t> head;          // bytes consumed from the ring (after every record)
  // The proxy worker may be in futex_wait(doorbell).  Read by the app on
  // every publish, written only when the worker goes to sleep or wakes: on a
  // line of its own, so that the read hits the app's cache instead of
  // missing on the line `head` dirties with every record.
  alignas(64) std::atomic<uint32_t> worker_sleeping;
  // -- the proxy sleeps on this; the app bumps it to wake it --
  alignas(64) std::atomic<uint32_t> doorbell;
  // -- response to the last sync record (written by the proxy) --
  alignas(64) std::atomic<uint32_t> done_seq;      // futex word: low 32 bits of the last answered sync ticket
  std::atomic<uint32_t> app_sleeping;              // the app may be in futex_wait(done_seq)
  int32_t result;                                  // CUresult of the answered call
  uint32_t response_length;                        // payload bytes in `response`
  // The worker's thread had a current context after the call: the app then
  // refuses default-stream work without one at the call, as a driver does.
  uint32_t has_context;
  // -- pageable copy staging (futex words) --
  // H2D: the app fills slot (n % kStageSlots), the proxy counts slots it has
  // copied out in stage_released.  D2H: the proxy counts slots it has filled
  // in stage_filled, the app counts slots it has copied out in stage_acked.
  alignas(64) std::atomic<uint32_t> stage_released;
  std::atomic<uint32_t> stage_filled;
  alignas(64) std::atomic<uint32_t> stage_acked;
  alignas(64) uint8_t response[kResponseBytes];
  alignas(4096) uint8_t ring[kRingBytes];
  alignas(4096) uint8_t stage[kStageSlots][kStageSlotBytes];
};

// A host function (cuLaunchHostFunc / cuStreamAddCallback) the proxy asks the
// app to run.  The stream that reached it waits until the app marks it done;
// callbacks of different streams run concurrently, as on a real driver.
enum CallbackState : uint32_t { kSlotFree = 0, kSlotPosted = 1, kSlotTaken = 2, kSlotDone = 3 };
// kUserObjectDestructor: nobody waits for it; the app frees the slot itself
// (state back to kSlotFree) once the destructor has run.
enum CallbackKind : uint32_t { kHostFn = 0, kStreamCallback = 1, kUserObjectDestructor = 2 };
struct alignas(64) CallbackSlot {
  uint64_t fn;          // in the app's address space
  uint64_t user_data;
  uint64_t stream;      // the app's handle, for stream callbacks
  uint32_t kind;
  int32_t status;
  std::atomic<uint32_t> state;  // futex word
};
inline constexpr uint32_t kCallbackSlots = 256;

struct alignas(4096) SegmentHeader {
  uint64_t magic;
  uint32_t version;
  uint32_t num_channels;
  uint64_t segment_bytes;
  uint64_t channel_offset;   // from the start of the segment
  uint64_t channel_stride;
  int32_t proxy_pid;
  uint32_t client_id;
  alignas(64) std::atomic<uint64_t> next_ticket;   // taken by the app, one per record
  // Commands from the proxy to the shim's control thread (Command), for
  // checkpoints: the proxy stores `command`, bumps `command_seq` (a futex
  // word); the shim carries it out and sets `ack_seq` to the same number.
  alignas(64) std::atomic<uint32_t> command_seq;
  std::atomic<uint32_t> command;
  uint64_t reattach_token;        // with kCmdDetach: what the app presents to reattach
  alignas(64) std::atomic<uint32_t> ack_seq;
  // Host functions: the proxy bumps cb_posted (a futex word) after posting
  // a slot; the app's callback dispatcher sleeps on it.
  alignas(64) std::atomic<uint32_t> cb_posted;
  CallbackSlot cb[kCallbackSlots];
};

inline constexpr uint64_t segment_bytes() {
  return sizeof(SegmentHeader) + uint64_t(kMaxChannels) * sizeof(Channel);
}

inline Channel* channel_at(void* segment, uint32_t index) {
  auto* base = static_cast<uint8_t*>(segment) + sizeof(SegmentHeader);
  return reinterpret_cast<Channel*>(base + uint64_t(index) * sizeof(Channel));
}

}  // namespace sing::wire
