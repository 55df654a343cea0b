"""`make demo`: the story of one training job, told on screen.

1. examples/train.py, an unmodified cuda-python program, trains on the
   simulated GPU directly (libsimgpu.so preloaded, nothing in between).
2. The same program runs again with every driver call going through the shim
   and a proxy process that owns the device: the losses and the digest of the
   final weights are identical.
"""
from __future__ import annotations

import argparse
import subprocess
import sys
import time
from pathlib import Path

from singularity_proxy.artifacts import proxied_env, simulated_gpu_env

HERE = Path(__file__).resolve().parent


def say(text: str) -> None:
    print(f"\n\033[1m== {text}\033[0m", flush=True)


def run(label: str, env: dict[str, str], steps: int) -> tuple[list[str], str, float]:
    cmd = [sys.executable, str(HERE / "train.py"), "--steps", str(steps)]
    t0 = time.perf_counter()
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, text=True)
    losses, digest = [], ""
    for line in proc.stdout:
        print(f"  [{label}] {line.rstrip()}", flush=True)
        if line.startswith("step"):
            losses.append(line.split()[-1])
        elif line.startswith("digest"):
            digest = line.split()[1]
    if proc.wait() != 0:
        raise SystemExit(f"{label} run failed with exit code {proc.returncode}")
    return losses, digest, time.perf_counter() - t0


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--steps", type=int, default=30)
    args = ap.parse_args()

    say("1. The job alone on the simulated GPU (LD_PRELOAD=libsimgpu.so)")
    direct_losses, direct_digest, t_direct = run("direct", simulated_gpu_env(), args.steps)

    say("2. The same job through the shim and a proxy (LD_PRELOAD=libsingshim.so)")
    proxied_losses, proxied_digest, t_proxied = run("proxied", proxied_env(device="sim", job="demo"), args.steps)

    say("Result")
    same = direct_losses == proxied_losses and direct_digest == proxied_digest
    print(f"  losses identical: {direct_losses == proxied_losses}  ({len(direct_losses)} steps)")
    print(f"  final weights:    direct {direct_digest[:16]}…  proxied {proxied_digest[:16]}…  "
          f"{'identical' if direct_digest == proxied_digest else 'DIFFERENT'}")
    print(f"  wall time:        direct {t_direct:.2f} s, proxied {t_proxied:.2f} s (process start included)")
    return 0 if same else 1


if __name__ == "__main__":
    sys.exit(main())
