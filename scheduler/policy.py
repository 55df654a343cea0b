"""The policy interface and the machinery every queue-based policy shares.

A policy is pure and deterministic: ``on_event(state, event)`` looks only at the cluster state and
the event, applies each action it decides to the state (so the next decision in the same call sees
it) and returns the actions for the driver to carry out.  It keeps no global state; its queues and
indexes are caches of the state, rebuilt from it when it is handed a state it has not seen (a
daemon restarting from its store does exactly that).

Cost per decision: a scheduling pass looks at the head of each waiting *shape* (not each waiting
job), at most ``max_room_attempts`` room-making attempts, each over at most
``max_victims_examined`` running jobs and the hosts they use.  Nothing walks the fleet.
"""

from __future__ import annotations

import heapq
from abc import ABC, abstractmethod
from collections.abc import Callable, Hashable
from typing import ClassVar

from .actions import Action, Kill, Place, Preempt, Reserve, Resize, Resume, SetTimer
from .events import CheckpointDone, Event, JobArrived, JobFinished, RestoreDone, Timer
from .jobs import Job, Phase, ranks_per_device
from .params import Params
from .placement import Placer
from .queues import Key, RankedJobs, WaitQueue
from .state import ClusterState


class Policy(ABC):
    """Cluster state + event → actions."""

    name: ClassVar[str]
    #: Jobs run under the Singularity proxy: every running second pays the proxy overhead.
    proxied: ClassVar[bool] = False
    #: Checkpoints are transparent (device state + CRIU): a restore does not restart the framework.
    transparent: ClassVar[bool] = False

    def __init__(self, *, params: Params) -> None:
        self.p = params

    @abstractmethod
    def on_event(self, state: ClusterState, event: Event) -> list[Action]:
        """Decide what to do about ``event`` (already recorded in ``state`` by the driver)."""


class Plan:
    """Devices for a waiting job: free ones now, claims on ones that victims will release."""

    __slots__ = ("claims", "free", "victims")

    def __init__(self, free: list[int], claims: list[int], victims: list[Job]) -> None:
        self.free = free
        self.claims = claims
        self.victims = victims


class QueuePolicy(Policy):
    """Waiting jobs in priority order, placed on free capacity, room made by subclasses."""

    def __init__(self, *, params: Params) -> None:
        super().__init__(params=params)
        self._state: ClusterState | None = None
        self._out: list[Action] = []
        self._victims_cache: list[Job] | None = None
        self._best_cache: Job | None = None
        self._victims_limit = 0
        self._seen_freed = -1
        self._new_shapes: set[Hashable] = set()
        self._room_dirty = True

    # ------------------------------------------------------------------ hooks for subclasses

    @abstractmethod
    def wait_key(self, job: Job) -> Key:
        """Priority of a waiting job: smaller runs first.  Must end with the job id."""

    def victim_key(self, job: Job) -> Key:
        """Order of running jobs as victims: smaller is preempted first.  Must end with the job id."""
        return (job.id,)

    def shape(self, job: Job) -> Hashable:
        """Waiting jobs of one shape are interchangeable for placement."""
        return (job.n, self.smallest_start(job), job.dtype or "")

    def smallest_start(self, job: Job) -> int:
        return job.n

    def pool(self, job: Job) -> int | None:
        """Which host pool to look in first for ``job`` (None: best fit anywhere)."""
        return None

    def try_start(self, job: Job) -> bool:
        """Start ``job`` on free devices if it fits; the default: full size only."""
        devs = self.placer.find(job.n, job.dtype, pool=self.pool(job))
        if devs is None:
            return False
        self.start(job, devs)
        return True

    def admit(self, job: Job) -> None:
        """Admission control for a job that just arrived (it may emit an `Admit` to change the
        tier it is served at); the default admits every job at the tier it asked for."""

    def can_make_room(self, job: Job) -> bool:
        return False

    def try_start_reduced(self, job: Job) -> bool:
        """Start ``job`` on fewer devices than it asked for (elastic policies only)."""
        return False

    def make_room(self, job: Job) -> bool:
        """Free devices for ``job`` by acting on running jobs; True if it is placed or pending."""
        return False

    def on_running(self, job: Job) -> None:
        """A job started, resumed, migrated or was resized and runs now."""

    def on_timer(self, job: Job) -> None:
        """A timer this policy set for ``job`` fired (and is current)."""

    def before_event(self) -> None:
        """Called first in every decision (after the state recorded the event)."""

    def on_finished(self, job_id: int) -> None:
        """A job finished (it is no longer in the state)."""
        self.running.discard(job_id)

    def after_pass(self) -> None:
        """Called after each scheduling pass (elastic growth lives here)."""

    # ------------------------------------------------------------------ the event loop

    def on_event(self, state: ClusterState, event: Event) -> list[Action]:
        if state is not self._state:
            self._bind(state)
        out: list[Action] = []
        self._out = out
        self.before_event()
        if isinstance(event, JobArrived):
            new = state.jobs[event.spec.job_id]
            self.admit(new)
            self.enqueue(new)
        elif isinstance(event, RestoreDone):
            job = state.jobs.get(event.job_id)
            if job is not None and job.phase == Phase.RUNNING:
                self.on_running(job)
                self._room_dirty = True  # a new candidate victim
        elif isinstance(event, CheckpointDone):
            job = state.jobs.get(event.job_id)
            if job is not None and job.phase == Phase.SUSPENDED:
                self.enqueue(job)
        elif isinstance(event, Timer):
            job = state.jobs.get(event.job_id)
            if job is not None and job.ttag == event.tag:
                self.on_timer(job)
                self._room_dirty = True  # priorities changed
        elif isinstance(event, JobFinished):
            self.on_finished(event.job_id)
        self._settle()
        # What can have changed since the last pass: free capacity (then every shape is worth
        # trying), new waiters (their shapes), new or re-keyed running jobs (room-making may now
        # work).  Anything else would repeat a pass that already failed.
        full = state.freed != self._seen_freed
        if full or self._new_shapes or self._room_dirty:
            self._schedule(full)
        self._settle()
        self._out = []
        return out

    def _bind(self, state: ClusterState) -> None:
        """(Re)build every index from the state."""
        self._state = state
        self.s = state
        self.placer = Placer(state)
        self.wq = WaitQueue(state.jobs)
        self.running = RankedJobs(state.jobs, valid=lambda j: j.phase == Phase.RUNNING)
        for job in sorted(state.jobs.values(), key=lambda j: j.id):
            if job.phase in (Phase.QUEUED, Phase.SUSPENDED):
                self.enqueue(job)
            elif job.phase == Phase.RUNNING:
                self.on_running(job)

    def _settle(self) -> None:
        """Re-queue jobs an event sent back, start pending jobs whose devices have all arrived."""
        s = self.s
        while True:
            requeued = s.take_requeued()
            ready = s.take_ready()
            if not requeued and not ready:
                return
            for jid in requeued:
                self.enqueue(s.jobs[jid])
            for jid in ready:
                job = s.jobs[jid]
                if job.phase == Phase.PENDING:
                    self.start(job, job.devices)
                elif job.phase == Phase.RUNNING and job.new_devices:
                    self.complete_grow(job)

    def complete_grow(self, job: Job) -> None:
        """A running job's reservation to grow is complete: resize onto it (a reservation of the
        full world size means moving there; a smaller one adds to the devices it has)."""
        target = job.new_devices if len(job.new_devices) >= job.n else job.devices + job.new_devices
        self.emit(Resize(job.id, target, ranks_per_device(job.n, len(target))))

    # ------------------------------------------------------------------ helpers

    def emit(self, action: Action) -> None:
        self.s.apply(action)
        self._out.append(action)

    def enqueue(self, job: Job) -> None:
        shape = self.shape(job)
        self.wq.push(job, self.wait_key(job), shape)
        self._new_shapes.add(shape)

    def start(self, job: Job, devices: tuple[int, ...] | list[int]) -> None:
        devs = tuple(devices)
        k = ranks_per_device(job.n, len(devs))
        self.wq.discard(job)
        self.emit(Resume(job.id, devs, k) if job.has_ckpt else Place(job.id, devs, k))

    def set_timer(self, job: Job, at: float) -> None:
        job.ttag += 1
        self.emit(SetTimer(job.id, at, job.ttag))

    def cancel_timer(self, job: Job) -> None:
        job.ttag += 1

    def index_running(self, job: Job) -> None:
        job.pkey = self.victim_key(job)
        self.running.put(job, job.pkey)

    # ------------------------------------------------------------------ the scheduling pass

    def _schedule(self, full: bool = True) -> None:
        """One scheduling pass.  ``full``: capacity was freed, try every shape; otherwise only the
        shapes of new waiters are tried on free devices, and room-making for the best heads."""
        s = self.s
        wq = self.wq
        fresh = self._new_shapes
        self._new_shapes = set()
        self._room_dirty = False
        self._seen_freed = s.freed
        if not len(wq):
            self.after_pass()
            self._victims_cache = None
            self._best_cache = None
            return
        heads = wq.heads()
        heapq.heapify(heads)
        rooms = self.p.policy_max_room_attempts
        self._victims_cache = None
        self._best_cache = None
        blocked: list[tuple[Key, Hashable]] = []
        while heads:
            key, shape = heapq.heappop(heads)
            job = wq.head(shape)
            if job is None:
                continue
            if job.pkey != key:
                heapq.heappush(heads, (job.pkey, shape))
                continue
            done = (full or shape in fresh) and self.try_start(job)
            if not done and rooms > 0 and self.can_make_room(job):
                rooms -= 1
                done = self.make_room(job)
            if done:
                wq.discard(job)
                fresh.add(shape)  # the next job of this shape has not been tried yet
                nxt = wq.head(shape)
                if nxt is not None:
                    heapq.heappush(heads, (nxt.pkey, shape))
            else:
                # Nothing of this shape fits now; drop the shape for this pass.
                blocked.append((key, shape))
                if rooms <= 0 and not full and not fresh:
                    break
        # Second phase: devices still idle go to blocked jobs that can run on fewer devices
        # (elastic policies), best first.
        for _, shape in blocked:
            if not (full or shape in fresh):
                continue
            while True:
                job = wq.head(shape)
                if job is None or not self.try_start_reduced(job):
                    break
                wq.discard(job)
        self._victims_cache = None
        self._best_cache = None
        self.after_pass()
        self._victims_cache = None
        self._best_cache = None
        # Devices our own actions freed (a killed multi-host victim's other hosts) make the next
        # call a full pass.

    def victims(self, limit: int | None = None) -> list[Job]:
        """The best ``limit`` (default ``max_victims_examined``) running jobs as victims, cached
        for one pass (callers check the phase: a victim taken earlier in the pass is no longer
        running)."""
        want = limit or self.p.policy_max_victims_examined
        c = self._victims_cache
        if c is None or (len(c) < want and self._victims_limit < want):
            c = self._victims_cache = self.running.first(want)
            self._victims_limit = want
        return c if len(c) <= want else c[:want]

    def best_victim(self) -> Job | None:
        if self._victims_cache is not None:
            for j in self._victims_cache:
                if j.phase == Phase.RUNNING:
                    return j
            return None
        b = self._best_cache
        if b is None or b.phase != Phase.RUNNING:
            b = self._best_cache = self.running.best()
        return b

    def victim_plan(
        self, job: Job, n: int, eligible: Callable[[Job], bool], limit: int | None = None
    ) -> Plan | None:
        """Devices for a gang of ``n`` for ``job``: free ones plus those of eligible victims.

        Walks the best victims once (bounded by ``max_victims_examined``), adding each one's
        devices to the hosts it uses; the first host (single-host gang) that reaches ``n``, or the
        first cluster (multi-host gang) with enough whole hosts free or fully covered by victims,
        wins.  O(victims examined), whatever the size of the fleet.
        """
        s = self.s
        topo = s.topo
        dev_host = topo.dev_host
        host_cluster = topo.host_cluster
        clusters = topo.clusters
        dtype = job.dtype
        single = n <= self.placer.host_size(dtype)
        acc: dict[int, int] = {}  # host -> free + devices of victims seen on it
        on_host: dict[int, list[Job]] = {}  # host -> victims seen on it
        clear: dict[int, list[int]] = {}  # cluster -> hosts fully free or covered
        bad: set[int] = set()
        for v in self.victims(limit):
            if v.phase != Phase.RUNNING or not eligible(v):
                continue
            per: dict[int, int] = {}
            for d in v.devices:
                h = dev_host[d]
                per[h] = per.get(h, 0) + 1
            for h, cnt in per.items():
                if h in bad:
                    continue
                a = acc.get(h)
                if a is None:
                    spec = clusters[host_cluster[h]]
                    if (
                        s.host_down[h]
                        or (dtype is not None and spec.device_type != dtype)
                        or (single and spec.devices_per_host < n)
                        or (not single and n <= spec.devices_per_host)
                    ):
                        bad.add(h)
                        continue
                    a = s.host_nfree[h]
                a += cnt
                acc[h] = a
                on_host.setdefault(h, []).append(v)
                if single:
                    if a >= n:
                        free_devs = s.free_devices(h)[:n]
                        claims = [d for u in on_host[h] for d in u.devices if dev_host[d] == h]
                        return Plan(free_devs, claims[: n - len(free_devs)], on_host[h])
                    continue
                c = host_cluster[h]
                hc = clusters[c].devices_per_host
                if a < hc:
                    continue
                lst = clear.setdefault(c, [])
                lst.append(h)
                need = -(-n // hc)
                full = s.bucket[c][0][hc][-need:]
                if len(full) + len(lst) < need:
                    continue
                hosts_clear = lst[: need - len(full)]
                free_devs = [d for hf in full for d in s.free_devices(hf)]
                victims: dict[int, Job] = {}
                claims = []
                for hh in hosts_clear:
                    free_devs.extend(s.free_devices(hh))
                    for u in on_host[hh]:
                        victims[u.id] = u
                    base = topo.host_base[hh]
                    claims.extend(d for d in range(base, base + hc) if s.owner[d] >= 0)
                free_devs = free_devs[:n]
                return Plan(free_devs, claims[: n - len(free_devs)], list(victims.values()))
        return None

    def preempt_for(self, job: Job, plan: Plan) -> None:
        """Checkpoint the plan's victims and reserve their devices for ``job``."""
        for v in plan.victims:
            if v.phase == Phase.RUNNING:
                self.emit(Preempt(v.id))
        self.wq.discard(job)
        self.emit(Reserve(job.id, tuple(plan.free), tuple(plan.claims)))

    def kill_for(self, job: Job, plan: Plan) -> None:
        """Kill the plan's victims (their work is lost) and start ``job`` at once."""
        for v in plan.victims:
            if v.phase in (Phase.RUNNING, Phase.STARTING):
                self.emit(Kill(v.id))
                self.enqueue(v)
        self.start(job, plan.free + plan.claims)
