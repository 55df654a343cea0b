// What the proxy records about graph executables for checkpoints, and the
// calls its graph handlers make to keep it (graph_image.h explains why; kept
// apart from it so that client.h does not pull in the JSON library).
#pragma once
#include <cstdint>
#include <map>
#include <mutex>
#include <string>

#include "driver_api.h"

namespace sing::proxy {

class Client;

struct ExecRecord {
  uint64_t graph = 0;     // the app's id of the graph it was instantiated from
  uint64_t flags = 0;     // instantiation flags
  std::string recipe;     // that graph's recipe then (JSON); empty: see `unsupported`
  std::string unsupported;  // why the recipe could not be taken
  bool changed = false;   // updated since instantiation: not recordable yet
};

struct GraphRecords {
  std::mutex mu;
  std::map<uint64_t, ExecRecord> execs;  // executable id -> record
};

// Called by the instantiation handlers once `x` exists.
void graph_exec_instantiated(Client& c, CUgraph g, CUgraphExec x, uint64_t flags);
// Called before any call that changes executable `exec_vid` in place.
void graph_exec_changed(Client& c, uint64_t exec_vid);
void graph_exec_gone(Client& c, uint64_t exec_vid);
// The opcodes that change an executable in place (its id is their first argument).
bool changes_graph_exec(uint16_t op);

}  // namespace sing::proxy
