// One connected app process: its shared segment, handles, device memory and
// the worker threads serving its channels.
#pragma once
#include <sys/types.h>

#include <atomic>
#include <condition_variable>
#include <functional>
#include <cstdint>
#include <map>
#include <set>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <unordered_map>
#include <vector>

#include "device_heap.h"
#include "fd_exchange.h"
#include "handles.h"
#include "hostfn.h"
#include "graph_memory.h"
#include "graph_records.h"
#include "managed_hints.h"
#include "user_objects.h"
#include "wire/codec.h"
#include "wire/layout.h"
#include "wire/ring.h"

namespace sing::proxy {

class Client;

// Serves one channel (one app thread) on its own thread, so that a blocking
// call (stream synchronize) never holds up the app's other threads.
class Worker {
 public:
  Worker(Client& client, uint32_t index);
  ~Worker();
  void start();
  void stop();  // asks the loop to end and joins it
  bool finished() const { return finished_.load(); }

  wire::Channel* channel() const { return ch_; }
  uint32_t index() const { return index_; }
  // Large call inputs accumulated by kOpBlobAppend records.
  std::vector<uint8_t>& blob() { return blob_; }
  // First error of a fire-and-forget call, reported by the next sync call.
  CUresult deferred = CUDA_SUCCESS;
  // A staged copy is under way: its next chunk is coming, so the wait for it
  // yields the core instead of sleeping (a wake-up per chunk would cost more
  // than the chunk).  Worker thread only.
  bool copy_in_progress = false;

  // Nothing published is waiting and no record is being served.
  bool idle() const {
    return !busy_.load(std::memory_order_acquire) &&
           ch_->tail.load(std::memory_order_acquire) == ch_->head.load(std::memory_order_acquire);
  }
  // Runs `task` on this worker's thread (which carries the app thread's
  // current context) the next time it is idle, and waits for it.
  void run_on_thread(const std::function<void()>& task);
  // The app thread this channel serves (its kernel thread id).
  uint32_t owner_tid() const { return ch_->owner_tid; }

 private:
  void loop();
  // Waits for the next record; false when the worker should stop.
  bool next_record(const wire::RecordHeader** rec);
  void handle(const wire::RecordHeader* rec);
  void respond(uint64_t ticket, CUresult r, uint32_t length);

  Client& client_;
  wire::Channel* ch_;
  uint32_t index_;
  wire::RingConsumer ring_;
  std::vector<uint8_t> blob_;
  std::thread thread_;
  std::atomic<bool> stop_{false};
  std::atomic<bool> finished_{false};
  std::atomic<bool> busy_{false};
  std::mutex task_mu_;
  std::condition_variable task_cv_;
  const std::function<void()>* task_ = nullptr;
  std::atomic<bool> task_pending_{false};
  void run_task_if_any();
};

// A call being served: its decoded input and the response being written.
struct Call {
  Client& client;
  Worker& worker;
  wire::Reader in;
  wire::Writer out;
  uint16_t op;
  bool sync;
  // Send the response payload even when the call fails (JIT error logs).
  bool output_on_error = false;
};

using Handler = CUresult (*)(Call&);

// Host memory the app registered or allocated as pinned/mapped/managed, all of
// it at the same address in both processes: in the shared host range, or in
// the app's registered pages (Client::shared_pages).
struct HostBlock {
  uint64_t bytes;
  unsigned kind;   // shim HostHeap kind: 1 pinned, kManaged; kRegistered
  unsigned flags;
  ManagedHints hints{};  // kManaged only
};
inline constexpr unsigned kManaged = 2;
inline constexpr unsigned kRegistered = 3;  // cuMemHostRegister of the app's own pages

// A physical allocation the app made itself with cuMemCreate.
struct AppAllocation {
  CUmemGenericAllocationHandle real;
  uint64_t bytes;
  CUmemAllocationProp prop;
  // References the app holds (create + retains), each matched by a cuMemRelease, as on a driver:
  // the id goes only with the last.  0: released, kept while mapped (custom_vmm.cpp).
  uint32_t refs = 1;
  // Exported as, or imported from, a shareable handle: other processes may
  // hold the memory, so no checkpoint can recreate it faithfully.
  bool shared = false;
};
struct AppMapping {
  uint64_t bytes;
  uint64_t offset;
  uint64_t handle_vid;
  // Of a shared allocation (the mapping outlives a release of its handle).
  bool shared = false;
};

// A memory pool emulated on the client's heap (see custom_pools.cpp).
struct Pool {
  CUmemPoolProps props{};
  uint64_t release_threshold = 0;
  uint64_t used = 0, used_high = 0, reserved_high = 0;
  // Freed blocks the pool keeps for reuse, up to the release threshold:
  // ptr -> bytes.  Reserved memory = used + retained.
  std::multimap<uint64_t, uint64_t> retained_by_size;  // bytes -> ptr
  uint64_t retained = 0;
  int reuse_follow_event = 1, reuse_opportunistic = 1, reuse_internal = 1;
  bool is_default = false;
  std::map<int, CUmemAccess_flags> access;  // other devices' access (cuMemPoolSetAccess)
};

// Clients connected to this proxy process right now.
int client_count();

// What a restore needs to recreate each object the app holds (besides the
// handle table): recorded by the handlers that create them.
struct Records {
  struct Stream {
    unsigned flags;
    int priority;
    uint64_t ctx;  // the app's id of the context current at creation
  };
  struct Context {
    unsigned flags;
    int device;
  };
  std::map<uint64_t, Stream> streams;
  std::map<uint64_t, unsigned> events;          // flags
  std::map<uint64_t, Context> contexts;         // created ones (cuCtxCreate)
  std::map<uint64_t, std::pair<uint64_t, std::string>> functions;  // vid -> (module, name)
  std::map<uint64_t, std::pair<uint64_t, std::string>> kernels;    // vid -> (library, name)
  std::map<uint64_t, uint64_t> kernel_functions;                   // function vid -> kernel vid
  std::map<uint64_t, std::pair<uint64_t, std::vector<CUmemAccessDesc>>> access;  // app VMM va -> (size, list)
};

class Client {
 public:
  Client(uint32_t id, pid_t pid, int control_fd, std::string job);
  ~Client();

  // Maps the app's shared host memory, reserves its device range, creates
  // the segment.  On failure `error` says why.
  CUresult setup(uint64_t va_base, uint64_t va_size, uint64_t host_base, uint64_t host_size, int host_fd,
                 int* segment_fd, std::string& error, bool* range_busy);
  // The pieces of setup, for a restore: the device range first, the shared
  // host memory and the segment when the app comes back.
  CUresult reserve_range(uint64_t va_base, uint64_t va_size, std::string& error, bool* range_busy);
  CUresult map_host(uint64_t host_base, uint64_t host_size, int host_fd, std::string& error, bool* range_busy);
  CUresult create_segment(int* segment_fd, std::string& error);
  uint64_t va_base() const { return va_base_; }
  uint64_t va_size() const { return va_size_; }
  uint64_t host_base() const { return host_base_; }
  uint64_t host_size() const { return host_size_; }
  void set_control_fd(int fd) { control_fd_ = fd; }
  CUresult open_channel(uint32_t index);
  // The app's registered pages [addr, addr+bytes) on a memfd: mapped here at
  // the same address (wire::ShareHost), or unmapped again.
  CUresult share_host(uint64_t addr, uint64_t bytes, int fd);
  CUresult unshare_host(uint64_t addr, uint64_t bytes);
  // Registers the pending registrations whose pages are all mapped now (mu held).
  CUresult register_restored_pages();
  // [p, p+n) lies in the app's registered pages mapped here.
  bool in_shared_pages(uint64_t p, uint64_t n);

  // --- checkpoints (checkpoint.cpp) ---
  // Closes the app's gate and runs everything it published; then every
  // context is synchronized.  Nothing reaches the device until resume().
  CUresult quiesce(std::string& error);
  void resume();
  // Tells the shim to drop its connection and wait to reattach with `token`.
  CUresult detach(uint64_t token, std::string& error);
  // The app reattached (after leave-running, or to a restored client): a
  // new control socket and segment; shared host memory mapped if needed.
  CUresult reattach(int control_fd, int host_fd, int* segment_fd, std::string& error);
  // Runs `task` on every worker's thread: per-app-thread state (current
  // contexts) is read and set there.
  void each_worker(const std::function<void(Worker&)>& task);
  bool detached() const { return detached_; }
  // Descriptors parked for a connection that is gone (fd_exchange.h).
  void clear_parked_fds();
  void set_detached() { detached_ = true; }
  uint64_t token() const { return token_; }
  void set_token(uint64_t t) { token_ = t; }
  // Reattach is allowed (a checkpoint that left the app running is done,
  // or the client was restored).
  std::atomic<bool> reattachable{false};
  // Current context of each app thread (by kernel thread id) as saved by a
  // checkpoint, set on the thread's worker when its channel opens again.
  std::map<uint32_t, uint64_t> thread_contexts;
  // Module-scope variables by name, for the restore: start -> name.
  std::map<uint64_t, std::string> global_names;
  // A restored client maps the app's shared host memory here when it comes back.
  uint64_t restored_host_base = 0, restored_host_size = 0;
  // The app is gone: stop every worker and release everything it held.
  void shutdown();
  // A context died (destroyed, or the primary one really reset): the ids of
  // the modules, functions and streams that died with it go too, so that an
  // object the backend later places at the same address gets a new id (the
  // app caches per id: a function's parameter layout, say).
  void forget_context_objects(uint64_t ctx);
  // A module or library is gone: its image, globals and every function or
  // kernel id handed out for it (not its own id).
  void forget_image(uint64_t vid);

  uint32_t id() const { return id_; }
  pid_t pid() const { return pid_; }
  int control_fd() const { return control_fd_; }
  const std::string& job() const { return job_; }
  wire::SegmentHeader* segment() const { return segment_; }

  // Issue order across channels (see Worker::loop).
  void wait_turn(uint64_t ticket);
  void pass_turn(uint64_t ticket);

  bool in_host_range(uint64_t p, uint64_t n) const {
    return p >= host_base_ && p + n >= p && p + n <= host_base_ + host_size_;
  }
  bool in_device_range(uint64_t p, uint64_t n) const { return heap.owns_range(p, n); }
  // [p, p+n) lies inside one live allocation of this client.
  bool valid_range(uint64_t p, uint64_t n);

  HandleTable handles;
  DeviceHeap heap;
  // Descriptors of shareable handles on their way from and to the app
  // (locked on their own: the control socket's thread parks and collects).
  FdExchange fds_from_app, fds_for_app;
  // Set first thing in shutdown: anything waiting for the app gives up.
  std::atomic<bool> closing{false};

  std::mutex mu;  // guards everything below
  std::map<uint64_t, HostBlock> host_blocks;            // base -> block
  std::map<uint64_t, uint64_t> shared_pages;            // the app's registered pages mapped here: start -> end
  // The memfd behind each run of shared_pages (st_dev, st_ino): the shim
  // shares every run again after each reattach, and a run this proxy maps
  // already is accepted only from the same memfd.
  std::map<uint64_t, std::pair<uint64_t, uint64_t>> shared_files;
  // A restored client's registrations (host_blocks of kind kRegistered) whose
  // pages the app has not shared again yet: registered with the backend when
  // every page of one is mapped here (share_host).
  std::set<uint64_t> pending_registrations;
  std::map<uint64_t, AppAllocation> app_allocations;    // handle vid -> allocation
  std::map<uint64_t, AppMapping> app_mappings;          // va -> mapping
  std::map<uint64_t, Pool> pools;                       // pool vid -> pool
  std::map<int, uint64_t> current_pool;                 // device -> pool vid
  std::map<uint64_t, uint64_t> pool_of_alloc;           // device ptr -> pool vid
  struct PendingFree {
    uint64_t ptr;
    CUevent event;
  };
  std::vector<PendingFree> pending_frees;
  std::map<uint64_t, std::vector<uint64_t>> module_functions;  // module or library vid -> function/kernel vids
  // What a restore needs to load each module or library again.
  struct Image {
    std::vector<uint8_t> bytes;
    std::vector<std::pair<uint32_t, uint64_t>> jit, lib;
    bool library;
    uint64_t ctx;  // the app's id of the context current at load
  };
  std::map<uint64_t, Image> images;                    // module or library vid -> image
  // Module-scope variables the app asked for: memory the driver placed for
  // the module, which the app may copy to and from.  start -> {bytes, owner}
  std::map<uint64_t, std::pair<uint64_t, uint64_t>> module_globals;
  int primary_retains = 0;
  Records records;

  // Host-function callbacks waiting in the app (see custom_hostfn.cpp).
  std::mutex cb_mu;
  uint32_t cb_next = 0;
  // Host functions that run more than once (graph nodes): hostfn.h.
  HostRecords host_records;
  // Emulated graph memory nodes and the memory they own: graph_memory.h.
  GraphMemoryState graph_memory;
  // Emulated user objects: user_objects.h.
  UserObjectState user_objects;
  // What a checkpoint needs to instantiate the app's executables again: graph_image.h.
  GraphRecords graph_records;

 private:
  uint32_t id_;
  pid_t pid_;
  int control_fd_;
  std::string job_;
  wire::SegmentHeader* segment_ = nullptr;
  uint64_t segment_bytes_ = 0;
  uint64_t host_base_ = 0, host_size_ = 0;
  uint64_t va_base_ = 0, va_size_ = 0;
  bool va_reserved_ = false;
  std::mutex workers_mu_;
  std::unique_ptr<Worker> workers_[wire::kMaxChannels];
  bool detached_ = false;
  uint64_t token_ = 0;
  std::atomic<uint64_t> dispatched_{0};
  std::atomic<uint32_t> dispatch_word_{0};  // futex word mirroring dispatched_
  std::atomic<uint32_t> turn_waiters_{0};
};

// One of the client's contexts current on the calling thread for a scope: the
// proxy's own threads (management, cleanup) need one for host registrations.
class AnyClientContext {
 public:
  explicit AnyClientContext(Client& c);
  ~AnyClientContext();
  AnyClientContext(const AnyClientContext&) = delete;
  AnyClientContext& operator=(const AnyClientContext&) = delete;
  bool ok() const { return pushed_; }

 private:
  bool pushed_ = false;
};

}  // namespace sing::proxy
