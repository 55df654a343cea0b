// A directory of content-addressed chunks: a chunk's name is the XXH3-128 of
// its bytes, so identical chunks (replicas' parameters, untouched memory,
// what did not change since the last checkpoint) are stored once and never
// rewritten, and a chunk is verified against its name when read.
#pragma once
#include <atomic>
#include <cstdint>
#include <mutex>
#include <string>
#include <vector>

namespace sing::proxy {

struct ChunkStats {
  uint64_t chunks = 0, chunks_written = 0;
  uint64_t bytes = 0, bytes_written = 0;
};

// A chunk mapped read-only from its file (restores read memory this way: one
// copy from the page cache into device memory instead of two).
class MappedChunk {
 public:
  MappedChunk() = default;
  ~MappedChunk() { reset(); }
  MappedChunk(const MappedChunk&) = delete;
  MappedChunk& operator=(const MappedChunk&) = delete;
  const uint8_t* data() const { return data_; }
  uint64_t size() const { return size_; }
  void reset();

 private:
  friend class ChunkStore;
  const uint8_t* data_ = nullptr;
  uint64_t size_ = 0;
  bool mapped_ = false;
};

// put() and map() may be called from several threads at once.
class ChunkStore {
 public:
  explicit ChunkStore(std::string dir) : dir_(std::move(dir)) {}

  // Stores `n` bytes (if not there yet) and returns their name.  False (with
  // `error`) when the disk refuses: nothing half-written is left under a
  // chunk's name (a temporary file of its own, renamed; durability comes from
  // one sync() before the image is committed).
  bool put(const uint8_t* data, uint64_t n, std::string* name, std::string& error);
  // Reads a chunk and checks its bytes against its name.
  bool get(const std::string& name, std::vector<uint8_t>* out, std::string& error) const;
  // Maps a chunk and checks its bytes against its name, as get().
  bool map(const std::string& name, MappedChunk* out, std::string& error) const;
  // Flushes everything written (syncfs of the store's file system).
  bool sync(std::string& error);

  const ChunkStats& stats() const { return stats_; }

  static std::string hash(const uint8_t* data, uint64_t n);

 private:
  std::string path_of(const std::string& name) const;

  static bool valid_name(const std::string& name, std::string& error);

  std::string dir_;
  std::mutex mu_;  // stats_
  ChunkStats stats_;
  // Temporary names are unique per put: two threads storing the same content
  // at once must not write into one temporary file.
  std::atomic<uint64_t> tmp_seq_{0};
};

}  // namespace sing::proxy
