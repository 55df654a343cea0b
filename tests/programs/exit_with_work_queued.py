"""A program that exits with kernels and host functions still queued, as
programs do: the process must end normally (status 0, no crash while the
engine and the interpreter are torn down)."""
import ctypes

import numpy as np
from cuda.bindings import driver as cu

from simcommon import check, init, load_module, nvrtc_compile, result

dev, ctx = init()
mod = load_module(nvrtc_compile('extern "C" __global__ void spin(int* p, int n){ for (int i=0;i<n;++i) atomicAdd(p, 1);}'))
f = check(cu.cuModuleGetFunction(mod, b"spin"))
d = check(cu.cuMemAlloc(4))
vals = [np.array([int(d)], np.uint64), np.array([2000], np.int32)]
ptrs = np.array([v.ctypes.data for v in vals], dtype=np.uint64)
s = check(cu.cuStreamCreate(0))
CB = ctypes.CFUNCTYPE(None, ctypes.c_void_p)
cb = CB(lambda _: None)
for i in range(200):
    check(cu.cuLaunchKernel(f, 64, 1, 1, 128, 1, 1, 0, s, ptrs.ctypes.data, 0))
    check(cu.cuLaunchHostFunc(s, ctypes.cast(cb, ctypes.c_void_p).value, 0))
result(queued=400)
