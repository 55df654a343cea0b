// Graph memory nodes, emulated by the proxy.
//
// A driver's memory-allocation node (cuGraphAddMemAllocNode, or
// cuMemAllocAsync captured into a graph) places its memory wherever the
// driver's graph pool lives: outside the job's address range, where a
// checkpoint could not find it and a restore could not put it back.  So the
// proxy makes these nodes itself: the memory comes from the client's heap
// (inside the job range, fixed when the node is made, as CUDA specifies), and
// the backend graph holds an empty node in its place, which keeps the node's
// position and edges.  The node's type and parameters are answered here.
//
// The memory stays mapped from the node's creation until the last graph,
// clone or executable that can run the node is gone (as libsimgpu does);
// between the free node and the next launch the app must not use it, exactly
// as on a GPU, but nothing stops it from doing so.
#pragma once
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <vector>

#include "driver_api.h"

namespace sing::proxy {

class Client;

// The memory of one graph's allocation nodes, shared by its clones and the
// executables made from them.
struct GraphMemory {
  struct Block {
    uint64_t ptr, bytes;
    int device;
  };
  std::vector<Block> blocks;
};

struct EmulatedNode {
  CUgraphNodeType type;  // MEM_ALLOC or MEM_FREE
  uint64_t graph;        // the backend graph holding the node
  uint64_t dptr;
  uint64_t bytes;
  CUmemPoolProps props;
  std::vector<CUmemAccessDesc> access;
};

struct GraphMemoryState {
  std::mutex mu;
  std::map<uint64_t, EmulatedNode> nodes;                                  // backend node -> emulation
  std::map<uint64_t, std::shared_ptr<GraphMemory>> by_graph;               // backend graph -> its memory
  std::map<uint64_t, std::vector<std::shared_ptr<GraphMemory>>> by_exec;   // backend exec -> memory it runs on
  std::map<int, uint64_t> used, high;                                      // per device, bytes
};

// An allocation node in `graph` after `deps`: memory from the client's heap,
// an empty node in the backend graph.
CUresult graph_mem_alloc_node(Client& c, CUgraph graph, const CUgraphNode* deps, size_t n,
                              const CUmemPoolProps& props, uint64_t bytes, const std::vector<CUmemAccessDesc>& access,
                              CUgraphNode* out, uint64_t* dptr);
// A free node of memory allocated by one of this graph's allocation nodes.
CUresult graph_mem_free_node(Client& c, CUgraph graph, const CUgraphNode* deps, size_t n, uint64_t dptr,
                             CUgraphNode* out);
// The emulation of a backend node, if it is one (copied out).
bool graph_mem_node(Client& c, CUgraphNode node, EmulatedNode* out);
bool graph_has_mem_nodes(Client& c, CUgraph graph);
// Memory made by a graph allocation node (any graph of this client).
bool is_graph_memory(Client& c, uint64_t ptr);

// Bookkeeping of the backend calls that copy or drop graphs and executables.
void graph_mem_cloned(Client& c, CUgraph from, CUgraph clone);
void graph_mem_instantiated(Client& c, CUgraph graph, CUgraphExec exec);
void graph_mem_graph_gone(Client& c, CUgraph graph);
void graph_mem_exec_gone(Client& c, CUgraphExec exec);
void graph_mem_node_gone(Client& c, CUgraphNode node);
// The client is gone: its heap goes as a whole, only the records are dropped.
void graph_mem_clear(Client& c);

// cuDeviceGetGraphMemAttribute / cuDeviceSetGraphMemAttribute over the
// emulated memory of this client.  `attr` as the app sent it: any value.
CUresult graph_mem_attribute(Client& c, int device, uint32_t attr, uint64_t* value);
CUresult graph_mem_reset_high(Client& c, int device, uint32_t attr, uint64_t value);

// Stream-ordered allocation on a capturing stream becomes an allocation (free)
// node of the capture's graph, after the stream's current dependencies.
CUresult capture_mem_alloc(Client& c, CUstream stream, bool ptds, int device, uint64_t bytes, uint64_t* dptr);
CUresult capture_mem_free(Client& c, CUstream stream, bool ptds, uint64_t dptr);
// The stream's capture status (NONE when the backend cannot say).
CUstreamCaptureStatus capture_status(CUstream stream, bool ptds);

// Whether an "unsafe" call (cuMemAlloc, cuMemFree, ...) is allowed on this
// thread now, given the captures in progress and the thread's capture mode.
// The proxy serves cuMemAlloc on its own heap without any such call reaching
// the backend, so it asks the backend the question cuMemAlloc would.
CUresult capture_permits_unsafe_call();

}  // namespace sing::proxy
