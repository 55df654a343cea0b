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




def fleet_file(path: Path, hosts: list[tuple[str, str, str]]) -> Path:
    """hosts: (name, cluster, devices such as 'sim:2')."""
    path.write_text(
        "".join(f'[[hosts]]\nname = "{n}"\ncluster = "{c}"\ndevices = "{d}"\n\n' for n, c, d in hosts)
    )
    return path


def repo_env(**extra: str) -> dict[str, str]:
    """Environment of a daemon or CLI subprocess: the tests' own (which runs the installed package,
    or a checkout put first on PYTHONPATH by whoever runs the tests), plus ``extra``.  Never the
    source tree by default: it has no compiled parts."""
    env = dict(os.environ)
    env.pop("LD_PRELOAD", None)
    env.update(extra)
    return env


class Scheduler:
    """A `singularity-scheduler serve` subprocess of this checkout."""

    def __init__(self, tmp: Path, *, fleet: Path, token_file: Path, name: str = "s", args: list[str] = ()) -> None:  # type: ignore[assignment]
        import sys

        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.token = token_file.read_text().strip()
        self.log_path = tmp / f"scheduler-{name}-{self.port}.log"
        self.log = open(self.log_path, "wb")
        cmd = [
            sys.executable, "-P", "-m", "scheduler.cli", "serve",
            "--fleet", str(fleet), "--data-dir", str(tmp / "data"),
            "--listen", f"127.0.0.1:{self.port}", "--token-file", str(token_file),
            "--poll-interval", "0.2", *args,
        ]
        self.proc = subprocess.Popen(cmd, stdout=self.log, stderr=subprocess.STDOUT, env=repo_env())

    def health(self) -> dict | None:  # type: ignore[type-arg]
        import httpx

        try:
            r = httpx.get(self.url + "/v1/health", headers={"Authorization": f"Bearer {self.token}"}, timeout=2)
            return r.json() if r.status_code == 200 else None
        except httpx.HTTPError:
            return None

    def wait_up(self, leader: bool | None = True) -> None:
        def ready() -> bool:
            if self.proc.poll() is not None:
                raise AssertionError(f"scheduler exited {self.proc.returncode}: {self.output()[-3000:]}")
            h = self.health()
            return h is not None and (leader is None or h["leader"] == leader)

        wait_until(ready, f"scheduler {self.url} to be up (leader={leader})", timeout=60)

    def output(self) -> str:
        if not self.log.closed:
            self.log.flush()
        return self.log_path.read_text(errors="replace")

    def kill(self, sig: int = signal.SIGKILL) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
        try:
            self.proc.wait(30)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        self.log.close()
