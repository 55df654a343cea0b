"""The Singularity policy: SLA tiers, transparent preemption, defragmenting migration, and (in
``singularity-elastic``) elastic resize and time-slicing.

Admission: a premium request is served as premium only within the premium quota (see
`SingularityPolicy.admit`); beyond it, as standard.

Priority, best first:

0. **premium** (admitted) — starts before anything else; once running it is never preempted,
   migrated or shrunk;
1. **everything else** — least attained service (LAS) on exponentially spaced levels of
   attained GPU-time, basic jobs ``basic_level_offset`` levels lower; a job only displaces jobs of
   a strictly higher level that have run for their quantum.  A standard job falling behind its
   guaranteed fraction (SLA slack down to ``urgent_slack_s`` waiting, ``protect_slack_s``
   running) is *urgent*: ``urgent_level_boost`` levels lower, first within its level, last victim
   of it, and it does not wait out a non-urgent victim's quantum.  The boost is bounded: urgency
   above every other job turned the tier into first-come-first-served under overload.

To start a waiting job the policy tries, in order: free devices; **migrating** running jobs off a
host to defragment it (only when enough devices are free in total); (elastic) **shrinking**
lower-priority elastic jobs, which keep running time-sliced; **preempting** lower-priority jobs by
transparent checkpoint (no work is lost; the checkpoint and the later restore cost device time);
(elastic) starting the job itself **time-sliced** on fewer devices.  Time-sliced jobs grow back
when devices are free.  No decision uses a job's duration: the policy cannot know it.
"""

from __future__ import annotations

import heapq
import math
from bisect import bisect_right
from typing import ClassVar

from .actions import Admit, Migrate, Preempt, Reserve, Resize
from .jobs import Job, Phase, Tier, allowed_sizes, ranks_per_device
from .params import Params
from .policy import QueuePolicy
from .queues import Key, RankedJobs
from .state import ClusterState

PREMIUM = 0
URGENT = 1
NORMAL = 2


class SingularityPolicy(QueuePolicy):
    name = "singularity"
    proxied = True
    transparent = True
    elastic: ClassVar[bool] = False

    def __init__(self, *, params: Params) -> None:
        super().__init__(params=params)
        p = params
        self.thr_s = tuple(x * 3600.0 for x in p.policy_las_thresholds_gpu_h)
        self.g = p.sla_standard_fraction
        self.grace = p.sla_grace_s
        self.maxr = p.timeslice_max_ranks_per_device
        self.boost = p.policy_urgent_level_boost
        self._new_waiters: list[Job] = []
        self._due: list[tuple[float, int, int]] = []

    def _bind(self, state: ClusterState) -> None:
        self.quota = int(self.p.admission_premium_quota_fraction * state.topo.n_devices)
        self._due = []
        self.sliced = RankedJobs(state.jobs, valid=lambda j: j.phase == Phase.RUNNING and j.k > 1)
        super()._bind(state)

    # ------------------------------------------------------------------ classes, levels, keys

    def _level(self, job: Job) -> int:
        lvl = bisect_right(self.thr_s, self.s.attained_now(job))
        if job.tier == Tier.BASIC:
            lvl += self.p.policy_basic_level_offset
        return lvl

    def _slack(self, job: Job) -> float:
        s = self.s
        served = (s.attained_now(job) - job.attained_lost) / job.n
        return served - self.g * (s.now - job.arrival - self.grace)

    def _class(self, job: Job) -> int:
        if job.tier == Tier.PREMIUM:
            return PREMIUM
        if job.tier == Tier.STANDARD:
            running = job.phase == Phase.RUNNING
            limit = self.p.policy_protect_slack_s if running else self.p.policy_urgent_slack_s
            if self._slack(job) <= limit:
                return URGENT
        return NORMAL

    def _rekey(self, job: Job) -> None:
        job.cls = self._class(job)
        if job.cls == PREMIUM:
            job.level = 0
        else:
            # Urgency is a bounded boost on the attained-service scale, not a class above it:
            # under overload nearly every standard job falls behind, and an unbounded boost
            # turned the tier into first-come-first-served (long jobs protected for ~2.3x their
            # wait, short ones queued behind them).  With the boost, a late job with little
            # service still goes first, a late job with much service does not jump the short ones.
            job.level = self._level(job) - (self.boost if job.cls == URGENT else 0)

    def wait_key(self, job: Job) -> Key:
        return (min(job.cls, 1), job.level, job.cls, job.arrival, job.id)  # urgent first in a level

    def victim_key(self, job: Job) -> Key:
        return (-job.level, URGENT - job.cls, job.last_start, -job.id)  # non-urgent first in a level

    def smallest_start(self, job: Job) -> int:
        if not self.elastic or job.tier == Tier.PREMIUM:
            return job.n
        sizes = self._sizes(job)
        floor = max(job.min_devices, math.ceil(self.p.policy_elastic_start_min_fraction * job.n))
        fit = [m for m in sizes if m >= floor]
        return fit[-1] if fit else job.n

    def pool(self, job: Job) -> int | None:
        # Premium jobs go where premium jobs already run, so other hosts stay clearable for
        # large gangs (a host with a premium job on it can never be emptied).
        return 1 if job.tier == Tier.PREMIUM else None

    def _sizes(self, job: Job) -> tuple[int, ...]:
        return allowed_sizes(job.n, job.min_devices, self.maxr)

    # ------------------------------------------------------------------ hooks

    def admit(self, job: Job) -> None:
        """The premium quota.  Premium jobs are never preempted, so premium demand beyond the
        capacity sold to the tier cannot be honoured by any ordering: a premium request is
        admitted as premium only if the devices asked for by the premium jobs in the system, its
        own included (the state already counts it), stay within the quota, and there is a place
        for it that preempting non-premium jobs can clear; otherwise it is served as standard for
        its whole life.  Deterministic: it depends on the arrival order and the jobs in the
        system only."""
        if job.tier == Tier.PREMIUM and (
            self.s.tier_gpus[Tier.PREMIUM] > self.quota or not self._premium_room(job)
        ):
            self.emit(Admit(job.id, Tier.STANDARD))

    def _premium_room(self, job: Job) -> bool:
        """Whether preempting non-premium jobs can clear a place for ``job``: one host with
        enough devices not held by premium jobs, or for a gang enough hosts without a premium
        job in one cluster.  O(clusters × devices per host)."""
        s = self.s
        topo = s.topo
        n = job.n
        for ty in topo.device_types if job.dtype is None else (job.dtype,):
            for c in topo.type_clusters.get(ty, ()):
                hc = topo.clusters[c].devices_per_host
                room = s.cluster_room[c]
                if n <= hc:
                    if any(room[r] for r in range(n, hc + 1)):
                        return True
                elif room[hc] >= -(-n // hc):
                    return True
        return False

    def enqueue(self, job: Job) -> None:
        self._rekey(job)
        super().enqueue(job)
        if job.tier == Tier.STANDARD:
            self._new_waiters.append(job)

    def on_running(self, job: Job) -> None:
        job.quantum = -1.0  # computed when first needed (most jobs end before anyone asks)
        self._refresh(job)

    def _refresh(self, job: Job) -> None:
        """(Re)index a running job under its current class and level."""
        self._rekey(job)
        if job.tier == Tier.PREMIUM:
            return
        self.index_running(job)
        if job.k > 1:
            self.sliced.put(job, self.wait_key(job))
        else:
            self.sliced.discard(job.id)
        self._arm(job)

    def _quantum(self, job: Job) -> float:
        if job.quantum < 0:
            s = self.s
            job.quantum = max(
                self.p.policy_min_quantum_s,
                self.p.policy_quantum_cost_factor
                * s.costs.preemption_cost_s(
                    gib_per_rank=job.gib, ranks_on_host=s.ranks_on_host(job), transparent=True
                ),
            )
        return job.quantum

    def before_event(self) -> None:
        """Catch up on level and class changes of running jobs that fell due since the last
        event.  They only change who is a better victim, so instead of a timer event each (a
        third of all events at scale), they are applied when the next event arrives."""
        due = self._due
        now = self.s.now
        jobs = self.s.jobs
        while due and due[0][0] <= now:
            _, jid, ver = heapq.heappop(due)
            job = jobs.get(jid)
            if job is not None and job.stag == ver and job.phase == Phase.RUNNING:
                self._refresh(job)
                self._room_dirty = True

    def on_finished(self, job_id: int) -> None:
        super().on_finished(job_id)
        self.sliced.discard(job_id)

    def on_timer(self, job: Job) -> None:
        if job.phase == Phase.RUNNING:
            self._refresh(job)
        elif job.phase in (Phase.QUEUED, Phase.SUSPENDED):
            old = job.cls
            self._rekey(job)
            if job.cls != old:
                QueuePolicy.enqueue(self, job)
            self._arm(job)

    def _arm(self, job: Job) -> None:
        """Wake up when the job's level or SLA class would change."""
        s = self.s
        now = s.now
        at = math.inf
        running = job.phase == Phase.RUNNING
        if running and job.tier != Tier.PREMIUM:
            a = s.attained_now(job)
            i = bisect_right(self.thr_s, a)
            if i < len(self.thr_s):
                at = now + (self.thr_s[i] - a) / len(job.devices)
        if job.tier == Tier.STANDARD:
            slack = self._slack(job)
            rate = (len(job.devices) / job.n - self.g) if running else -self.g
            limit = self.p.policy_protect_slack_s if running else self.p.policy_urgent_slack_s
            if rate < 0 and slack > limit:
                at = min(at, now + (slack - limit) / -rate)
            elif rate > 0 and slack <= limit:
                at = min(at, now + (limit - slack) / rate)
        job.stag += 1
        if at < math.inf:
            # At least a second ahead: a wake-up computed to land exactly on a threshold can
            # fall a rounding error short of it and would otherwise re-arm at the same instant.
            at = max(at, now + 1.0)
            if running:
                heapq.heappush(self._due, (at, job.id, job.stag))
                self.cancel_timer(job)
            else:
                self.set_timer(job, at)
        else:
            self.cancel_timer(job)

    def _schedule(self, full: bool = True) -> None:
        super()._schedule(full)
        # Standard jobs still waiting after the pass need a wake-up when they become urgent;
        # jobs that started at once (most of them) never cost a timer.
        waiters = self._new_waiters
        self._new_waiters = []
        for job in waiters:
            if job.phase in (Phase.QUEUED, Phase.SUSPENDED):
                self._arm(job)

    # ------------------------------------------------------------------ who may displace whom

    def eligible(self, w: Job, v: Job) -> bool:
        """May waiting job ``w`` take devices from running job ``v``?"""
        if v.phase != Phase.RUNNING or v.tier == Tier.PREMIUM or v.new_devices or v is w:
            return False
        if w.cls == PREMIUM:
            return True
        if w.level < v.level:
            # An urgent job does not wait out a non-urgent victim's quantum: its SLA is at stake.
            if w.cls == URGENT and v.cls == NORMAL:
                return True
            return self.s.now - v.last_start >= self._quantum(v)
        return False

    def can_make_room(self, job: Job) -> bool:
        if self.s.free_total >= job.n:
            return True  # fragmented: migration may help
        return self._any_victim(job)

    def _any_victim(self, job: Job) -> bool:
        """Cheap test before a room-making attempt: is one of the best few victims eligible?
        (The very best may be within its quantum, or reserved to grow, while the next is not.)"""
        for v in self.victims()[:8]:
            if self.eligible(job, v):
                return True
        return False

    def make_room(self, job: Job) -> bool:
        n = job.n
        if self.s.free_total >= n and self._defragment(job, n):
            return True
        if self.elastic and job.cls != NORMAL and self._shrink_for(job, n):
            # Guaranteed jobs take devices from elastic jobs by shrinking them (they keep running,
            # time-sliced); on least-attained-service grounds alone a job is preempted instead.
            return True
        # A guaranteed job looks further down the victim list: its SLA is at stake, and such
        # jobs are rare enough for the extra work not to matter.
        if job.cls == PREMIUM:
            # A premium job may take any non-premium job's devices; within the quota there is
            # always such a host, but it may be one whose jobs rank low as victims.
            limit: int | None = 4096
        elif job.cls == URGENT:
            limit = min(4096, max(self.p.policy_max_victims_examined, 16 * n))
        else:
            limit = None
        plan = self.victim_plan(job, n, lambda v: self.eligible(job, v), limit)
        if plan is None:
            return False
        self.preempt_for(job, plan)
        return True

    # ------------------------------------------------------------------ migration

    def _movable(self, u: Job, h: int) -> bool:
        if u.phase != Phase.RUNNING or u.tier == Tier.PREMIUM or u.new_devices:
            return False
        if self.s.now - max(u.last_start, u.last_resize) < self.p.policy_min_resize_interval_s:
            return False
        dh = self.s.topo.dev_host
        return all(dh[d] == h for d in u.devices)

    def _defragment(self, job: Job, n: int) -> bool:
        """Move running single-host jobs off one host so ``job`` fits there (single-host jobs only)."""
        s = self.s
        topo = s.topo
        if n > self.placer.host_size(job.dtype):
            return False
        types = topo.device_types if job.dtype is None else (job.dtype,)
        examined = 0
        for f in range(n - 1, 0, -1):
            for ty in types:
                if not s.type_bucket_n[ty][f]:
                    continue
                for c in topo.type_clusters[ty]:
                    if topo.clusters[c].devices_per_host < n:
                        continue
                    for pool in (0, 1):
                        for h in s.bucket[c][pool][f][-4:]:
                            examined += 1
                            if self._try_defrag_host(job, n, h, ty):
                                return True
                            if examined >= 8:
                                return False
        return False

    def _try_defrag_host(self, job: Job, n: int, h: int, ty: str) -> bool:
        s = self.s
        free = s.host_nfree[h]
        movers = sorted(
            (s.jobs[u] for u in s.host_jobs[h] if self._movable(s.jobs[u], h)),
            key=lambda u: (-len(u.devices), u.pkey),
        )
        need = n - free
        chosen: list[Job] = []
        got = 0
        for u in movers:
            if got >= need:
                break
            chosen.append(u)
            got += len(u.devices)
        if got < need:
            return False
        # Dry run of best-fit on free counts (this host excluded): all movers must land.
        tbn = list(s.type_bucket_n[ty])
        tbn[free] -= 1
        for u in chosen:
            m = len(u.devices)
            for k in range(m, len(tbn)):
                if tbn[k] > 0:
                    tbn[k] -= 1
                    tbn[k - m] += 1
                    break
            else:
                return False
        exclude = (h,)
        dests: list[tuple[Job, tuple[int, ...]]] = []
        for u in chosen:
            dest = self.placer.find(len(u.devices), ty, exclude)
            if dest is None:  # the dry run is exact for one device type; stay safe anyway
                break
            self.emit(Migrate(u.id, dest))
            dests.append((u, dest))
        if len(dests) < len(chosen):
            return False
        free_devs = s.free_devices(h)
        claims = [d for u in chosen for d in u.devices][: n - len(free_devs)]
        self.wq.discard(job)
        self.emit(Reserve(job.id, tuple(free_devs), tuple(claims)))
        return True

    # ------------------------------------------------------------------ elasticity

    def _shrink_for(self, job: Job, n: int) -> bool:
        """Shrink lower-priority elastic jobs on one host so ``job`` fits there."""
        s = self.s
        if n > self.placer.host_size(job.dtype):
            return False
        dh = s.topo.dev_host
        now = s.now
        interval = self.p.policy_min_resize_interval_s

        def shrinkable(u: Job) -> bool:
            if not self.eligible(job, u) or len(self._sizes(u)) < 2 or len(u.devices) <= u.min_devices:
                return False
            if job.cls == NORMAL and now - u.last_resize < interval:
                return False
            h0 = dh[u.devices[0]]
            return all(dh[d] == h0 for d in u.devices)

        seen: set[int] = set()
        for v in self.victims():
            if v.phase != Phase.RUNNING or not shrinkable(v):
                continue
            h = dh[v.devices[0]]
            if h in seen:
                continue
            seen.add(h)
            spec = s.topo.clusters[s.topo.host_cluster[h]]
            if spec.devices_per_host < n or (job.dtype and spec.device_type != job.dtype) or s.host_down[h]:
                continue
            acc = s.host_nfree[h]
            plan: list[tuple[Job, int]] = []
            for u in sorted((s.jobs[x] for x in s.host_jobs[h]), key=lambda x: x.pkey):
                if acc >= n:
                    break
                if not shrinkable(u):
                    continue
                m = len(u.devices)
                smaller = [x for x in self._sizes(u) if x < m]
                target = smaller[-1]
                for x in smaller:  # the largest size that frees enough
                    if m - x >= n - acc:
                        target = x
                        break
                plan.append((u, target))
                acc += m - target
            if acc < n:
                continue
            free_devs = s.free_devices(h)
            claims: list[int] = []
            for u, target in plan:
                keep = u.devices[:target]
                claims.extend(u.devices[target:])
                self.emit(Resize(u.id, keep, ranks_per_device(u.n, target)))
            self.wq.discard(job)
            self.emit(Reserve(job.id, tuple(free_devs[:n]), tuple(claims[: max(0, n - len(free_devs))])))
            return True
        return False

    def try_start_reduced(self, job: Job) -> bool:
        if not self.elastic or job.tier == Tier.PREMIUM:
            return False
        floor = self.smallest_start(job)
        if job.tier == Tier.STANDARD and self._slack(job) < self.p.policy_protect_slack_s:
            # Below its guaranteed fraction a standard job would eat into its SLA slack while
            # it runs; it waits (and becomes urgent) instead, unless it has slack to spare.
            floor = max(floor, math.ceil(self.g * job.n))
        for m in self._sizes(job)[1:]:
            if m < floor:
                break
            devs = self.placer.find(m, job.dtype)
            if devs is not None:
                self.start(job, devs)
                return True
        return False

    def after_pass(self) -> None:
        """Grow time-sliced jobs: onto idle devices, or — like a waiting job of the same priority
        would — by displacing lower-priority jobs."""
        if not self.elastic or not len(self.sliced):
            return
        s = self.s
        now = s.now
        dh = s.topo.dev_host
        rooms = self.p.policy_max_room_attempts
        for u in self.sliced.first(self.p.policy_max_grows):
            if u.phase != Phase.RUNNING or u.k == 1 or u.new_devices:
                continue
            if now - u.last_resize < self.p.policy_min_resize_interval_s and u.cls == NORMAL:
                continue
            if s.free_total and self._grow_idle(u, dh):
                continue
            if rooms > 0 and self._any_victim(u):
                rooms -= 1
                self._grow_by_room(u, dh)

    def _grow_idle(self, u: Job, dh: list[int]) -> bool:
        s = self.s
        m = len(u.devices)
        bigger = [x for x in self._sizes(u) if x > m]
        hosts = {dh[d] for d in u.devices}
        new: tuple[int, ...] | None = None
        if len(hosts) == 1:
            (h,) = hosts
            f = s.host_nfree[h]
            for x in bigger:
                if x - m <= f:
                    new = u.devices + tuple(s.free_devices(h)[: x - m])
                    break
        if new is None:
            for x in bigger:
                devs = self.placer.find(x, u.dtype)
                if devs is not None:
                    new = devs
                    break
        if new is None:
            return False
        self.emit(Resize(u.id, new, ranks_per_device(u.n, len(new))))
        return True

    def _grow_by_room(self, u: Job, dh: list[int]) -> bool:
        """Reserve the devices that take ``u`` back to full size: on its own host if victims
        there suffice, else a whole new placement; the victims are preempted."""
        s = self.s
        n = u.n
        m = len(u.devices)
        hosts = {dh[d] for d in u.devices}
        if len(hosts) == 1 and n <= self.placer.host_size(u.dtype):
            (h,) = hosts
            spec = s.topo.clusters[s.topo.host_cluster[h]]
            if n <= spec.devices_per_host:
                need = n - m
                acc = s.host_nfree[h]
                chosen: list[Job] = []
                for x in sorted((s.jobs[j] for j in s.host_jobs[h]), key=lambda x: x.pkey):
                    if acc >= need:
                        break
                    if self.eligible(u, x):
                        chosen.append(x)
                        acc += s.host_jobs[h][x.id]
                if acc >= need and chosen:
                    free = s.free_devices(h)[:need]
                    claims = [d for x in chosen for d in x.devices if dh[d] == h][: need - len(free)]
                    for x in chosen:
                        self.emit(Preempt(x.id))
                    self.emit(Reserve(u.id, tuple(free), tuple(claims)))
                    return True
        plan = self.victim_plan(u, n, lambda v: self.eligible(u, v))
        if plan is None:
            return False
        for v in plan.victims:
            if v.phase == Phase.RUNNING:
                self.emit(Preempt(v.id))
        self.emit(Reserve(u.id, tuple(plan.free), tuple(plan.claims)))
        return True


class ElasticSingularityPolicy(SingularityPolicy):
    name = "singularity-elastic"
    elastic = True
