"""Checkpoint, restore and migration of a running job (issue 4), with the real CRIU.

A job (tests/programs/ckpt_job.py) keeps every kind of device state the proxy records live and
prints a digest of all of it each step; whatever is done to it, its output must equal an
uninterrupted run's line for line.
"""
from __future__ import annotations

import json
import os
import random
import subprocess
import sys
import time
from pathlib import Path

import pytest

from helpers import PROGRAMS, run_program

JOB = "ckpt_job.py"
STEPS, PAUSE = 60, "0.05"


def _env(rundir: Path) -> dict[str, str]:
    env = dict(os.environ)
    env["SINGULARITY_RUNTIME_DIR"] = str(rundir)
    env["SINGULARITY_SIM_DEVICES"] = "2"
    env["PYTHONPATH"] = str(PROGRAMS)
    env["PYTHONUNBUFFERED"] = "1"
    env.pop("LD_PRELOAD", None)
    return env


def cli(rundir: Path, *args: str, check: bool = True, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    r = subprocess.run([sys.executable, "-P", "-m", "singularity_proxy", *args], env=_env(rundir),
                       capture_output=True, text=True, timeout=timeout, cwd=PROGRAMS)
    if check:
        assert r.returncode == 0, f"singularity {' '.join(args)} failed ({r.returncode}):\n{r.stdout}\n{r.stderr}"
    return r


class Job:
    """`singularity run --job NAME -- python ckpt_job.py`, output to a file."""

    def __init__(self, rundir: Path, name: str, steps: int = STEPS, pause: str = PAUSE):
        self.rundir, self.name = rundir, name
        self.out_path = rundir / f"{name}.out"
        self.err_path = rundir / f"{name}.err"
        with open(self.out_path, "w") as out, open(self.err_path, "w") as err:
            self.proc = subprocess.Popen(
                [sys.executable, "-P", "-m", "singularity_proxy", "run", "--job", name, "--",
                 sys.executable, str(PROGRAMS / JOB), str(steps), pause],
                env=_env(rundir), stdout=out, stderr=err, stdin=subprocess.DEVNULL, cwd=PROGRAMS)

    def lines(self) -> list[str]:
        return self.out_path.read_text().splitlines()

    def wait_for_steps(self, n: int, timeout: float = 120) -> None:
        deadline = time.monotonic() + timeout
        while sum(ln.startswith("step ") for ln in self.lines()) < n:
            assert self.proc.poll() is None, f"job ended early:\n{self.err_path.read_text()}"
            assert time.monotonic() < deadline, "the job made no progress"
            time.sleep(0.05)

    def finish(self, timeout: float = 300) -> list[str]:
        code = self.proc.wait(timeout=timeout)
        assert code == 0, f"job exit {code}:\n{self.err_path.read_text()}"
        return self.lines()


@pytest.fixture(scope="module")
def uninterrupted() -> list[str]:
    r = run_program(JOB, str(STEPS), PAUSE, devices=2, timeout=300)
    assert r.returncode == 0, r.stderr
    return r.stdout.splitlines()


@pytest.fixture
def rundir(tmp_path: Path) -> Path:
    d = tmp_path / "run"
    d.mkdir()
    return d


@pytest.mark.parametrize("seed", [1, 2])
def test_same_output_after_checkpoints_migrations_and_restores(rundir, uninterrupted, seed):
    rng = random.Random(seed)
    job = Job(rundir, f"job{seed}")
    job.wait_for_steps(2)
    image = rundir / "image"
    device = 0
    for _ in range(4):
        time.sleep(rng.uniform(0.0, 0.4))  # anywhere: in a kernel, between copies, in the host's sleep
        op = rng.choice(["leave-running", "migrate", "stop-restore"])
        if op == "leave-running":
            r = cli(rundir, "checkpoint", "--leave-running", job.name, str(image), check=False)
        elif op == "migrate":
            device = 1 - device
            r = cli(rundir, "migrate", job.name, "--device", f"sim:{device}", check=False)
        else:
            r = cli(rundir, "checkpoint", job.name, str(image), check=False)
            if r.returncode == 0:
                device = rng.choice([0, 1])
                r = cli(rundir, "restore", str(image), "--device", f"sim:{device}")
        if r.returncode != 0:
            # Only a job that ended meanwhile may refuse (on a slow machine it can outrun the test).
            assert "exited" in r.stderr or "not running" in r.stderr, r.stderr
            break
    assert job.finish() == uninterrupted


def test_corrupt_image_is_refused_and_the_intact_one_restores(rundir, uninterrupted):
    job = Job(rundir, "corrupt")
    job.wait_for_steps(3)
    image = rundir / "image"
    cli(rundir, "checkpoint", job.name, str(image))
    chunk = max((p for p in (image / "chunks").rglob("*") if p.is_file()), key=lambda p: p.stat().st_size)
    good = chunk.read_bytes()
    bad = bytearray(good)
    bad[len(bad) // 2] ^= 0x40
    chunk.write_bytes(bytes(bad))
    r = cli(rundir, "restore", str(image), check=False)
    assert r.returncode != 0
    assert "chunk" in r.stderr.lower() or "corrupt" in r.stderr.lower(), r.stderr
    ps = json.loads(cli(rundir, "ps", "--json").stdout)
    assert any(j["name"] == job.name and j["state"] == "checkpointed" for j in ps), ps
    chunk.write_bytes(good)
    cli(rundir, "restore", str(image))
    assert job.finish() == uninterrupted


def test_truncated_manifest_is_refused(rundir):
    job = Job(rundir, "trunc", steps=400)
    job.wait_for_steps(2)
    image = rundir / "image"
    cli(rundir, "checkpoint", "--leave-running", job.name, str(image))
    manifest = image / "manifest.json"
    text = manifest.read_text()
    manifest.write_text(text[: len(text) // 2])
    cli(rundir, "checkpoint", job.name, str(rundir / "other"))  # stop it (a good image elsewhere)
    r = cli(rundir, "restore", str(image), check=False)
    assert r.returncode != 0 and "manifest" in r.stderr.lower(), r.stderr
    job.proc.terminate()
    job.proc.wait(timeout=60)


def test_second_checkpoint_of_an_idle_job_writes_almost_nothing(rundir):
    # A job that sleeps between steps: two checkpoints a moment apart see the same device memory.
    job = Job(rundir, "idle", steps=3, pause="30")
    job.wait_for_steps(1)
    image = rundir / "image"
    first = json.loads(cli(rundir, "checkpoint", "--leave-running", "--json", job.name, str(image)).stdout)
    second = json.loads(cli(rundir, "checkpoint", "--leave-running", "--json", job.name, str(image)).stdout)
    assert first["device_bytes"] > 4 << 20
    assert second["device_bytes"] == first["device_bytes"]
    assert second["device_bytes_written"] == 0, second
    assert second["chunks_written"] == 0, second
    job.proc.terminate()
    job.proc.wait(timeout=60)


@pytest.fixture
def small_disk(tmp_path: Path):
    """A tmpfs whose size the test sets (disk-full faults); root only, as CRIU is."""
    mnt = tmp_path / "small"
    mnt.mkdir()
    r = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=256m", "tmpfs", str(mnt)], capture_output=True, text=True)
    assert r.returncode == 0, f"cannot mount a tmpfs for the disk-full test: {r.stderr}"
    try:
        yield mnt
    finally:
        subprocess.run(["umount", "-l", str(mnt)], check=False)


def _used(path: Path) -> int:
    st = os.statvfs(path)
    return (st.f_blocks - st.f_bfree) * st.f_frsize


def test_disk_full_fails_the_checkpoint_keeps_the_previous_one_and_the_job(rundir, uninterrupted, small_disk):
    from singularity_proxy import image_dir

    job = Job(rundir, "full")
    job.wait_for_steps(2)
    image = small_disk / "image"
    first = json.loads(cli(rundir, "checkpoint", "--leave-running", "--json", job.name, str(image)).stdout)
    # Room for a few more MiB only: the next checkpoint's CRIU image cannot fit.
    size_kib = (_used(small_disk) >> 10) + 2048
    subprocess.run(["mount", "-o", f"remount,size={size_kib}k", str(small_disk)], check=True)
    r = cli(rundir, "checkpoint", "--leave-running", job.name, str(image), check=False)
    assert r.returncode != 0, r.stdout
    assert "space" in r.stderr.lower() or "criu" in r.stderr.lower(), r.stderr
    # The previous checkpoint is still the committed one, whole; the job goes on and loses nothing.
    assert image_dir.verify(image)["checkpoint"] == first["checkpoint"]
    assert job.finish() == uninterrupted
