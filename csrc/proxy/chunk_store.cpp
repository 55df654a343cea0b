#include "chunk_store.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cinttypes>
#include <cstdio>
#include <cstring>

#define XXH_INLINE_ALL
#include <xxhash.h>

namespace sing::proxy {

std::string ChunkStore::hash(const uint8_t* data, uint64_t n) {
  XXH128_hash_t h = XXH3_128bits(data, n);
  char buf[33];
  std::snprintf(buf, sizeof(buf), "%016" PRIx64 "%016" PRIx64, uint64_t(h.high64), uint64_t(h.low64));
  return buf;
}

std::string ChunkStore::path_of(const std::string& name) const { return dir_ + "/" + name.substr(0, 2) + "/" + name; }

namespace {
bool write_all(int fd, const uint8_t* p, uint64_t n) {
  while (n) {
    ssize_t w = write(fd, p, std::min<uint64_t>(n, 1u << 30));
    if (w < 0 && errno == EINTR) continue;
    if (w <= 0) return false;
    p += w;
    n -= uint64_t(w);
  }
  return true;
}
}  // namespace

bool ChunkStore::put(const uint8_t* data, uint64_t n, std::string* name, std::string& error) {
  *name = hash(data, n);
  const std::string path = path_of(*name);
  {
    std::lock_guard<std::mutex> lock(mu_);
    stats_.chunks++;
    stats_.bytes += n;
  }
  struct stat st;
  if (stat(path.c_str(), &st) == 0 && uint64_t(st.st_size) == n) return true;  // stored before: not rewritten
  const std::string sub = dir_ + "/" + name->substr(0, 2);
  mkdir(dir_.c_str(), 0700);
  mkdir(sub.c_str(), 0700);  // EEXIST is fine; any other failure shows at open()
  const std::string tmp = path + ".tmp" + std::to_string(tmp_seq_.fetch_add(1));
  int fd = open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
  if (fd < 0) {
    error = "cannot create " + tmp + ": " + std::strerror(errno);
    return false;
  }
  // Durability comes from one syncfs() before the checkpoint is committed
  // (sync()), not a flush per chunk.  But the disk starts writing this chunk
  // now (SYNC_FILE_RANGE_WRITE queues writeback and does not wait for it):
  // otherwise nothing reaches the disk until that syncfs — a GiB of state is
  // far below the dirty-page threshold — and the disk idles while the rest of
  // the memory is copied and hashed.  (A no-op on tmpfs.)
  bool ok = write_all(fd, data, n);
  if (ok) sync_file_range(fd, 0, 0, SYNC_FILE_RANGE_WRITE);
  int e = errno;
  close(fd);
  if (!ok || rename(tmp.c_str(), path.c_str()) != 0) {
    if (ok) e = errno;
    unlink(tmp.c_str());
    error = "cannot write chunk " + *name + ": " + std::strerror(e);
    return false;
  }
  std::lock_guard<std::mutex> lock(mu_);
  stats_.chunks_written++;
  stats_.bytes_written += n;
  return true;
}

bool ChunkStore::valid_name(const std::string& name, std::string& error) {
  if (name.size() != 32 || name.find_first_not_of("0123456789abcdef") != std::string::npos) {
    error = "bad chunk name '" + name + "'";
    return false;
  }
  return true;
}

void MappedChunk::reset() {
  if (mapped_) munmap(const_cast<uint8_t*>(data_), size_);
  data_ = nullptr;
  size_ = 0;
  mapped_ = false;
}

bool ChunkStore::map(const std::string& name, MappedChunk* out, std::string& error) const {
  out->reset();
  if (!valid_name(name, error)) return false;
  const std::string path = path_of(name);
  int fd = open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    error = "chunk " + name + " is missing: " + std::strerror(errno);
    return false;
  }
  struct stat st;
  if (fstat(fd, &st) != 0) {
    error = "chunk " + name + " cannot be read: " + std::strerror(errno);
    close(fd);
    return false;
  }
  static const uint8_t empty = 0;
  if (st.st_size > 0) {
    // MAP_POPULATE: the pages are in the page cache (or read ahead now) and
    // mapped in one go, not one fault at a time while verifying.
    void* p = mmap(nullptr, size_t(st.st_size), PROT_READ, MAP_PRIVATE | MAP_POPULATE, fd, 0);
    if (p == MAP_FAILED) {
      error = "chunk " + name + " cannot be mapped: " + std::strerror(errno);
      close(fd);
      return false;
    }
    out->data_ = static_cast<const uint8_t*>(p);
    out->mapped_ = true;
  } else {
    out->data_ = &empty;
  }
  out->size_ = uint64_t(st.st_size);
  close(fd);
  // A file truncated after this check makes reading the mapping fault
  // (SIGBUS); images are the job's own files, written once and never
  // truncated in place, so only the bytes' integrity is checked.
  if (hash(out->data_, out->size_) != name) {
    out->reset();
    error = "chunk " + name + " is corrupt (its contents do not match its checksum)";
    return false;
  }
  return true;
}

bool ChunkStore::get(const std::string& name, std::vector<uint8_t>* out, std::string& error) const {
  // One way to read and verify a chunk: map() checks it, this keeps a copy.
  MappedChunk m;
  if (!map(name, &m, error)) return false;
  out->assign(m.data(), m.data() + m.size());
  return true;
}

bool ChunkStore::sync(std::string& error) {
  int fd = open(dir_.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0) return true;  // nothing was stored
  bool ok = syncfs(fd) == 0;
  if (!ok) error = "cannot sync " + dir_ + ": " + std::strerror(errno);
  close(fd);
  return ok;
}

}  // namespace sing::proxy
