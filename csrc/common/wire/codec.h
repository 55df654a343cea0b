// Byte cursors for records and responses, and the type-driven rules that let
// most driver calls be forwarded without hand-written marshalling.
#pragma once
#include <cstdint>
#include <cstring>
#include <type_traits>

#include "driver_api.h"

namespace sing::wire {

// Every opaque handle the app sees is a proxy-issued virtual id; its kind
// tells the proxy which table translates it.
#define SING_HANDLE_TYPES(X)       \
  X(CUcontext, Context)            \
  X(CUmodule, Module)              \
  X(CUfunction, Function)          \
  X(CUstream, Stream)              \
  X(CUevent, Event)                \
  X(CUgraph, Graph)                \
  X(CUgraphNode, GraphNode)        \
  X(CUgraphExec, GraphExec)        \
  X(CUmemoryPool, MemPool)         \
  X(CUlibrary, Library)            \
  X(CUkernel, Kernel)              \
  X(CUlinkState, LinkState)        \
  X(CUuserObject, UserObject)      \
  X(CUarray, Array)                \
  X(CUmipmappedArray, MipArray)    \
  X(CUexternalMemory, ExtMemory)   \
  X(CUexternalSemaphore, ExtSemaphore) \
  X(CUgreenCtx, GreenCtx)

enum class HandleKind : uint8_t {
  None = 0,
#define SING_KIND(type, kind) kind,
  SING_HANDLE_TYPES(SING_KIND)
#undef SING_KIND
  Count
};

template <class T>
struct HandleTraits {
  static constexpr HandleKind kind = HandleKind::None;
};
#define SING_TRAITS(type, k)                    \
  template <>                                   \
  struct HandleTraits<type> {                   \
    static constexpr HandleKind kind = HandleKind::k; \
  };
SING_HANDLE_TYPES(SING_TRAITS)
#undef SING_TRAITS

template <class T>
inline constexpr bool is_handle_v = HandleTraits<std::remove_cv_t<T>>::kind != HandleKind::None;

// The error a driver gives for a bad handle of each kind: the graph and pool
// APIs document CUDA_ERROR_INVALID_VALUE, contexts INVALID_CONTEXT.
inline constexpr CUresult bad_handle_error(HandleKind k) {
  switch (k) {
    case HandleKind::Context: return CUDA_ERROR_INVALID_CONTEXT;
    case HandleKind::Graph:
    case HandleKind::GraphNode:
    case HandleKind::GraphExec:
    case HandleKind::MemPool:
    case HandleKind::UserObject: return CUDA_ERROR_INVALID_VALUE;
    default: return CUDA_ERROR_INVALID_HANDLE;
  }
}

// How a parameter of type T crosses the wire when the call is forwarded
// generically.  Anything else (void*, arrays, callbacks, structs holding
// pointers or handles) needs a CUSTOM entry in driver_api.def.
enum class ArgClass { Scalar, Handle, String, In, InOut, OutHandle, Unsupported };

template <class T>
constexpr ArgClass arg_class() {
  if constexpr (is_handle_v<T>) {
    return ArgClass::Handle;
  } else if constexpr (std::is_arithmetic_v<T> || std::is_enum_v<T>) {
    return ArgClass::Scalar;
  } else if constexpr (std::is_same_v<T, const char*>) {
    return ArgClass::String;
  } else if constexpr (std::is_pointer_v<T>) {
    using P = std::remove_pointer_t<T>;
    if constexpr (std::is_void_v<std::remove_cv_t<P>> || (std::is_pointer_v<P> && !is_handle_v<P>) ||
                  std::is_function_v<P>) {
      return ArgClass::Unsupported;
    } else if constexpr (is_handle_v<P>) {
      return std::is_const_v<P> ? ArgClass::Unsupported : ArgClass::OutHandle;
    } else if constexpr (std::is_const_v<P>) {
      return ArgClass::In;
    } else {
      return ArgClass::InOut;
    }
  } else if constexpr (std::is_class_v<T> && std::is_trivially_copyable_v<T>) {
    return ArgClass::Scalar;  // structs passed by value (CUmemLocation, CUipcMemHandle...)
  } else {
    return ArgClass::Unsupported;
  }
}

inline constexpr uint32_t align8(uint32_t n) { return (n + 7u) & ~7u; }

// Appends bytes at 8-byte granularity, so every field lands aligned.
class Writer {
 public:
  Writer(uint8_t* base, uint32_t capacity) : base_(base), cap_(capacity) {}
  // A Writer with no buffer only measures.
  Writer() = default;

  void put(const void* p, uint32_t n) {
    if (base_ && pos_ + align8(n) <= cap_) {
      std::memcpy(base_ + pos_, p, n);
      std::memset(base_ + pos_ + n, 0, align8(n) - n);
    } else if (base_) {
      overflow_ = true;
    }
    pos_ += align8(n);
  }
  template <class T>
  void put(const T& v) {
    static_assert(std::is_trivially_copyable_v<T>);
    put(&v, sizeof(T));
  }
  void put_string(const char* s) {
    if (!s) {
      put<uint32_t>(UINT32_MAX);
      return;
    }
    uint32_t n = uint32_t(std::strlen(s));
    put<uint32_t>(n);
    // include the NUL so the proxy can use it in place
    put(s, n + 1);
  }
  uint32_t size() const { return pos_; }
  bool overflow() const { return overflow_; }
  uint8_t* data() const { return base_; }

 private:
  uint8_t* base_ = nullptr;
  uint32_t cap_ = 0;
  uint32_t pos_ = 0;
  bool overflow_ = false;
};

// Reads what a Writer wrote; every read is bounds-checked because the bytes
// come from another process.
class Reader {
 public:
  Reader(const uint8_t* base, uint32_t size) : base_(base), size_(size) {}

  const uint8_t* take(uint32_t n) {
    if (bad_ || n > size_ || pos_ + align8(n) > size_) {
      bad_ = true;
      return nullptr;
    }
    const uint8_t* p = base_ + pos_;
    pos_ += align8(n);
    return p;
  }
  template <class T>
  T get() {
    T v{};
    if (const uint8_t* p = take(sizeof(T))) std::memcpy(&v, p, sizeof(T));
    return v;
  }
  // nullptr with ok() still true: the app passed NULL.
  const char* get_string() {
    uint32_t n = get<uint32_t>();
    if (n == UINT32_MAX || bad_) return nullptr;
    const uint8_t* p = take(n + 1);
    if (!p || p[n] != 0) {
      bad_ = true;
      return nullptr;
    }
    return reinterpret_cast<const char*>(p);
  }
  bool ok() const { return !bad_; }
  // Records are padded to 16 bytes: up to 8 bytes of padding may follow the
  // last field.
  bool at_end() const { return !bad_ && size_ - pos_ < 16; }
  uint32_t remaining() const { return bad_ ? 0 : size_ - pos_; }

 private:
  const uint8_t* base_;
  uint32_t size_;
  uint32_t pos_ = 0;
  bool bad_ = false;
};

}  // namespace sing::wire
