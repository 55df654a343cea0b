#include "user_objects.h"

#include <atomic>
#include <vector>

#include "client.h"
#include "hostfn.h"

namespace sing::proxy {

namespace {

// User objects exist only in the proxy: their "real" handle is a counter.
std::atomic<uint64_t> g_next_object{1};

uint64_t key(const void* p) { return reinterpret_cast<uint64_t>(p); }

// Drops `count` references (lock held); a destructor due is queued in *due.
bool drop(Client& c, uint64_t vid, uint64_t count, std::vector<std::pair<uint64_t, uint64_t>>* due) {
  auto& objs = c.user_objects.objects;
  auto it = objs.find(vid);
  if (it == objs.end() || count == 0 || count > it->second.refs) return false;
  it->second.refs -= count;
  if (it->second.refs == 0) {
    due->emplace_back(it->second.fn, it->second.ptr);
    objs.erase(it);
    c.handles.forget(HandleKind::UserObject, vid);
  }
  return true;
}

void run_due(Client& c, const std::vector<std::pair<uint64_t, uint64_t>>& due) {
  for (auto& [fn, ptr] : due) post_user_destructor(c, fn, ptr);
}

}  // namespace

CUresult user_object_create(Client& c, uint64_t fn, uint64_t ptr, unsigned refs, unsigned flags, uint64_t* vid) {
  // Only asynchronous destructors exist (CU_USER_OBJECT_NO_DESTRUCTOR_SYNC is
  // required by CUDA).
  if (!fn || refs == 0 || flags != CU_USER_OBJECT_NO_DESTRUCTOR_SYNC) return CUDA_ERROR_INVALID_VALUE;
  std::lock_guard<std::mutex> lock(c.user_objects.mu);
  *vid = c.handles.to_vid(HandleKind::UserObject, g_next_object.fetch_add(1));
  c.user_objects.objects[*vid] = {fn, ptr, refs};
  return CUDA_SUCCESS;
}

void user_object_restore(Client& c, uint64_t vid, uint64_t fn, uint64_t ptr, uint64_t refs) {
  std::lock_guard<std::mutex> lock(c.user_objects.mu);
  c.handles.restore(vid, g_next_object.fetch_add(1));
  c.user_objects.objects[vid] = {fn, ptr, refs};
}

CUresult user_object_retain(Client& c, uint64_t vid, unsigned count) {
  std::lock_guard<std::mutex> lock(c.user_objects.mu);
  auto it = c.user_objects.objects.find(vid);
  if (it == c.user_objects.objects.end() || count == 0) return CUDA_ERROR_INVALID_VALUE;
  it->second.refs += count;
  return CUDA_SUCCESS;
}

CUresult user_object_release(Client& c, uint64_t vid, unsigned count) {
  std::vector<std::pair<uint64_t, uint64_t>> due;
  {
    std::lock_guard<std::mutex> lock(c.user_objects.mu);
    if (!drop(c, vid, count, &due)) return CUDA_ERROR_INVALID_VALUE;
  }
  run_due(c, due);
  return CUDA_SUCCESS;
}

CUresult graph_retain_user_object(Client& c, CUgraph g, uint64_t vid, unsigned count, unsigned flags) {
  if (count == 0 || (flags & ~unsigned(CU_GRAPH_USER_OBJECT_MOVE))) return CUDA_ERROR_INVALID_VALUE;
  std::lock_guard<std::mutex> lock(c.user_objects.mu);
  auto it = c.user_objects.objects.find(vid);
  if (it == c.user_objects.objects.end()) return CUDA_ERROR_INVALID_VALUE;
  // MOVE: the caller's references become the graph's; otherwise new ones.
  if (!(flags & CU_GRAPH_USER_OBJECT_MOVE)) it->second.refs += count;
  c.user_objects.held[key(g)][vid] += count;
  return CUDA_SUCCESS;
}

CUresult graph_release_user_object(Client& c, CUgraph g, uint64_t vid, unsigned count) {
  std::vector<std::pair<uint64_t, uint64_t>> due;
  {
    std::lock_guard<std::mutex> lock(c.user_objects.mu);
    auto h = c.user_objects.held.find(key(g));
    if (h == c.user_objects.held.end() || count == 0) return CUDA_ERROR_INVALID_VALUE;
    auto it = h->second.find(vid);
    if (it == h->second.end() || count > it->second) return CUDA_ERROR_INVALID_VALUE;
    if (!drop(c, vid, count, &due)) return CUDA_ERROR_INVALID_VALUE;
    if ((it->second -= count) == 0) h->second.erase(it);
  }
  run_due(c, due);
  return CUDA_SUCCESS;
}

void user_objects_copied(Client& c, const void* from, const void* to) {
  std::lock_guard<std::mutex> lock(c.user_objects.mu);
  auto h = c.user_objects.held.find(key(from));
  if (h == c.user_objects.held.end()) return;
  auto copy = h->second;
  for (auto& [vid, n] : copy) c.user_objects.objects[vid].refs += n;
  auto& dst = c.user_objects.held[key(to)];
  for (auto& [vid, n] : copy) dst[vid] += n;
}

void user_objects_dropped(Client& c, const void* holder) {
  std::vector<std::pair<uint64_t, uint64_t>> due;
  {
    std::lock_guard<std::mutex> lock(c.user_objects.mu);
    auto h = c.user_objects.held.find(key(holder));
    if (h == c.user_objects.held.end()) return;
    for (auto& [vid, n] : h->second) drop(c, vid, n, &due);
    c.user_objects.held.erase(h);
  }
  run_due(c, due);
}

}  // namespace sing::proxy
