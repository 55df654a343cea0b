// Graphs, executables and user objects in checkpoint images (docs/checkpoint.md).
//
// A graph is saved as a recipe read back from the backend when the image is
// written: its nodes in the backend's order (type, parameters with the app's
// ids, the node's own id) and its edges.  An executable cannot be read back
// (CUDA has no getter for what an instantiation holds), so the proxy takes
// its graph's recipe when it is instantiated, and a restore instantiates that
// recipe again: from the restored graph itself when the graph is still
// unchanged (node-based executable updates keep working), else from a private
// graph built from the recipe.  An executable changed after instantiation
// (cuGraphExecUpdate, cuGraphExec*SetParams, cuGraphNodeSetEnabled) is not
// recorded yet and makes a checkpoint refuse.
#pragma once
#include <nlohmann/json.hpp>
#include <string>

#include "driver_api.h"
#include "graph_records.h"

namespace sing::proxy {

class Client;

// The recipe of backend graph `g`; false (and why) for a node type or a node
// feature images do not hold yet.
bool graph_recipe(Client& c, CUgraph g, nlohmann::json* out, std::string& why);

// Writes "graphs", "graph_execs" and "user_objects" into image `m`.
bool save_graph_objects(Client& c, nlohmann::json* m, std::string& error);
// Recreates them (after streams, events, functions), binding the same ids.
bool load_graph_objects(Client& c, const nlohmann::json& m, std::string& error);

}  // namespace sing::proxy
