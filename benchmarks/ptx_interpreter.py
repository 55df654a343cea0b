#!/usr/bin/env python3
"""PTX interpreter benchmark.

Reports thread-instructions per second of the simulated GPU's PTX engine on an
arithmetic-heavy kernel (one worker thread, then all workers) and the time of
a tiled 512x512x512 fp32 matmul, whose result is checked against numpy.

Until the driver path (cuda-python on libsimgpu) is merged, the measurements
run through the native ``ptx_bench`` program, which drives the engine through
the same interface the driver uses.  ``--build-dir`` names a CMake build with
``SING_BUILD_TESTS=ON``; without it an existing one is searched for under
``build/``, and failing that ``build/bench`` is configured and built (Release).

    python benchmarks/ptx_interpreter.py [--build-dir DIR] [--iters N] [--json]
"""
from __future__ import annotations

import argparse
import glob
import json
import os
import pathlib
import shutil
import subprocess
import sys
import tempfile

import numpy as np

ROOT = pathlib.Path(__file__).resolve().parents[1]


def find_bench(build_dir: str | None) -> pathlib.Path:
    if build_dir:
        exe = pathlib.Path(build_dir) / "csrc" / "simgpu" / "ptx_bench"
        if not exe.exists():
            sys.exit(f"ptx_interpreter: {exe} not found (build target ptx_bench with SING_BUILD_TESTS=ON)")
        return exe
    found = sorted(glob.glob(str(ROOT / "build" / "*" / "csrc" / "simgpu" / "ptx_bench")), key=os.path.getmtime)
    release = [f for f in found if "native-tests" not in f]  # the sanitizer build is not representative
    if release:
        return pathlib.Path(release[-1])
    bdir = ROOT / "build" / "bench"
    cmake = shutil.which("cmake", path=str(ROOT / ".venv" / "bin")) or shutil.which("cmake")
    ninja = shutil.which("ninja", path=str(ROOT / ".venv" / "bin")) or shutil.which("ninja")
    if not cmake:
        sys.exit("ptx_interpreter: no ptx_bench build found and no cmake to build one")
    cfg = [cmake, "-S", str(ROOT), "-B", str(bdir), "-DCMAKE_BUILD_TYPE=Release", "-DSING_BUILD_TESTS=ON"]
    if ninja:
        cfg += ["-G", "Ninja", f"-DCMAKE_MAKE_PROGRAM={ninja}"]
    print(f"ptx_interpreter: building ptx_bench in {bdir}", file=sys.stderr)
    subprocess.run(cfg, check=True, stdout=sys.stderr)
    subprocess.run([cmake, "--build", str(bdir), "-j2", "--target", "ptx_bench"], check=True, stdout=sys.stderr)
    return bdir / "csrc" / "simgpu" / "ptx_bench"


def run(exe: pathlib.Path, iters: int) -> dict:
    with tempfile.TemporaryDirectory() as tmp:
        mm = pathlib.Path(tmp) / "matmul.bin"
        out = subprocess.run([str(exe), "--iters", str(iters), "--matmul-out", str(mm)],
                             check=False, capture_output=True, text=True)
        if out.returncode not in (0, 2):
            sys.exit(f"ptx_bench failed ({out.returncode}): {out.stderr.strip()}")
        res = json.loads(out.stdout.strip().splitlines()[-1])
        n = 512
        data = np.fromfile(mm, dtype=np.float32)
        a, b, c = (data[i * n * n:(i + 1) * n * n].reshape(n, n) for i in range(3))
        ref = a.astype(np.float64) @ b.astype(np.float64)
        res["matmul512_max_abs_err_vs_numpy"] = float(np.max(np.abs(c - ref)))
        res["matmul512_matches_numpy"] = bool(np.allclose(c, ref, rtol=1e-4, atol=1e-4))
    return res


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--build-dir", help="CMake build directory containing csrc/simgpu/ptx_bench")
    ap.add_argument("--iters", type=int, default=2000, help="loop iterations of the arithmetic kernel")
    ap.add_argument("--json", action="store_true", help="print one JSON object")
    args = ap.parse_args()
    res = run(find_bench(args.build_dir), args.iters)
    if args.json:
        print(json.dumps(res))
    else:
        print(f"workers                               {res['workers']}")
        print(f"arith thread-instructions/s, 1 worker {res['arith_thread_inst_per_s_1worker']:.3g} "
              f"(per CPU-second {res['arith_thread_inst_per_cpu_s_1worker']:.3g})")
        print(f"arith thread-instructions/s, all      {res['arith_thread_inst_per_s_all']:.3g} "
              f"(per CPU-second {res['arith_thread_inst_per_cpu_s_all']:.3g})")
        print(f"tiled matmul 512^3 fp32               {res['matmul512_seconds']:.3f} s wall, "
              f"{res['matmul512_cpu_seconds']:.3f} s CPU ({res['matmul512_thread_inst_per_s']:.3g} thread-inst/s)")
        print(f"matmul vs numpy                       max |err| {res['matmul512_max_abs_err_vs_numpy']:.3g} "
              f"({'ok' if res['matmul512_matches_numpy'] else 'MISMATCH'})")
    return 0 if res["matmul512_matches_numpy"] else 1


if __name__ == "__main__":
    sys.exit(main())
