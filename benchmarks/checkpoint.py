#!/usr/bin/env python3
"""Checkpoint, restore and migration figures (issue 4), with the storage baseline in the same run.

    python -P benchmarks/checkpoint.py [--sizes 64,256,1024] [--dir DIR] [--repeat N] [--json]

For each device-state size a job (benchmarks/checkpoint/state_job.py) holds that much distinct
device memory on the simulated GPU, through the proxy, under `singularity run --job`.  Measured:
a plain sequential write + fsync of the same number of bytes to the same directory (the storage
baseline); a checkpoint left running (device-state seconds and throughput, CRIU seconds, image
size); a second checkpoint of the unchanged job (bytes written); a migration to the other
simulated device (total seconds); a stop checkpoint and a restore (restore seconds).
Targets: device-state throughput >= 90% of the baseline; migrating a 1 GiB-state job <= 2 s plus
CRIU's own time.
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
JOB = HERE / "checkpoint" / "state_job.py"


def baseline_write(directory: Path, nbytes: int) -> float:
    """GB/s of a sequential write + fsync of nbytes in 4 MiB pieces."""
    path = directory / "baseline.bin"
    piece = os.urandom(4 << 20)
    t0 = time.perf_counter()
    with open(path, "wb") as f:
        left = nbytes
        while left > 0:
            left -= f.write(piece[: min(left, len(piece))])
        f.flush()
        os.fsync(f.fileno())
    dt = time.perf_counter() - t0
    path.unlink()
    return nbytes / dt / 1e9


def du(path: Path) -> int:
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())


class Cli:
    def __init__(self, rundir: Path):
        self.env = dict(os.environ)
        self.env["SINGULARITY_RUNTIME_DIR"] = str(rundir)
        self.env["SINGULARITY_SIM_DEVICES"] = "2"
        self.env["SINGULARITY_SIM_MEMORY"] = "8G,8G"
        self.env.pop("LD_PRELOAD", None)

    def __call__(self, *args: str) -> dict:
        r = subprocess.run([sys.executable, "-P", "-m", "singularity_proxy", *args, "--json"], env=self.env,
                           capture_output=True, text=True, timeout=900)
        if r.returncode != 0:
            raise RuntimeError(f"singularity {' '.join(args)}: {r.stderr.strip()}")
        return json.loads(r.stdout)

    def start(self, name: str, size_mib: int, out: Path) -> subprocess.Popen:
        log = open(out, "w")
        proc = subprocess.Popen([sys.executable, "-P", "-m", "singularity_proxy", "run", "--job", name, "--",
                                 sys.executable, str(JOB), str(size_mib)], env=self.env, stdout=log,
                                stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
        deadline = time.monotonic() + 600
        while "ready" not in out.read_text():
            if proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"the job did not start:\n{out.read_text()}")
            time.sleep(0.1)
        return proc


def measure(work: Path, size_mib: int) -> dict:
    rundir = work / f"run-{size_mib}"
    rundir.mkdir()
    cli = Cli(rundir)
    nbytes = size_mib << 20
    base = baseline_write(work, nbytes)
    name = f"state{size_mib}"
    proc = cli.start(name, size_mib, rundir / "job.out")
    try:
        img = work / f"img-{size_mib}"
        first = cli("checkpoint", "--leave-running", name, str(img))
        second = cli("checkpoint", "--leave-running", name, str(img))
        mig = cli("migrate", name, "--device", "sim:1")
        img2 = work / f"img2-{size_mib}"
        stop = cli("checkpoint", name, str(img2))
        rest = cli("restore", str(img2), "--device", "sim:0")  # by the job's own supervisor: timed
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
    dev_tput = first["device_bytes"] / first["device_seconds"] / 1e9
    return {
        "size_mib": size_mib,
        "baseline_write_gbps": round(base, 3),
        "checkpoint_device_s": round(first["device_seconds"], 3),
        "checkpoint_device_gbps": round(dev_tput, 3),
        "throughput_vs_baseline": round(dev_tput / base, 3),
        "checkpoint_criu_s": round(first["criu_seconds"], 3),
        "checkpoint_total_s": round(first["seconds"], 3),
        "image_bytes": du(img),
        "device_bytes": first["device_bytes"],
        "repeat_bytes_written": second["device_bytes_written"],
        "repeat_chunks_written": second["chunks_written"],
        "migrate_total_s": round(mig["seconds"], 3),
        "migrate_criu_s": round(mig["checkpoint"]["criu_seconds"] + mig["restore"]["criu_seconds"], 3),
        "migrate_minus_criu_s": round(mig["seconds"] - mig["checkpoint"]["criu_seconds"]
                                      - mig["restore"]["criu_seconds"], 3),
        "stop_checkpoint_s": round(stop["seconds"], 3),
        "restore_s": round(rest["seconds"], 3),
        # Where the time goes, step by step (supervisor.py's phases; proxy_s = the proxy's own time).
        "migrate_phases": {"checkpoint": {**mig["checkpoint"]["phases"],
                                          "proxy_s": round(mig["checkpoint"]["proxy_seconds"], 4)},
                           "restore": {**mig["restore"]["phases"],
                                       "proxy_s": round(mig["restore"]["proxy_seconds"], 4)},
                           "image_in_ram": mig.get("image_in_ram", False)},
        "stop_phases": stop["phases"],
        "restore_phases": rest["phases"],
    }


def median_row(rows: list[dict]) -> dict:
    """The median of every number over repeated runs (the machine is shared and noisy)."""
    out: dict = {}
    for k, v in rows[0].items():
        if isinstance(v, dict):
            out[k] = median_row([r[k] for r in rows])
        elif isinstance(v, (int, float)) and not isinstance(v, bool):
            vals = sorted(r[k] for r in rows)
            mid = len(vals) // 2
            out[k] = vals[mid] if len(vals) % 2 else round((vals[mid - 1] + vals[mid]) / 2, 4)
        else:
            out[k] = v
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sizes", default="64,256,1024", help="device-state sizes in MiB")
    ap.add_argument("--dir", help="where images go (default: a temporary directory under /tmp)")
    ap.add_argument("--repeat", type=int, default=1, help="runs per size; the medians are reported")
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()
    work = Path(tempfile.mkdtemp(prefix="ckpt-bench-", dir=args.dir))
    try:
        rows = []
        for s in args.sizes.split(","):
            runs = []
            for i in range(args.repeat):
                sub = work / f"r{i}"
                sub.mkdir()
                runs.append(measure(sub, int(s)))
                shutil.rmtree(sub, ignore_errors=True)
            rows.append(median_row(runs))
    finally:
        shutil.rmtree(work, ignore_errors=True)
    if args.json:
        print(json.dumps(rows, indent=2))
        return 0
    cols = [c for c in rows[0] if not isinstance(rows[0][c], dict)]
    print(" ".join(f"{c:>22}" for c in cols[:1]) + "".join(f"{r['size_mib']:>12}" for r in rows))
    for c in cols[1:]:
        print(f"{c:>22}" + "".join(f"{r[c]:>12}" for r in rows))
    return 0


if __name__ == "__main__":
    sys.exit(main())
