// Serving one record: the dispatch table generated from driver_api.def, and
// the hand-written handlers it names.
#pragma once
#include "client.h"
#include "wire/opcodes.h"

namespace sing::proxy {

CUresult dispatch(Call& call);

// Releases every backend object a client still holds (it disconnected).
void release_client_objects(Client& client);

namespace custom {
#define PROXY_DECL_CUSTOM(sym) CUresult sym(Call& call);
#define PROXY_DECL_PROXY(sym) CUresult sym(Call& call);
#define PROXY_DECL_LOCAL(sym)
#define PROXY_DECL_SYNC(sym)
#define PROXY_DECL_ASYNC(sym)
#define PROXY_DECL_DESTROY(sym)
#define PROXY_DECL_SHIM(sym)
#define PROXY_DECL_UNSUPPORTED(sym)
#define CU_FN(sym, base, ver, variant, policy) PROXY_DECL_##policy(sym)
#include "driver_api.def"
#undef CU_FN

// Records that are not driver calls.
CUresult blob_append(Call& call);
CUresult stage_h2d(Call& call);
CUresult function_info(Call& call);
}  // namespace custom

}  // namespace sing::proxy
