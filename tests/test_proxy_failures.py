"""The proxy's failure semantics (issue 3, part 6): an app that dies is
cleaned up within a second; a proxy that dies makes the app's pending and
later calls fail within a second; one app can never reach another's memory
or handles."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

import pytest

from helpers import PROGRAMS, ProxyServer, proxied_program_env, sim_program_env


class App:
    """A scriptable program of tests/programs (proxy_client.py unless `program`), driven line by line;
    through the proxy at `socket` (a private one if None), or with `direct` on the simulated GPU alone."""

    def __init__(self, *, socket: str | None = None, env: dict[str, str] | None = None,
                 program: str = "proxy_client.py", args: tuple[str, ...] = (), pass_fds: tuple[int, ...] = (),
                 direct: bool = False):
        env = sim_program_env(1, env) if direct else proxied_program_env(socket=socket, extra=env)
        self.proc = subprocess.Popen([sys.executable, str(PROGRAMS / program), *args], env=env,
                                     stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                     text=True, cwd=PROGRAMS, pass_fds=pass_fds)
        assert self.read() == {"ready": True}

    def read(self) -> dict:
        line = self.proc.stdout.readline()
        if not line:
            raise AssertionError("app ended: " + self.proc.stderr.read())
        return json.loads(line)

    def send(self, cmd: str) -> None:
        self.proc.stdin.write(cmd + "\n")
        self.proc.stdin.flush()

    def __call__(self, cmd: str) -> dict:
        self.send(cmd)
        return self.read()

    def close(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait(timeout=10)


@pytest.fixture
def proxy(tmp_path):
    p = ProxyServer(tmp_path)
    yield p
    p.stop()


def test_two_apps_share_one_proxy_in_separate_ranges(proxy):
    a, b = App(socket=proxy.socket), App(socket=proxy.socket)
    try:
        pa = a("alloc 8")
        pb = b("alloc 8")
        assert pa["result"] == pb["result"] == "CUDA_SUCCESS"
        assert pa["ptr"] != pb["ptr"]
        assert a(f"fill {pa['ptr']} 7 8")["result"] == "CUDA_SUCCESS"
        assert b(f"fill {pb['ptr']} 9 8")["result"] == "CUDA_SUCCESS"
        assert a(f"read {pa['ptr']} 8") | {"seconds": 0} == {"cmd": "read", "result": "CUDA_SUCCESS", "first": 7,
                                                              "last": 7, "seconds": 0}
        assert b(f"read {pb['ptr']} 8")["first"] == 9
    finally:
        a.close()
        b.close()


def test_foreign_memory_and_handles_are_refused(proxy):
    a, b = App(socket=proxy.socket), App(socket=proxy.socket)
    try:
        pa = a("alloc 1")["ptr"]
        a(f"fill {pa} 5 1")
        # b reads a's device memory: refused, and a's data is untouched.
        assert b(f"read {pa} 1")["result"] == "CUDA_ERROR_INVALID_VALUE"
        assert b(f"fill {pa} 1 1")["result"] != "CUDA_SUCCESS"
        assert a(f"read {pa} 1")["first"] == 5
        # A handle b never received (garbage, or a's) is not a handle for b.
        sa = a("stream")["handle"]
        assert b(f"use_stream {sa}")["result"] == "CUDA_ERROR_INVALID_HANDLE"
        assert b("use_stream 12345")["result"] == "CUDA_ERROR_INVALID_HANDLE"
    finally:
        a.close()
        b.close()


def test_dead_app_is_released_within_a_second(proxy):
    a = App(socket=proxy.socket, env={"SINGULARITY_VA_BASE": "0x400000000000"})
    total = a("info")["total"]
    assert a("alloc 4096")["result"] == "CUDA_SUCCESS"
    assert a("info")["free"] <= total - (4096 << 20)
    a.proc.send_signal(signal.SIGKILL)
    a.proc.wait()
    t0 = time.monotonic()
    # The same address range is free again, and so is the memory.
    while True:
        try:
            b = App(socket=proxy.socket, env={"SINGULARITY_VA_BASE": "0x400000000000"})
            break
        except AssertionError:
            assert time.monotonic() - t0 < 1.0, "the dead app's range was still held after 1 s"
            time.sleep(0.05)
    try:
        info = b("info")
        assert info["free"] == total
        assert time.monotonic() - t0 < 1.0
    finally:
        b.close()


def _kill_with_work_queued(a: App, seconds: float) -> int:
    """Kills `a` holding 1 GiB with `seconds` of kernels queued; the device's total memory."""
    total = a("info")["total"]
    assert a("alloc 1024")["result"] == "CUDA_SUCCESS"
    assert a("stream")["result"] == "CUDA_SUCCESS"
    assert a(f"busy {seconds}")["result"] == "CUDA_SUCCESS"
    a.proc.send_signal(signal.SIGKILL)
    a.proc.wait()
    return total


def test_work_a_dead_app_left_queued_holds_up_nobody(proxy):
    """The dead app's queued kernels must run out before its memory can go (the
    backend cannot drop queued work), but meanwhile the proxy serves others:
    a new app connects while that work runs, and the memory is freed when it ends."""
    total = _kill_with_work_queued(App(socket=proxy.socket), seconds=8)
    t0 = time.monotonic()
    b = App(socket=proxy.socket)
    try:
        # The proxy answered b's Hello while a's work still ran, i.e. before a's memory was released.
        assert b("info")["free"] <= total - (1024 << 20)
        while b("info")["free"] != total:
            assert time.monotonic() - t0 < 120, "the dead app's memory was never released"
            time.sleep(0.5)
    finally:
        b.close()


def test_the_same_job_again_waits_for_its_old_range(proxy):
    """A job's range is fixed (SINGULARITY_VA_BASE): started again while the proxy
    still releases its dead predecessor, it waits for that range instead of failing."""
    job = {"SINGULARITY_VA_BASE": "0x410000000000"}
    total = _kill_with_work_queued(App(socket=proxy.socket, env=job), seconds=4)
    again = App(socket=proxy.socket, env=job)
    try:
        assert again("info")["free"] == total  # connected once the old range and memory were free
        assert again("alloc 1")["result"] == "CUDA_SUCCESS"
    finally:
        again.close()


def test_calls_fail_within_a_second_when_the_proxy_dies(proxy):
    a = App(socket=proxy.socket)
    try:
        assert a("stream")["result"] == "CUDA_SUCCESS"
        # A call that is pending when the proxy dies: a host function keeps
        # the stream busy for 30 s.
        assert a("hostfn 30")["result"] == "CUDA_SUCCESS"
        a.send("wait_stream")
        time.sleep(0.3)
        os.kill(proxy.pid, signal.SIGKILL)
        t0 = time.monotonic()
        pending = a.read()
        assert pending["result"] == "CUDA_ERROR_DEVICE_UNAVAILABLE"
        assert time.monotonic() - t0 < 1.0
        later = a("alloc 1")
        assert later["result"] == "CUDA_ERROR_DEVICE_UNAVAILABLE"
        assert later["seconds"] < 1.0
    finally:
        a.close()
