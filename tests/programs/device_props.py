"""Initialisation, device enumeration, attributes, identity (UUID, PCI bus id).

Run with two devices, SINGULARITY_SIM_MEMORY=8G,4G.
"""
from cuda.bindings import driver as cu

from simcommon import check, expect, require, result

E = cu.CUresult
A = cu.CUdevice_attribute

# Before cuInit every call that needs the driver says so.
expect(E.CUDA_ERROR_NOT_INITIALIZED, cu.cuDeviceGetCount(), "count before cuInit")
expect(E.CUDA_ERROR_NOT_INITIALIZED, cu.cuDeviceGet(0), "get before cuInit")
expect(E.CUDA_ERROR_NOT_INITIALIZED, cu.cuMemAlloc(16), "alloc before cuInit")
expect(E.CUDA_ERROR_NOT_INITIALIZED, cu.cuCtxGetCurrent(), "ctx before cuInit")
require(check(cu.cuDriverGetVersion()) == 13000, "driver version")
expect(E.CUDA_ERROR_INVALID_VALUE, cu.cuInit(1), "cuInit flags")
check(cu.cuInit(0))
check(cu.cuInit(0))  # idempotent

n = check(cu.cuDeviceGetCount())
require(n == 2, f"two devices configured, got {n}")
expect(E.CUDA_ERROR_INVALID_DEVICE, cu.cuDeviceGet(2), "ordinal out of range")
expect(E.CUDA_ERROR_INVALID_DEVICE, cu.cuDeviceGet(-1), "negative ordinal")

devices = []
for i in range(n):
    d = check(cu.cuDeviceGet(i))
    name = check(cu.cuDeviceGetName(128, d)).split(b"\0", 1)[0].decode()
    require("(simulated)" in name, f"name says simulated: {name}")
    total = check(cu.cuDeviceTotalMem(d))
    uuid = bytes(check(cu.cuDeviceGetUuid(d)).bytes)
    require(len(uuid) == 16 and uuid == bytes(check(cu.cuDeviceGetUuid(d)).bytes), "stable uuid")
    bus = check(cu.cuDeviceGetPCIBusId(64, d)).split(b"\0", 1)[0].decode()
    require(int(check(cu.cuDeviceGetByPCIBusId(bus.encode()))) == int(d), f"bus id round trip {bus}")
    require(int(check(cu.cuDeviceGetByPCIBusId(bus.upper().encode()))) == int(d), "bus id is case-insensitive")
    major = check(cu.cuDeviceGetAttribute(A.CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MAJOR, d))
    minor = check(cu.cuDeviceGetAttribute(A.CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MINOR, d))
    require((major, minor) == (9, 0), "sm_90")
    attrs = {}
    for a in A:
        if a == A.CU_DEVICE_ATTRIBUTE_MAX:
            continue
        err, v = cu.cuDeviceGetAttribute(a, d)
        require(err == E.CUDA_SUCCESS, f"attribute {a.name}: {err}")
        attrs[a.value] = v
    expect(E.CUDA_ERROR_INVALID_VALUE, cu.cuDeviceGetAttribute(A.CU_DEVICE_ATTRIBUTE_MAX, d), "attribute MAX")
    expect(E.CUDA_ERROR_NOT_SUPPORTED, cu.cuDeviceGetLuid(d), "LUID is Windows-only")
    devices.append({"name": name, "total": total, "uuid": uuid.hex(), "bus": bus,
                    "sms": attrs[A.CU_DEVICE_ATTRIBUTE_MULTIPROCESSOR_COUNT.value]})

    # An H100 SXM's limits.
    want = {
        "CU_DEVICE_ATTRIBUTE_MAX_THREADS_PER_BLOCK": 1024, "CU_DEVICE_ATTRIBUTE_MAX_BLOCK_DIM_X": 1024,
        "CU_DEVICE_ATTRIBUTE_MAX_BLOCK_DIM_Z": 64, "CU_DEVICE_ATTRIBUTE_MAX_GRID_DIM_X": 2**31 - 1,
        "CU_DEVICE_ATTRIBUTE_WARP_SIZE": 32, "CU_DEVICE_ATTRIBUTE_MULTIPROCESSOR_COUNT": 132,
        "CU_DEVICE_ATTRIBUTE_MAX_SHARED_MEMORY_PER_BLOCK": 48 * 1024,
        "CU_DEVICE_ATTRIBUTE_MAX_SHARED_MEMORY_PER_BLOCK_OPTIN": 227 * 1024,
        "CU_DEVICE_ATTRIBUTE_MAX_SHARED_MEMORY_PER_MULTIPROCESSOR": 228 * 1024,
        "CU_DEVICE_ATTRIBUTE_MAX_REGISTERS_PER_BLOCK": 65536, "CU_DEVICE_ATTRIBUTE_L2_CACHE_SIZE": 50 * 2**20,
        "CU_DEVICE_ATTRIBUTE_GLOBAL_MEMORY_BUS_WIDTH": 5120, "CU_DEVICE_ATTRIBUTE_UNIFIED_ADDRESSING": 1,
        "CU_DEVICE_ATTRIBUTE_VIRTUAL_MEMORY_MANAGEMENT_SUPPORTED": 1,
        "CU_DEVICE_ATTRIBUTE_MEMORY_POOLS_SUPPORTED": 1, "CU_DEVICE_ATTRIBUTE_MANAGED_MEMORY": 1,
        "CU_DEVICE_ATTRIBUTE_CONCURRENT_MANAGED_ACCESS": 1, "CU_DEVICE_ATTRIBUTE_COOPERATIVE_LAUNCH": 1,
        "CU_DEVICE_ATTRIBUTE_CAN_MAP_HOST_MEMORY": 1, "CU_DEVICE_ATTRIBUTE_MAX_THREADS_PER_MULTIPROCESSOR": 2048,
    }
    for k, v in want.items():
        require(attrs[A[k].value] == v, f"{k} = {attrs[A[k].value]}, want {v}")
    require(attrs[A.CU_DEVICE_ATTRIBUTE_PCI_BUS_ID.value] == int(bus.split(":")[1], 16), "PCI bus attribute")

# Memory sizes from SINGULARITY_SIM_MEMORY=8G,4G.
require(devices[0]["total"] == 8 << 30 and devices[1]["total"] == 4 << 30, "per-device memory sizes")
require(devices[0]["uuid"] != devices[1]["uuid"], "distinct UUIDs")
require(devices[0]["bus"] != devices[1]["bus"], "distinct PCI bus ids")
expect(E.CUDA_ERROR_INVALID_DEVICE, cu.cuDeviceGetByPCIBusId(b"0000:01:00.0"), "unknown bus id")
expect(E.CUDA_ERROR_INVALID_VALUE, cu.cuDeviceGetByPCIBusId(b"nonsense"), "malformed bus id")

# Peer access between the two devices, none to itself.
require(check(cu.cuDeviceCanAccessPeer(0, 1)) == 1, "0 -> 1 peer")
require(check(cu.cuDeviceCanAccessPeer(1, 1)) == 0, "no peer access to itself")
require(check(cu.cuDeviceGetP2PAttribute(cu.CUdevice_P2PAttribute.CU_DEVICE_P2P_ATTRIBUTE_ACCESS_SUPPORTED, 0, 1)) == 1,
        "P2P access attribute")
expect(E.CUDA_ERROR_INVALID_DEVICE,
       cu.cuDeviceGetP2PAttribute(cu.CUdevice_P2PAttribute.CU_DEVICE_P2P_ATTRIBUTE_ACCESS_SUPPORTED, 0, 0), "same device")

# Deprecated queries still answer.
major, minor = check(cu.cuDeviceComputeCapability(0))
require((major, minor) == (9, 0), "cuDeviceComputeCapability")
props = check(cu.cuDeviceGetProperties(0))
require(props.maxThreadsPerBlock == 1024 and props.SIMDWidth == 32, "cuDeviceGetProperties")

result(devices=devices)
