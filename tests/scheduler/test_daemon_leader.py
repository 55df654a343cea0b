"""Two scheduler replicas on a real etcd: one leads, the other answers 503 with the leader's URL;
when the leader is killed the other takes over, and a job submitted before is neither lost nor
duplicated (it is in the log once, and the new leader's replay does not add it again)."""

from __future__ import annotations

import signal
from pathlib import Path
from typing import Any

import httpx
import pytest
from daemon_support import Scheduler, etcd_server, fleet_file, wait_until

from scheduler.daemon.leader import EtcdLeadership
from scheduler.daemon.store import NewJob, NotLeaderError
from scheduler.daemon.store_etcd import EtcdStore

TOKEN = "leader-test"


def call(s: Scheduler, method: str, path: str, **kw: Any) -> httpx.Response:
    return httpx.request(method, s.url + path, headers={"Authorization": f"Bearer {TOKEN}"}, timeout=10, **kw)


def test_failover_keeps_every_job_once(tmp_path: Path) -> None:
    tok = tmp_path / "token"
    tok.write_text(TOKEN)
    fleet = fleet_file(tmp_path / "fleet.toml", [("h0", "c0", "sim:2")])
    with etcd_server(tmp_path) as etcd:
        args = ["--etcd", etcd, "--leader-ttl", "2"]
        a = Scheduler(tmp_path, fleet=fleet, token_file=tok, name="a", args=[*args, "--replica-id", "a"])
        b = Scheduler(tmp_path, fleet=fleet, token_file=tok, name="b", args=[*args, "--replica-id", "b"])
        try:
            a.wait_up(leader=None)
            b.wait_up(leader=None)
            leader = wait_until(
                lambda: next((s for s in (a, b) if (s.health() or {}).get("leader")), None), "a leader"
            )
            follower = b if leader is a else a
            r = call(follower, "GET", "/v1/jobs")
            assert r.status_code == 503 and r.json() == {"error": "not the leader", "leader": leader.url}
            r = call(leader, "POST", "/v1/jobs", json={"command": ["python", "x.py"], "devices": 2})
            assert r.status_code == 201
            job = r.json()["id"]
            wait_until(lambda: any(e["kind"] == "JobArrived" for e in call(leader, "GET", "/v1/events").json()["events"]),
                       "the job to arrive")
            leader.kill(signal.SIGKILL)
            wait_until(lambda: (follower.health() or {}).get("leader"), "the follower to take over", timeout=60)
            jobs = call(follower, "GET", "/v1/jobs").json()["jobs"]
            assert [j["id"] for j in jobs] == [job] and jobs[0]["state"] == "queued"
            # Once the new leader has completed a step (it publishes the job gauge at the end of
            # one), count: still one arrival, one HostFailed (the first leader's first start).
            wait_until(lambda: 'singularity_jobs{state="queued"} 1.0' in call(follower, "GET", "/metrics").text,
                       "a step of the new leader")
            evs = call(follower, "GET", "/v1/events").json()["events"]
            assert [e["kind"] for e in evs].count("JobArrived") == 1
            assert [e["kind"] for e in evs].count("HostFailed") == 1
            assert [e["seq"] for e in evs] == list(range(1, len(evs) + 1))
            r = call(follower, "POST", "/v1/jobs", json={"command": ["y"]})
            assert r.status_code == 201 and r.json()["id"] == job + 1
        finally:
            a.kill()
            b.kill()


def test_a_deposed_leader_stops_and_cannot_write(tmp_path: Path) -> None:
    with etcd_server(tmp_path) as etcd:
        s1 = EtcdStore(etcd, prefix="/p")
        s2 = EtcdStore(etcd, prefix="/p")
        l1 = EtcdLeadership(s1, replica_id="one", url="http://one", ttl_s=2)
        l2 = EtcdLeadership(s2, replica_id="two", url="http://two", ttl_s=2)
        assert l1.step() and not l2.step()
        assert l2.leader_url() == "http://one"
        with pytest.raises(NotLeaderError):
            s2.add_job(NewJob(command=["x"]), now=0.0)  # a follower's write is fenced out
        s1.add_job(NewJob(command=["x"]), now=0.0)
        # The leader's lease goes (as if it had been paused past its TTL): the other wins ...
        assert l1._lease is not None
        l1._lease.revoke()
        assert wait_until(lambda: l2.step(), "replica two to win")
        # ... and the old leader notices at its next step and can no longer write.
        l1._renewed = 0.0
        assert not l1.step()
        with pytest.raises(NotLeaderError):
            s1.append_event("X", {}, at=0.0)
        assert s2.append_event("Y", {}, at=0.0) == 1
        assert [j.id for j in s2.jobs()] == [1]
        l2.resign()
        assert wait_until(lambda: l1.step(), "replica one to win again after the resignation")
