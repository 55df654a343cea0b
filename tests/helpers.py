"""Helpers for the tests: run programs on the simulated GPU in a subprocess."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from singularity_proxy.artifacts import simulated_gpu_env

REPO = Path(__file__).resolve().parent.parent
PROGRAMS = REPO / "tests" / "programs"


def _program_env(devices: int, extra: dict[str, str] | None) -> dict[str, str]:
    env = simulated_gpu_env(devices=devices)
    # The programs import their helpers from tests/programs.
    env["PYTHONPATH"] = str(PROGRAMS)
    env["PYTHONUNBUFFERED"] = "1"
    env.update(extra or {})
    return env


def run_on_sim(args: list[str], *, devices: int = 1, env: dict[str, str] | None = None, timeout: float = 300,
               cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    """Run a command on the simulated GPU (libsimgpu preloaded, no proxy)."""
    return subprocess.run(args, env=_program_env(devices, env), capture_output=True, text=True,
                          timeout=timeout, cwd=cwd or PROGRAMS)


def run_program(name: str, *args: str, devices: int = 1, env: dict[str, str] | None = None,
                timeout: float = 300) -> subprocess.CompletedProcess[str]:
    """Run tests/programs/<name> with this interpreter on the simulated GPU."""
    return run_on_sim([sys.executable, str(PROGRAMS / name), *args], devices=devices, env=env, timeout=timeout)
