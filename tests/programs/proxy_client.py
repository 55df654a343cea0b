"""A scriptable app for the proxy's failure tests: reads commands on stdin,
answers one JSON line per command on stdout, so a test can act on the app,
the proxy or both between steps.

Commands: alloc MIB | fill PTR BYTE MIB | read PTR MIB | info | sync | stream |
          hostfn SECONDS | busy SECONDS | wait_stream | graph PTR MIB | use_graph GRAPH NODE | exit
"""
import ctypes
import json
import sys
import time

import numpy as np
from cuda.bindings import driver as cu

# Spins for `ns` nanoseconds of the GPU's own clock.
BUSY_KERNEL = r'''
extern "C" __global__ void busy(unsigned long long ns) {
  unsigned long long t0, t;
  asm volatile("mov.u64 %0, %%globaltimer;" : "=l"(t0));
  do { asm volatile("mov.u64 %0, %%globaltimer;" : "=l"(t)); } while (t - t0 < ns);
}
'''


def result(r):
    err = r[0] if isinstance(r, tuple) else r
    return err.name if hasattr(err, "name") else str(err)


def main():
    cu.cuInit(0)
    _, dev = cu.cuDeviceGet(0)
    _, ctx = cu.cuDevicePrimaryCtxRetain(dev)
    cu.cuCtxSetCurrent(ctx)
    stream = None
    keep = []
    kernels = {}
    print(json.dumps({"ready": True}), flush=True)
    for line in sys.stdin:
        cmd, *args = line.split()
        t0 = time.monotonic()
        out = {"cmd": cmd}
        if cmd == "alloc":
            r = cu.cuMemAlloc(int(args[0]) << 20)
            out.update(result=result(r), ptr=int(r[1]) if r[1] is not None else None)
        elif cmd == "fill":
            out["result"] = result(cu.cuMemsetD8(int(args[0]), int(args[1]), int(args[2]) << 20))
        elif cmd == "read":
            buf = (ctypes.c_ubyte * (int(args[1]) << 20))()
            r = cu.cuMemcpyDtoH(ctypes.addressof(buf), int(args[0]), len(buf))
            out.update(result=result(r), first=buf[0], last=buf[len(buf) - 1])
        elif cmd == "info":
            r = cu.cuMemGetInfo()
            out.update(result=result(r), free=int(r[1] or 0), total=int(r[2] or 0))
        elif cmd == "sync":
            out["result"] = result(cu.cuCtxSynchronize())
        elif cmd == "stream":
            r = cu.cuStreamCreate(0)
            stream = r[1]
            out.update(result=result(r), handle=int(r[1]) if r[1] is not None else None)
        elif cmd == "use_stream":  # a handle value this app never received
            out["result"] = result(cu.cuStreamQuery(cu.CUstream(int(args[0]))))
        elif cmd == "hostfn":
            seconds = float(args[0])

            def sleeper(_):
                time.sleep(seconds)

            cb = ctypes.CFUNCTYPE(None, ctypes.c_void_p)(sleeper)
            keep.append(cb)
            fn = cu.CUhostFn(ctypes.cast(cb, ctypes.c_void_p).value)
            out["result"] = result(cu.cuLaunchHostFunc(stream, fn, 0))
        elif cmd == "busy":  # kernels that keep the stream busy for SECONDS, queued in 0.1 s pieces
            if "busy" not in kernels:
                from simcommon import load_module, nvrtc_compile
                mod = load_module(nvrtc_compile(BUSY_KERNEL))
                kernels["busy"] = cu.cuModuleGetFunction(mod, b"busy")[1]
            ns = np.array([100_000_000], np.uint64)
            params = np.array([ns.ctypes.data], np.uint64)
            keep.append((ns, params))
            for _ in range(int(float(args[0]) * 10)):
                r = cu.cuLaunchKernel(kernels["busy"], 1, 1, 1, 1, 1, 1, 0, stream, params.ctypes.data, 0)
            out["result"] = result(r)
        elif cmd == "graph":  # a graph with one node, and a memset node on memory at PTR (MIB)
            g = cu.cuGraphCreate(0)[1]
            node = cu.cuGraphAddEmptyNode(g, None, 0)[1]
            ms = cu.CUDA_MEMSET_NODE_PARAMS()
            ms.dst, ms.value, ms.elementSize, ms.width, ms.height = int(args[0]), 1, 1, int(args[1]) << 20, 1
            r = cu.cuGraphAddMemsetNode(g, None, 0, ms, 0)
            out.update(result=result(r), graph=int(g), node=int(node))
        elif cmd == "use_graph":  # another app's graph and node ids
            g, node = cu.CUgraph(int(args[0])), cu.CUgraphNode(int(args[1]))
            # Ids are per app: this app's own objects could have the same values,
            # so nothing is created here before the foreign ids are tried.
            out.update(type=result(cu.cuGraphNodeGetType(node)), nodes=result(cu.cuGraphGetNodes(g, 0)),
                       add=result(cu.cuGraphAddEmptyNode(g, None, 0)))
            out["dep"] = result(cu.cuGraphAddEmptyNode(cu.cuGraphCreate(0)[1], [node], 1))
        elif cmd == "wait_stream":
            out["result"] = result(cu.cuStreamSynchronize(stream))
        elif cmd == "exit":
            print(json.dumps(out), flush=True)
            return 0
        out["seconds"] = time.monotonic() - t0
        print(json.dumps(out), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
