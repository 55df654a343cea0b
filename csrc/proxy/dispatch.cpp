// The dispatch table, generated from driver_api.def: generic serving for
// SYNC, ASYNC, DESTROY and SHIM entries, hand-written handlers for PROXY and
// CUSTOM ones, NOT_SUPPORTED for the rest (the shim never sends those; a
// client that does gets an error).
#include "dispatch.h"

#include "generic.h"
#include "log.h"
#include "wire/control.h"

namespace sing::proxy {

namespace {

CUresult unsupported(Call&) { return CUDA_ERROR_NOT_SUPPORTED; }

#define PROXY_IMPL_SYNC(sym) &Generic<wire::kOp_##sym, decltype(::sym), false>::run
#define PROXY_IMPL_ASYNC(sym) &Generic<wire::kOp_##sym, decltype(::sym), false>::run
#define PROXY_IMPL_SHIM(sym) &Generic<wire::kOp_##sym, decltype(::sym), false>::run
#define PROXY_IMPL_DESTROY(sym) &Generic<wire::kOp_##sym, decltype(::sym), true>::run
#define PROXY_IMPL_PROXY(sym) &custom::sym
#define PROXY_IMPL_CUSTOM(sym) &custom::sym
#define PROXY_IMPL_LOCAL(sym) &unsupported
#define PROXY_IMPL_UNSUPPORTED(sym) &unsupported

const Handler kHandlers[] = {
#define CU_FN(sym, base, ver, variant, policy) PROXY_IMPL_##policy(sym),
#include "driver_api.def"
#undef CU_FN
};
static_assert(sizeof(kHandlers) / sizeof(kHandlers[0]) == wire::kDriverOpCount);

}  // namespace

CUresult dispatch(Call& call) {
  if (call.op < wire::kDriverOpCount) {
    if (!backend().fn[call.op]) return CUDA_ERROR_NOT_SUPPORTED;
    log_debug("client %u: %s", call.client.id(), wire::kDriverOpName[call.op]);
    if (changes_graph_exec(call.op)) {
      // Marked before the call, failed or not: a checkpoint then refuses
      // rather than restore an executable that may differ (graph_image.h).
      wire::Reader peek = call.in;
      graph_exec_changed(call.client, peek.get<uint64_t>());
    }
    return kHandlers[call.op](call);
  }
  switch (call.op) {
    case wire::kOpBlobAppend:
      return custom::blob_append(call);
    case wire::kOpStageH2D:
      return custom::stage_h2d(call);
    case wire::kOpFunctionInfo:
      return custom::function_info(call);
    default:
      return CUDA_ERROR_INVALID_VALUE;
  }
}

}  // namespace sing::proxy
