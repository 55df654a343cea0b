"""The control plane end to end (issue 6): three host daemons (`singproxy serve`, separate
processes, one simulated device each) and the scheduler daemon, driven through the user CLI.

Every job is tests/programs/ckpt_job.py, which prints a digest of all its device state each step:
whatever the control plane does to it, its log must be an uninterrupted run's output (exactly, when
it was only preempted; with the steps since its last checkpoint repeated, when its host died).
Timeouts below bound waiting for things that must happen; nothing asserts how long they took.
"""
from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from daemon_support import (FINAL, TOKEN, Plane, etcd_server, resumed_at, running_plane, uninterrupted,
                            wait_until)


@pytest.fixture
def plane(tmp_path: Path, request: pytest.FixtureRequest) -> Iterator[Plane]:
    with running_plane(tmp_path, **getattr(request, "param", {})) as p:
        yield p


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
    with running_plane(tmp_path, etcd=etcd_url) as plane:
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
