"""The package, its native artifacts and the `singularity` command."""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from helpers import REPO, run_on_sim


def test_driver_api_list_matches_headers():
    r = subprocess.run([sys.executable, str(REPO / "tools" / "driver_api_list.py"), "--check"],
                       capture_output=True, text=True)
    assert r.returncode == 0, r.stdout + r.stderr


def test_paths_prints_absolute_existing_files(tmp_path):
    r = subprocess.run([str(Path(sys.executable).parent / "singularity"), "paths"], capture_output=True, text=True,
                       cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    paths = json.loads(r.stdout)
    assert "simgpu" in paths
    for p in paths.values():
        assert Path(p).is_absolute() and Path(p).is_file()


def test_simgpu_soname_and_exports(native):
    dyn = subprocess.run(["readelf", "-d", native["simgpu"]], capture_output=True, text=True, check=True).stdout
    assert "Library soname: [libcuda.so.1]" in dyn
    syms = subprocess.run(["readelf", "--dyn-syms", "-W", native["simgpu"]], capture_output=True, text=True,
                          check=True).stdout
    exported = {line.split()[-1] for line in syms.splitlines() if " FUNC " in line and " UND " not in line}
    assert {"cuGetProcAddress_v2", "cuInit", "cuMemAlloc_v2", "cuLaunchKernel_ptsz"} <= exported
    # Nothing but the driver API leaks out.
    assert all(name.startswith("cu") for name in exported), sorted(n for n in exported if not n.startswith("cu"))


def test_sim_passes_exit_status(tmp_path):
    r = subprocess.run([str(Path(sys.executable).parent / "singularity"), "sim", "--", sys.executable, "-c",
                        "import sys; sys.exit(7)"], cwd=tmp_path)
    assert r.returncode == 7


def test_sim_without_command_is_an_error(tmp_path):
    r = subprocess.run([str(Path(sys.executable).parent / "singularity"), "sim"], capture_output=True, text=True,
                       cwd=tmp_path)
    assert r.returncode == 2 and "no command" in r.stderr


def test_cuda_python_resolves_driver_through_get_proc_address():
    r = run_on_sim([sys.executable, "-c", "from cuda.bindings import driver as cu; print(cu.cuDriverGetVersion())"])
    assert r.returncode == 0, r.stderr
    assert "13000" in r.stdout
