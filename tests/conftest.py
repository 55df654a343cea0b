"""Shared fixtures."""
from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from singularity_proxy.artifacts import native_paths


@pytest.fixture(scope="session")
def native() -> dict[str, str]:
    return native_paths()


@pytest.fixture(scope="session")
def cc(tmp_path_factory, native):
    """Compile a C/C++ driver-API program against the simulated libcuda.so.1."""
    libdir = tmp_path_factory.mktemp("libcuda")
    # A link-time name for -lcuda; at run time the preloaded libsimgpu.so answers libcuda.so.1.
    os.symlink(native["simgpu"], libdir / "libcuda.so")

    def build(source: Path, *extra: str) -> Path:
        out = tmp_path_factory.mktemp("bin") / source.stem
        compiler = "g++" if source.suffix in (".cc", ".cpp") else "gcc"
        subprocess.run([compiler, "-O1", "-g", "-I/usr/local/cuda/include", str(source), "-o", str(out),
                        f"-L{libdir}", "-lcuda", "-lpthread", *extra], check=True)
        return out

    return build
