// Control messages on the unix socket between a shim and its proxy (setup,
// channel opening, detach).  The data path never uses the socket.
#pragma once
#include <cstdint>
#include <cstdio>
#include <string>

namespace sing::wire {

// Opcodes of records that are not driver calls (driver calls use their index
// in driver_api.def, always below these).
enum ControlOp : uint16_t {
  kOpBlobAppend = 0xFF01,  // payload appended to the channel's blob (large call inputs)
  kOpStageH2D = 0xFF02,    // copy one filled stage slot to the device
  kOpCloseChannel = 0xFF03,
  kOpFunctionInfo = 0xFF04,  // sync: parameter layout and limits of a function (payloads.h)
  kOpPad = 0xFFFF,         // skip to the ring's start
};
inline constexpr uint16_t kFirstControlOp = 0xFF00;

enum class MsgType : uint32_t {
  Hello = 1,
  Welcome = 2,
  OpenChannel = 3,
  ChannelOpened = 4,
  ShareHost = 5,    // a memfd of the app's registered pages, to map at the same address
  UnshareHost = 6,  // those pages are no longer registered: unmap them
  HostShared = 7,   // the answer to either
  Manage = 8,       // from a job's supervisor (checkpoints)
  ManageReply = 9,
  FdToProxy = 10,   // a file descriptor (attached) a call of the app will name by the ticket of the FdReply
  FdFromProxy = 11, // collects the file descriptor a call left for the app under `ticket`
  FdReply = 12,     // the answer to either (FdFromProxy: the descriptor attached on success)
};

struct Hello {
  MsgType type = MsgType::Hello;
  uint32_t version;
  int32_t pid;
  uint32_t reattach;              // 1: a checkpointed app coming back (token below)
  uint64_t token;
  uint64_t va_base, va_size;      // device addresses of the job (PROT_NONE in the app)
  uint64_t host_base, host_size;  // shared host memory (pinned, mapped, managed), memfd attached
  char job[64];
};

// The file a proxy creates next to its socket while the app detached with
// `token` may reattach (see the proxy's Server::ready_mark).
inline std::string reattach_mark_path(const std::string& socket_path, uint64_t token) {
  char hex[17];
  std::snprintf(hex, sizeof(hex), "%016llx", static_cast<unsigned long long>(token));
  return socket_path + ".reattach-" + hex;
}

struct Welcome {
  MsgType type = MsgType::Welcome;
  int32_t result;                 // CUresult; the segment memfd is attached on success
  uint32_t client_id;
  uint32_t range_busy;            // refused because this proxy serves the range already
  uint32_t not_yet;               // try again later: no such job to reattach to (yet), or
                                  // the range is busy until a departed app's release ends
  int32_t proxy_pid;
  uint64_t segment_bytes;
  char message[128];              // why, when result is not CUDA_SUCCESS
};

struct OpenChannel {
  MsgType type = MsgType::OpenChannel;
  uint32_t index;
};

struct ChannelOpened {
  MsgType type = MsgType::ChannelOpened;
  int32_t result;
};

// cuMemHostRegister of the app's own memory: the shim has moved the pages
// [addr, addr + bytes) onto a memfd (attached to ShareHost), so the proxy can
// map the same pages at the same address.  Page-aligned.
struct ShareHost {
  MsgType type = MsgType::ShareHost;
  uint32_t reserved = 0;
  uint64_t addr, bytes;
};

struct HostShared {
  MsgType type = MsgType::HostShared;
  int32_t result;
};

// File descriptors of shareable VMM handles (cuMemExportToShareableHandle,
// cuMemImportFromShareableHandle).  The call itself travels in the ring like
// every other; only the descriptor crosses the socket, parked in the proxy
// under a ticket that the call names (docs/proxy.md "Shareable handles").
struct FdMsg {
  MsgType type;
  int32_t result;   // FdReply: CUresult
  uint64_t ticket;  // FdFromProxy: which descriptor; FdReply to FdToProxy: where it was parked
};

}  // namespace sing::wire

namespace sing::wire {

// Checkpoint management, sent by a job's supervisor on a connection of its
// own (first message instead of Hello).  Paths are absolute.
enum class ManageOp : uint32_t {
  Checkpoint = 1,  // quiesce job, write its device state (chunks into `chunks`, manifest to `path`), detach it
  Resume = 2,      // a checkpoint is over and the app still runs: let it reattach
  Release = 3,     // the app was dumped and is gone: free what it held
  Restore = 4,     // load `path` (chunks in `chunks`) and wait for the app to reattach
  Status = 5,
};

struct Manage {
  MsgType type = MsgType::Manage;
  ManageOp op;
  char job[64];
  char path[512];
  char chunks[512];
};

struct ManageReply {
  MsgType type = MsgType::ManageReply;
  int32_t result;                 // CUresult
  uint64_t bytes, bytes_written, chunks, chunks_written;
  uint64_t token;
  double seconds;
  char message[512];
};

}  // namespace sing::wire
