// The app's side of the transport: one connection per process, one channel
// per app thread that calls CUDA.
#pragma once
#include <atomic>
#include <cstdint>

#include "driver_api.h"
#include "wire/codec.h"
#include "wire/layout.h"
#include "wire/ring.h"

namespace sing::shim {

// The error every call returns once the proxy is gone (documented in
// docs/proxy.md): the job must be restarted or restored, as after a GPU fault.
inline constexpr CUresult kProxyLost = CUDA_ERROR_DEVICE_UNAVAILABLE;

class Channel;

class Connection {
 public:
  // Connects (or spawns the private proxy) on first use.  Null when that
  // failed; `connect_error()` says with which CUresult.
  static Connection* get();
  static CUresult connect_error();

  wire::SegmentHeader* segment() const { return segment_; }
  int control_fd() const { return control_fd_; }
  uint32_t client_id() const { return client_id_; }
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

 private:
  Connection() = default;
  CUresult establish();
  CUresult attempt(uint64_t va_base, bool* busy);

  wire::SegmentHeader* segment_ = nullptr;
  int control_fd_ = -1;
  uint32_t client_id_ = 0;
  uint64_t va_base_ = 0, va_size_ = 0;
  std::atomic<bool> lost_{false};
};

// A per-thread request ring and response area.  Only its owner thread writes
// records, so no locking: reserve, encode, publish, and for a sync record wait.
class Channel {
 public:
  Channel(Connection* conn, wire::Channel* shared, uint32_t index)
      : conn_(conn), ch_(shared), index_(index), ring_(shared) {}

  // Reserves room for a record with `payload` bytes and writes its header.
  // Returns where the payload goes, or null if the proxy is lost.
  uint8_t* begin(uint16_t opcode, uint32_t payload, bool sync);
  // Makes the record visible to the proxy (and wakes its worker if it sleeps).
  void publish();
  // Waits for the answer to the last published sync record.
  CUresult wait();

  // The answer to the last sync record has arrived.
  bool answered() const { return ch_->done_seq.load(std::memory_order_acquire) == last_ticket_; }
  const uint8_t* response() const { return ch_->response; }
  uint32_t response_length() const { return ch_->response_length; }
  wire::Channel* shared() const { return ch_; }
  Connection* connection() const { return conn_; }

  // Sends a sync call whose payload was already encoded into `body`.
  CUresult call(uint16_t opcode, const uint8_t* body, uint32_t size);

  // Waits until `counter` (a futex word the proxy bumps) reaches `target`.
  bool wait_counter(std::atomic<uint32_t>& counter, uint32_t target);

 private:
  Connection* conn_;
  wire::Channel* ch_;
  uint32_t index_;
  wire::RingProducer ring_;
  uint32_t last_ticket_ = 0;
};

// For code that asks "is the app connected and initialised": the flag
// cuInit sets; every forwarded call but a handful checks it first, because
// the proxy's own driver is always initialised and would not complain.
extern std::atomic<bool> g_initialized;

}  // namespace sing::shim
