// Nodes the proxy adds to a stream capture itself, for calls it emulates
// (graph memory, managed-memory prefetches): the backend never sees those
// calls, so their place in the capture's graph is made here, where the
// backend would have put it.
#pragma once
#include <vector>

#include "driver_api.h"

namespace sing::proxy {

// The capture's graph and the stream's current dependencies; an error unless
// the stream's capture is active.
CUresult capture_point(CUstream stream, bool ptds, CUgraph* graph, std::vector<CUgraphNode>* deps);
// The new node becomes the stream's only dependency, as a captured call's node does.
CUresult capture_advance(CUstream stream, bool ptds, CUgraphNode node);
// An empty node at the capture point (a captured call that does no work).
CUresult capture_empty_node(CUstream stream, bool ptds);

}  // namespace sing::proxy
