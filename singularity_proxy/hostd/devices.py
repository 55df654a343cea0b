"""The devices a host daemon offers: `--devices sim:N` or `--devices cuda`.

Both are asked of a CUDA driver (libsimgpu.so for sim, NVIDIA's libcuda.so.1 for cuda)
through the same few driver calls, in a child process: a driver loaded into the daemon would
stay loaded (threads, memory, for sim a soname libcuda.so.1 in the daemon), and a driver that
crashes or hangs must not take the daemon with it.

    python -P -m singularity_proxy.hostd.devices DRIVER   # prints [{"index", "name", "memory_bytes"}]
"""
from __future__ import annotations

import ctypes
import json
import os
import subprocess
import sys
from dataclasses import asdict, dataclass

from singularity_proxy.artifacts import native_paths, real_driver_path
from singularity_proxy.errors import SingularityError


class DeviceError(SingularityError):
    """The devices cannot be listed (bad --devices, no driver, driver failure)."""


@dataclass(frozen=True, kw_only=True)
class Device:
    id: str             # as `singularity run --device` takes it: sim:N or cuda:N
    type: str           # the driver's device name
    memory_bytes: int

    def to_json(self) -> dict[str, object]:
        return asdict(self)


def parse_spec(spec: str) -> tuple[str, int | None]:
    """'sim:N' -> ('sim', N); 'cuda' -> ('cuda', None)."""
    kind, _, count = spec.partition(":")
    if kind == "sim" and count.isdigit() and 1 <= int(count) <= 1024:
        return "sim", int(count)
    if spec == "cuda":
        return "cuda", None
    raise DeviceError(f"bad --devices {spec!r}: use sim:N (N simulated devices) or cuda (every GPU of this host)")


def discover(spec: str, timeout: float = 120.0) -> list[Device]:
    kind, count = parse_spec(spec)
    env = dict(os.environ)
    env.pop("LD_PRELOAD", None)
    # Device ids are the driver's ordinals over all devices (what `--device cuda:N` selects
    # through CUDA_VISIBLE_DEVICES), so the probe sees every device.
    env.pop("CUDA_VISIBLE_DEVICES", None)
    if kind == "sim":
        driver = native_paths()["simgpu"]
        env["SINGULARITY_SIM_DEVICES"] = str(count)
    else:
        found = real_driver_path()
        if not found:
            raise DeviceError("--devices cuda: no NVIDIA driver (libcuda.so.1) on this host")
        driver = found
    try:
        r = subprocess.run([sys.executable, "-P", "-m", "singularity_proxy.hostd.devices", driver], env=env,
                           capture_output=True, text=True, timeout=timeout, stdin=subprocess.DEVNULL)
    except subprocess.TimeoutExpired:
        raise DeviceError(f"listing the devices of {driver} took over {timeout:.0f} s") from None
    if r.returncode != 0:
        raise DeviceError(f"listing the devices of {driver} failed: {r.stderr.strip() or r.returncode}")
    rows = json.loads(r.stdout)
    devices = [Device(id=f"{kind}:{row['index']}", type=row["name"], memory_bytes=row["memory_bytes"]) for row in rows]
    if not devices:
        raise DeviceError(f"{driver} reports no devices")
    return devices


def _probe(driver: str) -> list[dict[str, object]]:
    lib = ctypes.CDLL(driver)

    def call(fn: str, *args: object) -> None:
        rc = getattr(lib, fn)(*args)
        if rc != 0:
            raise SystemExit(f"{fn} failed: CUresult {rc}")

    call("cuInit", ctypes.c_uint(0))
    n = ctypes.c_int()
    call("cuDeviceGetCount", ctypes.byref(n))
    out = []
    for i in range(n.value):
        dev = ctypes.c_int()
        call("cuDeviceGet", ctypes.byref(dev), ctypes.c_int(i))
        name = ctypes.create_string_buffer(256)
        call("cuDeviceGetName", name, ctypes.c_int(len(name)), dev)
        mem = ctypes.c_size_t()
        call("cuDeviceTotalMem_v2", ctypes.byref(mem), dev)
        out.append({"index": i, "name": name.value.decode(errors="replace"), "memory_bytes": mem.value})
    return out


if __name__ == "__main__":
    print(json.dumps(_probe(sys.argv[1])))
