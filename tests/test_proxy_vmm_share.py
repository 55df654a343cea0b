"""Shareable VMM handles (POSIX file descriptors) between processes, as real users pass them: one
app exports an allocation, sends the descriptor over a unix socket, and another imports and maps
it.  Both then see the same memory, whether one proxy serves both apps, each app has a proxy of
its own on the host, or both run on the simulated GPU alone (the reference).  Descriptors that
are no memory and handles that are not the app's are refused with a CUDA error, and the proxy
goes on serving."""
from __future__ import annotations

import os
import socket

import pytest

from helpers import ProxyServer
from test_proxy_failures import App

PEER = "vmm_peer.py"
OK = "CUDA_SUCCESS"


@pytest.fixture(params=["direct", "one_proxy", "two_proxies"])
def peers(request, tmp_path):
    """Two vmm_peer.py apps joined by a unix socket pair, and the proxies serving them."""
    servers = []
    if request.param == "one_proxy":
        servers.append(ProxyServer(tmp_path))
        sockets = [servers[0].socket] * 2
    elif request.param == "two_proxies":
        for sub in ("a", "b"):
            (tmp_path / sub).mkdir()
            servers.append(ProxyServer(tmp_path / sub))
        sockets = [s.socket for s in servers]
    else:
        sockets = [None, None]
    ends = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
    apps = []
    try:
        for end, sock in zip(ends, sockets):
            apps.append(App(program=PEER, args=(str(end.fileno()),), pass_fds=(end.fileno(),), socket=sock,
                            direct=request.param == "direct", env={"VMM_PEER_DISK_DIR": str(tmp_path)}))
        for end in ends:
            end.close()
        yield request.param, apps[0], apps[1], servers
    finally:
        for end in ends:
            end.close()
        for app in apps:
            app.close()
        for s in servers:
            s.stop()


def _open_fds(server: ProxyServer) -> int:
    return len(os.listdir(f"/proc/{server.pid}/fd"))


def test_an_exported_allocation_aliases_in_the_importing_process(peers):
    mode, a, b, servers = peers
    fds_before = [_open_fds(s) for s in servers]
    assert a("create 4")["result"] == OK
    assert a("map")["result"] == OK
    assert a("fill 7")["result"] == OK
    exported = a("export")
    assert exported["result"] == OK and exported["fd"] >= 0 and exported["inheritable"], exported
    a("send")
    b("recv")
    assert b("import")["result"] == OK
    assert b("map 4")["result"] == OK
    assert b("read") | {"cmd": None} == {"cmd": None, "result": OK, "first": 7, "last": 7, "same": True}
    # Writes either way are seen the other way.
    assert b("fill 9")["result"] == OK
    assert a("read")["first"] == 9 and a("read")["same"]
    # The exporter lets go of everything: the importer's handle keeps the memory.
    a("closefd")
    assert set(a("release").values()) == {"release", OK}
    assert b("read")["first"] == 9
    b("closefd")
    assert set(b("release").values()) == {"release", OK}
    # No descriptor stays behind in a proxy (parked, passed or the backend's).
    assert [_open_fds(s) for s in servers] == fds_before
    for s in servers:
        assert s.proc.poll() is None


def test_bad_descriptors_and_foreign_handles_are_refused(peers):
    mode, a, b, servers = peers
    for kind in ("closed", "negative", "pipe", "devnull", "socket"):
        assert a(f"import_bad {kind}")["result"] == "CUDA_ERROR_INVALID_VALUE", kind
    if mode != "direct":
        # libsimgpu maps any file of an allocation's size; the proxy takes memory only (docs/proxy.md).
        assert a("import_bad file")["result"] == "CUDA_ERROR_INVALID_VALUE"
    # An allocation made without a shareable handle type cannot be exported.
    assert a("create_plain 2")["result"] == OK
    assert a("export")["result"] == "CUDA_ERROR_INVALID_VALUE"
    # Another app's handle, or a made-up one, is no handle here.
    foreign = a("handle")["handle"]
    assert b(f"export_handle {foreign}")["result"] == "CUDA_ERROR_INVALID_VALUE"
    assert b("export_handle 12345")["result"] == "CUDA_ERROR_INVALID_VALUE"
    # Everything still works, for both apps.
    for app in (a, b):
        assert app("create 2")["result"] == OK
        assert app("map")["result"] == OK
        assert app("fill 5")["result"] == OK
        assert app("read")["first"] == 5
    for s in servers:
        assert s.proc.poll() is None
