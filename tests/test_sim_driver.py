"""The simulated GPU's driver API semantics: every program in tests/programs
runs on libsimgpu and checks itself; here each must exit 0 and end with its
RESULT line.  Exit status 77 is a skip the program justified (the PTX engine
not being built yet) and is reported as such."""
from __future__ import annotations

import json
import sys

import pytest

from helpers import run_on_sim, run_program

SKIP = 77

# C programs linked with -lcuda (each prints a RESULT line).
C_PROGRAMS = ["errors.c", "vecadd.c", "exit_with_host_function_due.c"]

# name, devices, extra environment
PROGRAMS = [
    ("device_props.py", 2, {"SINGULARITY_SIM_MEMORY": "8G,4G"}),
    ("contexts.py", 1, {}),
    ("memory.py", 1, {}),
    ("streams.py", 1, {}),
    ("ptds.py", 1, {"CUDA_PYTHON_CUDA_PER_THREAD_DEFAULT_STREAM": "1"}),
    ("multithread.py", 1, {}),
    ("pools.py", 1, {}),
    ("vmm.py", 1, {}),
    ("vmm_share.py", 1, {}),
    ("managed_hints.py", 1, {}),
    ("managed_hints_edges.py", 2, {}),
    ("graphs.py", 1, {}),
    ("two_devices.py", 2, {}),
    ("errors.py", 1, {}),
    ("modules.py", 1, {}),
    ("kernels.py", 1, {}),
    ("kernel_faults.py", 1, {}),
    ("mapped_host_kernel.py", 1, {}),
    ("graph_kernels.py", 1, {}),
    ("graph_api.py", 1, {}),
    ("host_register.py", 1, {}),
    ("cooperative.py", 1, {}),
    ("peer_kernel.py", 2, {}),
    ("threads_kernels.py", 1, {}),
    ("exit_with_work_queued.py", 1, {}),
]


def run_checked(name: str, devices: int, env: dict[str, str]):
    r = run_program(name, devices=devices, env=env, timeout=240)
    if r.returncode == SKIP:
        pytest.skip(r.stdout.strip().splitlines()[-1] if r.stdout.strip() else "skipped")
    assert r.returncode == 0, f"exit {r.returncode}\nstdout:\n{r.stdout}\nstderr:\n{r.stderr}"
    last = r.stdout.strip().splitlines()[-1]
    assert last.startswith("RESULT "), r.stdout
    return json.loads(last[len("RESULT "):])


@pytest.mark.parametrize("name,devices,env", PROGRAMS, ids=[p[0] for p in PROGRAMS])
def test_program(name, devices, env):
    run_checked(name, devices, env)


@pytest.mark.parametrize("name,devices,env", [p for p in PROGRAMS if p[0] in ("memory.py", "device_props.py")])
def test_results_are_deterministic(name, devices, env):
    assert run_checked(name, devices, env) == run_checked(name, devices, env)


def _init_result(env: dict[str, str]):
    code = ("from cuda.bindings import driver as cu\n"
            "print(int(cu.cuInit(0)[0]), cu.cuDeviceGetCount()[1])\n")
    return run_on_sim([sys.executable, "-c", code], env=env)


def test_no_devices_means_no_device():
    r = _init_result({"SINGULARITY_SIM_DEVICES": "0"})
    assert r.returncode == 0, r.stderr
    assert r.stdout.split()[0] == "100"  # CUDA_ERROR_NO_DEVICE


@pytest.mark.parametrize("var,value", [("SINGULARITY_SIM_MEMORY", "lots"), ("SINGULARITY_SIM_MEMORY", "1G,2G"),
                                       ("SINGULARITY_SIM_DEVICES", "many"), ("SINGULARITY_SIM_THREADS", "0")])
def test_bad_configuration_is_reported(var, value):
    r = _init_result({var: value})
    assert r.stdout.split()[0] == "1", r.stdout  # CUDA_ERROR_INVALID_VALUE
    assert var in r.stderr


def test_name_and_memory_configuration():
    code = ("from cuda.bindings import driver as cu\n"
            "cu.cuInit(0)\n"
            "print(cu.cuDeviceGetName(64, 0)[1].split(b'\\0')[0].decode(), cu.cuDeviceTotalMem(0)[1])\n")
    r = run_on_sim([sys.executable, "-c", code], env={"SINGULARITY_SIM_NAME": "Test GPU (simulated)",
                                                      "SINGULARITY_SIM_MEMORY": "512M"})
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == f"Test GPU (simulated) {512 << 20}"


@pytest.mark.parametrize("source", C_PROGRAMS)
def test_c_program(cc, source):
    from helpers import PROGRAMS

    exe = cc(PROGRAMS / source)
    r = run_on_sim([str(exe)], timeout=120)
    if r.returncode == SKIP:
        pytest.skip(r.stdout.strip())
    assert r.returncode == 0, f"exit {r.returncode}\n{r.stdout}\n{r.stderr}"
    assert r.stdout.strip().splitlines()[-1].startswith("RESULT ")
