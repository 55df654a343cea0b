// Records of the hand-written graph and stream-capture calls (shim
// custom_graph*.cpp / custom_capture.cpp, proxy custom_graph*.cpp).  Node,
// graph, stream and event handles travel as the app's ids (uint64_t); arrays
// of ids follow their header inline.  Sizes pinned by
// csrc/tests/test_wire_layout.cpp.
#pragma once
#include <cstdint>

namespace sing::wire {

// Most node ids one record may carry (dependencies, edges): far above any
// real graph's fan-in, and keeps a record well inside kMaxRecordBytes.
inline constexpr uint64_t kMaxGraphIds = 16384;

// cuGraphAdd*Node: the graph and its dependencies (num_deps ids follow),
// then the node type's own record.  Answer: the new node's id.
struct GraphNodeAdd {
  uint64_t graph;
  uint64_t num_deps;
};
static_assert(sizeof(GraphNodeAdd) == 16);

// Kernel node parameters, in both directions.  The parameters are packed
// with the function's layout (as for launches, payloads.h LaunchRequest),
// param_bytes of them following when has_params.
struct KernelNodeParams {
  uint64_t function;  // function or kernel id
  uint64_t ctx;       // context id, 0 for the function's own
  uint32_t grid[3];
  uint32_t block[3];
  uint32_t shared_bytes;
  uint32_t param_bytes;
  uint32_t has_params;
  uint32_t reserved;
};
static_assert(sizeof(KernelNodeParams) == 56);

// Host node parameters: the app's function and argument, run in the app.
struct HostNodeParams {
  uint64_t fn;
  uint64_t user_data;
};
static_assert(sizeof(HostNodeParams) == 16);

// Graph memory-allocation node: followed by num_access CUmemAccessDesc.  The
// pool properties travel as CUmemPoolProps (a vendor struct of fixed ABI)
// right after this header.  Answer: the node id, then the device address.
struct MemAllocNodeRequest {
  uint64_t bytes;
  uint64_t num_access;
};
static_assert(sizeof(MemAllocNodeRequest) == 16);

// Queries that fill arrays of node ids (cuGraphGetNodes, ...): the proxy
// runs the call with the app's capacity and answers one page of the arrays,
// entries [offset, offset + count), so any array size fits the response
// area.  Request tail: capacity, offset, which arrays the app passed.
enum ListArrays : uint32_t { kListFirst = 1, kListSecond = 2, kListEdgeData = 4 };
struct ListRequest {
  uint64_t capacity;  // the app's *num on entry
  uint64_t offset;
  uint32_t arrays;    // ListArrays bits
  uint32_t reserved;
};
static_assert(sizeof(ListRequest) == 24);
// Answer: the call's *num on return, then `count` ids per requested id
// array, then `count` CUgraphEdgeData when asked.
struct ListAnswer {
  uint64_t num;
  uint64_t count;
};
static_assert(sizeof(ListAnswer) == 16);

// cuStreamGetCaptureInfo_v2/_v3 answer: followed by num_deps node ids and,
// when has_edges, num_deps CUgraphEdgeData.
struct CaptureInfo {
  uint32_t status;  // CUstreamCaptureStatus
  uint32_t has_edges;
  uint64_t id;
  uint64_t graph;
  uint64_t num_deps;
};
static_assert(sizeof(CaptureInfo) == 32);

}  // namespace sing::wire
