// CUDA graphs: nodes hold the same Work a stream call would run (work.h).
//
// An instantiated graph is a topologically sorted list of that work, run in
// order by one item on the launch stream.  Any topological order honours
// every edge, so running branches one after the other is a correct (if
// unhurried) schedule; it also makes graph launches deterministic.
#pragma once

#include "stream.h"

#include <unordered_map>

namespace simgpu {

struct Graph;

// Memory made by graph mem-alloc nodes.  Its address is fixed when the node
// is created, as CUDA specifies; here the backing also lives from then until
// the last graph / clone / executable that holds it is gone.
struct GraphMemory {
  ~GraphMemory();
  std::mutex mu;
  std::vector<uint64_t> addrs;
};

// cuUserObjectCreate: a reference-counted resource whose destructor runs
// (asynchronously, on its own thread) when the last reference goes.
struct UserObject : Object {
  UserObject() : Object(Kind::UserObject) {}
  CUuserObject handle() { return reinterpret_cast<CUuserObject>(this); }
  void* ptr = nullptr;
  CUhostFn destroy = nullptr;
  std::atomic<long long> refs{0};
  void retain(unsigned n) { refs.fetch_add(n); }
  void release(unsigned n);  // runs the destructor at zero
};

struct GraphNode : Object {
  GraphNode() : Object(Kind::GraphNode) {}
  CUgraphNode handle() { return reinterpret_cast<CUgraphNode>(this); }

  Graph* graph = nullptr;
  CUgraphNodeType type = CU_GRAPH_NODE_TYPE_EMPTY;
  Work work;
  uint64_t serial = 0;                 // creation order within the graph (clones keep it)
  std::vector<GraphNode*> deps, dependents;
  std::shared_ptr<Graph> child;        // CU_GRAPH_NODE_TYPE_GRAPH: the graph's own copy
  CUDA_MEMCPY3D copy{};                // memcpy nodes: parameters as given
  CUDA_MEMSET_NODE_PARAMS memset{};    // memset nodes
  CUcontext ctx = nullptr;
  CUDA_MEM_ALLOC_NODE_PARAMS alloc{};  // mem alloc nodes (dptr filled in)
  std::vector<CUmemAccessDesc> alloc_access;
  std::vector<void*> kparam_ptrs;      // kernel nodes: kernelParams view into the packed buffer
  std::vector<std::pair<int, CUkernelNodeAttrValue>> attrs;  // kernel nodes: attributes set
};

struct Graph : Object, std::enable_shared_from_this<Graph> {
  Graph() : Object(Kind::Graph) {}
  ~Graph() override;
  CUgraph handle() { return reinterpret_cast<CUgraph>(this); }

  std::mutex mu;
  std::vector<std::unique_ptr<GraphNode>> nodes;
  uint64_t next_serial = 1;
  // User-object references the graph holds (released when it is destroyed).
  std::vector<std::pair<std::shared_ptr<UserObject>, unsigned>> user_refs;
  std::shared_ptr<GraphMemory> memory = std::make_shared<GraphMemory>();
  bool published = false;  // has an application handle (not a child copy)

  GraphNode* add_node(CUgraphNodeType type, Work w, const CUgraphNode* deps, size_t n);
  // Registers node handles (a node handle's shared_ptr keeps the graph alive).
  void publish_node(GraphNode* n);
  void publish();
  // Deep copy (node serials preserved, work shared by value).
  std::shared_ptr<Graph> clone(std::unordered_map<const GraphNode*, GraphNode*>* map = nullptr);
  // Nodes in a deterministic topological order (by serial among ready nodes).
  std::vector<GraphNode*> topo_order();
};

// What a graph runs: its work in order, with child graphs flattened.
// Immutable once built (launches in flight share it), hence run through const_cast-free reads only.
struct Event;
struct GraphBody {
  std::vector<Work> items;
  std::vector<const GraphNode*> origin;
  std::shared_ptr<Graph> keep;  // the executable's graph: its user objects live while a launch runs  // the top-level graph node each item came from (null inside children)
  std::vector<std::shared_ptr<Event>> events;  // recorded by event-record nodes (bookkept at launch)
  std::vector<std::shared_ptr<GraphMemory>> memory;  // graph memory the body's addresses point into
};

struct GraphExec : Object {
  GraphExec() : Object(Kind::GraphExec) {}
  CUgraphExec handle() { return reinterpret_cast<CUgraphExec>(this); }

  std::shared_ptr<Graph> source;  // the graph it was instantiated from (a private clone)
  std::unordered_map<const GraphNode*, GraphNode*> map;  // application's node -> clone node
  std::mutex mu;
  std::shared_ptr<GraphBody> body;  // replaced (copy-on-write) by the exec-update calls
  std::unordered_map<const GraphNode*, bool> disabled;
  unsigned long long flags = 0;
  CUcontext ctx = nullptr;
  std::weak_ptr<Stream> last_stream;  // launches of one executable run in order
  uint64_t last_seq = 0;
  CUresult rebuild();
};

CUresult lookup_graph(CUgraph h, std::shared_ptr<Graph>& out);
CUresult lookup_node(CUgraphNode h, std::shared_ptr<GraphNode>& out);
// Builds the body of a graph (used for executables and child graph nodes).
CUresult build_body(Graph& g, const std::unordered_map<const GraphNode*, bool>* disabled,
                    std::shared_ptr<GraphBody>& out);
// Runs a graph body on a stream worker (exec.cpp calls this for GraphBodyWork).
void run_graph_body(const GraphBody& b, Stream& s);
// Kernel node parameters (v2 layout) to work; validated like a launch.
CUresult kernel_work_from_params(const CUDA_KERNEL_NODE_PARAMS& p, KernelWork& out, std::vector<void*>& views);

}  // namespace simgpu
