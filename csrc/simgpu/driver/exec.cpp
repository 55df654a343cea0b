// Execution of work items on a stream (see work.h).
#include "copy.h"
#include "event.h"
#include "graph.h"
#include "launch.h"
#include "pools.h"

#include <thread>

namespace simgpu {

namespace {

template <class... F>
struct overloaded : F... {
  using F::operator()...;
};
template <class... F>
overloaded(F...) -> overloaded<F...>;

void stamp(Event& e, uint64_t gen) {
  uint64_t t = now_ns();
  std::lock_guard<std::mutex> lock(e.mu);
  if (gen == 0 || gen == e.gen) {
    e.time_ns = t;
    e.time_gen = e.gen;
  }
}

bool value_ready(const MemValueWork& w) {
  uint64_t cur;
  if (w.is64)
    cur = __atomic_load_n(reinterpret_cast<const uint64_t*>(w.addr), __ATOMIC_ACQUIRE);
  else
    cur = __atomic_load_n(reinterpret_cast<const uint32_t*>(w.addr), __ATOMIC_ACQUIRE);
  uint64_t v = w.value;
  switch (w.flags & 3) {
    case CU_STREAM_WAIT_VALUE_GEQ:
      return w.is64 ? int64_t(cur - v) >= 0 : int32_t(uint32_t(cur) - uint32_t(v)) >= 0;
    case CU_STREAM_WAIT_VALUE_EQ: return cur == v;
    case CU_STREAM_WAIT_VALUE_AND: return (cur & v) != 0;
    default: return w.is64 ? ~(cur | v) != 0 : uint32_t(~(cur | v)) != 0;
  }
}

void run_mem_value(const MemValueWork& w) {
  if (!w.wait) {
    if (w.is64)
      __atomic_store_n(reinterpret_cast<uint64_t*>(w.addr), w.value, __ATOMIC_RELEASE);
    else
      __atomic_store_n(reinterpret_cast<uint32_t*>(w.addr), uint32_t(w.value), __ATOMIC_RELEASE);
    return;
  }
  // Polls like the GPU's front end would, backing off so an idle wait costs no core.
  for (unsigned i = 0; !value_ready(w); ++i) {
    if (i < 64)
      std::this_thread::yield();
    else
      std::this_thread::sleep_for(std::chrono::microseconds(i < 1024 ? 20 : 200));
  }
}

}  // namespace

void execute(Work& w, Stream& s) {
  std::visit(overloaded{
                 [](EmptyWork&) {},
                 [&](KernelWork& k) { run_kernel(k, s); },
                 [](CopyWork& c) { run_copy(c); },
                 [](MemsetWork& m) { run_memset(m); },
                 [](HostWork& h) {
                   ThreadState& t = tls();
                   bool prev = t.in_host_callback;
                   t.in_host_callback = true;
                   h.fn(h.user);
                   t.in_host_callback = prev;
                 },
                 [](CallbackWork& c) {
                   ThreadState& t = tls();
                   bool prev = t.in_host_callback;
                   t.in_host_callback = true;
                   c.fn(c.handle, CUDA_SUCCESS, c.user);
                   t.in_host_callback = prev;
                 },
                 [](EventRecordWork& e) {
                   if (e.event) stamp(*e.event, e.gen);
                 },
                 [](EventWaitWork& e) {
                   std::shared_ptr<Stream> other;
                   uint64_t seq;
                   e.event->point(other, seq);
                   if (other) other->wait(seq);
                 },
                 [](WaitWork& wt) { wt.stream->wait(wt.seq); },
                 [](MemValueWork& m) { run_mem_value(m); },
                 [&](PoolFreeWork& p) { pool_complete_free(*p.pool, p.addr, p.gen); },
                 [](GraphMemWork&) {},
                 [&](GraphBodyWork& g) { run_graph_body(*g.body, s); },
             },
             w);
}

void abandon(Work& w, Stream& s, CUresult err) {
  std::visit(overloaded{
                 [&](CallbackWork& c) {
                   ThreadState& t = tls();
                   bool prev = t.in_host_callback;
                   t.in_host_callback = true;
                   c.fn(c.handle, err, c.user);
                   t.in_host_callback = prev;
                 },
                 // Freed memory goes back to its pool even after a fault, so accounting stays right.
                 [&](PoolFreeWork& p) { pool_complete_free(*p.pool, p.addr, p.gen); },
                 [](auto&) {},
             },
             w);
}

}  // namespace simgpu
