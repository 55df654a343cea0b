"""Trace-driven fleet simulator: owns time, feeds events to the policy, carries out its actions
with modelled durations, and records what happened to every job.

The loop per event: ``state.observe(event)`` then ``policy.on_event(state, event)`` — that pair is
one *decision*, timed for the latency figures — then each returned action becomes future events
(a checkpoint's completion, a restore's, a timer).  A running job's completion is scheduled from
its remaining work and its current rate; any action on the job bumps its epoch so a completion
computed earlier is ignored.  The policy never sees a job's work.
"""

from __future__ import annotations

import heapq
import time
from array import array
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from .actions import Admit, Kill, Migrate, Place, Preempt, Reserve, Resize, Resume, SetTimer
from .errors import SchedulerError
from .events import (
    CheckpointDone,
    Event,
    HostFailed,
    HostRecovered,
    JobArrived,
    JobFinished,
    RestoreDone,
    Timer,
)
from .jobs import JobSpec, Phase, Tier
from .params import CostModel, Params
from .placement import Placer
from .policy import Policy
from .state import ClusterState
from .topology import Topology
from .trace import Trace

# Event kinds (equal times are handled in the order the events were scheduled).
_FINISH, _CKPT, _RESTORE, _FAIL, _RECOVER, _TIMER = range(6)


class SimulationError(SchedulerError):
    """The simulation cannot go on (for instance, jobs left that nothing will ever start)."""


@dataclass(kw_only=True)
class SimResult:
    """Per-job records (arrays indexed by trace position) and fleet time series."""

    policy: str
    trace: str
    n_devices: int
    jobs: int
    rejected: np.ndarray  # bool: could never fit the fleet
    tier: np.ndarray  # the tier each job asked for (the trace's)
    admitted_tier: np.ndarray  # the tier it was served at (admission control may lower it)
    num_gpus: np.ndarray
    arrival: np.ndarray
    work: np.ndarray
    finish: np.ndarray  # NaN when not finished
    first_start: np.ndarray
    wait_s: np.ndarray
    mech_s: np.ndarray
    run_s: np.ndarray
    served_s: np.ndarray
    attained: np.ndarray  # device-seconds allocated while running
    attained_lost: np.ndarray
    lost_work: np.ndarray  # job-seconds of progress thrown away
    mech_dev_s: np.ndarray
    held_dev_s: np.ndarray
    preemptions: np.ndarray
    migrations: np.ndarray
    resizes: np.ndarray
    kills: np.ndarray
    failures: np.ndarray
    sample_t: np.ndarray  # time series, every `sample_every_s`
    sample_running: np.ndarray  # devices running jobs
    sample_busy: np.ndarray  # devices held (running + mechanisms + pending)
    sample_jobs: np.ndarray  # jobs in the system (waiting or holding devices)
    decision_ms: array[float]  # per-decision latency (observe + on_event), wall clock, milliseconds
    decision_cpu_ms: array[float]  # the same in thread CPU time (without time the OS gave others)
    wall_s: float
    events: int
    end_time: float
    action_counts: dict[str, int] = field(default_factory=dict)

    @property
    def jct(self) -> np.ndarray:
        out: np.ndarray = self.finish - self.arrival
        return out


class Simulator:
    """Replays a trace through a policy on a fleet."""

    def __init__(
        self,
        *,
        topology: Topology,
        policy: Policy,
        params: Params,
        trace: Trace,
        sample_every_s: float = 3600.0,
        check_every: int = 0,
        host_failures_per_day: float = 0.0,
        repair_s: float = 3600.0,
        seed: int = 1,
        record_decisions: bool = True,
    ) -> None:
        self.topo = topology
        self.policy = policy
        self.params = params
        self.trace = trace
        self.costs = CostModel(params=params)
        self.state = ClusterState(topology=topology, costs=self.costs, proxied=policy.proxied)
        self.sample_every_s = sample_every_s
        self.check_every = check_every
        self.failure_rate = host_failures_per_day / 86400.0
        self.repair_s = repair_s
        self.rng = np.random.Generator(np.random.PCG64(seed))
        self.record_decisions = record_decisions

    # ------------------------------------------------------------------ durations

    def run(self) -> SimResult:
        tr = self.trace
        n = len(tr)
        st = self.state
        pol = self.policy
        costs = self.costs
        p = self.params
        transparent = pol.transparent
        heap: list[tuple[float, int, int, int, int]] = []
        push = heapq.heappush
        pop = heapq.heappop
        seq = 0
        epoch = [0] * n
        work = tr.work.tolist()
        arrival = tr.arrival.tolist()
        # Plain lists: indexing numpy arrays one element at a time is slow.
        t_of = tr.tier.tolist()
        g_of = tr.num_gpus.tolist()
        m_of = tr.min_gpus.tolist()
        s_of = tr.state_gib.tolist()
        tiers = {int(t): t for t in Tier}

        finish = np.full(n, np.nan)
        admitted = tr.tier.copy()
        first_start = np.full(n, np.nan)
        cols = {
            k: np.zeros(n)
            for k in (
                "wait_s",
                "mech_s",
                "run_s",
                "served_s",
                "attained",
                "attained_lost",
                "lost_work",
                "mech_dev_s",
                "held_dev_s",
            )
        }
        icol = {
            k: np.zeros(n, dtype=np.int32)
            for k in ("preemptions", "migrations", "resizes", "kills", "failures")
        }
        placer = Placer(st)
        rejected = np.zeros(n, dtype=bool)
        for i in range(n):
            m = int(tr.min_gpus[i]) or int(tr.num_gpus[i])
            if not placer.fits_anywhere(m, None):
                rejected[i] = True
        remaining = int(n - rejected.sum())

        samples_t: list[float] = []
        samples_run: list[int] = []
        samples_busy: list[int] = []
        samples_wait: list[int] = []
        next_sample = float(arrival[0]) if n else 0.0
        step = self.sample_every_s
        n_dev = self.topo.n_devices

        decisions: array[float] = array("d")
        decisions_cpu: array[float] = array("d")
        rec = self.record_decisions
        perf = time.perf_counter_ns
        cpu = time.thread_time_ns
        counts: dict[type, int] = {}
        checks = self.check_every
        events = 0

        if self.failure_rate > 0:
            for h in range(self.topo.n_hosts):
                t = float(arrival[0]) + self.rng.exponential(1.0 / self.failure_rate)
                push(heap, (t, seq, _FAIL, h, 0))
                seq += 1

        ai = 0
        wall0 = time.perf_counter()
        now = float(arrival[0]) if n else 0.0
        while remaining > 0:
            # Next event: the earlier of the next arrival and the heap top (arrivals first on ties).
            if ai < n and (not heap or arrival[ai] <= heap[0][0]):
                if rejected[ai]:
                    ai += 1
                    continue
                now = float(arrival[ai])
                kind = -1
                jid = ai
                ai += 1
                aux = 0
            elif heap:
                now, _, kind, jid, aux = pop(heap)
                if kind <= _RESTORE and aux != epoch[jid]:
                    continue  # superseded by a later action on the job
            else:
                waiting = [j for j in st.jobs.values()]
                raise SimulationError(
                    f"{pol.name}: {remaining} jobs left and nothing to happen; e.g. {waiting[:5]}"
                )
            while next_sample <= now:
                samples_t.append(next_sample)
                samples_run.append(st.running_devices)
                samples_busy.append(n_dev - st.free_total - st.down_devices)
                samples_wait.append(len(st.jobs))
                next_sample += step

            ev: Event
            if kind == -1:
                ev = JobArrived(
                    JobSpec(
                        job_id=jid,
                        tier=tiers[t_of[jid]],
                        num_gpus=g_of[jid],
                        min_gpus=m_of[jid],
                        arrival=now,
                        state_gib_per_rank=s_of[jid],
                    )
                )
            elif kind == _FINISH:
                ev = JobFinished(jid)
            elif kind == _CKPT:
                ev = CheckpointDone(jid)
            elif kind == _RESTORE:
                ev = RestoreDone(jid)
            elif kind == _TIMER:
                ev = Timer(jid, aux)
            elif kind == _FAIL:
                ev = HostFailed(jid)
                push(heap, (now + self.repair_s, seq, _RECOVER, jid, 0))
                seq += 1
                push(
                    heap,
                    (now + self.repair_s + self.rng.exponential(1.0 / self.failure_rate), seq, _FAIL, jid, 0),
                )
                seq += 1
            else:
                ev = HostRecovered(jid)

            if kind == _FAIL:
                # The failure aborts whatever these jobs were doing: their pending completions
                # are void.
                for aj in list(st.host_jobs[jid]):
                    epoch[aj] += 1
            t0 = perf()
            c0 = cpu()
            job = st.observe(ev, now)
            actions = pol.on_event(st, ev)
            if rec:
                c1 = cpu()
                decisions.append((perf() - t0) * 1e-6)
                decisions_cpu.append((c1 - c0) * 1e-6)
            events += 1

            if kind == _FINISH:
                assert job is not None
                remaining -= 1
                finish[jid] = now
                admitted[jid] = int(job.tier)
                first_start[jid] = job.first_start
                for k, col in cols.items():
                    col[jid] = getattr(job, k) if k != "served_s" else job.served_s
                for k, icl in icol.items():
                    icl[jid] = getattr(job, k)
            elif kind == _CKPT and job is not None and job.phase == Phase.STARTING:
                # A migration's source side is done; the destination restores now.
                epoch[jid] += 1
                push(heap, (now + costs.migrate_in_s(), seq, _RESTORE, jid, epoch[jid]))
                seq += 1

            for a in actions:
                ta = type(a)
                counts[ta] = counts.get(ta, 0) + 1
                if isinstance(a, SetTimer):
                    push(heap, (a.at, seq, _TIMER, a.job_id, a.tag))
                    seq += 1
                    continue
                if ta is Reserve or ta is Admit:
                    continue  # bookkeeping: nothing to carry out
                aj = a.job_id
                epoch[aj] += 1
                if ta is Kill:
                    continue
                j = st.jobs[aj]
                if ta is Place:
                    dur = p.job_start_s
                    ev_kind = _RESTORE
                elif ta is Resume:
                    dur = costs.restore_s(
                        gib_per_rank=j.gib,
                        ranks_on_host=st.ranks_on_host(j),
                        framework_restart=not transparent,
                    )
                    ev_kind = _RESTORE
                elif ta is Preempt:
                    dur = costs.checkpoint_s(
                        gib_per_rank=j.gib, ranks_on_host=st.ranks_on_host(j), framework=not transparent
                    )
                    ev_kind = _CKPT
                elif ta is Migrate:
                    dur = costs.migrate_out_s(gib_per_rank=j.gib, ranks_on_host=st.ranks_on_host(j))
                    ev_kind = _CKPT
                elif ta is Resize:
                    old = set(j.devices)
                    new = j.new_devices
                    kept = sum(1 for d in new if d in old)
                    moved = max(0, j.n - min(j.k, j.new_k) * kept)
                    dh = self.topo.dev_host
                    old_hosts = {dh[d] for d in old}
                    new_hosts = len({dh[d] for d in new} - old_hosts)
                    dur = costs.resize_s(gib_per_rank=j.gib, moved_ranks=moved, new_hosts=new_hosts)
                    ev_kind = _RESTORE
                else:
                    raise SimulationError(f"unknown action {a!r}")
                push(heap, (now + dur, seq, ev_kind, aj, epoch[aj]))
                seq += 1

            if kind == _RESTORE and job is not None and job.phase == Phase.RUNNING:
                rest = (work[jid] - job.done) / job.rate
                push(heap, (now + max(rest, 0.0), seq, _FINISH, jid, epoch[jid]))
                seq += 1
            if checks and events % checks == 0:
                st.check()

        wall = time.perf_counter() - wall0
        if checks:
            st.check()
        return SimResult(
            policy=pol.name,
            trace=tr.name,
            n_devices=n_dev,
            jobs=n,
            rejected=rejected,
            tier=tr.tier.copy(),
            admitted_tier=admitted,
            num_gpus=tr.num_gpus.copy(),
            arrival=tr.arrival.copy(),
            work=tr.work.copy(),
            finish=finish,
            first_start=first_start,
            **cols,
            **icol,
            sample_t=np.array(samples_t),
            sample_running=np.array(samples_run, dtype=np.int64),
            sample_busy=np.array(samples_busy, dtype=np.int64),
            sample_jobs=np.array(samples_wait, dtype=np.int64),
            decision_ms=decisions,
            decision_cpu_ms=decisions_cpu,
            wall_s=wall,
            events=events,
            end_time=now,
            action_counts={t.__name__: c for t, c in counts.items()},
        )


def make_policy(name: str, *, params: Params) -> Policy:
    from .baselines import FifoPolicy, KillRequeuePolicy, LasPolicy
    from .singularity import ElasticSingularityPolicy, SingularityPolicy

    table: dict[str, type[Policy]] = {
        c.name: c
        for c in (FifoPolicy, KillRequeuePolicy, LasPolicy, SingularityPolicy, ElasticSingularityPolicy)
    }
    cls = table.get(name)
    if cls is None:
        raise SchedulerError(f"unknown policy {name!r}; choose from {', '.join(table)}")
    return cls(params=params)


POLICIES = ("fifo", "kill-requeue", "las", "singularity", "singularity-elastic")


def simulate(*, trace: Trace, topology: Topology, policy: str, params: Params, **kw: Any) -> SimResult:
    return Simulator(
        topology=topology, policy=make_policy(policy, params=params), params=params, trace=trace, **kw
    ).run()
