"""Where the native artifacts live, and the environment that runs a program on them."""
from __future__ import annotations

import os
from collections.abc import Mapping
from importlib import metadata, resources
from pathlib import Path

from singularity_proxy.errors import SingularityError

# name in `singularity paths` -> file inside singularity_proxy/_native
_ARTIFACTS = {
    "simgpu": "libsimgpu.so",
    "simnvrtc": "libsimnvrtc.so",
    "shim": "libsingshim.so",
    "proxy": "singproxy-server",
}


class NativeArtifactMissing(SingularityError):
    """The package was installed without one of its native parts."""


def _native_dir() -> Path:
    return Path(str(resources.files("singularity_proxy") / "_native"))


def native_paths() -> dict[str, str]:
    """Absolute paths of the native artifacts, by name."""
    base = _native_dir()
    out = {}
    for name, filename in _ARTIFACTS.items():
        path = base / filename
        if not path.exists():
            raise NativeArtifactMissing(f"{filename} is missing from {base}: reinstall the package (make build)")
        out[name] = str(path.resolve())
    return out


def real_nvrtc_path() -> str | None:
    """NVIDIA's libnvrtc.so.13 from the nvidia-cuda-nvrtc wheel, if installed."""
    if os.environ.get("SINGULARITY_REAL_NVRTC"):
        return os.environ["SINGULARITY_REAL_NVRTC"]
    try:
        files = metadata.files("nvidia-cuda-nvrtc") or []
    except metadata.PackageNotFoundError:
        return None
    for f in files:
        if f.name == "libnvrtc.so.13":
            return str(Path(f.locate()).resolve())
    return None


def _prepend_preload(env: Mapping[str, str], libs: list[str]) -> str:
    existing = [p for p in env.get("LD_PRELOAD", "").replace(":", " ").split() if p not in libs]
    return " ".join(libs + existing)


# Where distributions put NVIDIA's driver (the proxy opens it by path).
_REAL_DRIVER_CANDIDATES = (
    "/usr/lib/x86_64-linux-gnu/libcuda.so.1",
    "/usr/lib64/libcuda.so.1",
    "/usr/local/nvidia/lib64/libcuda.so.1",
    "/usr/lib/wsl/lib/libcuda.so.1",
)


def real_driver_path() -> str | None:
    """NVIDIA's libcuda.so.1 on this host, if there is one."""
    if os.environ.get("SINGULARITY_REAL_DRIVER"):
        return os.environ["SINGULARITY_REAL_DRIVER"]
    for p in _REAL_DRIVER_CANDIDATES:
        if Path(p).exists():
            return p
    return None


def parse_device(spec: str) -> tuple[str, int | None]:
    """'sim', 'sim:N', 'cuda', 'cuda:N' -> (kind, index); no index means every device."""
    kind, _, index = spec.partition(":")
    if kind not in ("sim", "cuda") or (index and not index.isdigit()) or spec.endswith(":"):
        raise SingularityError(f"bad device {spec!r}: use sim, sim:N, cuda or cuda:N")
    return kind, int(index) if index else None


def proxied_env(device: str = "sim", job: str | None = None, base: Mapping[str, str] | None = None) -> dict[str, str]:
    """Environment that runs a program through the shim and a private proxy on `device`."""
    kind, index = parse_device(device)
    env = dict(os.environ if base is None else base)
    paths = native_paths()
    preload = [paths["shim"]]
    if kind == "sim":
        env["SINGULARITY_BACKEND"] = paths["simgpu"]
        if index is not None:
            have = int(env.get("SINGULARITY_SIM_DEVICES", "1") or 1)
            env["SINGULARITY_SIM_DEVICES"] = str(max(have, index + 1))
        nvrtc = real_nvrtc_path()
        if nvrtc:
            preload.append(paths["simnvrtc"])
            env["SINGULARITY_REAL_NVRTC"] = nvrtc
    else:
        driver = real_driver_path()
        if not driver:
            raise SingularityError("no NVIDIA driver (libcuda.so.1) on this host: use --device sim")
        env["SINGULARITY_BACKEND"] = driver
    if index is not None:
        # The proxy sees only the chosen device, as ordinal 0.
        env["CUDA_VISIBLE_DEVICES"] = str(index)
    env["SINGULARITY_PROXY"] = paths["proxy"]
    if job:
        env["SINGULARITY_JOB"] = job
    env["LD_PRELOAD"] = _prepend_preload(env, preload)
    return env


def simulated_gpu_env(devices: int = 1, base: Mapping[str, str] | None = None) -> dict[str, str]:
    """Environment that runs a program directly on the simulated GPU (no proxy)."""
    if devices < 1:
        raise SingularityError(f"--devices must be at least 1, not {devices}")
    env = dict(os.environ if base is None else base)
    paths = native_paths()
    preload = [paths["simgpu"]]
    nvrtc = real_nvrtc_path()
    if nvrtc:
        preload.append(paths["simnvrtc"])
        env["SINGULARITY_REAL_NVRTC"] = nvrtc
    env["LD_PRELOAD"] = _prepend_preload(env, preload)
    env["SINGULARITY_SIM_DEVICES"] = str(devices)
    return env
