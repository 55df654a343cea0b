// Shareable VMM handles as POSIX file descriptors.
//
// cuMemExportToShareableHandle gives the app a descriptor of the backend's
// allocation; cuMemImportFromShareableHandle makes an allocation of a
// descriptor the app brings (exported by itself, by another app of this
// proxy, through another proxy of the host, or by a process with no proxy:
// the backend's descriptor names the memory itself, so all of them alias).
// The calls travel in the ring; the descriptors cross the control socket and
// wait in the client's FdExchange (fd_exchange.h).  The app's handles stay
// proxy-issued ids, and it maps them only inside its own range (custom_vmm.cpp).
//
// Memory shared this way has holders the proxy does not know, so no restore
// could recreate it: shared allocations and their mappings are marked, and
// write_image refuses while any is live.
#include <fcntl.h>
#include <linux/magic.h>
#include <sys/stat.h>
#include <sys/vfs.h>
#include <unistd.h>

#include "app_vmm.h"
#include "handler_util.h"

namespace sing::proxy::custom {

namespace {

// Only memory may back device memory.  A driver's export is a memfd
// (libsimgpu) or a device file / anonymous inode (NVIDIA's); a file on disk,
// a pipe or a socket is none of them, and mapping a file on disk would make
// the job's device memory a file that outlives it.
bool memory_fd(int fd) {
  struct stat st;
  if (fstat(fd, &st) != 0) return false;
  switch (st.st_mode & S_IFMT) {
    case S_IFCHR: return true;
    case S_IFREG: {
      if (fcntl(fd, F_GET_SEALS) >= 0) return true;  // memfd or another shmem (tmpfs) file
      struct statfs fs;
      return fstatfs(fd, &fs) == 0 && fs.f_type == ANON_INODE_FS_MAGIC;
    }
    case 0: return true;  // an anonymous inode on kernels that give it no file type
    default: return false;
  }
}

}  // namespace

// {u64 handle id, u32 handle type, u32 output present, u64 flags} -> {u64 ticket}
CUresult cuMemExportToShareableHandle(Call& c) {
  const uint64_t vid = c.in.get<uint64_t>();
  const uint32_t type = c.in.get<uint32_t>();  // CUmemAllocationHandleType, as sent
  const bool has_out = c.in.get<uint32_t>() != 0;
  const uint64_t flags = c.in.get<uint64_t>();
  if (!c.in.ok() || !c.in.at_end()) return CUDA_ERROR_INVALID_VALUE;
  uint64_t real;
  if (!c.client.handles.to_real(kAllocHandle, vid, &real)) return CUDA_ERROR_INVALID_VALUE;
  if (!has_out || flags != 0) return CUDA_ERROR_INVALID_VALUE;
  // Other kinds (fabric, Win32) are not passed on: cuMemCreate refuses them too.
  if (type != CU_MEM_HANDLE_TYPE_POSIX_FILE_DESCRIPTOR) return CUDA_ERROR_NOT_SUPPORTED;
  int fd = -1;
  CUresult r = BACKEND(cuMemExportToShareableHandle)(&fd, real, CU_MEM_HANDLE_TYPE_POSIX_FILE_DESCRIPTOR, flags);
  if (r != CUDA_SUCCESS) return r;
  {
    // Before the app can hold the descriptor: a checkpoint from here on refuses.
    std::lock_guard<std::mutex> lock(c.client.mu);
    mark_shared(c.client, vid);
  }
  uint64_t ticket;
  if ((r = c.client.fds_for_app.park(fd, &ticket)) != CUDA_SUCCESS) return r;
  c.out.put<uint64_t>(ticket);
  return CUDA_SUCCESS;
}

// {u64 ticket of the parked descriptor, u32 handle type, u32 output present} -> {u64 handle id}
CUresult cuMemImportFromShareableHandle(Call& c) {
  const uint64_t ticket = c.in.get<uint64_t>();
  const uint32_t type = c.in.get<uint32_t>();  // CUmemAllocationHandleType, as sent
  const bool has_out = c.in.get<uint32_t>() != 0;
  // Taken whatever the answer, so nothing stays parked for a failed call.
  const int fd = c.client.fds_from_app.take(ticket);
  struct Closer {
    int fd;
    ~Closer() {
      if (fd >= 0) close(fd);
    }
  } closer{fd};
  if (!c.in.ok() || !c.in.at_end() || !has_out) return CUDA_ERROR_INVALID_VALUE;
  if (type != CU_MEM_HANDLE_TYPE_POSIX_FILE_DESCRIPTOR) return CUDA_ERROR_NOT_SUPPORTED;
  if (fd < 0 || !memory_fd(fd)) return CUDA_ERROR_INVALID_VALUE;
  // The backend keeps its own reference (as a driver does: the app still owns
  // and closes the descriptor it passed).
  CUmemGenericAllocationHandle real;
  CUresult r = BACKEND(cuMemImportFromShareableHandle)(&real, reinterpret_cast<void*>(intptr_t(fd)),
                                                      CU_MEM_HANDLE_TYPE_POSIX_FILE_DESCRIPTOR);
  if (r != CUDA_SUCCESS) return r;
  // A driver may answer with a handle to an allocation this app holds already: one more reference.
  // The size is the backend's to know; images never need it (they refuse shared memory).
  const uint64_t vid = hold_allocation(c.client, real, 0, true);
  c.out.put<uint64_t>(vid);
  return CUDA_SUCCESS;
}

}  // namespace sing::proxy::custom
