// Generic forwarding of a driver call: arguments marshalled by their types
// (wire/codec.h), a record in this thread's channel, and for sync calls the
// outputs copied back.  Instantiated once per SYNC/ASYNC/DESTROY entry of
// driver_api.def.
#pragma once
#include <cstring>
#include <tuple>

#include "connection.h"
#include "handles.h"
#include "wire/codec.h"
#include "wire/opcodes.h"

namespace sing::shim {

template <class T>
inline void encode_arg(wire::Writer& w, T v) {
  constexpr wire::ArgClass c = wire::arg_class<T>();
  static_assert(c != wire::ArgClass::Unsupported,
                "this parameter type cannot be forwarded generically: make the entry CUSTOM in driver_api.def");
  if constexpr (c == wire::ArgClass::Scalar) {
    w.put(v);
  } else if constexpr (c == wire::ArgClass::Handle) {
    w.put<uint64_t>(reinterpret_cast<uintptr_t>(v));
  } else if constexpr (c == wire::ArgClass::String) {
    w.put_string(v);
  } else {
    uint32_t present = v != nullptr;
    w.put(present);
    if (present) w.put(v, sizeof(*v));
  }
}

template <class T>
inline void decode_arg(wire::Reader& r, T v) {
  constexpr wire::ArgClass c = wire::arg_class<T>();
  if constexpr (c == wire::ArgClass::InOut || c == wire::ArgClass::OutHandle) {
    if (!v) return;
    if (const uint8_t* p = r.take(sizeof(*v))) std::memcpy(static_cast<void*>(v), p, sizeof(*v));
    if constexpr (c == wire::ArgClass::OutHandle) handle_seen(reinterpret_cast<uint64_t>(*v));
  }
}

template <class T>
inline CUresult check_arg(T v) {
  if constexpr (wire::arg_class<T>() == wire::ArgClass::Handle) return check_handle(v);
  return CUDA_SUCCESS;
}

// Entry points that end the life of their first handle argument.
inline constexpr bool destroys_first_handle(uint16_t op) {
  return wire::kDriverOpPolicy[op] == wire::Policy::DESTROY || op == wire::kOp_cuCtxDestroy_v2 ||
         op == wire::kOp_cuMemPoolDestroy || op == wire::kOp_cuModuleUnload || op == wire::kOp_cuLibraryUnload ||
         op == wire::kOp_cuGraphDestroy || op == wire::kOp_cuGraphExecDestroy || op == wire::kOp_cuGraphDestroyNode;
}

template <class T, class... Rest>
inline void forget_first_handle(T first, Rest...) {
  if constexpr (wire::arg_class<T>() == wire::ArgClass::Handle) handle_gone(reinterpret_cast<uint64_t>(first));
}

// Entry points callable before cuInit, as with the real driver.
inline constexpr bool allowed_before_init(uint16_t op) {
  return op == wire::kOp_cuDriverGetVersion || op == wire::kOp_cuInit;
}

// Set on the threads that run the app's host functions: CUDA refuses calls
// made from inside one.
extern thread_local bool t_in_host_function;

// The channel for this call, or why there is none.
inline Channel* call_channel(uint16_t op, CUresult* error) {
  if (t_in_host_function) {
    *error = CUDA_ERROR_NOT_PERMITTED;
    return nullptr;
  }
  if (!allowed_before_init(op) && !g_initialized.load(std::memory_order_acquire)) {
    *error = CUDA_ERROR_NOT_INITIALIZED;
    return nullptr;
  }
  Connection* conn = Connection::get();
  if (!conn) {
    *error = Connection::connect_error();
    return nullptr;
  }
  return conn->channel(error);
}

// Argument checks a driver makes synchronously in calls that are
// fire-and-forget here (their errors must not arrive late).
template <uint16_t Op>
struct AsyncCheck {
  template <class... A>
  static CUresult check(A...) {
    return CUDA_SUCCESS;
  }
};
// Flags of stream waits and event records: 0 or the EXTERNAL bit.
#define SHIM_FLAGS_CHECK(op, index, allowed)                                        \
  template <>                                                                       \
  struct AsyncCheck<wire::kOp_##op> {                                               \
    template <class... A>                                                           \
    static CUresult check(A... a) {                                                 \
      auto flags = std::get<index>(std::make_tuple(a...));                          \
      return (flags & ~(allowed)) ? CUDA_ERROR_INVALID_VALUE : CUDA_SUCCESS;         \
    }                                                                               \
  };
SHIM_FLAGS_CHECK(cuStreamWaitEvent, 2, unsigned(CU_EVENT_WAIT_EXTERNAL))
SHIM_FLAGS_CHECK(cuStreamWaitEvent_ptsz, 2, unsigned(CU_EVENT_WAIT_EXTERNAL))
SHIM_FLAGS_CHECK(cuEventRecordWithFlags, 2, unsigned(CU_EVENT_RECORD_EXTERNAL))
SHIM_FLAGS_CHECK(cuEventRecordWithFlags_ptsz, 2, unsigned(CU_EVENT_RECORD_EXTERNAL))
#undef SHIM_FLAGS_CHECK
// Stream memory operations need a naturally aligned address.
#define SHIM_ALIGN_CHECK(op, align)                                                 \
  template <>                                                                       \
  struct AsyncCheck<wire::kOp_##op> {                                               \
    template <class... A>                                                           \
    static CUresult check(A... a) {                                                 \
      auto addr = std::get<1>(std::make_tuple(a...));                               \
      return (addr % (align)) ? CUDA_ERROR_INVALID_VALUE : CUDA_SUCCESS;            \
    }                                                                               \
  };
SHIM_ALIGN_CHECK(cuStreamWriteValue32_v2, 4)
SHIM_ALIGN_CHECK(cuStreamWriteValue32_v2_ptsz, 4)
SHIM_ALIGN_CHECK(cuStreamWaitValue32_v2, 4)
SHIM_ALIGN_CHECK(cuStreamWaitValue32_v2_ptsz, 4)
SHIM_ALIGN_CHECK(cuStreamWriteValue64_v2, 8)
SHIM_ALIGN_CHECK(cuStreamWriteValue64_v2_ptsz, 8)
SHIM_ALIGN_CHECK(cuStreamWaitValue64_v2, 8)
SHIM_ALIGN_CHECK(cuStreamWaitValue64_v2_ptsz, 8)
#undef SHIM_ALIGN_CHECK

template <uint16_t Op, class Sig>
struct Forward;

template <uint16_t Op, class... A>
struct Forward<Op, CUresult(A...)> {
  static CUresult sync(A... a) {
    CUresult err;
    Channel* ch = call_channel(Op, &err);
    if (!ch) return err;
    wire::Writer sizer;
    (encode_arg(sizer, a), ...);
    if (sizer.size() > wire::kMaxRecordBytes) return CUDA_ERROR_INVALID_VALUE;
    uint8_t* p = ch->begin(Op, sizer.size(), true);
    if (!p) return kProxyLost;
    wire::Writer w(p, sizer.size());
    (encode_arg(w, a), ...);
    ch->publish();
    CUresult r = ch->wait();
    if (r == CUDA_SUCCESS) {
      wire::Reader rd(ch->response(), ch->response_length());
      (decode_arg(rd, a), ...);
      if constexpr (destroys_first_handle(Op) && sizeof...(A) > 0) forget_first_handle(a...);
    }
    return r;
  }

  // Fire and forget: the proxy reports a failure on a later call, as CUDA
  // reports asynchronous errors.
  static CUresult async(A... a) {
    CUresult err;
    Channel* ch = call_channel(Op, &err);
    if (!ch) return err;
    // A handle the app never had is refused now, as the driver would.
    CUresult bad = CUDA_SUCCESS;
    ((bad == CUDA_SUCCESS ? (bad = check_arg(a)) : bad), ...);
    if (bad == CUDA_SUCCESS) bad = AsyncCheck<Op>::check(a...);
    if (bad != CUDA_SUCCESS) return bad;
    wire::Writer sizer;
    (encode_arg(sizer, a), ...);
    if (sizer.size() > wire::kMaxRecordBytes) return CUDA_ERROR_INVALID_VALUE;
    uint8_t* p = ch->begin(Op, sizer.size(), false);
    if (!p) return kProxyLost;
    wire::Writer w(p, sizer.size());
    (encode_arg(w, a), ...);
    ch->publish();
    return CUDA_SUCCESS;
  }
};

}  // namespace sing::shim
