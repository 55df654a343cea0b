"""Helpers of the control-plane tests: a private etcd, free ports, a token file."""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

ETCD = shutil.which("etcd") or "/usr/bin/etcd"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_until(cond, what: str, timeout: float = 30.0, every: float = 0.05):  # type: ignore[no-untyped-def]
    """Poll ``cond`` until it returns something truthy; fail with ``what`` after ``timeout`` s.

    A bound on waiting for something that must happen, not an assertion about how long it took."""
    deadline = time.monotonic() + timeout
    while True:
        v = cond()
        if v:
            return v
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(every)


@contextmanager
def etcd_server(tmp: Path) -> Iterator[str]:
    """A one-member etcd on free ports with its data in ``tmp``; killed (and waited for) on exit."""
    if not os.path.exists(ETCD):
        import pytest

        pytest.skip("etcd is not installed (scripts/setup-system.sh installs it)")
    client, peer = free_port(), free_port()
    url = f"http://127.0.0.1:{client}"
    log = open(tmp / "etcd.log", "wb")
    proc = subprocess.Popen(
        [
            ETCD,
            "--name", "t",
            "--data-dir", str(tmp / "etcd-data"),
            "--listen-client-urls", url,
            "--advertise-client-urls", url,
            "--listen-peer-urls", f"http://127.0.0.1:{peer}",
            "--initial-advertise-peer-urls", f"http://127.0.0.1:{peer}",
            "--initial-cluster", f"t=http://127.0.0.1:{peer}",
            "--log-level", "error",
        ],
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    try:
        def up() -> bool:
            if proc.poll() is not None:
                raise AssertionError(f"etcd exited: {(tmp / 'etcd.log').read_text()[-2000:]}")
            try:
                with urllib.request.urlopen(url + "/version", timeout=1) as r:
                    return r.status == 200
            except OSError:
                return False

        wait_until(up, "etcd to answer", timeout=60)
        yield url
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        log.close()
