"""A scriptable app for sharing VMM memory between processes through POSIX file descriptors
(tests/test_proxy_vmm_share.py): reads commands on stdin, answers one JSON line per command.

    vmm_peer.py SOCKET_FD    (one end of a unix socket pair; the peer app holds the other)

Commands: create MIB | create_plain MIB (no shareable handle type) | handle | export | send | recv |
          import | map [MIB] | fill BYTE | read | release | closefd | export_handle VALUE |
          import_bad KIND (closed, negative, pipe, devnull, file, socket) | exit
"""
import ctypes
import json
import os
import socket
import sys
import tempfile

from cuda.bindings import driver as cu

POSIX_FD = cu.CUmemAllocationHandleType.CU_MEM_HANDLE_TYPE_POSIX_FILE_DESCRIPTOR


def name(r):
    err = r[0] if isinstance(r, tuple) else r
    return err.name if hasattr(err, "name") else str(err)


class Peer:
    def __init__(self, sock_fd: int):
        cu.cuInit(0)
        _, dev = cu.cuDeviceGet(0)
        _, ctx = cu.cuDevicePrimaryCtxRetain(dev)
        cu.cuCtxSetCurrent(ctx)
        self.sock = socket.socket(fileno=sock_fd)
        self.prop = cu.CUmemAllocationProp()
        self.prop.type = cu.CUmemAllocationType.CU_MEM_ALLOCATION_TYPE_PINNED
        self.prop.location.type = cu.CUmemLocationType.CU_MEM_LOCATION_TYPE_DEVICE
        self.prop.location.id = 0
        self.prop.requestedHandleTypes = POSIX_FD
        self.granularity = cu.cuMemGetAllocationGranularity(
            self.prop, cu.CUmemAllocationGranularity_flags.CU_MEM_ALLOC_GRANULARITY_MINIMUM)[1]
        self.handle = self.va = None
        self.bytes = 0
        self.fd = -1

    def _size(self, mib: int) -> int:
        g = self.granularity
        return ((mib << 20) + g - 1) // g * g

    def create(self, mib, plain=False):
        self.bytes = self._size(int(mib))
        prop = self.prop
        if plain:
            prop = cu.CUmemAllocationProp()
            prop.type, prop.location = self.prop.type, self.prop.location
        r = cu.cuMemCreate(self.bytes, prop, 0)
        if r[0] == cu.CUresult.CUDA_SUCCESS:
            self.handle = r[1]
        return {"result": name(r)}

    def export(self):
        r = cu.cuMemExportToShareableHandle(self.handle, POSIX_FD, 0)
        if r[0] == cu.CUresult.CUDA_SUCCESS:
            self.fd = int(r[1])
        return {"result": name(r), "fd": self.fd, "inheritable": self.fd >= 0 and os.get_inheritable(self.fd)}

    def send(self):
        socket.send_fds(self.sock, [b"f"], [self.fd])
        return {"result": "sent"}

    def recv(self):
        _, fds, _, _ = socket.recv_fds(self.sock, 1, 1)
        self.fd = fds[0]
        return {"result": "received"}

    def import_(self, fd=None):
        r = cu.cuMemImportFromShareableHandle(self.fd if fd is None else fd, POSIX_FD)
        if r[0] == cu.CUresult.CUDA_SUCCESS and fd is None:
            self.handle = r[1]
        return {"result": name(r)}

    def map(self, mib=None):
        if mib is not None:
            self.bytes = self._size(int(mib))
        r = cu.cuMemAddressReserve(self.bytes, 0, 0, 0)
        if r[0] != cu.CUresult.CUDA_SUCCESS:
            return {"result": name(r)}
        self.va = int(r[1])
        r = cu.cuMemMap(self.va, self.bytes, 0, self.handle, 0)
        if r[0] != cu.CUresult.CUDA_SUCCESS:
            return {"result": name(r)}
        access = cu.CUmemAccessDesc()
        access.location.type = cu.CUmemLocationType.CU_MEM_LOCATION_TYPE_DEVICE
        access.location.id = 0
        access.flags = cu.CUmemAccess_flags.CU_MEM_ACCESS_FLAGS_PROT_READWRITE
        return {"result": name(cu.cuMemSetAccess(self.va, self.bytes, [access], 1)), "bytes": self.bytes}

    def fill(self, byte):
        r = cu.cuMemsetD8(self.va, int(byte), self.bytes)
        return {"result": name(r if r[0] != cu.CUresult.CUDA_SUCCESS else cu.cuCtxSynchronize())}

    def read(self):
        buf = (ctypes.c_ubyte * self.bytes)()
        r = cu.cuMemcpyDtoH(ctypes.addressof(buf), self.va, self.bytes)
        return {"result": name(r), "first": buf[0], "last": buf[self.bytes - 1], "same": len(set(bytes(buf))) == 1}

    def release(self):
        out = {"unmap": name(cu.cuMemUnmap(self.va, self.bytes)), "release": name(cu.cuMemRelease(self.handle)),
               "free": name(cu.cuMemAddressFree(self.va, self.bytes))}
        self.va = self.handle = None
        return out

    def closefd(self):
        os.close(self.fd)
        self.fd = -1
        return {"result": "closed"}

    def import_bad(self, kind):
        size = 2 << 20
        if kind == "closed":
            fd = os.open(os.devnull, os.O_RDONLY)
            os.close(fd)
            return self.import_(fd)
        if kind == "negative":
            return self.import_((1 << 64) - 1)  # (void*)-1: fd -1
        if kind == "devnull":
            fd = os.open(os.devnull, os.O_RDWR)
        elif kind == "pipe":
            fd, w = os.pipe()
            os.close(w)
        elif kind == "socket":
            fd = os.dup(self.sock.fileno())
        elif kind == "file":  # a file on disk, sized like an allocation: not memory
            fd, path = tempfile.mkstemp(dir=os.environ.get("VMM_PEER_DISK_DIR"))
            os.unlink(path)
            os.ftruncate(fd, size)
        else:
            raise ValueError(kind)
        try:
            return self.import_(fd)
        finally:
            os.close(fd)

    def export_handle(self, value):
        r = cu.cuMemExportToShareableHandle(int(value), POSIX_FD, 0)
        if r[0] == cu.CUresult.CUDA_SUCCESS:
            os.close(int(r[1]))
        return {"result": name(r)}


def main():
    peer = Peer(int(sys.argv[1]))
    print(json.dumps({"ready": True}), flush=True)
    commands = {"create": peer.create, "export": peer.export, "send": peer.send, "recv": peer.recv,
                "import": peer.import_, "map": peer.map, "fill": peer.fill, "read": peer.read,
                "release": peer.release, "closefd": peer.closefd, "import_bad": peer.import_bad,
                "export_handle": peer.export_handle,
                "create_plain": lambda mib: peer.create(mib, plain=True),
                "handle": lambda: {"handle": int(peer.handle)}}
    for line in sys.stdin:
        cmd, *args = line.split()
        if cmd == "exit":
            break
        out = {"cmd": cmd}
        out.update(commands[cmd](*args))
        print(json.dumps(out), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
