// Virtual handles: every opaque handle a client sees is an id issued here,
// mapped to the backend's real object.  Restoring a job recreates the real
// objects and rebinds the same ids, so the app's handles stay valid.
#pragma once
#include <atomic>
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <vector>

#include "driver_api.h"
#include "wire/codec.h"

namespace sing::proxy {

using wire::HandleKind;

// Kinds beyond the opaque pointer types of cuda.h that are still handles.
inline constexpr HandleKind kAllocHandle = HandleKind::Count;  // CUmemGenericAllocationHandle
inline constexpr int kKindCount = int(HandleKind::Count) + 1;

class HandleTable {
 public:
  static constexpr uint64_t kTag = 0x5a00000000000000ull;
  static constexpr int kKindShift = 40;

  HandleTable();

  // Id for a real object, issuing one the first time it is seen.
  uint64_t to_vid(HandleKind kind, uint64_t real);
  // The real object behind an id of this kind; false if the id is unknown,
  // of another kind, or destroyed.  Lock-free: on every forwarded call.
  bool to_real(HandleKind kind, uint64_t vid, uint64_t* real) const;
  // Forget an id (the object was destroyed).
  void forget(HandleKind kind, uint64_t vid);
  // Point an existing id at a new real object (restore).
  void rebind(uint64_t vid, uint64_t real);

  // Every live (vid, real) of a kind, oldest first.
  std::vector<std::pair<uint64_t, uint64_t>> live(HandleKind kind) const;

  static HandleKind kind_of(uint64_t vid) {
    return HandleKind((vid >> kKindShift) & 0xff);
  }

 private:
  struct Entry {
    std::atomic<uint64_t> real{0};
    std::atomic<uint8_t> kind{0};
    std::atomic<bool> alive{false};
  };
  static constexpr size_t kChunk = 4096;
  static constexpr size_t kMaxChunks = 4096;  // 16M handles per client
  std::unique_ptr<Entry[]> chunks_[kMaxChunks];
  std::atomic<uint64_t> count_{0};
  mutable std::mutex mu_;
  std::map<std::pair<int, uint64_t>, uint64_t> by_real_;  // (kind, real) -> index

  const Entry* entry(uint64_t index) const;
};

}  // namespace sing::proxy
