// Helpers for hand-written handlers: decode generically encoded arguments
// (for PROXY entries the shim uses the generic encoding), and declare one
// handler for the legacy and the per-thread-stream twin of an entry point.
#pragma once
#include "dispatch.h"
#include "generic.h"

namespace sing::proxy {

// Decodes the arguments of a generically encoded call into `args`, in order.
template <class... A>
CUresult decode_all(Call& c, Arg<A>&... args) {
  CUresult r = CUDA_SUCCESS;
  auto one = [&](auto& x) {
    CUresult e = x.decode(c);
    if (r == CUDA_SUCCESS) r = e;
  };
  (one(args), ...);
  if (!c.in.ok() || !c.in.at_end()) return CUDA_ERROR_INVALID_VALUE;
  return r;
}

template <class... A>
void encode_all(Call& c, Arg<A>&... args) {
  (args.encode(c), ...);
}

// The device of the calling app thread's current context.
inline CUresult current_device(CUdevice* dev) { return BACKEND(cuCtxGetDevice)(dev); }

// The current context's sticky error (a kernel fault), which every call of the
// app then returns: calls answered from proxy state (allocations carved from a
// mapping already there) ask the backend with a cheap query first.
inline CUresult sticky_error() {
  size_t v;
  return BACKEND(cuCtxGetLimit)(&v, CU_LIMIT_STACK_SIZE);
}

// The app's id of the calling thread's current context (0 if none).
inline uint64_t current_context(Client& c) {
  CUcontext ctx = nullptr;
  BACKEND(cuCtxGetCurrent)(&ctx);
  return reinterpret_cast<uint64_t>(to_app(c, ctx));
}

}  // namespace sing::proxy

// Defines custom::LEGACY and custom::PTDS as calls to `impl<op>` of a template
// taking the opcode, so both twins share one body.
#define PROXY_TWIN(legacy, ptds, impl)                                       \
  namespace sing::proxy::custom {                                            \
  CUresult legacy(Call& c) { return impl<::sing::wire::kOp_##legacy>(c); } \
  CUresult ptds(Call& c) { return impl<::sing::wire::kOp_##ptds>(c); }     \
  }
