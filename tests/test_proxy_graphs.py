"""Graphs through the proxy where it must differ from a driver (pageable
memory a graph cannot reach later, graph memory kept in the job's address
range) or where one app must not reach another's graphs.  The behaviour they
share with the driver is checked by the transparency test (graphs.py,
graph_kernels.py, graph_api.py)."""
from __future__ import annotations

import json
import sys

from helpers import PROGRAMS, run_proxied
from test_proxy_failures import App, proxy  # noqa: F401  (fixture)


def test_graph_limits_through_the_proxy():
    r = run_proxied([sys.executable, str(PROGRAMS / "proxy_graph_limits.py")], timeout=120)
    assert r.returncode == 0, r.stderr
    out = json.loads(r.stdout.strip().splitlines()[-1])
    assert out["pageable_memcpy_node"] == "CUDA_ERROR_NOT_SUPPORTED"
    assert out["pinned_memcpy_node"] == "CUDA_SUCCESS"
    assert out["memset_past_allocation"] == "CUDA_ERROR_INVALID_VALUE"
    assert out["memset_overrunning"] == "CUDA_ERROR_INVALID_VALUE"
    assert out["captured_pageable_copy"] == "CUDA_ERROR_NOT_SUPPORTED"
    lo, hi = out["va_base"], out["va_base"] + out["va_size"]
    for key in ("alloc_node_ptr", "captured_alloc_ptr", "device_ptr"):
        assert lo <= out[key] < hi, f"{key} {out[key]:#x} outside the job range"
    assert out["free_graph_memory"] == "CUDA_ERROR_INVALID_VALUE"


def test_graphs_of_another_app_are_refused(proxy):  # noqa: F811
    a, b = App(socket=proxy.socket), App(socket=proxy.socket)
    try:
        pa = a("alloc 1")["ptr"]
        ga = a(f"graph {pa} 1")
        assert ga["result"] == "CUDA_SUCCESS"
        # Ids are per app: b is tried before it has graphs of its own.
        used = b(f"use_graph {ga['graph']} {ga['node']}")
        assert used["add"] == used["dep"] == used["type"] == used["nodes"] == "CUDA_ERROR_INVALID_VALUE", used
        # b may not touch a's memory through a graph node either.
        assert b(f"graph {pa} 1")["result"] == "CUDA_ERROR_INVALID_VALUE"
        # a's graph is intact.
        assert a(f"use_graph {ga['graph']} {ga['node']}")["type"] == "CUDA_SUCCESS"
    finally:
        a.close()
        b.close()
