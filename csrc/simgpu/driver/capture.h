// Stream capture: work submitted to a capturing stream becomes graph nodes.
#pragma once

#include "stream.h"

namespace simgpu {

struct Event;
struct Graph;
struct GraphNode;
struct MemPool;

struct Capture {
  std::mutex mu;
  std::shared_ptr<Graph> graph;
  std::shared_ptr<Stream> origin;
  CUstreamCaptureMode mode = CU_STREAM_CAPTURE_MODE_GLOBAL;
  uint64_t id = 0;
  CUresult status = CUDA_SUCCESS;  // an error here invalidates the capture
  bool ended = false;
  unsigned long long thread = 0;   // the thread that began it
  // Every stream taking part, with the nodes its next work will depend on.
  struct Member {
    std::shared_ptr<Stream> stream;
    std::vector<GraphNode*> deps;
  };
  std::vector<Member> members;
  Member* member(Stream& s);
};

// Adds work submitted to a capturing stream as a node.
CUresult capture_work(Stream& s, Work&& w);
// Submitting to the legacy stream while a blocking stream of its context
// captures would make it depend on captured work: STREAM_CAPTURE_IMPLICIT.
CUresult capture_check_implicit(Stream& s);
// "Potentially unsafe" calls (synchronous copies, allocation, synchronisation)
// while this thread captures, or another thread captures in global mode.
CUresult capture_check_unsafe();
CUresult capture_record_event(Stream& s, Event& e, unsigned flags);
CUresult capture_wait_event(Stream& s, Event& e, unsigned flags);
// Marks the stream's capture invalid and returns `err`.
CUresult capture_invalidate(Stream& s, CUresult err);
// The stream is being destroyed: it leaves its capture.
void capture_abandon(Stream& s);
// Stream-ordered allocation inside a capture: graph memory.
CUresult capture_mem_alloc(Stream& s, uint64_t size, MemPool* pool, CUdeviceptr* out);
CUresult capture_mem_free(Stream& s, CUdeviceptr ptr);
// cuMemFreeAsync outside any graph of memory a graph allocated.
CUresult graph_mem_free_outside(CUdeviceptr ptr, Stream& s);

}  // namespace simgpu
