#include "graph_image.h"

#include <cstring>
#include <vector>

#include "backend.h"
#include "client.h"
#include "graph_memory.h"
#include "graph_node_params.h"
#include "hostfn.h"
#include "log.h"
#include "translate.h"
#include "user_objects.h"
#include "wire/opcodes.h"

namespace sing::proxy {

using json = nlohmann::json;

namespace {

std::string hex(const void* p, size_t n) {
  static const char* d = "0123456789abcdef";
  std::string s;
  s.reserve(n * 2);
  for (size_t i = 0; i < n; ++i) {
    const uint8_t b = static_cast<const uint8_t*>(p)[i];
    s += d[b >> 4];
    s += d[b & 15];
  }
  return s;
}

bool unhex(const json& j, std::vector<uint8_t>* out) {
  if (!j.is_string()) return false;
  const std::string s = j.get<std::string>();
  if (s.size() % 2) return false;
  out->resize(s.size() / 2);
  for (size_t i = 0; i < out->size(); ++i) {
    const std::string byte = s.substr(2 * i, 2);
    char* end = nullptr;
    const unsigned long v = std::strtoul(byte.c_str(), &end, 16);
    if (end != byte.c_str() + 2) return false;
    (*out)[i] = uint8_t(v);
  }
  return true;
}

template <class T>
bool unhex_struct(const json& j, T* out) {
  std::vector<uint8_t> b;
  if (!unhex(j, &b) || b.size() != sizeof(T)) return false;
  std::memcpy(out, b.data(), sizeof(T));
  return true;
}

template <class T>
uint64_t app_id(Client& c, T real) {
  return reinterpret_cast<uint64_t>(to_app(c, real));
}

template <class T>
bool real_of(Client& c, const json& vid, T* out) {
  return to_real(c, reinterpret_cast<T>(vid.get<uint64_t>()), out) == CUDA_SUCCESS;
}

std::vector<CUgraphNode> nodes_of(CUgraph g, bool* ok) {
  size_t n = 0;
  *ok = BACKEND(cuGraphGetNodes)(g, nullptr, &n) == CUDA_SUCCESS;
  std::vector<CUgraphNode> nodes(n);
  if (*ok && n) *ok = BACKEND(cuGraphGetNodes)(g, nodes.data(), &n) == CUDA_SUCCESS;
  nodes.resize(std::min(n, nodes.size()));
  return nodes;
}

bool node_recipe(Client& c, CUgraphNode n, json* out, std::string& why) {
  CUgraphNodeType type;
  if (BACKEND(cuGraphNodeGetType)(n, &type) != CUDA_SUCCESS) {
    why = "a graph node cannot be read back";
    return false;
  }
  EmulatedNode emulated;
  if (graph_mem_node(c, n, &emulated)) {
    why = "graph memory nodes (allocation/free) are not in checkpoint images yet";
    return false;
  }
  json& j = *out;
  j["id"] = app_id(c, n);
  j["type"] = int(type);
  switch (type) {
    case CU_GRAPH_NODE_TYPE_EMPTY:
      return true;
    case CU_GRAPH_NODE_TYPE_KERNEL: {
      CUDA_KERNEL_NODE_PARAMS p{};
      if (BACKEND(cuGraphKernelNodeGetParams_v2)(n, &p) != CUDA_SUCCESS) break;
      j["kernel"] = p.func == nullptr;
      j["fn"] = p.func ? app_id(c, p.func) : app_id(c, p.kern);
      j["ctx"] = app_id(c, p.ctx);
      j["grid"] = {p.gridDimX, p.gridDimY, p.gridDimZ};
      j["block"] = {p.blockDimX, p.blockDimY, p.blockDimZ};
      j["shared"] = p.sharedMemBytes;
      const std::vector<uint8_t> args = kernel_args(p);
      j["args"] = hex(args.data(), args.size());
      return true;
    }
    case CU_GRAPH_NODE_TYPE_MEMCPY: {
      CUDA_MEMCPY3D p{};
      if (BACKEND(cuGraphMemcpyNodeGetParams)(n, &p) != CUDA_SUCCESS) break;
      if (p.srcMemoryType == CU_MEMORYTYPE_ARRAY || p.dstMemoryType == CU_MEMORYTYPE_ARRAY) break;
      // Every address is the app's: device memory and shared host memory come
      // back at the same addresses.
      j["params"] = hex(&p, sizeof(p));
      return true;
    }
    case CU_GRAPH_NODE_TYPE_MEMSET: {
      CUDA_MEMSET_NODE_PARAMS p{};
      if (BACKEND(cuGraphMemsetNodeGetParams)(n, &p) != CUDA_SUCCESS) break;
      j["params"] = hex(&p, sizeof(p));
      return true;
    }
    case CU_GRAPH_NODE_TYPE_HOST: {
      CUDA_HOST_NODE_PARAMS p{};
      if (BACKEND(cuGraphHostNodeGetParams)(n, &p) != CUDA_SUCCESS || p.fn != host_trampoline()) break;
      std::lock_guard<std::mutex> lock(c.host_records.mu);
      if (!c.host_records.live.count(p.userData)) break;
      auto* rec = static_cast<const HostRecord*>(p.userData);
      j["fn"] = rec->fn;
      j["data"] = rec->user_data;
      j["stream"] = rec->stream;
      j["kind"] = rec->kind;
      return true;
    }
    case CU_GRAPH_NODE_TYPE_EVENT_RECORD:
    case CU_GRAPH_NODE_TYPE_WAIT_EVENT: {
      CUevent ev = nullptr;
      CUresult r = type == CU_GRAPH_NODE_TYPE_EVENT_RECORD ? BACKEND(cuGraphEventRecordNodeGetEvent)(n, &ev)
                                                           : BACKEND(cuGraphEventWaitNodeGetEvent)(n, &ev);
      if (r != CUDA_SUCCESS) break;
      j["event"] = app_id(c, ev);
      return true;
    }
    default:
      why = "graph nodes of type " + std::to_string(int(type)) +
            " (child graphs, memory, batch-memop, semaphore or conditional nodes) are not in checkpoint images yet";
      return false;
  }
  if (why.empty()) why = "a graph node of type " + std::to_string(int(type)) + " cannot be read back";
  return false;
}

// Adds one node of a recipe to backend graph `g`, without dependencies.
bool add_node(Client& c, CUgraph g, const json& j, CUcontext ctx, CUgraphNode* node, std::string& error) {
  const int type = j.at("type");
  CUresult r = CUDA_ERROR_INVALID_VALUE;
  switch (type) {
    case CU_GRAPH_NODE_TYPE_EMPTY:
      r = BACKEND(cuGraphAddEmptyNode)(node, g, nullptr, 0);
      break;
    case CU_GRAPH_NODE_TYPE_KERNEL: {
      CUDA_KERNEL_NODE_PARAMS p{};
      const bool is_kernel = j.at("kernel");
      if (is_kernel ? !real_of(c, j.at("fn"), &p.kern) : !real_of(c, j.at("fn"), &p.func)) {
        error = "a kernel node of the image names a function that was not restored";
        return false;
      }
      if (!real_of(c, j.at("ctx"), &p.ctx)) {
        error = "a kernel node of the image names a context that was not restored";
        return false;
      }
      p.gridDimX = j.at("grid")[0], p.gridDimY = j.at("grid")[1], p.gridDimZ = j.at("grid")[2];
      p.blockDimX = j.at("block")[0], p.blockDimY = j.at("block")[1], p.blockDimZ = j.at("block")[2];
      p.sharedMemBytes = j.at("shared");
      std::vector<uint8_t> args;
      if (!unhex(j.at("args"), &args)) {
        error = "a kernel node of the image is malformed";
        return false;
      }
      size_t size = args.size();
      void* extra[5] = {CU_LAUNCH_PARAM_BUFFER_POINTER, args.data(), CU_LAUNCH_PARAM_BUFFER_SIZE, &size,
                        CU_LAUNCH_PARAM_END};
      if (!args.empty()) p.extra = extra;  // the backend copies the buffer
      r = BACKEND(cuGraphAddKernelNode_v2)(node, g, nullptr, 0, &p);
      break;
    }
    case CU_GRAPH_NODE_TYPE_MEMCPY: {
      CUDA_MEMCPY3D p{};
      if (!unhex_struct(j.at("params"), &p)) {
        error = "a memcpy node of the image is malformed";
        return false;
      }
      r = BACKEND(cuGraphAddMemcpyNode)(node, g, nullptr, 0, &p, ctx);
      break;
    }
    case CU_GRAPH_NODE_TYPE_MEMSET: {
      CUDA_MEMSET_NODE_PARAMS p{};
      if (!unhex_struct(j.at("params"), &p)) {
        error = "a memset node of the image is malformed";
        return false;
      }
      r = BACKEND(cuGraphAddMemsetNode)(node, g, nullptr, 0, &p, ctx);
      break;
    }
    case CU_GRAPH_NODE_TYPE_HOST: {
      HostRecord* rec = persistent_host_record(c, j.at("fn"), j.at("data"), j.at("stream"), j.at("kind"));
      if (!rec) {
        error = "out of memory";
        return false;
      }
      CUDA_HOST_NODE_PARAMS p{host_trampoline(), rec};
      r = BACKEND(cuGraphAddHostNode)(node, g, nullptr, 0, &p);
      break;
    }
    case CU_GRAPH_NODE_TYPE_EVENT_RECORD:
    case CU_GRAPH_NODE_TYPE_WAIT_EVENT: {
      CUevent ev = nullptr;
      if (!real_of(c, j.at("event"), &ev)) {
        error = "an event node of the image names an event that was not restored";
        return false;
      }
      r = type == CU_GRAPH_NODE_TYPE_EVENT_RECORD ? BACKEND(cuGraphAddEventRecordNode)(node, g, nullptr, 0, ev)
                                                  : BACKEND(cuGraphAddEventWaitNode)(node, g, nullptr, 0, ev);
      break;
    }
    default:
      error = "a graph node of the image has type " + std::to_string(type) + ", which images do not hold";
      return false;
  }
  if (r != CUDA_SUCCESS) {
    error = "cannot recreate a graph node of type " + std::to_string(type) + " (CUresult " + std::to_string(int(r)) +
            ")";
    return false;
  }
  return true;
}

// A backend graph from a recipe.  `bind` rebinds the recipe's node ids to the
// new nodes (the app's own graph); a private graph for an executable leaves
// them to the graph they belong to.
bool build_graph(Client& c, const json& recipe, bool bind, CUgraph* out, std::string& error) {
  CUgraph g = nullptr;
  if (BACKEND(cuGraphCreate)(&g, 0) != CUDA_SUCCESS) {
    error = "cannot create a graph of the image";
    return false;
  }
  CUcontext ctx = nullptr;
  BACKEND(cuCtxGetCurrent)(&ctx);
  std::map<uint64_t, CUgraphNode> by_id;
  bool ok = true;
  for (auto& j : recipe.at("nodes")) {
    CUgraphNode n = nullptr;
    if (!(ok = add_node(c, g, j, ctx, &n, error))) break;
    by_id[j.at("id").get<uint64_t>()] = n;
  }
  std::vector<CUgraphNode> from, to;
  for (auto& e : recipe.at("edges")) {
    if (!ok) break;
    auto a = by_id.find(e[0].get<uint64_t>()), b = by_id.find(e[1].get<uint64_t>());
    if (a == by_id.end() || b == by_id.end()) {
      error = "an edge of a graph of the image names a node it does not have";
      ok = false;
      break;
    }
    from.push_back(a->second);
    to.push_back(b->second);
  }
  if (ok && !from.empty() && BACKEND(cuGraphAddDependencies)(g, from.data(), to.data(), from.size()) != CUDA_SUCCESS) {
    error = "cannot recreate the edges of a graph of the image";
    ok = false;
  }
  if (!ok) {
    BACKEND(cuGraphDestroy)(g);
    return false;
  }
  if (bind)
    for (auto& [vid, n] : by_id) c.handles.restore(vid, reinterpret_cast<uint64_t>(n));
  *out = g;
  return true;
}

}  // namespace

bool graph_recipe(Client& c, CUgraph g, json* out, std::string& why) {
  if (graph_has_mem_nodes(c, g)) {
    why = "graph memory nodes (allocation/free) are not in checkpoint images yet";
    return false;
  }
  bool ok = false;
  std::vector<CUgraphNode> nodes = nodes_of(g, &ok);
  if (!ok) {
    why = "a graph cannot be read back";
    return false;
  }
  json list = json::array();
  for (CUgraphNode n : nodes) {
    json j;
    if (!node_recipe(c, n, &j, why)) return false;
    list.push_back(std::move(j));
  }
  size_t num = 0;
  if (BACKEND(cuGraphGetEdges)(g, nullptr, nullptr, &num) != CUDA_SUCCESS) {
    why = "the edges of a graph cannot be read back";
    return false;
  }
  std::vector<CUgraphNode> from(num), to(num);
  if (num && BACKEND(cuGraphGetEdges)(g, from.data(), to.data(), &num) != CUDA_SUCCESS) {
    why = "the edges of a graph cannot be read back";
    return false;
  }
  json edges = json::array();
  for (size_t i = 0; i < std::min(num, from.size()); ++i) edges.push_back({app_id(c, from[i]), app_id(c, to[i])});
  *out = {{"nodes", list}, {"edges", edges}};
  return true;
}

void graph_exec_instantiated(Client& c, CUgraph g, CUgraphExec x, uint64_t flags) {
  ExecRecord rec;
  rec.graph = app_id(c, g);
  rec.flags = flags;
  json recipe;
  // Taken now: the graph may change or go before the checkpoint.
  if (graph_recipe(c, g, &recipe, rec.unsupported)) rec.recipe = recipe.dump();
  const uint64_t vid = app_id(c, x);
  std::lock_guard<std::mutex> lock(c.graph_records.mu);
  c.graph_records.execs[vid] = std::move(rec);
}

void graph_exec_changed(Client& c, uint64_t exec_vid) {
  std::lock_guard<std::mutex> lock(c.graph_records.mu);
  auto it = c.graph_records.execs.find(exec_vid);
  if (it != c.graph_records.execs.end()) it->second.changed = true;
}

void graph_exec_gone(Client& c, uint64_t exec_vid) {
  std::lock_guard<std::mutex> lock(c.graph_records.mu);
  c.graph_records.execs.erase(exec_vid);
}

bool changes_graph_exec(uint16_t op) {
  switch (op) {
    case wire::kOp_cuGraphExecChildGraphNodeSetParams:
    case wire::kOp_cuGraphExecEventRecordNodeSetEvent:
    case wire::kOp_cuGraphExecEventWaitNodeSetEvent:
    case wire::kOp_cuGraphExecHostNodeSetParams:
    case wire::kOp_cuGraphExecKernelNodeSetParams:
    case wire::kOp_cuGraphExecKernelNodeSetParams_v2:
    case wire::kOp_cuGraphExecMemcpyNodeSetParams:
    case wire::kOp_cuGraphExecMemsetNodeSetParams:
    case wire::kOp_cuGraphExecNodeSetParams:
    case wire::kOp_cuGraphExecUpdate:
    case wire::kOp_cuGraphExecUpdate_v2:
    case wire::kOp_cuGraphNodeSetEnabled:
      return true;
    default:
      return false;
  }
}

bool save_graph_objects(Client& c, json* m, std::string& error) {
  json graphs = json::array(), execs = json::array(), objects = json::array();
  std::map<uint64_t, uint64_t> holder_vid;  // backend graph or exec -> app id
  std::map<uint64_t, std::string> recipes;  // graph id -> its recipe now
  for (auto& [vid, real] : c.handles.live(HandleKind::Graph)) {
    json recipe;
    std::string why;
    if (!graph_recipe(c, reinterpret_cast<CUgraph>(real), &recipe, why)) {
      error = why;
      return false;
    }
    recipes[vid] = recipe.dump();
    holder_vid[real] = vid;
    graphs.push_back({{"vid", vid}, {"recipe", recipe}});
  }
  // Every node id the app holds belongs to one of those graphs (ids of nodes
  // in a child graph's embedded copy would not come back).
  size_t nodes = 0;
  for (auto& g : graphs) nodes += g.at("recipe").at("nodes").size();
  if (c.handles.live(HandleKind::GraphNode).size() > nodes) {
    error = "the job holds ids of graph nodes outside its graphs (child graphs): not in checkpoint images yet";
    return false;
  }
  {
    std::lock_guard<std::mutex> lock(c.graph_records.mu);
    for (auto& [vid, real] : c.handles.live(HandleKind::GraphExec)) {
      auto it = c.graph_records.execs.find(vid);
      if (it == c.graph_records.execs.end()) {
        error = "a graph executable of the job was made in a way images do not record yet";
        return false;
      }
      const ExecRecord& rec = it->second;
      if (!rec.unsupported.empty()) {
        error = rec.unsupported;
        return false;
      }
      if (rec.changed) {
        error = "a graph executable was updated after instantiation (cuGraphExecUpdate, cuGraphExec*SetParams, "
                "cuGraphNodeSetEnabled): not in checkpoint images yet";
        return false;
      }
      auto g = recipes.find(rec.graph);
      const bool same = g != recipes.end() && g->second == rec.recipe;
      holder_vid[real] = vid;
      execs.push_back({{"vid", vid}, {"graph", rec.graph}, {"flags", rec.flags}, {"same_as_graph", same},
                       {"recipe", json::parse(rec.recipe)}});
    }
  }
  {
    std::lock_guard<std::mutex> lock(c.user_objects.mu);
    for (auto& [vid, o] : c.user_objects.objects)
      objects.push_back({{"vid", vid}, {"fn", o.fn}, {"ptr", o.ptr}, {"refs", o.refs}});
    json held = json::array();
    for (auto& [holder, refs] : c.user_objects.held) {
      auto h = holder_vid.find(holder);
      if (h == holder_vid.end()) {
        error = "a user object is held by a graph the image does not hold";
        return false;
      }
      for (auto& [obj, count] : refs) held.push_back({h->second, obj, count});
    }
    (*m)["user_object_refs"] = held;
  }
  (*m)["graphs"] = graphs;
  (*m)["graph_execs"] = execs;
  (*m)["user_objects"] = objects;
  return true;
}

bool load_graph_objects(Client& c, const json& m, std::string& error) {
  // Images written before graphs were recorded have none of these sections.
  std::map<uint64_t, uint64_t> holder_real;  // graph or exec id -> backend handle
  for (auto& g : m.value("graphs", json::array())) {
    CUgraph real = nullptr;
    if (!build_graph(c, g.at("recipe"), true, &real, error)) return false;
    const uint64_t vid = g.at("vid");
    c.handles.restore(vid, reinterpret_cast<uint64_t>(real));
    holder_real[vid] = reinterpret_cast<uint64_t>(real);
  }
  for (auto& x : m.value("graph_execs", json::array())) {
    const uint64_t vid = x.at("vid"), graph_vid = x.at("graph");
    const uint64_t flags = x.at("flags").get<uint64_t>() & ~uint64_t(CUDA_GRAPH_INSTANTIATE_FLAG_UPLOAD);
    CUgraph from = nullptr;
    bool own = false;
    if (x.at("same_as_graph").get<bool>()) {
      if (!real_of(c, json(graph_vid), &from)) {
        error = "a graph executable of the image names a graph it does not hold";
        return false;
      }
    } else {
      if (!build_graph(c, x.at("recipe"), false, &from, error)) return false;
      own = true;
    }
    CUgraphExec exec = nullptr;
    CUresult r = BACKEND(cuGraphInstantiateWithFlags)(&exec, from, flags);
    if (own) BACKEND(cuGraphDestroy)(from);  // an executable does not need its graph
    if (r != CUDA_SUCCESS) {
      error = "cannot instantiate a graph executable of the image (CUresult " + std::to_string(int(r)) + ")";
      return false;
    }
    c.handles.restore(vid, reinterpret_cast<uint64_t>(exec));
    holder_real[vid] = reinterpret_cast<uint64_t>(exec);
    ExecRecord rec;
    rec.graph = graph_vid;
    rec.flags = x.at("flags");
    rec.recipe = x.at("recipe").dump();
    std::lock_guard<std::mutex> lock(c.graph_records.mu);
    c.graph_records.execs[vid] = std::move(rec);
  }
  for (auto& o : m.value("user_objects", json::array()))
    user_object_restore(c, o.at("vid"), o.at("fn"), o.at("ptr"), o.at("refs"));
  std::lock_guard<std::mutex> lock(c.user_objects.mu);
  for (auto& h : m.value("user_object_refs", json::array())) {
    auto it = holder_real.find(h[0].get<uint64_t>());
    if (it == holder_real.end() || !c.user_objects.objects.count(h[1].get<uint64_t>())) {
      error = "a user object reference of the image names an unknown graph or object";
      return false;
    }
    c.user_objects.held[it->second][h[1].get<uint64_t>()] = h[2].get<uint64_t>();
  }
  return true;
}

}  // namespace sing::proxy
