#!/usr/bin/env python3
"""Proxy overhead: the same programs directly on the simulated GPU and through shim -> proxy, in one run.

    python benchmarks/overhead.py [--json] [--quick]

Direct = `LD_PRELOAD=libsimgpu.so` (the app on the simulated device, nothing in
between).  Proxied = `LD_PRELOAD=libsingshim.so` with a proxy on libsimgpu.so.
Ratios are proxied/direct; times are proxied unless named `direct_*`.

Targets (issue 3): sync median <= 1 us, p99 <= 10 us; async submission
<= 100 ns; pinned copies >= 95% and pageable >= 70% of direct bandwidth at
>= 1 MiB; training step <= 2% slower; proxy memory per client <= 64 MiB.
"""
from __future__ import annotations

import argparse
import json
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from singularity_proxy.artifacts import native_paths, proxied_env, simulated_gpu_env

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
SIZES = [4 << 10, 64 << 10, 1 << 20, 16 << 20, 256 << 20]


def build_bench(tmp: Path) -> Path:
    libdir = tmp / "lib"
    libdir.mkdir()
    os.symlink(native_paths()["simgpu"], libdir / "libcuda.so")
    out = tmp / "bench"
    subprocess.run(["gcc", "-O2", "-I/usr/local/cuda/include", str(HERE / "overhead" / "bench.c"), "-o", str(out),
                    f"-L{libdir}", "-lcuda"], check=True)
    return out


def run_json(cmd: list[str], env: dict[str, str]) -> dict:
    r = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=900)
    if r.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)} failed:\n{r.stderr}")
    return json.loads(r.stdout.strip().splitlines()[-1])


class Proxy:
    """A proxy serving clients on a socket, so its memory can be measured."""

    def __init__(self, tmp: Path):
        paths = native_paths()
        self.socket = str(tmp / "proxy.sock")
        env = dict(os.environ)
        env.pop("LD_PRELOAD", None)
        self.proc = subprocess.Popen([paths["proxy"], "--backend", paths["simgpu"], "--socket", self.socket],
                                     env=env, stderr=subprocess.DEVNULL)
        for _ in range(200):
            if os.path.exists(self.socket):
                break
            time.sleep(0.01)

    def env(self, base: dict[str, str]) -> dict[str, str]:
        env = proxied_env(device="sim", base=base)
        env["SINGULARITY_SOCKET"] = self.socket
        return env

    def memory_kib(self) -> dict[str, int]:
        status = Path(f"/proc/{self.proc.pid}/status").read_text()
        return {k: int(re.search(rf"^{k}:\s+(\d+)", status, re.M).group(1)) for k in ("RssAnon", "RssShmem")}

    def stop(self) -> None:
        self.proc.terminate()
        self.proc.wait(timeout=10)


def train_seconds(env: dict[str, str], steps: int) -> float:
    cmd = [sys.executable, str(REPO / "examples" / "train.py"), "--steps", str(steps)]
    r = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=1800)
    if r.returncode != 0:
        raise RuntimeError(f"train.py failed:\n{r.stderr}")
    m = re.search(r"steps in ([\d.]+) s", r.stderr)
    return float(m.group(1))


def measure(quick: bool) -> dict:
    out: dict = {}
    with tempfile.TemporaryDirectory() as t:
        tmp = Path(t)
        bench = build_bench(tmp)
        direct = simulated_gpu_env()
        proxy = Proxy(tmp)
        try:
            proxied = proxy.env(dict(os.environ))
            n_sync = 20000 if quick else 200000
            d = run_json([str(bench), "sync", str(n_sync)], direct)
            p = run_json([str(bench), "sync", str(n_sync)], proxied)
            out.update(sync_median_us=p["sync_median_us"], sync_p99_us=p["sync_p99_us"],
                       direct_sync_median_us=d["sync_median_us"], direct_sync_p99_us=d["sync_p99_us"])

            n_launch = 5000 if quick else 50000
            d = run_json([str(bench), "launch", str(n_launch)], direct)
            p = run_json([str(bench), "launch", str(n_launch)], proxied)
            out.update(async_submit_ns=p["async_submit_ns"], direct_async_submit_ns=d["async_submit_ns"],
                       launches_per_s=p["launches_per_s"], direct_launches_per_s=d["launches_per_s"],
                       launch_throughput_ratio=p["launches_per_s"] / d["launches_per_s"])

            sizes = SIZES[:-1] if quick else SIZES
            d = run_json([str(bench), "copy", *map(str, sizes)], direct)["copies"]
            p = run_json([str(bench), "copy", *map(str, sizes)], proxied)["copies"]
            rows = []
            for dd, pp in zip(d, p):
                row = {"bytes": dd["bytes"]}
                for k in ("pinned_h2d", "pinned_d2h", "pageable_h2d", "pageable_d2h"):
                    row[k + "_gbps"] = pp[k]
                    row["direct_" + k + "_gbps"] = dd[k]
                    row[k + "_ratio"] = pp[k] / dd[k]
                rows.append(row)
            out["copies"] = rows
            big = [r for r in rows if r["bytes"] >= (1 << 20)]
            out["pinned_bw_ratio"] = min(min(r["pinned_h2d_ratio"], r["pinned_d2h_ratio"]) for r in big)
            out["pageable_bw_ratio"] = min(min(r["pageable_h2d_ratio"], r["pageable_d2h_ratio"]) for r in big)

            # The training step: the demo program, several alternating runs of each.
            # ~5 ms a step: 200 steps (~1 s a run) so that scheduling noise does not decide the ratio.
            steps = 20 if quick else 200
            reps = 1 if quick else 5
            td, tp = [], []
            for _ in range(reps):
                td.append(train_seconds(direct, steps))
                tp.append(train_seconds(proxied, steps))
            out.update(train_step_s=statistics.median(tp) / steps, direct_train_step_s=statistics.median(td) / steps,
                       train_step_ratio=statistics.median(tp) / statistics.median(td))
            mem = proxy.memory_kib()
            out["proxy_rss_anon_mib"] = mem["RssAnon"] / 1024
        finally:
            proxy.stop()
    return out


TARGETS = [
    ("sync_median_us", "<=", 1.0),
    ("sync_p99_us", "<=", 10.0),
    ("async_submit_ns", "<=", 100.0),
    ("pinned_bw_ratio", ">=", 0.95),
    ("pageable_bw_ratio", ">=", 0.70),
    ("train_step_ratio", "<=", 1.02),
]


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--json", action="store_true", help="print one JSON object")
    ap.add_argument("--quick", action="store_true", help="fewer iterations (smoke run)")
    args = ap.parse_args()
    res = measure(args.quick)
    if args.json:
        print(json.dumps(res, indent=2))
        return 0
    print(f"{'figure':28} {'proxied':>12} {'direct':>12}  target")
    for key, op, goal in TARGETS:
        direct = res.get("direct_" + key, "")
        ok = res[key] <= goal if op == "<=" else res[key] >= goal
        print(f"{key:28} {res[key]:12.3f} {direct if direct == '' else f'{direct:12.3f}':>12}  {op} {goal} "
              f"{'met' if ok else 'MISSED'}")
    print(f"{'launches_per_s':28} {res['launches_per_s']:12.0f} {res['direct_launches_per_s']:12.0f}")
    print(f"{'proxy_rss_anon_mib':28} {res['proxy_rss_anon_mib']:12.1f}")
    print("\ncopy bandwidth GB/s, proxied (direct):")
    for r in res["copies"]:
        cells = "  ".join(f"{k} {r[k + '_gbps']:.2f} ({r['direct_' + k + '_gbps']:.2f})"
                          for k in ("pinned_h2d", "pinned_d2h", "pageable_h2d", "pageable_d2h"))
        print(f"  {r['bytes']:>10} B  {cells}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
