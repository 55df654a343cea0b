"""CUDA graphs without kernels: explicit construction, instantiation,
relaunch, updates, cloning, child graphs, memory nodes, and stream capture
(including cross-stream capture through events and the capture-mode rules)."""
import ctypes
import os
import tempfile
import threading

import numpy as np
from cuda.bindings import driver as cu

from simcommon import check, digest, expect, init, require, result, watchdog

E = cu.CUresult
T = cu.CUgraphNodeType
dev, ctx = init()
watchdog(60)
HOSTFN = ctypes.CFUNCTYPE(None, ctypes.c_void_p)
keep, log = [], []


def host_node_params(tag):
    thunk = HOSTFN(lambda _: log.append(tag))
    keep.append(thunk)
    p = cu.CUDA_HOST_NODE_PARAMS()
    p.fn = ctypes.cast(thunk, ctypes.c_void_p).value
    p.userData = 0
    return p


N = 4096
d_a = check(cu.cuMemAlloc(4 * N))
d_b = check(cu.cuMemAlloc(4 * N))
s = check(cu.cuStreamCreate(cu.CUstream_flags.CU_STREAM_NON_BLOCKING))

# --- explicit graph: memset -> copy -> host, plus a side branch joined by an empty node -----
g = check(cu.cuGraphCreate(0))
ms = cu.CUDA_MEMSET_NODE_PARAMS()
ms.dst = d_a
ms.value = 11
ms.elementSize = 4
ms.width = N
ms.height = 1
n_set = check(cu.cuGraphAddMemsetNode(g, None, 0, ms, ctx))
cp = cu.CUDA_MEMCPY3D()
cp.srcMemoryType = cu.CUmemorytype.CU_MEMORYTYPE_DEVICE
cp.srcDevice = d_a
cp.dstMemoryType = cu.CUmemorytype.CU_MEMORYTYPE_DEVICE
cp.dstDevice = d_b
cp.WidthInBytes = 4 * N
cp.Height = 1
cp.Depth = 1
n_copy = check(cu.cuGraphAddMemcpyNode(g, [n_set], 1, cp, ctx))
n_host = check(cu.cuGraphAddHostNode(g, [n_copy], 1, host_node_params("after copy")))
n_side = check(cu.cuGraphAddHostNode(g, None, 0, host_node_params("side")))
n_join = check(cu.cuGraphAddEmptyNode(g, [n_host, n_side], 2))
require(check(cu.cuGraphNodeGetType(n_join)) == T.CU_GRAPH_NODE_TYPE_EMPTY, "node type")
_, count = check(cu.cuGraphGetNodes(g))
require(count == 5, f"five nodes, got {count}")
roots, nroots = check(cu.cuGraphGetRootNodes(g, 5))
require(nroots == 2, "two roots")
frm, to, _, nedges = check(cu.cuGraphGetEdges(g, 8))
require(nedges == 4, f"four edges, got {nedges}")
deps, _, ndeps = check(cu.cuGraphNodeGetDependencies(n_join, 4))
require(ndeps == 2, "join has two dependencies")
expect(E.CUDA_ERROR_INVALID_VALUE, cu.cuGraphAddEmptyNode(g, [n_join, n_join], 2), "duplicate dependency")
other = check(cu.cuGraphCreate(0))
expect(E.CUDA_ERROR_INVALID_VALUE, cu.cuGraphAddEmptyNode(other, [n_join], 1), "dependency from another graph")
dot = os.path.join(tempfile.mkdtemp(), "g.dot")
check(cu.cuGraphDebugDotPrint(g, dot.encode(), 0))
require(open(dot).read().count("->") == 4, "DOT output has the edges")

x = check(cu.cuGraphInstantiate(g, 0))
for _ in range(3):
    check(cu.cuGraphLaunch(x, s))
check(cu.cuStreamSynchronize(s))
out = np.empty(N, dtype=np.uint32)
check(cu.cuMemcpyDtoH(out, d_b, 4 * N))
require((out == 11).all(), "graph ran memset + copy")
require(log.count("after copy") == 3 and log.count("side") == 3, f"host nodes ran each launch: {log}")

# Modifying the graph does not change the executable; updating the executable does.
ms.value = 22
check(cu.cuGraphMemsetNodeSetParams(n_set, ms))
check(cu.cuGraphLaunch(x, s))
check(cu.cuStreamSynchronize(s))
check(cu.cuMemcpyDtoH(out, d_b, 4 * N))
require((out == 11).all(), "executable unaffected by graph edits")
ms.value = 33
check(cu.cuGraphExecMemsetNodeSetParams(x, n_set, ms, ctx))
check(cu.cuGraphLaunch(x, s))
check(cu.cuStreamSynchronize(s))
check(cu.cuMemcpyDtoH(out, d_b, 4 * N))
require((out == 33).all(), "executable memset node updated")
# Whole-graph update from the edited graph (same topology): picks up value 22.
info = check(cu.cuGraphExecUpdate(x, g))
require(info.result == cu.CUgraphExecUpdateResult.CU_GRAPH_EXEC_UPDATE_SUCCESS, "exec update")
check(cu.cuGraphLaunch(x, s))
check(cu.cuStreamSynchronize(s))
check(cu.cuMemcpyDtoH(out, d_b, 4 * N))
require((out == 22).all(), "executable updated from the graph")
# Disabling the copy node: d_b keeps its contents while d_a changes.
check(cu.cuGraphNodeSetEnabled(x, n_copy, 0))
require(check(cu.cuGraphNodeGetEnabled(x, n_copy)) == 0, "disabled")
ms.value = 44
check(cu.cuGraphExecMemsetNodeSetParams(x, n_set, ms, ctx))
check(cu.cuGraphLaunch(x, s))
check(cu.cuStreamSynchronize(s))
check(cu.cuMemcpyDtoH(out, d_b, 4 * N))
require((out == 22).all(), "disabled copy did not run")
check(cu.cuMemcpyDtoH(out, d_a, 4 * N))
require((out == 44).all(), "memset still ran")
# A topology change cannot be applied.
check(cu.cuGraphAddEmptyNode(g, [n_join], 1))
expect(E.CUDA_ERROR_GRAPH_EXEC_UPDATE_FAILURE, cu.cuGraphExecUpdate(x, g), "topology change refused")

# Clone and child graphs.
c = check(cu.cuGraphClone(g))
n_set_c = check(cu.cuGraphNodeFindInClone(n_set, c))
require(check(cu.cuGraphNodeGetType(n_set_c)) == T.CU_GRAPH_NODE_TYPE_MEMSET, "node found in clone")
ms_c = check(cu.cuGraphMemsetNodeGetParams(n_set_c))
require(ms_c.value == 22, "clone keeps parameters")
parent = check(cu.cuGraphCreate(0))
check(cu.cuGraphAddChildGraphNode(parent, None, 0, c))
log.clear()
xp = check(cu.cuGraphInstantiate(parent, 0))
check(cu.cuGraphLaunch(xp, s))
check(cu.cuStreamSynchronize(s))
require(sorted(log) == ["after copy", "side"], f"child graph ran: {log}")

# Event record / wait nodes order work across graphs and streams.
ev = check(cu.cuEventCreate(0))
ge = check(cu.cuGraphCreate(0))
check(cu.cuGraphAddEventRecordNode(ge, None, 0, ev))
xe = check(cu.cuGraphInstantiate(ge, 0))
check(cu.cuGraphLaunch(xe, s))
check(cu.cuEventSynchronize(ev))
require(int(check(cu.cuGraphEventRecordNodeGetEvent(check(cu.cuGraphGetRootNodes(ge, 1))[0][0]))) == int(ev),
        "event of the record node")

# Graph memory nodes: the address is fixed at creation and usable in the graph.
gm = check(cu.cuGraphCreate(0))
ap = cu.CUDA_MEM_ALLOC_NODE_PARAMS()
ap.poolProps.allocType = cu.CUmemAllocationType.CU_MEM_ALLOCATION_TYPE_PINNED
ap.poolProps.location.type = cu.CUmemLocationType.CU_MEM_LOCATION_TYPE_DEVICE
ap.poolProps.location.id = 0
ap.bytesize = 4 * N
n_alloc = check(cu.cuGraphAddMemAllocNode(gm, None, 0, ap))
gptr = check(cu.cuGraphMemAllocNodeGetParams(n_alloc)).dptr
require(int(gptr) != 0, "graph allocation address")
ms2 = cu.CUDA_MEMSET_NODE_PARAMS()
ms2.dst = gptr
ms2.value = 5
ms2.elementSize = 4
ms2.width = N
ms2.height = 1
n_ms2 = check(cu.cuGraphAddMemsetNode(gm, [n_alloc], 1, ms2, ctx))
cp2 = cu.CUDA_MEMCPY3D()
cp2.srcMemoryType = cu.CUmemorytype.CU_MEMORYTYPE_DEVICE
cp2.srcDevice = gptr
cp2.dstMemoryType = cu.CUmemorytype.CU_MEMORYTYPE_DEVICE
cp2.dstDevice = d_b
cp2.WidthInBytes = 4 * N
cp2.Height = cp2.Depth = 1
n_cp2 = check(cu.cuGraphAddMemcpyNode(gm, [n_ms2], 1, cp2, ctx))
check(cu.cuGraphAddMemFreeNode(gm, [n_cp2], 1, gptr))
expect(E.CUDA_ERROR_INVALID_VALUE, cu.cuGraphAddMemFreeNode(gm, None, 0, d_a), "free node of foreign memory")
xm = check(cu.cuGraphInstantiate(gm, 0))
check(cu.cuGraphLaunch(xm, s))
check(cu.cuStreamSynchronize(s))
check(cu.cuMemcpyDtoH(out, d_b, 4 * N))
require((out == 5).all(), "graph memory node round trip")
used = check(cu.cuDeviceGetGraphMemAttribute(0, cu.CUgraphMem_attribute.CU_GRAPH_MEM_ATTR_USED_MEM_CURRENT))
require(int(used) >= 4 * N, "graph memory accounted")

# --- stream capture ---------------------------------------------------------------------------
s2 = check(cu.cuStreamCreate(cu.CUstream_flags.CU_STREAM_NON_BLOCKING))
fork, join = check(cu.cuEventCreate(0)), check(cu.cuEventCreate(0))
check(cu.cuStreamBeginCapture(s, cu.CUstreamCaptureMode.CU_STREAM_CAPTURE_MODE_GLOBAL))
status = check(cu.cuStreamIsCapturing(s))
require(status == cu.CUstreamCaptureStatus.CU_STREAM_CAPTURE_STATUS_ACTIVE, "capturing")
check(cu.cuMemsetD32Async(d_a, 1, N, s))
check(cu.cuEventRecord(fork, s))
check(cu.cuStreamWaitEvent(s2, fork, 0))  # s2 joins the capture
require(check(cu.cuStreamIsCapturing(s2)) == cu.CUstreamCaptureStatus.CU_STREAM_CAPTURE_STATUS_ACTIVE, "s2 joined")
check(cu.cuMemsetD32Async(d_b, 2, N, s2))
keep.append(HOSTFN(lambda _: log.append("captured")))
check(cu.cuLaunchHostFunc(s2, ctypes.cast(keep[-1], ctypes.c_void_p).value, 0))
check(cu.cuEventRecord(join, s2))
check(cu.cuStreamWaitEvent(s, join, 0))
check(cu.cuMemcpyDtoDAsync(int(d_a) + 4 * (N // 2), d_b, 4 * (N // 2), s))
expect(E.CUDA_ERROR_STREAM_CAPTURE_UNSUPPORTED, cu.cuMemAlloc(64), "cuMemAlloc during a global capture")
status, cid, cgraph, cdeps, _, ndeps = check(cu.cuStreamGetCaptureInfo(s))
require(ndeps == 1 and int(cid) > 0, "capture info")
captured = check(cu.cuStreamEndCapture(s))
require(check(cu.cuStreamIsCapturing(s2)) == cu.CUstreamCaptureStatus.CU_STREAM_CAPTURE_STATUS_NONE, "s2 left capture")
_, count = check(cu.cuGraphGetNodes(captured))
require(count == 4, f"captured four nodes, got {count}")
log.clear()
xc = check(cu.cuGraphInstantiate(captured, 0))
check(cu.cuMemsetD32(d_a, 0, N))
check(cu.cuMemsetD32(d_b, 0, N))
check(cu.cuCtxSynchronize())  # s is non-blocking: nothing orders it after the legacy stream's memsets
check(cu.cuGraphLaunch(xc, s))
check(cu.cuStreamSynchronize(s))
check(cu.cuMemcpyDtoH(out, d_a, 4 * N))
want = np.ones(N, dtype=np.uint32)
want[N // 2:] = 2
require(np.array_equal(out, want), "captured fork/join graph result")
require(log == ["captured"], f"captured host function: {log}")

# Unjoined work makes the capture fail.
check(cu.cuStreamBeginCapture(s, cu.CUstreamCaptureMode.CU_STREAM_CAPTURE_MODE_GLOBAL))
check(cu.cuEventRecord(fork, s))
check(cu.cuStreamWaitEvent(s2, fork, 0))
check(cu.cuMemsetD32Async(d_b, 3, N, s2))
expect(E.CUDA_ERROR_STREAM_CAPTURE_UNJOINED, cu.cuStreamEndCapture(s), "unjoined side stream")
# Synchronising a capturing stream invalidates the capture.
check(cu.cuStreamBeginCapture(s, cu.CUstreamCaptureMode.CU_STREAM_CAPTURE_MODE_THREAD_LOCAL))
check(cu.cuMemsetD32Async(d_a, 9, N, s))
expect(E.CUDA_ERROR_STREAM_CAPTURE_UNSUPPORTED, cu.cuStreamSynchronize(s), "sync during capture")
require(check(cu.cuStreamIsCapturing(s)) == cu.CUstreamCaptureStatus.CU_STREAM_CAPTURE_STATUS_INVALIDATED,
        "invalidated")
expect(E.CUDA_ERROR_STREAM_CAPTURE_INVALIDATED, cu.cuStreamEndCapture(s), "end of an invalidated capture")
expect(E.CUDA_ERROR_ILLEGAL_STATE, cu.cuStreamEndCapture(s), "end without capture")
expect(E.CUDA_ERROR_STREAM_CAPTURE_UNSUPPORTED,
       cu.cuStreamBeginCapture(0, cu.CUstreamCaptureMode.CU_STREAM_CAPTURE_MODE_GLOBAL), "legacy stream capture")
# Relaxed mode permits "unsafe" calls; stream-ordered allocation becomes memory nodes.
check(cu.cuStreamBeginCapture(s, cu.CUstreamCaptureMode.CU_STREAM_CAPTURE_MODE_RELAXED))
tmp = check(cu.cuMemAlloc(64))
check(cu.cuMemFree(tmp))
d_g = check(cu.cuMemAllocAsync(4 * N, s))
check(cu.cuMemsetD32Async(d_g, 77, N, s))
check(cu.cuMemcpyDtoDAsync(d_b, d_g, 4 * N, s))
check(cu.cuMemFreeAsync(d_g, s))
gcap = check(cu.cuStreamEndCapture(s))
types = [check(cu.cuGraphNodeGetType(nd)) for nd in check(cu.cuGraphGetNodes(gcap, 8))[0][:4]]
require(types == [T.CU_GRAPH_NODE_TYPE_MEM_ALLOC, T.CU_GRAPH_NODE_TYPE_MEMSET, T.CU_GRAPH_NODE_TYPE_MEMCPY,
                  T.CU_GRAPH_NODE_TYPE_MEM_FREE], f"captured node types {types}")
xg = check(cu.cuGraphInstantiate(gcap, 0))
check(cu.cuGraphLaunch(xg, s))
check(cu.cuStreamSynchronize(s))
check(cu.cuMemcpyDtoH(out, d_b, 4 * N))
require((out == 77).all(), "captured stream-ordered allocation")
check(cu.cuGraphUpload(xg, s))

# The generic node API and user objects.
gn = check(cu.cuGraphCreate(0))
np_ = cu.CUgraphNodeParams()
np_.type = T.CU_GRAPH_NODE_TYPE_MEMSET
np_.memset.dst = d_a
np_.memset.value = 123
np_.memset.elementSize = 4
np_.memset.width = N
np_.memset.height = 1
np_.memset.ctx = ctx
n_gm = check(cu.cuGraphAddNode(gn, None, None, 0, np_))
hp = cu.CUgraphNodeParams()
hp.type = T.CU_GRAPH_NODE_TYPE_HOST
keep.append(HOSTFN(lambda _: log.append("generic host")))
hp.host.fn = ctypes.cast(keep[-1], ctypes.c_void_p).value
check(cu.cuGraphAddNode(gn, [n_gm], None, 1, hp))
destroyed = threading.Event()
DESTRUCTOR = HOSTFN(lambda _: destroyed.set())
uo = check(cu.cuUserObjectCreate(0, ctypes.cast(DESTRUCTOR, ctypes.c_void_p).value, 1,
                                 cu.CUuserObject_flags.CU_USER_OBJECT_NO_DESTRUCTOR_SYNC))
check(cu.cuGraphRetainUserObject(gn, uo, 1, cu.CUuserObjectRetain_flags.CU_GRAPH_USER_OBJECT_MOVE))
xn = check(cu.cuGraphInstantiate(gn, 0))
np_.memset.value = 456
check(cu.cuGraphExecNodeSetParams(xn, n_gm, np_))
log.clear()
check(cu.cuGraphLaunch(xn, s))
check(cu.cuStreamSynchronize(s))
check(cu.cuMemcpyDtoH(out, d_a, 4 * N))
require((out == 456).all() and log == ["generic host"], "generic nodes, updated through the executable")
np_.memset.value = 789
check(cu.cuGraphNodeSetParams(n_gm, np_))
require(check(cu.cuGraphMemsetNodeGetParams(n_gm)).value == 789, "generic set params")
check(cu.cuGraphDestroy(gn))
require(not destroyed.is_set(), "the executable still holds the user object")
check(cu.cuGraphExecDestroy(xn))
require(destroyed.wait(10), "user object destructor ran when the last holder went")

for h in (x, xp, xe, xm, xc, xg):
    check(cu.cuGraphExecDestroy(h))
expect(E.CUDA_ERROR_INVALID_VALUE, cu.cuGraphExecDestroy(x), "double exec destroy")
for h in (g, c, parent, ge, gm, captured, gcap, other):
    check(cu.cuGraphDestroy(h))
expect(E.CUDA_ERROR_INVALID_VALUE, cu.cuGraphDestroy(g), "double graph destroy")
result(out=digest(out, want))
