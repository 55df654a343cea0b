// Shareable VMM handles as POSIX file descriptors (the proxy's side:
// csrc/proxy/custom_vmm_share.cpp).  The call travels in the ring; the
// descriptor crosses the control socket, parked in the proxy under a ticket
// the call names.  Both halves start over together if a checkpoint detaches
// the app between them.
#include <fcntl.h>
#include <unistd.h>

#include "call.h"
#include "custom.h"
#include "wire/opcodes.h"

namespace sing::shim::custom {

using namespace sing::wire;

CUresult cuMemExportToShareableHandle(void* shareable, CUmemGenericAllocationHandle handle,
                                      CUmemAllocationHandleType type, unsigned long long flags) {
  return with_restart([&]() -> CUresult {
    CUresult err;
    Channel* ch = call_channel(kOp_cuMemExportToShareableHandle, &err);
    if (!ch) return err;
    const uint32_t epoch = ch->epoch();
    auto fill = [&](Writer& w) {
      w.put<uint64_t>(handle);
      w.put<uint32_t>(type);
      w.put<uint32_t>(shareable != nullptr);
      w.put<uint64_t>(flags);
    };
    Answer a = sync_call_once(kOp_cuMemExportToShareableHandle, fill, true);
    if (a.result != CUDA_SUCCESS) return a.result;
    Reader r = a.reader();
    const uint64_t ticket = r.get<uint64_t>();
    if (!r.ok()) return CUDA_ERROR_UNKNOWN;
    int fd;
    if (CUresult c = ch->connection()->collect_fd(ticket, epoch, &fd); c != CUDA_SUCCESS) return c;
    // The app owns it now; as from the dup() of a driver's export, it stays open across exec.
    fcntl(fd, F_SETFD, 0);
    *static_cast<int*>(shareable) = fd;
    return CUDA_SUCCESS;
  });
}

CUresult cuMemImportFromShareableHandle(CUmemGenericAllocationHandle* handle, void* os_handle,
                                        CUmemAllocationHandleType type) {
  CUresult err;
  if (!call_channel(kOp_cuMemImportFromShareableHandle, &err)) return err;
  if (!handle) return CUDA_ERROR_INVALID_VALUE;
  if (type != CU_MEM_HANDLE_TYPE_POSIX_FILE_DESCRIPTOR) return CUDA_ERROR_NOT_SUPPORTED;
  // Not a descriptor of this process: nothing to pass (the driver's answer to a bad one).
  const int fd = int(reinterpret_cast<intptr_t>(os_handle));
  if (fd < 0 || fcntl(fd, F_GETFD) < 0) return CUDA_ERROR_INVALID_VALUE;
  return with_restart([&]() -> CUresult {
    Channel* ch = call_channel(kOp_cuMemImportFromShareableHandle, &err);
    if (!ch) return err;
    uint64_t ticket;
    if (CUresult c = ch->connection()->pass_fd(fd, ch->epoch(), &ticket); c != CUDA_SUCCESS) return c;
    auto fill = [&](Writer& w) {
      w.put<uint64_t>(ticket);
      w.put<uint32_t>(type);
      w.put<uint32_t>(1);
    };
    Answer a = sync_call_once(kOp_cuMemImportFromShareableHandle, fill, true);
    if (a.result != CUDA_SUCCESS) return a.result;
    Reader r = a.reader();
    const uint64_t vid = r.get<uint64_t>();
    if (!r.ok()) return CUDA_ERROR_UNKNOWN;
    *handle = vid;
    return CUDA_SUCCESS;
  });
}

}  // namespace sing::shim::custom
