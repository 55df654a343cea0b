"""Helpers for the tests: run programs on the simulated GPU in a subprocess."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from singularity_proxy.artifacts import simulated_gpu_env

REPO = Path(__file__).resolve().parent.parent
PROGRAMS = REPO / "tests" / "programs"


def sim_program_env(devices: int, extra: dict[str, str] | None) -> dict[str, str]:
    """Environment of a program on the simulated GPU alone (libsimgpu preloaded, no proxy)."""
    env = simulated_gpu_env(devices=devices)
    # The programs import their helpers from tests/programs.
    env["PYTHONPATH"] = str(PROGRAMS)
    env["PYTHONUNBUFFERED"] = "1"
    env.update(extra or {})
    return env


def run_on_sim(args: list[str], *, devices: int = 1, env: dict[str, str] | None = None, timeout: float = 300,
               cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    """Run a command on the simulated GPU (libsimgpu preloaded, no proxy)."""
    return subprocess.run(args, env=sim_program_env(devices, env), capture_output=True, text=True,
                          timeout=timeout, cwd=cwd or PROGRAMS)


def run_program(name: str, *args: str, devices: int = 1, env: dict[str, str] | None = None,
                timeout: float = 300) -> subprocess.CompletedProcess[str]:
    """Run tests/programs/<name> with this interpreter on the simulated GPU."""
    return run_on_sim([sys.executable, str(PROGRAMS / name), *args], devices=devices, env=env, timeout=timeout)


def proxied_program_env(*, devices: int = 1, socket: str | None = None, extra: dict[str, str] | None = None,
                        device: str = "sim") -> dict[str, str]:
    """Environment of a program whose driver calls go through the shim to a proxy."""
    from singularity_proxy.artifacts import proxied_env

    base = dict(__import__("os").environ)
    base["SINGULARITY_SIM_DEVICES"] = str(devices)
    env = proxied_env(device=device, base=base)
    if socket:
        env["SINGULARITY_SOCKET"] = socket
    env["PYTHONPATH"] = str(PROGRAMS)
    env["PYTHONUNBUFFERED"] = "1"
    env.update(extra or {})
    return env


def run_proxied(args: list[str], *, devices: int = 1, socket: str | None = None, env: dict[str, str] | None = None,
                timeout: float = 300) -> subprocess.CompletedProcess[str]:
    """Run a command through shim -> proxy -> simulated GPU (a private proxy unless `socket`)."""
    return subprocess.run(args, env=proxied_program_env(devices=devices, socket=socket, extra=env),
                          capture_output=True, text=True, timeout=timeout, cwd=PROGRAMS)


class ProxyServer:
    """A proxy in daemon mode (serving any number of apps on a socket)."""

    def __init__(self, tmp: Path, devices: int = 1):
        import os
        import time

        from singularity_proxy.artifacts import native_paths

        paths = native_paths()
        self.socket = str(tmp / "proxy.sock")
        env = dict(os.environ)
        env.pop("LD_PRELOAD", None)
        env["SINGULARITY_SIM_DEVICES"] = str(devices)
        self.proc = subprocess.Popen([paths["proxy"], "--backend", paths["simgpu"], "--socket", self.socket],
                                     env=env, stderr=subprocess.PIPE, text=True)
        deadline = time.monotonic() + 10
        while not os.path.exists(self.socket):
            if time.monotonic() > deadline or self.proc.poll() is not None:
                raise RuntimeError("proxy did not start")
            time.sleep(0.01)

    @property
    def pid(self) -> int:
        return self.proc.pid

    def stop(self) -> str:
        if self.proc.poll() is None:
            self.proc.terminate()
        try:
            _, err = self.proc.communicate(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            _, err = self.proc.communicate()
        return err or ""
