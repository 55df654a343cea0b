// Events: a record is a point in one stream, (stream, sequence number).
#pragma once

#include "stream.h"

namespace simgpu {

struct GraphNode;

struct Event : Object {
  Event() : Object(Kind::Event) {}
  CUevent handle() { return reinterpret_cast<CUevent>(this); }

  std::shared_ptr<Context> ctx;
  unsigned flags = 0;

  std::mutex mu;  // guards the rest
  bool recorded = false;
  std::shared_ptr<Stream> stream;  // null when the last record completed at once (inline)
  uint64_t seq = 0;
  uint64_t gen = 0;       // records so far; each record's work carries its number
  uint64_t time_gen = 0;  // which record time_ns belongs to
  uint64_t time_ns = 0;
  // Last recorded in a capturing stream: the capture and the nodes it stood for.
  std::shared_ptr<Capture> capture;
  std::vector<GraphNode*> capture_nodes;

  bool timing() const { return !(flags & CU_EVENT_DISABLE_TIMING); }
  // Whether the last record has completed.
  bool done();
  // Records at the current end of `s` (not capture).  Completes at once when s is idle.
  void record(Stream& s);
  // The record's point, for a stream wait; stream null = nothing to wait for.
  void point(std::shared_ptr<Stream>& s, uint64_t& seq);
};

CUresult lookup_event(CUevent h, std::shared_ptr<Event>& out);

}  // namespace simgpu
