"""A job holding SIZE_MIB of device memory (distinct content per MiB, so nothing deduplicates) that
prints "ready" and then idles, for benchmarks/checkpoint.py."""
import sys
import time

import numpy as np
from cuda.bindings import driver as cu

size_mib = int(sys.argv[1])
(err,) = cu.cuInit(0)
err, dev = cu.cuDeviceGet(0)
err, ctx = cu.cuDevicePrimaryCtxRetain(dev)
cu.cuCtxSetCurrent(ctx)
err, d = cu.cuMemAlloc(size_mib << 20)
assert err == cu.CUresult.CUDA_SUCCESS, err
rng = np.random.default_rng(1)
block = rng.integers(0, 1 << 32, size=(1 << 20) // 4, dtype=np.uint32)
for i in range(size_mib):
    block ^= np.uint32(0x9E3779B9 * (i + 1) & 0xFFFFFFFF)
    cu.cuMemcpyHtoD(int(d) + (i << 20), block, 1 << 20)
cu.cuCtxSynchronize()
print("ready", flush=True)
while True:
    time.sleep(0.5)
