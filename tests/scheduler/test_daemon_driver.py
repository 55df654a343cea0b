"""The driver (controller) through `step(now)` with injected time, against test doubles of the host
daemon's HTTP API (tests/fake_host.py).  What is checked: the policy's actions become the right
host commands, completions become the right events, and a replay of the log rebuilds the state."""

from __future__ import annotations

import re
from collections.abc import Iterator
from importlib import resources
from pathlib import Path
from typing import Any

import pytest
from fake_host import FakeHost

from scheduler.daemon.config import DaemonConfig
from scheduler.daemon.driver import Driver
from scheduler.daemon.fleet import Fleet, FleetHost
from scheduler.daemon.hosts import HostApi
from scheduler.daemon.store import NewJob
from scheduler.daemon.store_sqlite import SqliteStore
from scheduler.jobs import Phase

TOKEN = "s3cret"


class Rig:
    def __init__(self, tmp: Path, hosts: list[tuple[str, int]], premium_quota: float = 1.0, **cfg: Any) -> None:
        self.tmp = tmp
        self.fleet = Fleet([FleetHost(n, "c0", "r0", "sim", "sim", d) for n, d in hosts])
        self.store = SqliteStore(tmp / "state.db")
        # These tests are about the mechanics on a fleet of one or two hosts, where the default
        # premium quota (half the fleet) would demote most premium jobs: no quota unless asked.
        packaged = resources.files("scheduler").joinpath("params.toml").read_text(encoding="utf-8")
        params = tmp / "params.toml"
        params.write_text(re.sub(r"(?m)^premium_quota_fraction = .*$",
                                 f"premium_quota_fraction = {premium_quota}", packaged))
        self.cfg = DaemonConfig(data_dir=tmp / "data", quantum_s=0.0, min_resize_interval_s=0.0,
                                params_file=str(params), **cfg)
        self.hosts = {n: FakeHost(name=n, data_dir=tmp / "data", devices=d, token=TOKEN) for n, d in hosts}
        for h in self.hosts.values():
            h.start_server()
        self.api = HostApi(token=TOKEN)
        self.driver = self.new_driver()
        self.t = 1000.0
        self.alive = set(self.hosts)

    def new_driver(self) -> Driver:
        return Driver(fleet=self.fleet, store=self.store, config=self.cfg, hosts=self.api)

    def tick(self, dt: float = 1.0, rounds: int = 3) -> None:
        """Advance time; heartbeat the live hosts; step until the commands have answered."""
        for _ in range(rounds):
            self.t += dt
            for n in self.alive:
                self.store.heartbeat(n, self.hosts[n].url, now=self.t, ttl_s=self.cfg.heartbeat_ttl_s)
            self.driver.step(self.t)
            self.driver.wait_commands()
        self.driver.step(self.t)

    def submit(self, **kw: Any) -> int:
        kw.setdefault("command", ["python", "train.py"])
        return self.store.add_job(NewJob(**kw), now=self.t).id

    def kinds(self, job: int | None = None) -> list[str]:
        return [e.kind for e in self.store.events() if job is None or e.body.get("job") == job]

    def job(self, jid: int) -> Any:
        return self.store.get_job(jid)

    def close(self) -> None:
        self.driver.close()
        self.api.close()
        for h in self.hosts.values():
            h.stop()
        self.store.close()


@pytest.fixture
def rig(tmp_path: Path) -> Iterator[Any]:
    made: list[Rig] = []

    def make(hosts: list[tuple[str, int]], **cfg: Any) -> Rig:
        r = Rig(tmp_path, hosts, **cfg)
        made.append(r)
        return r

    yield make
    for r in made:
        r.close()


def test_place_starts_every_rank_on_its_device_then_runs(rig: Any) -> None:
    r = rig([("h0", 4)])
    r.tick()
    assert r.kinds()[:2] == ["HostFailed", "HostRecovered"]  # declared down until heard from
    jid = r.submit(devices=2, env={"A": "1"}, cwd="/work")
    r.tick()
    starts = r.hosts["h0"].ops("POST")
    bodies = sorted((b["rank"], b["device"]) for m, p, b in starts if p == "/v1/ranks")
    placed = r.driver.state.jobs[jid].devices
    assert bodies == [(0, f"sim:{placed[0]}"), (1, f"sim:{placed[1]}")] and placed[0] != placed[1]
    b = next(b for m, p, b in starts if p == "/v1/ranks" and b["rank"] == 1)
    assert b["job"] == "j1" and b["command"] == ["python", "train.py"] and b["cwd"] == "/work"
    assert b["env"]["A"] == "1" and b["env"]["SINGULARITY_RANK"] == "1" and b["env"]["SINGULARITY_WORLD_SIZE"] == "2"
    assert r.kinds(jid) == ["JobArrived", "RestoreDone"]
    rec = r.job(jid)
    assert rec.state == "running" and [p["host"] for p in rec.placement] == ["h0", "h0"]
    assert r.driver.state.jobs[jid].phase == Phase.RUNNING


def test_all_ranks_exit_zero_finishes_the_job_and_frees_devices(rig: Any) -> None:
    r = rig([("h0", 2)])
    jid = r.submit(devices=2)
    r.tick()
    r.hosts["h0"].exit("j1.r0", 0)
    r.tick()
    assert r.job(jid).state == "running"  # rank 1 still runs
    r.hosts["h0"].exit("j1.r1", 0)
    r.tick()
    rec = r.job(jid)
    assert rec.state == "succeeded" and rec.exit_codes == {"0": 0, "1": 0}
    assert r.kinds(jid)[-1] == "JobFinished" and jid not in r.driver.state.jobs
    assert r.driver.state.free_total == 2


def test_a_failing_rank_fails_the_job_and_kills_the_others(rig: Any) -> None:
    r = rig([("h0", 2)])
    jid = r.submit(devices=2)
    r.tick()
    r.hosts["h0"].exit("j1.r1", 3)
    r.tick()
    rec = r.job(jid)
    assert rec.state == "failed" and "rank 1" in rec.message and rec.exit_codes["1"] == 3
    assert any(m == "DELETE" and p == "/v1/ranks/j1.r0" for m, p, _ in r.hosts["h0"].ops())
    assert r.kinds(jid)[-1] == "JobFinished" and r.driver.state.free_total == 2


def test_preemption_checkpoints_then_resumes_from_the_image(rig: Any) -> None:
    r = rig([("h0", 2)])
    low = r.submit(devices=2, tier="basic")
    r.tick()
    assert r.job(low).state == "running"
    high = r.submit(devices=2, tier="premium")
    r.tick()
    ck = [(p, b) for m, p, b in r.hosts["h0"].ops("POST") if p.endswith("/checkpoint")]
    assert sorted(p for p, _ in ck) == ["/v1/ranks/j1.r0/checkpoint", "/v1/ranks/j1.r1/checkpoint"]
    assert all(b == {"leave_running": False} for _, b in ck)
    assert r.kinds(low) == ["JobArrived", "RestoreDone", "CheckpointDone"]
    assert r.job(low).state == "suspended" and r.job(high).state == "running"
    for rank in ("j2.r0", "j2.r1"):
        r.hosts["h0"].exit(rank, 0)
    r.tick()
    assert r.job(high).state == "succeeded"
    restores = [(p, b) for m, p, b in r.hosts["h0"].ops("POST") if p.endswith("/restore")]
    assert sorted(p for p, _ in restores) == ["/v1/ranks/j1.r0/restore", "/v1/ranks/j1.r1/restore"]
    assert all(b["image"] == str(r.cfg.data_dir / "images" / "j1" / f"rank{p[len('/v1/ranks/j1.r')]}")
               for p, b in restores)
    assert r.job(low).state == "running" and r.kinds(low)[-1] == "RestoreDone"
    text = r.driver.tm.render().decode()
    assert "singularity_preemptions_total 1.0" in text
    assert "singularity_checkpoint_seconds_count 2.0" in text and "singularity_checkpoint_bytes_total 2000.0" in text


def test_elastic_job_grows_by_checkpoint_and_restore_onto_the_new_mapping(rig: Any) -> None:
    r = rig([("h0", 2)])
    first = r.submit(devices=1, tier="basic")
    r.tick()
    el = r.submit(devices=2, min_devices=1, tier="basic")
    r.tick()
    job = r.driver.state.jobs[el]
    assert job.phase == Phase.RUNNING and job.k == 2 and len(job.devices) == 1  # time-sliced
    devs = {b["device"] for m, p, b in r.hosts["h0"].ops("POST") if p == "/v1/ranks" and b["job"] == "j2"}
    assert len(devs) == 1  # both ranks on one device
    r.hosts["h0"].exit("j1.r0", 0)
    r.tick(rounds=5)
    job = r.driver.state.jobs[el]
    assert job.phase == Phase.RUNNING and job.k == 1 and len(job.devices) == 2
    assert r.kinds(el)[-1] == "RestoreDone" and job.resizes == 1
    ranks = r.hosts["h0"].ranks
    assert {ranks["j2.r0"]["device"], ranks["j2.r1"]["device"]} == {"sim:0", "sim:1"}
    ck = [p for m, p, b in r.hosts["h0"].ops("POST") if p.startswith("/v1/ranks/j2") and p.endswith("checkpoint")]
    assert sorted(ck) == ["/v1/ranks/j2.r0/checkpoint", "/v1/ranks/j2.r1/checkpoint"]


def test_a_rank_that_exited_before_a_resize_is_not_brought_up_again(rig: Any) -> None:
    # Ranks end apart; the policy resizes jobs, not ranks (end to end: test_control_plane_elastic.py).
    r = rig([("h0", 2)])
    r.submit(devices=1, tier="basic")
    r.tick()
    el = r.submit(devices=2, min_devices=1, tier="basic")
    r.tick()
    r.hosts["h0"].exit("j2.r0", 0)
    r.tick()
    assert r.job(el).state == "running" and r.job(el).exit_codes == {"0": 0}  # recorded as seen
    r.hosts["h0"].exit("j1.r0", 0)
    r.tick(rounds=5)
    job = r.driver.state.jobs[el]
    assert job.phase == Phase.RUNNING and job.k == 1 and len(job.devices) == 2 and job.resizes == 1
    ops = [(m, p) for m, p, _ in r.hosts["h0"].ops("POST") if p.startswith("/v1/ranks") and "j2.r0" in p]
    assert ops == [], ops  # never checkpointed, restored or started again
    starts = [b for m, p, b in r.hosts["h0"].ops("POST") if p == "/v1/ranks" and b["job"] == "j2"]
    assert sorted(b["rank"] for b in starts) == [0, 1]  # the first start only
    assert any(p == "/v1/ranks/j2.r1/restore" for m, p, _ in r.hosts["h0"].ops("POST"))
    r.hosts["h0"].exit("j2.r1", 0)
    r.tick()
    rec = r.job(el)
    assert rec.state == "succeeded" and rec.exit_codes == {"0": 0, "1": 0}
    assert r.kinds().count("HostFailed") == 1  # only the start-up one: a finished rank is not a lost one


def test_a_job_preempted_after_one_rank_exited_resumes_the_others_only(rig: Any) -> None:
    # Before the driver remembered finished ranks, the resume found no image of rank 0 and failed
    # the job ("checkpoint images missing").
    r = rig([("h0", 2)])
    low = r.submit(devices=2, tier="basic")
    r.tick()
    r.hosts["h0"].exit("j1.r0", 0)
    r.tick()
    high = r.submit(devices=2, tier="premium")
    r.tick()
    assert r.job(low).state == "suspended" and r.job(high).state == "running"
    for rank in ("j2.r0", "j2.r1"):
        r.hosts["h0"].exit(rank, 0)
    r.tick()
    restores = sorted(p for m, p, _ in r.hosts["h0"].ops("POST") if p.endswith("/restore"))
    assert restores == ["/v1/ranks/j1.r1/restore"]
    assert r.job(low).state == "running"
    r.hosts["h0"].exit("j1.r1", 0)
    r.tick()
    rec = r.job(low)
    assert rec.state == "succeeded" and rec.exit_codes == {"0": 0, "1": 0}, rec


def test_host_failure_resumes_the_job_elsewhere_and_kills_it_on_the_old_host(rig: Any) -> None:
    r = rig([("h0", 1), ("h1", 1)], checkpoint_interval_s=30.0)
    jid = r.submit(devices=1, tier="standard")
    r.tick()
    first = r.job(jid).placement[0]["host"]
    other = "h1" if first == "h0" else "h0"
    # A periodic checkpoint (the host's own, leave_running) left an image.
    img = r.cfg.data_dir / "images" / "j1" / "rank0"
    img.mkdir(parents=True)
    (img / "manifest.json").write_text("{}")
    r.alive.discard(first)  # its heartbeat stops
    r.tick(dt=4.0, rounds=4)
    assert "HostFailed" in r.kinds()[2:]
    rec = r.job(jid)
    assert rec.state == "running" and rec.placement[0]["host"] == other and rec.hosts == [first, other]
    assert any(p == "/v1/ranks/j1.r0/restore" for m, p, _ in r.hosts[other].ops("POST"))
    # The old host comes back still running the rank: it is killed there.
    r.alive.add(first)
    r.tick()
    assert "j1.r0" not in r.hosts[first].ranks
    assert r.hosts[other].ranks["j1.r0"]["state"] == "running"


def test_restarted_host_daemon_counts_as_a_failure(rig: Any) -> None:
    r = rig([("h0", 1)])
    jid = r.submit(devices=1)
    r.tick()
    r.hosts["h0"].forget_all()
    r.tick()
    evs = r.kinds()
    assert evs.count("HostFailed") == 2 and evs.count("HostRecovered") == 2
    assert r.job(jid).state == "running" and r.driver.state.jobs[jid].failures == 1
    assert r.hosts["h0"].ranks["j1.r0"]["state"] == "running"


def test_cancel_running_and_waiting_jobs(rig: Any) -> None:
    r = rig([("h0", 1)])
    run = r.submit(devices=1, tier="premium")
    wait = r.submit(devices=1, tier="premium")
    r.tick()
    assert r.job(wait).state == "queued"
    r.store.request_cancel(wait)
    r.tick()
    assert r.job(wait).state == "cancelled" and r.kinds(wait) == ["JobArrived", "JobCancelled"]
    r.store.request_cancel(run)
    r.tick()
    assert r.job(run).state == "cancelled" and r.kinds(run)[-1] == "JobFinished"
    assert r.hosts["h0"].ranks == {} and r.driver.state.jobs == {}
    never = r.submit(devices=1)
    r.store.request_cancel(never)
    r.tick()
    assert r.job(never).state == "cancelled" and r.kinds(never) == []


def test_replay_rebuilds_the_same_state_and_a_new_leader_just_reconciles(rig: Any) -> None:
    r = rig([("h0", 2), ("h1", 2)])
    a = r.submit(devices=2, tier="basic")
    r.submit(devices=1, min_devices=1, tier="standard")
    r.tick()
    r.submit(devices=2, tier="premium")
    r.tick()
    for h in r.hosts.values():
        if "j2.r0" in h.ranks:
            h.exit("j2.r0", 0)
    r.tick()
    r.store.request_cancel(a)
    r.tick()
    before = r.driver.brain.snapshot()
    assert before["jobs"] and before["finished"] >= 1  # something to rebuild
    seen = {n: len(h.ops()) for n, h in r.hosts.items()}
    r.driver.close()
    r.driver = r.new_driver()
    r.driver.recover()
    assert r.driver.brain.snapshot() == before
    # The new leader finds everything as it should be: no new events, no start or restore.
    n_events = len(r.store.events())
    r.driver.step(r.t)
    r.driver.wait_commands()
    assert len(r.store.events()) == n_events
    new = [c for n, h in r.hosts.items() for c in h.ops()[seen[n]:]]
    assert new and all(m == "GET" for m, _, _ in new)  # status polls only


def test_a_premium_request_beyond_the_quota_is_served_as_standard_and_says_so(rig: Any) -> None:
    r = rig([("h0", 2)], premium_quota=0.5)  # half the fleet (params.toml's default)
    r.tick()
    first = r.submit(devices=1, tier="premium")
    second = r.submit(devices=1, tier="premium")
    r.tick()
    assert r.job(first).served_tier is None and r.job(first).tier == "premium"
    assert r.job(second).served_tier == "standard" and r.job(second).tier == "premium"
    assert {r.job(first).state, r.job(second).state} == {"running"}
