// The app's own memory registered with cuMemHostRegister.
//
// A kernel in the proxy can only dereference memory mapped in the proxy.  So
// registering moves the app's pages onto shared memory: the page-aligned
// range is copied into a new memfd, which is mapped over the same addresses
// in the app (MAP_SHARED | MAP_FIXED: the contents stay, the addresses stay)
// and handed to the proxy, which maps it at the same address and registers
// it with its driver.  Unregistering unmaps it in the proxy only: the app
// keeps its pages, now backed by the memfd.
//
// Caveats (docs/proxy.md):
//  * a write by another app thread to the range while it is being copied
//    (between the copy and the remap) is lost;
//  * the pages are remapped read-write whatever their protection was;
//  * like a driver's pinned memory, the pages are not inherited by a fork
//    (MADV_DONTFORK), and they stay shared-memory backed after unregistering;
//  * registrations sharing a page share that page's memfd, reference-counted;
//  * each run of shared pages keeps its memfd open (one descriptor per run):
//    after a restore the shim shares the pages with the new proxy again.
#pragma once
#include <cstdint>
#include <map>
#include <mutex>

#include "driver_api.h"

namespace sing::shim {

class Connection;

class HostRegistry {
 public:
  static HostRegistry& get();

  // Shares the pages of [p, p+bytes) with the proxy; the caller then
  // registers the range through the proxy and calls commit() or rollback().
  CUresult share(Connection* conn, uint64_t p, uint64_t bytes);
  void commit(uint64_t p, uint64_t bytes, unsigned flags);
  void rollback(Connection* conn, uint64_t p, uint64_t bytes);
  // The registration starting exactly at p: forgotten, its pages unshared
  // where no other registration uses them.  False when there is none.
  bool release(Connection* conn, uint64_t p);

  // Shares every run with the proxy again, after a reattach: a restored
  // proxy has the registrations (from the image) but not the pages, which
  // CRIU restored in this process with the memfds the runs keep open.
  void share_again(Connection* conn);

  // A registration overlaps [p, p+bytes).
  bool overlaps(uint64_t p, uint64_t bytes) const;
  // [p, p+bytes) lies inside one registration.
  bool contains(uint64_t p, uint64_t bytes) const;

 private:
  struct Run {
    uint64_t end;
    uint32_t refs;
    int fd;  // the memfd behind the pages, kept open for share_again (and so in a CRIU image)
  };
  // Page runs shared with the proxy, each referenced by the registrations
  // that touch it; runs never overlap.
  void unref_runs(Connection* conn, uint64_t p, uint64_t bytes);

  mutable std::mutex mu_;
  std::map<uint64_t, Run> runs_;                              // page start -> run
  std::map<uint64_t, std::pair<uint64_t, unsigned>> regs_;    // base -> {bytes, flags}
};

}  // namespace sing::shim
