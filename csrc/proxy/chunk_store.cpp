#include "chunk_store.h"

#include <fcntl.h>
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
  stats_.chunks++;
  stats_.bytes += n;
  struct stat st;
  if (stat(path.c_str(), &st) == 0 && uint64_t(st.st_size) == n) return true;  // stored before: not rewritten
  const std::string sub = dir_ + "/" + name->substr(0, 2);
  mkdir(dir_.c_str(), 0700);
  if (mkdir(sub.c_str(), 0700) == 0 || errno == EEXIST) {
    if (std::find(dirty_dirs_.begin(), dirty_dirs_.end(), sub) == dirty_dirs_.end()) dirty_dirs_.push_back(sub);
  }
  const std::string tmp = path + ".tmp";
  int fd = open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
  if (fd < 0) {
    error = "cannot create " + tmp + ": " + std::strerror(errno);
    return false;
  }
  // Durability comes from one syncfs() before the checkpoint is committed
  // (sync()), not a flush per chunk.
  bool ok = write_all(fd, data, n);
  int e = errno;
  close(fd);
  if (!ok || rename(tmp.c_str(), path.c_str()) != 0) {
    if (ok) e = errno;
    unlink(tmp.c_str());
    error = "cannot write chunk " + *name + ": " + std::strerror(e);
    return false;
  }
  stats_.chunks_written++;
  stats_.bytes_written += n;
  return true;
}

bool ChunkStore::get(const std::string& name, std::vector<uint8_t>* out, std::string& error) const {
  if (name.size() != 32 || name.find_first_not_of("0123456789abcdef") != std::string::npos) {
    error = "bad chunk name '" + name + "'";
    return false;
  }
  const std::string path = path_of(name);
  int fd = open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    error = "chunk " + name + " is missing: " + std::strerror(errno);
    return false;
  }
  struct stat st;
  fstat(fd, &st);
  out->resize(uint64_t(st.st_size));
  uint64_t done = 0;
  while (done < out->size()) {
    ssize_t r = read(fd, out->data() + done, out->size() - done);
    if (r < 0 && errno == EINTR) continue;
    if (r <= 0) break;
    done += uint64_t(r);
  }
  close(fd);
  if (done != out->size() || hash(out->data(), out->size()) != name) {
    error = "chunk " + name + " is corrupt (its contents do not match its checksum)";
    return false;
  }
  return true;
}

bool ChunkStore::sync(std::string& error) {
  int fd = open(dir_.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0) return true;  // nothing was stored
  bool ok = syncfs(fd) == 0;
  if (!ok) error = "cannot sync " + dir_ + ": " + std::strerror(errno);
  close(fd);
  dirty_dirs_.clear();
  return ok;
}

}  // namespace sing::proxy
