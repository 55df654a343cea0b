"""The policy side of the daemon: `ClusterState` + the policy + pending timers, fed one logged event
at a time.  The driver applies live events through it; a new leader replays the whole log through
a fresh one — the policy is pure and deterministic, so both end in the same state.

Event kinds in the log are the policy's events (scheduler/events.py) plus one of the daemon's own:
``JobCancelled``, a waiting job removed from the state (the policy has no event for that).  As the
policy keeps no state of its own beyond caches of `ClusterState` ("rebuilt from it when it is
handed a state it has not seen", scheduler/policy.py), the job is deleted from the state and the
policy replaced by a fresh instance, which rebuilds its indexes at its next event.
"""

from __future__ import annotations

import heapq
from typing import Any

from ..actions import Action, SetTimer
from ..errors import StateError
from ..events import (
    CheckpointDone,
    Event,
    HostFailed,
    HostRecovered,
    JobArrived,
    JobFinished,
    RestoreDone,
    Timer,
)
from ..jobs import JobSpec, Phase, Tier
from ..params import CostModel, Params
from ..policy import Policy
from ..simulator import make_policy
from ..state import ClusterState
from .fleet import Fleet

KINDS = (
    "JobArrived",
    "JobFinished",
    "CheckpointDone",
    "RestoreDone",
    "HostFailed",
    "HostRecovered",
    "Timer",
    "JobCancelled",
)


class Brain:
    def __init__(self, *, fleet: Fleet, params: Params, policy: str) -> None:
        self.fleet = fleet
        self.params = params
        self.policy_name = policy
        self.policy: Policy = make_policy(policy, params=params)
        self.state = ClusterState(topology=fleet.topology, costs=CostModel(params=params), proxied=self.policy.proxied)
        self.timers: list[tuple[float, int, int]] = []  # (at, job id, tag), a heap
        self.arrived: set[int] = set()  # every job that ever arrived (finished ones too)

    def decode(self, kind: str, body: dict[str, Any], at: float) -> Event | None:
        if kind == "JobArrived":
            return JobArrived(
                JobSpec(
                    job_id=int(body["job"]),
                    tier=Tier.parse(str(body["tier"])),
                    num_gpus=int(body["devices"]),
                    min_gpus=int(body["min_devices"]),
                    arrival=at,
                    state_gib_per_rank=float(body["gib"]),
                )
            )
        if kind == "JobFinished":
            return JobFinished(int(body["job"]))
        if kind == "CheckpointDone":
            return CheckpointDone(int(body["job"]))
        if kind == "RestoreDone":
            return RestoreDone(int(body["job"]))
        if kind in ("HostFailed", "HostRecovered"):
            h = self.fleet.host_index.get(str(body["host"]))
            if h is None:
                raise StateError(f"{kind}: host {body['host']!r} is not in the fleet")
            return HostFailed(h) if kind == "HostFailed" else HostRecovered(h)
        if kind == "Timer":
            return Timer(int(body["job"]), int(body["tag"]))
        if kind == "JobCancelled":
            return None
        raise StateError(f"unknown event kind {kind!r} in the log")

    def apply(self, kind: str, body: dict[str, Any], at: float) -> list[Action]:
        """Feed one event to the state and the policy; returns the policy's actions."""
        at = max(at, self.state.now)
        ev = self.decode(kind, body, at)
        if ev is None:  # JobCancelled
            jid = int(body["job"])
            job = self.state.job(jid)
            if job.phase not in (Phase.QUEUED, Phase.SUSPENDED) or job.devices or job.new_devices:
                raise StateError(f"JobCancelled: job {jid} is {job.phase.name}, not waiting")
            self.state.now = at
            del self.state.jobs[jid]
            self.policy = make_policy(self.policy_name, params=self.params)
            return []
        if isinstance(ev, Timer):
            self.timers = [t for t in self.timers if (t[1], t[2]) != (ev.job_id, ev.tag)]
            heapq.heapify(self.timers)
        self.state.observe(ev, at)
        actions = self.policy.on_event(self.state, ev)
        if isinstance(ev, JobArrived):
            self.arrived.add(ev.spec.job_id)
        for a in actions:
            if isinstance(a, SetTimer):
                heapq.heappush(self.timers, (a.at, a.job_id, a.tag))
        return actions

    def due_timers(self, now: float) -> list[tuple[int, int]]:
        out = []
        while self.timers and self.timers[0][0] <= now:
            _, jid, tag = heapq.heappop(self.timers)
            out.append((jid, tag))
        return out

    def snapshot(self) -> dict[str, Any]:
        """Everything that defines the state, in plain data (replay tests compare two of these)."""
        s = self.state
        jobs = {}
        for jid, j in sorted(s.jobs.items()):
            jobs[jid] = {
                "phase": j.phase.name,
                "devices": list(j.devices),
                "new_devices": list(j.new_devices),
                "k": j.k,
                "new_k": j.new_k,
                "claims_left": j.claims_left,
                "has_ckpt": j.has_ckpt,
                "done": round(j.done, 6),
                "attained": round(j.attained, 6),
                "preemptions": j.preemptions,
                "migrations": j.migrations,
                "resizes": j.resizes,
                "failures": j.failures,
                "ttag": j.ttag,
            }
        return {
            "now": s.now,
            "owner": list(s.owner),
            "claims": dict(sorted(s.claims.items())),
            "host_down": list(s.host_down),
            "free_total": s.free_total,
            "finished": s.finished_count,
            "jobs": jobs,
            "timers": sorted(self.timers),
            "arrived": sorted(self.arrived),
        }
