"""The control plane end to end (issue 6): three host daemons (`singproxy serve`, separate
processes, one simulated device each) and the scheduler daemon, driven through the user CLI.

Every job is tests/programs/ckpt_job.py, which prints a digest of all its device state each step:
whatever the control plane does to it, its log must be an uninterrupted run's output (exactly, when
it was only preempted; with the steps since its last checkpoint repeated, when its host died).
Timeouts below bound waiting for things that must happen; nothing asserts how long they took.
"""
from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from daemon_support import Scheduler, etcd_server, fleet_file, free_port, repo_env, wait_until
from helpers import PROGRAMS, run_program

JOB = "ckpt_job.py"
PAUSE = "0.1"
TOKEN = "e2e-token"
FINAL = ("succeeded", "failed", "cancelled")


class Host:
    """`singproxy serve` with one simulated device, remote control on a TCP port."""

    def __init__(self, base: Path, name: str, *control: str):
        self.name, self.base = name, base
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log_path = base / f"host-{name}.log"
        env = repo_env(SINGULARITY_RUNTIME_DIR=str(base / "run"))
        with open(self.log_path, "ab") as log:
            self.proc = subprocess.Popen(
                [sys.executable, "-P", "-m", "singularity_proxy.hostd.cli", "serve", "--name", name,
                 "--data-dir", str(base / "data"), "--devices", "sim:1", "--state-dir", str(base / f"state-{name}"),
                 "--listen", f"127.0.0.1:{self.port}", "--token-file", str(base / "token"), *control],
                env=env, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
        wait_until(self.up, f"host {name} to answer", timeout=60)

    def up(self) -> bool:
        assert self.proc.poll() is None, f"host {self.name} exited:\n{self.log_path.read_text()[-3000:]}"
        try:
            r = httpx.get(self.url + "/v1/health", headers={"Authorization": f"Bearer {TOKEN}"}, timeout=2)
            return r.status_code == 200 and r.json()["ok"] is True
        except httpx.HTTPError:
            return False

    def app_pids(self) -> list[int]:
        try:
            r = httpx.get(self.url + "/v1/status", headers={"Authorization": f"Bearer {TOKEN}"}, timeout=5)
        except httpx.HTTPError:
            return []
        return [rk["pid"] for rk in r.json()["ranks"].values() if rk.get("pid")]

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait(timeout=60)


class Plane:
    """A scheduler (or two, on etcd), three hosts, and the CLI to talk to them."""

    def __init__(self, base: Path, etcd: str | None = None, checkpoint_interval: float = 0.0):
        self.base = base
        (base / "token").write_text(TOKEN + "\n")
        fleet = fleet_file(base / "fleet.toml", [(f"h{i}", "c0", "sim:1") for i in range(3)])
        args = ["--heartbeat-ttl", "3", "--checkpoint-interval", str(checkpoint_interval), "--quantum", "1"]
        self.schedulers: list[Scheduler] = []
        if etcd:
            for rid in ("a", "b"):
                self.schedulers.append(Scheduler(base, fleet=fleet, token_file=base / "token", name=rid,
                                                 args=[*args, "--etcd", etcd, "--replica-id", rid]))
            wait_until(lambda: sum(bool((s.health() or {}).get("leader")) for s in self.schedulers) == 1,
                       "one scheduler replica to lead", timeout=60)
            control = ["--etcd", etcd]
        else:
            self.schedulers.append(Scheduler(base, fleet=fleet, token_file=base / "token", name="s", args=args))
            self.schedulers[0].wait_up()
            control = ["--scheduler", self.schedulers[0].url]
        self.hosts = {f"h{i}": Host(base, f"h{i}", *control) for i in range(3)}

    def cli(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        env = repo_env(SINGULARITY_SCHEDULER=",".join(s.url for s in self.schedulers), SINGULARITY_TOKEN=TOKEN)
        r = subprocess.run([sys.executable, "-P", "-m", "singularity_proxy.cli", *args], env=env, cwd=PROGRAMS,
                           capture_output=True, text=True, timeout=120)
        if check:
            assert r.returncode == 0, f"singularity {' '.join(args)} → {r.returncode}\n{r.stdout}\n{r.stderr}"
        return r

    def submit(self, name: str, tier: str, steps: int) -> None:
        self.cli("submit", "--name", name, "--tier", tier, "--env", f"PYTHONPATH={PROGRAMS}",
                 "--env", "PYTHONUNBUFFERED=1", "--", sys.executable, str(PROGRAMS / JOB), str(steps), PAUSE)

    def jobs(self) -> dict[str, dict]:
        return {j["name"]: j for j in json.loads(self.cli("jobs", "--json").stdout)}

    def log(self, name: str) -> list[str]:
        p = self.base / "data" / "logs" / name / "rank0.log"
        return p.read_text().splitlines() if p.exists() else []

    def steps_done(self, name: str) -> int:
        return sum(ln.startswith("step ") for ln in self.log(name))

    def wait_state(self, name: str, states: tuple[str, ...], timeout: float = 240) -> dict:
        return wait_until(lambda: (j := self.jobs().get(name)) and j["state"] in states and j,
                          f"{name} to be {'/'.join(states)}", timeout=timeout, every=0.3)

    def events(self, kind: str) -> list[dict]:
        leader = next(s for s in self.schedulers if (s.health() or {}).get("leader"))
        r = httpx.get(leader.url + "/v1/events", params={"since": 0, "limit": 10000},
                      headers={"Authorization": f"Bearer {TOKEN}"}, timeout=10)
        return [e for e in r.json()["events"] if e["kind"] == kind]

    def close(self) -> None:
        pids = [p for h in self.hosts.values() for p in h.app_pids()]
        for h in self.hosts.values():
            h.kill()  # fenced: its ranks die with it
        for s in self.schedulers:
            s.kill()
        for pid in pids:  # only if fencing failed (a test of it would then fail, too)
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass

    def diagnostics(self) -> str:
        out = [f"--- {s.log_path.name}\n{s.output()[-3000:]}" for s in self.schedulers]
        out += [f"--- {h.log_path.name}\n{h.log_path.read_text()[-2000:]}" for h in self.hosts.values()]
        return "\n".join(out)


@pytest.fixture
def plane(tmp_path: Path, request: pytest.FixtureRequest) -> Iterator[Plane]:
    p = Plane(tmp_path, **getattr(request, "param", {}))
    try:
        yield p
    except BaseException:
        print(p.diagnostics())
        raise
    finally:
        p.close()


_reference: dict[int, list[str]] = {}


def uninterrupted(steps: int) -> list[str]:
    if steps not in _reference:
        r = run_program(JOB, str(steps), PAUSE, timeout=300)
        assert r.returncode == 0, r.stderr
        _reference[steps] = r.stdout.splitlines()
    return _reference[steps]


def resumed_at(log: list[str], ref: list[str]) -> int | None:
    """k such that log == ref[:m] + ref[k:] with 0 < k <= m: a run cut after m lines that went on
    from a checkpoint taken after k (the lines in between are printed twice, the result is the
    same).  None if the log is no such thing; a fresh restart would be k == 0."""
    for m in range(len(log), 0, -1):
        rest = log[m:]
        k = len(ref) - len(rest)
        if 0 < k <= m and log[:m] == ref[:m] and ref[k:] == rest:
            return k
    return None


def test_premium_job_preempts_basic_jobs_which_resume_elsewhere_without_lost_work(plane: Plane) -> None:
    # Long enough that no basic job is about to end when the premium one comes, and the premium job
    # outlasts the basic jobs left running, so the preempted one resumes on a device they free.
    basic_steps, premium_steps = 80, 120
    for i in range(3):
        plane.submit(f"basic{i}", "basic", basic_steps)
    for i in range(3):
        plane.wait_state(f"basic{i}", ("running",))
    wait_until(lambda: all(plane.steps_done(f"basic{i}") >= 3 for i in range(3)), "the basic jobs to make progress",
               timeout=240)
    # Each host's metrics show its rank's proxy next to its app (memory and CPU).
    for h in plane.hosts.values():
        text = httpx.get(h.url + "/metrics", headers={"Authorization": f"Bearer {TOKEN}"}, timeout=10).text
        for family in ("proxy_rss_bytes", "proxy_cpu_seconds_total", "app_cpu_seconds_total"):
            assert f"singproxy_rank_{family}{{rank=\"basic" in text, (family, text)
    # The fleet is full; a premium job must get a device by preempting one basic job (transparently).
    plane.submit("premium", "premium", premium_steps)
    plane.wait_state("premium", ("running", "succeeded"))
    suspended = [e for e in plane.events("CheckpointDone")]
    assert suspended, "no basic job was checkpointed for the premium job"
    for name in ["premium", *(f"basic{i}" for i in range(3))]:
        plane.wait_state(name, FINAL, timeout=600)
    jobs = plane.jobs()
    assert {n: j["state"] for n, j in jobs.items()} == {n: "succeeded" for n in jobs}, jobs
    # Preempted by a stopping checkpoint: the log is exactly an uninterrupted run's.
    assert plane.log("premium") == uninterrupted(premium_steps)
    for i in range(3):
        assert plane.log(f"basic{i}") == uninterrupted(basic_steps), f"basic{i}"
    leader = plane.schedulers[0]
    text = httpx.get(leader.url + "/metrics", headers={"Authorization": f"Bearer {TOKEN}"}, timeout=10).text
    assert 'singularity_jobs{state="succeeded"} 4.0' in text, text
    assert float(re.search(r"^singularity_preemptions_total ([\d.]+)$", text, re.M).group(1)) >= 1, text
    preempted = [j for n, j in jobs.items() if n.startswith("basic") and len(j["hosts"]) > 1]
    assert preempted, f"no basic job ran on a second host: {jobs}"
    # It resumed elsewhere: the premium job still held its first device when another basic job finished.
    assert all(j["hosts"][0] != j["hosts"][-1] for j in preempted), jobs


@pytest.mark.parametrize("plane", [{"checkpoint_interval": 1.0}], indirect=True)
def test_a_dead_host_daemon_s_job_resumes_from_its_last_checkpoint_on_another_host(plane: Plane) -> None:
    steps = 60
    plane.submit("victim", "standard", steps)
    job = plane.wait_state("victim", ("running",))
    first = job["placement"][0]["host"]
    image = plane.base / "data" / "images" / "victim" / "rank0"
    wait_until(lambda: any(image.glob("*/criu")) and plane.steps_done("victim") >= 15,
               "a periodic checkpoint of the job", timeout=240)
    plane.hosts[first].kill()  # the host is gone: its ranks die with its daemon (fencing)
    job = plane.wait_state("victim", FINAL, timeout=600)
    assert job["state"] == "succeeded", job
    assert job["hosts"][-1] != first, job
    assert plane.events("HostFailed"), "the scheduler never noticed the dead host"
    log = plane.log("victim")
    k = resumed_at(log, uninterrupted(steps))
    assert k is not None, log  # went on from a checkpoint (k > 0 lines in), not from the start
    assert log[-1] == "done" and len(log) >= len(uninterrupted(steps))


@pytest.fixture
def etcd_url(tmp_path: Path) -> Iterator[str]:
    with etcd_server(tmp_path) as url:
        yield url


def test_killing_the_leading_scheduler_replica_hands_over_without_losing_a_job(tmp_path: Path, etcd_url: str) -> None:
    plane = Plane(tmp_path, etcd=etcd_url)
    try:
        steps = 40
        plane.submit("before", "basic", steps)
        plane.wait_state("before", ("running",))
        leader = next(s for s in plane.schedulers if (s.health() or {}).get("leader"))
        other = next(s for s in plane.schedulers if s is not leader)
        leader.kill()
        other.wait_up(leader=True)
        plane.submit("after", "standard", steps)  # the CLI finds the new leader among the URLs
        for name in ("before", "after"):
            assert plane.wait_state(name, FINAL, timeout=600)["state"] == "succeeded"
            assert plane.log(name) == uninterrupted(steps), name
        assert sorted(plane.jobs()) == ["after", "before"]
        assert len([e for e in plane.events("JobArrived")]) == 2
    except BaseException:
        print(plane.diagnostics())
        raise
    finally:
        plane.close()
