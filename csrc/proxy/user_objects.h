// User objects (cuUserObjectCreate, cuGraphRetainUserObject), emulated by the
// proxy.  Their destructor is the app's code, run when the last reference
// goes; a driver may drop that reference on any of its threads at any time
// (an executable finishing, a graph destroyed), possibly after the client
// itself is gone.  So the proxy keeps the reference counts itself: graphs
// and executables hold references as CUDA specifies (a clone copies its
// graph's, an executable takes its graph's at instantiation), and the
// destructor is posted to the app, without waiting, when the count reaches
// zero.  The backend never sees a user object.
#pragma once
#include <cstdint>
#include <map>
#include <mutex>

#include "driver_api.h"

namespace sing::proxy {

class Client;

struct UserObjectState {
  struct Object {
    uint64_t fn, ptr;  // the app's destructor and its argument
    uint64_t refs;
  };
  std::mutex mu;
  std::map<uint64_t, Object> objects;                         // user object vid -> object
  std::map<uint64_t, std::map<uint64_t, uint64_t>> held;      // backend graph or exec -> {vid -> count}
};

CUresult user_object_create(Client& c, uint64_t fn, uint64_t ptr, unsigned refs, unsigned flags, uint64_t* vid);
CUresult user_object_retain(Client& c, uint64_t vid, unsigned count);
CUresult user_object_release(Client& c, uint64_t vid, unsigned count);
CUresult graph_retain_user_object(Client& c, CUgraph g, uint64_t vid, unsigned count, unsigned flags);
CUresult graph_release_user_object(Client& c, CUgraph g, uint64_t vid, unsigned count);
// A graph or executable copies another's references (clone, instantiate),
// or drops all of its own (destroyed).
void user_objects_copied(Client& c, const void* from, const void* to);
void user_objects_dropped(Client& c, const void* holder);
// A user object of a checkpoint image, under its id (graph_image.h).
void user_object_restore(Client& c, uint64_t vid, uint64_t fn, uint64_t ptr, uint64_t refs);

}  // namespace sing::proxy
