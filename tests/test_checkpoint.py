"""Checkpoint, restore and migration of a running job (issue 4), with the real CRIU.

A job (tests/programs/ckpt_job.py) keeps every kind of device state the proxy records live and
prints a digest of all of it each step; whatever is done to it, its output must equal an
uninterrupted run's line for line.
"""
from __future__ import annotations

import json
import os
import random
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from helpers import PROGRAMS, run_program

JOB = "ckpt_job.py"
STEPS, PAUSE = 60, "0.05"


def _env(rundir: Path, extra: dict[str, str] | None = None) -> dict[str, str]:
    env = dict(os.environ)
    env.update(extra or {})
    env["SINGULARITY_RUNTIME_DIR"] = str(rundir)
    env["SINGULARITY_SIM_DEVICES"] = "2"
    # The programs' helpers; and what the caller put on the path stays there (a worktree's package).
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(PROGRAMS), os.environ.get("PYTHONPATH")) if p)
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

    def __init__(self, rundir: Path, name: str, steps: int = STEPS, pause: str = PAUSE,
                 env: dict[str, str] | None = None, args: tuple[str, ...] = ()):
        self.rundir, self.name = rundir, name
        self.out_path = rundir / f"{name}.out"
        self.err_path = rundir / f"{name}.err"
        with open(self.out_path, "w") as out, open(self.err_path, "w") as err:
            self.proc = subprocess.Popen(
                [sys.executable, "-P", "-m", "singularity_proxy", "run", "--job", name, "--",
                 sys.executable, str(PROGRAMS / JOB), str(steps), pause, *args],
                env=_env(rundir, env), stdout=out, stderr=err, stdin=subprocess.DEVNULL, cwd=PROGRAMS)

    def steps(self) -> int:
        return sum(ln.startswith("step ") for ln in self.lines())

    def lines(self) -> list[str]:
        return self.out_path.read_text().splitlines()

    def wait_for_steps(self, n: int, timeout: float = 120) -> None:
        deadline = time.monotonic() + timeout
        while self.steps() < n:
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


@pytest.fixture
def ram_dir(tmp_path: Path):
    """A private directory on tmpfs for migration images (SINGULARITY_MIGRATE_RAM_DIR)."""
    if not Path("/dev/shm").is_dir():
        pytest.skip("no /dev/shm")
    d = Path("/dev/shm") / f"sing-test-{os.getpid()}-{tmp_path.name}"
    d.mkdir()
    yield d
    shutil.rmtree(d, ignore_errors=True)


def _ram_images(ram_dir: Path) -> list[Path]:
    return [p for p in ram_dir.rglob("*") if ".migrate" in p.name]


def test_migration_image_in_ram_is_gone_afterwards(rundir, uninterrupted, ram_dir):
    job = Job(rundir, "ramimg", env={"SINGULARITY_MIGRATE_RAM_DIR": str(ram_dir),
                                     "SINGULARITY_MIGRATE_RAM_RESERVE": "0"})
    job.wait_for_steps(2)
    r = json.loads(cli(rundir, "migrate", "--json", job.name, "--device", "sim:1").stdout)
    assert r["image_in_ram"] and Path(r["image"]).is_relative_to(ram_dir), r
    # The image is deleted right after the answer, before the supervisor serves anything else:
    # any later request finds it gone.
    cli(rundir, "checkpoint", "--leave-running", job.name, str(rundir / "image"))
    assert not Path(r["image"]).exists() and not _ram_images(ram_dir), _ram_images(ram_dir)
    assert not (rundir / "jobs" / f"{job.name}.migrate").exists()
    assert job.finish() == uninterrupted


def test_migration_falls_back_to_disk_without_room_in_ram(rundir, uninterrupted, ram_dir):
    # A reserve larger than any machine's memory: the image cannot go to RAM.
    job = Job(rundir, "diskimg", env={"SINGULARITY_MIGRATE_RAM_DIR": str(ram_dir),
                                      "SINGULARITY_MIGRATE_RAM_RESERVE": str(1 << 62)})
    job.wait_for_steps(2)
    r = json.loads(cli(rundir, "migrate", "--json", job.name, "--device", "sim:1").stdout)
    disk = rundir / "jobs" / f"{job.name}.migrate"
    assert not r["image_in_ram"] and Path(r["image"]) == disk.resolve(), r
    assert (disk / "manifest.json").is_file()  # kept on disk, as before: it spares the next one work
    assert not _ram_images(ram_dir)
    assert job.finish() == uninterrupted


# What images cannot hold yet is refused at checkpoint, naming why, and the job goes on:
# * cuGraphExec*SetParams changes what an executable runs without a graph to read it back from;
# * an allocation exported as a POSIX descriptor may be mapped by processes outside the job, and
#   no image could bring their view of it back.
@pytest.mark.parametrize("flag,why", [("--update-exec", "updated after instantiation"),
                                      ("--share-vmm", "POSIX file descriptors")], ids=["exec-update", "shared-vmm"])
def test_what_images_cannot_hold_is_refused_and_the_job_goes_on(rundir, uninterrupted, flag, why):
    job = Job(rundir, flag.strip("-"), args=(flag,))
    job.wait_for_steps(2)
    r = cli(rundir, "checkpoint", job.name, str(rundir / "image"), check=False)
    assert r.returncode != 0 and why in r.stderr, r.stderr
    assert "the job goes on" in r.stderr, r.stderr
    assert job.finish() == uninterrupted


def test_managed_memory_hints_survive_restore_and_migration(rundir):
    # The proxy keeps the advice and prefetch locations of managed memory (no driver holds them):
    # a restored or migrated job must answer its range attributes as an uninterrupted one.
    baseline = run_program(JOB, str(STEPS), PAUSE, "--managed-hints", devices=2, timeout=300)
    assert baseline.returncode == 0, baseline.stderr
    job = Job(rundir, "hints", args=("--managed-hints",))
    job.wait_for_steps(2)
    image = rundir / "image"
    cli(rundir, "checkpoint", job.name, str(image))
    cli(rundir, "restore", str(image), "--device", "sim:1")
    job.wait_for_steps(job.steps() + 1)
    cli(rundir, "migrate", job.name, "--device", "sim:0")
    assert job.finish() == baseline.stdout.splitlines()


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


def test_proxy_killed_during_a_checkpoint_the_previous_one_restores(rundir):
    # A job with enough device state (512 MiB) that the device phase lasts long enough to be cut.
    state_job = Path(__file__).resolve().parent.parent / "benchmarks" / "checkpoint" / "state_job.py"
    out = rundir / "big.out"
    with open(out, "w") as f:
        sup = subprocess.Popen([sys.executable, "-P", "-m", "singularity_proxy", "run", "--job", "big", "--",
                                sys.executable, str(state_job), "512"], env=_env(rundir), stdout=f,
                               stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
    deadline = time.monotonic() + 300
    while "ready" not in out.read_text():
        assert sup.poll() is None and time.monotonic() < deadline, out.read_text()
        time.sleep(0.1)
    image = rundir / "image"
    first = json.loads(cli(rundir, "checkpoint", "--leave-running", "--json", "big", str(image)).stdout)
    record = json.loads((rundir / "jobs" / "big.json").read_text())
    # Make the next checkpoint rewrite everything (new content in every MiB is not needed: a new
    # image directory has no chunks yet), and cut it by killing the proxy mid-way.
    other = rundir / "image2"
    ck = subprocess.Popen([sys.executable, "-P", "-m", "singularity_proxy", "checkpoint", "big", str(other)],
                          env=_env(rundir), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 60
    while json.loads((rundir / "jobs" / "big.json").read_text())["state"] != "checkpointing":
        assert ck.poll() is None and time.monotonic() < deadline, "the checkpoint never started"
        time.sleep(0.01)
    time.sleep(0.2)  # into the device phase (~1.4 s for 512 MiB here)
    os.kill(record["proxy_pid"], 9)
    _, err = ck.communicate(timeout=120)
    assert ck.returncode != 0, "the checkpoint succeeded although its proxy was killed"
    assert not (other / "manifest.json").exists()
    # The app lost its device; the operator restores the last good image.
    os.kill(record["app_pid"], 9)
    sup.wait(timeout=60)
    # No supervisor is left: `restore` starts one in the background, which (like the job) keeps
    # this command's stdout and stderr, so they go to a file rather than a pipe read to its end.
    with open(rundir / "restore.log", "w") as log:
        r = subprocess.run([sys.executable, "-P", "-m", "singularity_proxy", "restore", str(image)], env=_env(rundir),
                           stdout=log, stderr=subprocess.STDOUT, timeout=120)
    assert r.returncode == 0, (rundir / "restore.log").read_text()
    ps = json.loads(cli(rundir, "ps", "--json").stdout)
    assert any(j["name"] == "big" and j["state"] == "running" for j in ps), ps
    from singularity_proxy import image_dir
    assert image_dir.verify(image)["checkpoint"] == first["checkpoint"]
    new = json.loads((rundir / "jobs" / "big.json").read_text())
    os.kill(new["supervisor_pid"], 15)  # stops the restored job too


# --- faults during a checkpoint: CRIU or the app killed ------------------------------------------

class CriuFault:
    """tests/programs/criu_fault/criu in the job's environment ($SINGULARITY_CRIU): the next dump
    gets the fault `arm` names; every other CRIU run is the real one."""

    def __init__(self, tmp: Path):
        from singularity_proxy.criu import Criu

        here = PROGRAMS / "criu_fault"
        preload = tmp / "kill_on_pages.so"
        subprocess.run(["gcc", "-shared", "-fPIC", "-O1", "-o", str(preload), str(here / "kill_on_pages.c"), "-ldl"],
                       check=True)
        self.file = tmp / "criu-fault"
        real = Criu.find().path
        self.env = {"SINGULARITY_CRIU": str(here / "criu"), "SING_FAULT_REAL": real,
                    "SING_FAULT_FILE": str(self.file), "SING_FAULT_PRELOAD": str(preload)}

    def arm(self, stage: str, target: str) -> None:
        self.file.write_text(f"{stage} {target}\n")

    def fired(self) -> bool:
        return not self.file.exists()


@pytest.fixture
def criu_fault(tmp_path: Path) -> CriuFault:
    return CriuFault(tmp_path)


def _consistent(lines: list[str], uninterrupted: list[str]) -> list[int]:
    """The step numbers of `lines`, once every line is checked against the uninterrupted run's line of
    the same step (a job rewound to an earlier checkpoint prints some steps again, identically)."""
    steps = []
    for ln in lines:
        if ln.startswith("step "):
            k = int(ln.split()[1])
            assert ln == uninterrupted[k], f"step {k} differs from the uninterrupted run: {ln!r}"
            steps.append(k)
    assert lines[-1] == "done" and steps[-1] == len(uninterrupted) - 2, lines[-3:]
    return steps


def _previous_is_committed(image: Path, first: dict) -> None:
    from singularity_proxy import image_dir

    assert image_dir.verify(image)["checkpoint"] == first["checkpoint"]
    assert [p.name for p in image.glob("ckpt-*")] != [], "the committed checkpoint's directory is gone"


@pytest.mark.parametrize("stage", ["pages", "post-dump"])
def test_criu_killed_during_a_dump_the_job_goes_on_and_the_previous_image_restores(rundir, uninterrupted,
                                                                                    criu_fault, stage):
    job = Job(rundir, f"criu-{stage}", env=criu_fault.env)
    job.wait_for_steps(3)
    image = rundir / "image"
    first = json.loads(cli(rundir, "checkpoint", "--leave-running", "--json", job.name, str(image)).stdout)
    criu_fault.arm(stage, "criu")
    r = cli(rundir, "checkpoint", job.name, str(image), check=False)
    assert criu_fault.fired(), "the dump never reached the fault"
    assert r.returncode != 0, r.stdout
    assert "criu dump was killed by SIGKILL" in r.stderr and "the job goes on" in r.stderr, r.stderr
    assert first["checkpoint"] in r.stderr, r.stderr  # names the checkpoint that is still good
    _previous_is_committed(image, first)
    # CRIU let the app go when it died: it reattached and makes progress.
    ps = json.loads(cli(rundir, "ps", "--json").stdout)
    assert any(j["name"] == job.name and j["state"] == "running" for j in ps), ps
    job.wait_for_steps(job.steps() + 2)
    # The previous image still restores: stop the job (a good image elsewhere), restore the old one.
    cli(rundir, "checkpoint", job.name, str(rundir / "later"))
    cli(rundir, "restore", str(image))
    steps = _consistent(job.finish(), uninterrupted)
    assert any(b <= a for a, b in zip(steps, steps[1:])), "the job was not rewound to the previous checkpoint"


def _restore_without_supervisor(rundir: Path, image: Path, name: str) -> list[str]:
    """`singularity restore` of a job whose supervisor is gone; its output, once the job ends."""
    log = rundir / f"{name}.restored.out"
    with open(log, "w") as f:
        r = subprocess.run([sys.executable, "-P", "-m", "singularity_proxy", "restore", str(image)],
                           env=_env(rundir), stdout=f, stderr=subprocess.STDOUT, timeout=120, cwd=PROGRAMS)
    assert r.returncode == 0, log.read_text()
    record = json.loads((rundir / "jobs" / f"{name}.json").read_text())
    deadline = time.monotonic() + 300
    while True:
        try:
            os.kill(record["supervisor_pid"], 0)
        except ProcessLookupError:
            break
        assert time.monotonic() < deadline, "the restored job did not finish"
        time.sleep(0.1)
    return log.read_text().splitlines()


@pytest.mark.parametrize("when", ["device", "pages"])
def test_app_killed_during_a_checkpoint_fails_it_and_the_previous_image_restores(rundir, uninterrupted,
                                                                                 criu_fault, when):
    job = Job(rundir, f"app-{when}", env=criu_fault.env)
    job.wait_for_steps(3)
    image = rundir / "image"
    first = json.loads(cli(rundir, "checkpoint", "--leave-running", "--json", job.name, str(image)).stdout)
    record = json.loads((rundir / "jobs" / f"{job.name}.json").read_text())
    if when == "device":
        # The proxy is held (SIGSTOP) before the request reaches it and the app is killed while the
        # request waits: the device phase meets a dead app, whichever of the two events it sees first.
        os.kill(record["proxy_pid"], signal.SIGSTOP)
        ck = subprocess.Popen([sys.executable, "-P", "-m", "singularity_proxy", "checkpoint", job.name, str(image)],
                              env=_env(rundir), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                              cwd=PROGRAMS)
        try:
            deadline = time.monotonic() + 60
            while json.loads((rundir / "jobs" / f"{job.name}.json").read_text())["state"] != "checkpointing":
                assert ck.poll() is None and time.monotonic() < deadline, "the checkpoint never started"
                time.sleep(0.01)
            os.kill(record["app_pid"], signal.SIGKILL)
        finally:
            os.kill(record["proxy_pid"], signal.SIGCONT)
        out, err = ck.communicate(timeout=120)
        r = subprocess.CompletedProcess(ck.args, ck.returncode, out, err)
    else:
        criu_fault.arm(when, "app")
        r = cli(rundir, "checkpoint", job.name, str(image), check=False)
        assert criu_fault.fired(), "the dump never reached the fault"
    assert r.returncode != 0, r.stdout
    assert "the job died during it" in r.stderr and first["checkpoint"] in r.stderr, r.stderr
    _previous_is_committed(image, first)
    # The job ended as its app did; nothing of it is left running.
    assert job.proc.wait(timeout=60) == 128 + signal.SIGKILL
    assert not any(Path("/proc", str(p)).exists() for p in (record["app_pid"], record["proxy_pid"]))
    lines = job.lines() + _restore_without_supervisor(rundir, image, job.name)
    steps = _consistent([ln for ln in lines if ln.startswith(("step ", "done"))], uninterrupted)
    assert steps[0] == 0


def test_app_killed_after_criu_wrote_its_image_the_checkpoint_stands(rundir, uninterrupted, criu_fault):
    # Killed when CRIU's image is complete (post-dump): a stopping checkpoint was going to end the
    # app there anyway, so the checkpoint succeeds and the job goes on from it exactly.
    job = Job(rundir, "app-late", env=criu_fault.env)
    job.wait_for_steps(3)
    image = rundir / "image"
    criu_fault.arm("post-dump", "app")
    cli(rundir, "checkpoint", job.name, str(image))
    assert criu_fault.fired()
    cli(rundir, "restore", str(image), "--device", "sim:1")
    assert job.finish() == uninterrupted


def test_a_restored_app_that_never_reattaches_fails_the_restore_and_the_image_restores_again(
        rundir, uninterrupted, criu_fault):
    # CRIU restores the app but it never runs (stopped before it resumes): `restore` must not say
    # "restored" — it answers once the app is back with its proxy, or fails, stopping what it
    # restored, with the image left as it was.
    job = Job(rundir, "no-reattach", env={**criu_fault.env, "SINGULARITY_REATTACH_TIMEOUT": "3"})
    job.wait_for_steps(3)
    image = rundir / "image"
    cli(rundir, "checkpoint", job.name, str(image))
    criu_fault.arm("pre-resume", "stop-app")
    r = cli(rundir, "restore", str(image), "--device", "sim:1", check=False)
    assert criu_fault.fired(), "the restore never reached the fault"
    assert r.returncode != 0, r.stdout
    assert "could not reattach" in r.stderr and "waiting for its app to reattach" in r.stderr, r.stderr
    assert "is intact" in r.stderr, r.stderr
    status = json.loads(cli(rundir, "ps", "--json").stdout)
    assert [j["state"] for j in status if j["name"] == job.name] == ["checkpointed"], status
    cli(rundir, "restore", str(image), "--device", "sim:0")
    assert job.finish() == uninterrupted
