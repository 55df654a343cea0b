// The app's side of the transport: one connection per process, one channel
// per app thread that calls CUDA.
#pragma once
#include <atomic>
#include <cstdint>

#include "driver_api.h"
#include "wire/codec.h"
#include "wire/control.h"
#include "wire/futex.h"
#include "wire/layout.h"
#include "wire/ring.h"

namespace sing::shim {

// The error every call returns once the proxy is gone (documented in
// docs/proxy.md): the job must be restarted or restored, as after a GPU fault.
inline constexpr CUresult kProxyLost = CUDA_ERROR_DEVICE_UNAVAILABLE;

// Never returned to the app: the connection changed (a checkpointed app was
// restored and reattached) while a call was being sent; the call starts over
// on the new connection.  Nothing of it had been published.
inline constexpr CUresult kRestart = CUresult(0x7ffe0001);

// Runs `op` until it does not ask to start over.
template <class F>
CUresult with_restart(F op) {
  for (;;) {
    CUresult r = op();
    if (r != kRestart) return r;
  }
}

class Channel;

class Connection {
 public:
  // Connects (or spawns the private proxy) on first use.  Null when that
  // failed; `connect_error()` says with which CUresult.
  static Connection* get();
  static CUresult connect_error();

  wire::SegmentHeader* segment() const { return segment_.load(std::memory_order_acquire); }
  int control_fd() const { return control_fd_.load(std::memory_order_acquire); }
  uint32_t client_id() const { return client_id_; }
  // Bumped each time the app reattaches to a (new) proxy.
  uint32_t epoch() const { return epoch_.load(std::memory_order_acquire); }
  // The job's device address range in this process (PROT_NONE).
  bool in_device_range(uint64_t p) const { return p >= va_base_ && p < va_base_ + va_size_; }
  bool overlaps_device_range(uint64_t p, uint64_t n) const { return p < va_base_ + va_size_ && p + n > va_base_; }

  // True while the proxy is reachable.  Cheap (poll with zero timeout); once
  // it turns false it stays false.
  bool proxy_alive();
  bool lost() const { return lost_.load(std::memory_order_relaxed); }
  void mark_lost();

  // This thread's channel, opened on first use; null when the proxy is lost
  // or every channel is taken.
  Channel* channel(CUresult* error);

  // Sends an OpenChannel message and waits for the answer (under a lock: the
  // socket is shared by every thread).
  CUresult open_channel(uint32_t index);
  // Hands the proxy a memfd holding the app's pages [addr, addr + bytes), to
  // map at the same address (ShareHost), or asks it to unmap them again.
  CUresult share_host(uint64_t addr, uint64_t bytes, int fd);
  CUresult unshare_host(uint64_t addr, uint64_t bytes);
  // Descriptors of shareable handles (the proxy's fd_exchange.h): parks the
  // app's `fd` in the proxy for a call to name by *ticket, or collects the
  // descriptor a call left under `ticket` (the app's to close).  kRestart
  // when a checkpoint detached the app meanwhile: the call starts over.
  CUresult pass_fd(int fd, uint32_t channel_epoch, uint64_t* ticket);
  CUresult collect_fd(uint64_t ticket, uint32_t channel_epoch, int* fd);

  // --- checkpoints (control.cpp) ---
  // The gate every record passes: closed while the proxy checkpoints the app.
  // Returns false when the calling thread must start its call over (it
  // waited through a reattach).
  bool enter_publish(uint32_t channel_epoch);
  void leave_publish();
  // The control thread: carries out the proxy's commands.
  void run_control();
  // Detached: connect to the job's proxy again, presenting `token`.
  bool reattach(uint64_t token);

 private:
  Connection() = default;
  CUresult establish();
  CUresult attempt(uint64_t va_base, bool* busy, bool* released_soon);
  // Hello/Welcome and the segment, for a fresh connection or a reattach.
  CUresult handshake(int fd, uint64_t va_base, bool reattach, uint64_t token, bool* busy, bool* not_yet);
  CUresult exchange_fd(wire::FdMsg msg, int send_fd, uint32_t channel_epoch, wire::FdMsg* reply, int* recv_fd);

  std::atomic<wire::SegmentHeader*> segment_{nullptr};
  std::atomic<int> control_fd_{-1};
  uint32_t client_id_ = 0;
  uint64_t va_base_ = 0, va_size_ = 0, host_base_ = 0;
  int host_fd_ = -1;  // kept: a reattach hands the same shared host memory to the new proxy
  std::atomic<bool> lost_{false};
  std::atomic<uint32_t> epoch_{0};
  // The gate: open (0) or closed (1; futex word), and threads between
  // enter_publish and leave_publish.
  std::atomic<uint32_t> gate_{0};
  std::atomic<int> publishing_{0};
  std::atomic<bool> detached_{false};
};

// Spinning before yielding: a forwarded call answers in about a microsecond
// when both sides are awake.  Not much longer: on 2 cores a thread spinning
// in cuStreamSynchronize holds the core the kernels it waits for run on (it
// spun 4000 pauses before, ~130 us on this machine's AMD EPYC; what that cost
// the training step could not be told apart from this VM's noise).
inline constexpr uint64_t kWaitSpinNs = 10'000;
using wire::kCopyYieldNs;

// A per-thread request ring and response area.  Only its owner thread writes
// records, so no locking: reserve, encode, publish, and for a sync record wait.
class Channel {
 public:
  Channel(Connection* conn, wire::Channel* shared, uint32_t index, uint32_t epoch)
      : conn_(conn), ch_(shared), index_(index), epoch_(epoch), ring_(shared) {}

  // Reserves room for a record with `payload` bytes and writes its header.
  // Returns where the payload goes, or null: then `failure()` says whether
  // the proxy is lost or the call must start over (kRestart).
  uint8_t* begin(uint16_t opcode, uint32_t payload, bool sync);
  CUresult failure() const { return failure_; }
  uint32_t epoch() const { return epoch_; }
  // Makes the record visible to the proxy (and wakes its worker if it sleeps).
  void publish();
  // Waits for the answer to the last published sync record: spins, yields
  // the core for up to `yield_ns` (kCopyYieldNs for copies), then sleeps.
  CUresult wait(uint64_t yield_ns = 0);
  // This thread has a current context (as of the last answered call; a new
  // thread has none).  Contexts change only through sync calls on it.  Per
  // thread, not per channel: it outlives a channel reopened after a restore.
  bool has_context() const;

  // The answer to the last sync record has arrived.
  bool answered() const { return ch_->done_seq.load(std::memory_order_acquire) == last_ticket_; }
  const uint8_t* response() const { return ch_->response; }
  uint32_t response_length() const { return ch_->response_length; }
  wire::Channel* shared() const { return ch_; }
  Connection* connection() const { return conn_; }

  // Sends a sync call whose payload was already encoded into `body`.
  CUresult call(uint16_t opcode, const uint8_t* body, uint32_t size);

  // Waits until `counter` (a futex word the proxy bumps for a staged copy's
  // chunks) reaches `target`, or with `or_answered` until the last sync record
  // is answered.  False: the proxy is lost.
  bool wait_counter(std::atomic<uint32_t>& counter, uint32_t target, bool or_answered = false);

 private:
  Connection* conn_;
  wire::Channel* ch_;
  uint32_t index_;
  uint32_t epoch_;
  wire::RingProducer ring_;
  CUresult failure_ = CUDA_SUCCESS;
  uint32_t last_ticket_ = 0;
};

// For code that asks "is the app connected and initialised": the flag
// cuInit sets; every forwarded call but a handful checks it first, because
// the proxy's own driver is always initialised and would not complain.
extern std::atomic<bool> g_initialized;

}  // namespace sing::shim
