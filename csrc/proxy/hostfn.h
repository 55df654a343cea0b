// Host functions the proxy asks the app to run (custom_hostfn.cpp).  A
// record names the app's function and argument; the backend driver calls a
// trampoline with it.  cuLaunchHostFunc's records run once and free
// themselves.  Graph host nodes and host functions captured into a graph run
// once per launch of the graph, for as long as the graph lives: their records
// belong to the client and go with it.
#pragma once
#include <array>
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <set>

#include "driver_api.h"

namespace sing::proxy {

class Client;

struct HostRecord {
  Client* client;
  uint64_t fn, user_data, stream;
  uint32_t kind;  // wire::CallbackKind
  bool once;      // free after the first run
};

// The client's long-lived records, one per distinct (fn, data, stream, kind).
struct HostRecords {
  std::mutex mu;
  std::map<std::array<uint64_t, 4>, std::unique_ptr<HostRecord>> by_key;
  std::set<const void*> live;
};

// Runs a user object's destructor in the app, without waiting for it (as a
// driver runs them, asynchronously; user_objects.h).
void post_user_destructor(Client& c, uint64_t fn, uint64_t ptr);
// The trampoline the backend calls with a HostRecord*.
CUhostFn host_trampoline();
// A long-lived record for this function of the app (null if out of memory).
HostRecord* persistent_host_record(Client& c, uint64_t fn, uint64_t user_data, uint64_t stream, uint32_t kind);
// The app's function and argument behind (trampoline, data) as the backend
// reports a host node; false when the pair is not one of this client's.
bool host_record_lookup(Client& c, CUhostFn fn, void* data, uint64_t* app_fn, uint64_t* app_data);

}  // namespace sing::proxy
