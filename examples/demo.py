"""`make demo`: the story of one training job, told on screen.

1. examples/train.py, an unmodified cuda-python program, trains on the
   simulated GPU directly (libsimgpu.so preloaded, nothing in between).
2. The same program runs again with every driver call going through the shim
   and a proxy process that owns the device: the losses and the digest of the
   final weights are identical.
3. It runs once more as a job (`singularity run --job demo`): checkpointed
   (the job stops: its process is gone), restored on another simulated device,
   migrated back while it runs, and it still ends with the same losses and
   the same weights.
"""
from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
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


class Follower:
    """Prints the job's output file as it grows."""

    def __init__(self, path: Path, label: str):
        self.path, self.label, self.pos, self.lines = path, label, 0, []

    def poll(self) -> None:
        with open(self.path) as f:
            f.seek(self.pos)
            chunk = f.read()
        complete, _, _ = chunk.rpartition("\n")
        if not complete:
            return
        self.pos += len(complete) + 1
        for line in complete.split("\n"):
            print(f"  [{self.label}] {line}", flush=True)
            self.lines.append(line)

    def until_step(self, step: int, job: subprocess.Popen) -> None:
        while not any(ln.startswith("step") and int(ln.split()[1]) >= step for ln in self.lines):
            if job.poll() is not None:
                raise SystemExit(f"the job ended early (exit {job.returncode})")
            self.poll()
            time.sleep(0.05)


def singularity(env: dict[str, str], *args: str) -> None:
    print(f"  $ singularity {' '.join(args)}", flush=True)
    r = subprocess.run([sys.executable, "-P", "-m", "singularity_proxy", *args], env=env, text=True,
                       capture_output=True)
    for line in (r.stdout + r.stderr).strip().splitlines():
        print(f"    {line}", flush=True)
    if r.returncode != 0:
        raise SystemExit(f"singularity {args[0]} failed (exit {r.returncode})")


def run_as_job(steps: int) -> tuple[list[str], str, float]:
    work = Path(tempfile.mkdtemp(prefix="singularity-demo-"))
    env = dict(os.environ, SINGULARITY_RUNTIME_DIR=str(work / "run"), SINGULARITY_SIM_DEVICES="2")
    env.pop("LD_PRELOAD", None)
    log = work / "train.log"
    t0 = time.perf_counter()
    print(f"  $ singularity run --job demo -- python train.py --steps {steps} --step-delay 0.1   (output: {log})",
          flush=True)
    with open(log, "w") as out:
        job = subprocess.Popen([sys.executable, "-P", "-m", "singularity_proxy", "run", "--job", "demo", "--",
                                sys.executable, str(HERE / "train.py"), "--steps", str(steps),
                                "--step-delay", "0.1"],  # time to act on a running job
                               env=env, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
    follow = Follower(log, "job")
    follow.until_step(steps // 4, job)
    say("3a. Checkpoint: device state from the proxy, the process from CRIU; the job stops")
    singularity(env, "checkpoint", "demo", str(work / "image"))
    singularity(env, "ps")
    say("3b. Restore from the image on another device (simulated device 1)")
    singularity(env, "restore", str(work / "image"), "--device", "sim:1")
    follow.until_step(steps // 2, job)
    say("3c. Migrate the running job back to device 0")
    singularity(env, "migrate", "demo", "--device", "sim:0")
    code = job.wait()
    follow.poll()
    if code != 0:
        raise SystemExit(f"the job failed with exit code {code}")
    losses = [ln.split()[-1] for ln in follow.lines if ln.startswith("step")]
    digest = next((ln.split()[1] for ln in follow.lines if ln.startswith("digest")), "")
    return losses, digest, time.perf_counter() - t0


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--steps", type=int, default=40)
    args = ap.parse_args()

    say("1. The job alone on the simulated GPU (LD_PRELOAD=libsimgpu.so)")
    direct_losses, direct_digest, t_direct = run("direct", simulated_gpu_env(), args.steps)

    say("2. The same job through the shim and a proxy (LD_PRELOAD=libsingshim.so)")
    proxied_losses, proxied_digest, t_proxied = run("proxied", proxied_env(device="sim", job="demo"), args.steps)

    say("3. The same job under `singularity run`: checkpointed, restored elsewhere, migrated")
    job_losses, job_digest, t_job = run_as_job(args.steps)

    say("Result")
    same = direct_losses == proxied_losses == job_losses and direct_digest == proxied_digest == job_digest
    print(f"  losses identical: proxied {direct_losses == proxied_losses}, checkpointed/restored/migrated "
          f"{direct_losses == job_losses}  ({len(direct_losses)} steps)")
    for label, d in (("proxied", proxied_digest), ("job", job_digest)):
        print(f"  final weights:    direct {direct_digest[:16]}…  {label} {d[:16]}…  "
              f"{'identical' if d == direct_digest else 'DIFFERENT'}")
    print(f"  wall time:        direct {t_direct:.2f} s, proxied {t_proxied:.2f} s, job {t_job:.2f} s "
          "(process start, and for the job the checkpoint, restore and migration, included)")
    return 0 if same else 1


if __name__ == "__main__":
    sys.exit(main())
