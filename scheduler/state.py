"""Cluster state: who holds which device, the free-capacity index, and each job's run-time record.

The state changes in exactly two ways: `apply(action)` (called by the policy for each action it
decides, so its next decision sees the devices it just reserved) and `observe(event)` (called by
the driver before the policy sees the event).  Both check their preconditions and raise
`StateError` before changing anything, so a policy bug cannot double-book a device.

Free-capacity index (what keeps a placement O(devices per host × clusters), independent of the
number of hosts): for every cluster, *pool* and free count k, a list of the hosts with exactly k
free devices, with each host's position in its list for O(1) removal; per device type and pool,
the number of such hosts across its clusters.  Pool 1 holds the hosts where a premium
(never-preempted) job runs, pool 0 the others: a policy can keep premium jobs together, so that
the hosts of pool 0 stay clearable for large gangs.
"""

from __future__ import annotations

from collections.abc import Iterable

from .actions import Action, Admit, Kill, Migrate, Place, Preempt, Reserve, Resize, Resume, SetTimer
from .errors import StateError
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
from .jobs import Job, Phase, Tier, ranks_per_device, require
from .params import CostModel
from .topology import Topology

FREE = -1
DOWN = -2


class ClusterState:
    __slots__ = (
        "_ready",
        "_requeued",
        "bpos",
        "bucket",
        "claims",
        "cluster_free",
        "cluster_room",
        "costs",
        "down_devices",
        "finished_count",
        "free_total",
        "freed",
        "host_down",
        "host_jobs",
        "host_mask",
        "host_nfree",
        "host_pinned",
        "host_pool",
        "host_room",
        "jobs",
        "now",
        "owner",
        "proxied",
        "running_devices",
        "tier_gpus",
        "topo",
        "type_bucket_n",
        "type_pool_n",
    )

    def __init__(self, *, topology: Topology, costs: CostModel, proxied: bool, now: float = 0.0) -> None:
        self.topo = topology
        self.costs = costs
        self.proxied = proxied
        self.now = now
        self.jobs: dict[int, Job] = {}
        t = topology
        self.owner: list[int] = [FREE] * t.n_devices
        self.claims: dict[int, int] = {}
        self.host_mask: list[int] = [(1 << n) - 1 for n in t.host_ndev]
        self.host_nfree: list[int] = list(t.host_ndev)
        self.host_down: list[bool] = [False] * t.n_hosts
        self.host_jobs: list[dict[int, int]] = [{} for _ in range(t.n_hosts)]
        hmax = t.max_host_devices
        # bucket[cluster][pool][k]: hosts of that pool with exactly k free devices.
        self.bucket: list[list[list[list[int]]]] = [
            [[[] for _ in range(hmax + 1)] for _ in range(2)] for _ in t.clusters
        ]
        self.bpos: list[int] = [0] * t.n_hosts
        self.cluster_free: list[int] = [0] * len(t.clusters)
        self.type_bucket_n: dict[str, list[int]] = {ty: [0] * (hmax + 1) for ty in t.device_types}
        self.type_pool_n: dict[str, list[list[int]]] = {
            ty: [[0] * (hmax + 1) for _ in range(2)] for ty in t.device_types
        }
        self.host_pinned: list[int] = [0] * t.n_hosts  # devices held by premium jobs
        self.host_pool: list[int] = [0] * t.n_hosts
        # cluster_room[c][r]: hosts of cluster c with exactly r devices not held by premium jobs
        # (busy or free): what preempting non-premium jobs can clear there.  Admission control
        # asks it whether a premium job would have a place.
        self.host_room: list[int] = list(t.host_ndev)
        self.cluster_room: list[list[int]] = [[0] * (hmax + 1) for _ in t.clusters]
        for h in range(t.n_hosts):
            self.cluster_room[t.host_cluster[h]][t.host_ndev[h]] += 1
        for h in range(t.n_hosts):
            c = t.host_cluster[h]
            n = t.host_ndev[h]
            b = self.bucket[c][0][n]
            self.bpos[h] = len(b)
            b.append(h)
            self.cluster_free[c] += n
            ty = t.clusters[c].device_type
            self.type_bucket_n[ty][n] += 1
            self.type_pool_n[ty][0][n] += 1
        self.free_total = t.n_devices
        self.running_devices = 0
        self.down_devices = 0
        self._ready: list[int] = []
        self._requeued: list[int] = []
        self.finished_count = 0
        # Devices asked for (world sizes) by the jobs in the system, per tier served: what an
        # admission quota is checked against, in O(1).
        self.tier_gpus: list[int] = [0] * len(Tier)
        # Bumped whenever devices return to the free pool: a policy can tell whether capacity
        # appeared since it last looked.
        self.freed = 0

    # ------------------------------------------------------------------ queries

    def job(self, job_id: int) -> Job:
        j = self.jobs.get(job_id)
        if j is None:
            raise StateError(f"unknown job {job_id}")
        return j

    def free_devices(self, h: int) -> list[int]:
        base = self.topo.host_base[h]
        m = self.host_mask[h]
        out = []
        while m:
            low = m & -m
            out.append(base + low.bit_length() - 1)
            m ^= low
        return out

    def attained_now(self, job: Job) -> float:
        """Device-seconds allocated to ``job`` up to now (the record is only updated on transitions)."""
        if job.phase == Phase.RUNNING:
            return job.attained + len(job.devices) * (self.now - job.since)
        return job.attained

    def done_now(self, job: Job) -> float:
        if job.phase == Phase.RUNNING:
            return job.done + job.rate * (self.now - job.since)
        return job.done

    def take_ready(self) -> list[int]:
        """Pending jobs whose claimed devices have all been handed over since the last call."""
        r = self._ready
        self._ready = []
        return r

    def take_requeued(self) -> list[int]:
        """Jobs sent back to waiting by an event (failure, cancelled reservation) since the last call."""
        r = self._requeued
        self._requeued = []
        return r

    def ranks_on_host(self, job: Job, devices: Iterable[int] | None = None, k: int | None = None) -> int:
        """Largest number of the job's ranks on one host, for mechanism costs."""
        devs = job.devices if devices is None else devices
        kk = job.k if k is None else k
        dh = self.topo.dev_host
        per: dict[int, int] = {}
        for d in devs:
            h = dh[d]
            per[h] = per.get(h, 0) + 1
        return min(job.n, max(per.values(), default=0) * kk)

    # ------------------------------------------------------------------ free index

    def _set_host_mask(self, h: int, mask: int) -> None:
        old = self.host_nfree[h]
        new = mask.bit_count()
        self.host_mask[h] = mask
        old_pool = self.host_pool[h]
        pool = 1 if self.host_pinned[h] else 0
        t = self.topo
        room = t.host_ndev[h] - self.host_pinned[h]
        if room != self.host_room[h]:
            cr = self.cluster_room[t.host_cluster[h]]
            cr[self.host_room[h]] -= 1
            cr[room] += 1
            self.host_room[h] = room
        if old == new and old_pool == pool:
            return
        c = t.host_cluster[h]
        bk = self.bucket[c]
        ty = t.clusters[c].device_type
        tbn = self.type_bucket_n[ty]
        tpn = self.type_pool_n[ty]
        if old:
            lst = bk[old_pool][old]
            i = self.bpos[h]
            last = lst.pop()
            if last != h:
                lst[i] = last
                self.bpos[last] = i
            tbn[old] -= 1
            tpn[old_pool][old] -= 1
        if new:
            lst = bk[pool][new]
            self.bpos[h] = len(lst)
            lst.append(h)
            tbn[new] += 1
            tpn[pool][new] += 1
        self.host_pool[h] = pool
        self.host_nfree[h] = new
        self.cluster_free[c] += new - old
        self.free_total += new - old

    def _take(self, job: Job, devices: Iterable[int], *, already_held_ok: bool = False) -> None:
        """Give free devices to ``job``.  Checked first, so a failure changes nothing."""
        owner = self.owner
        jid = job.id
        devs = list(devices)
        for d in devs:
            o = owner[d] if 0 <= d < len(owner) else DOWN
            if o != FREE and not (already_held_ok and o == jid):
                raise StateError(f"job {jid}: device {d} is not free (owner {o})")
        if len(set(devs)) != len(devs):
            raise StateError(f"job {jid}: duplicate devices")
        dh = self.topo.dev_host
        base = self.topo.host_base
        pinned = job.tier == Tier.PREMIUM
        touched: dict[int, int] = {}
        for d in devs:
            if owner[d] == jid:
                continue
            owner[d] = jid
            h = dh[d]
            touched[h] = touched.get(h, self.host_mask[h]) & ~(1 << (d - base[h]))
            hj = self.host_jobs[h]
            hj[jid] = hj.get(jid, 0) + 1
            if pinned:
                self.host_pinned[h] += 1
        for h, m in touched.items():
            self._set_host_mask(h, m)

    def _release(self, job: Job, devices: Iterable[int]) -> None:
        """Take devices from ``job``: to the job that claimed them, else back to the free index."""
        owner = self.owner
        jid = job.id
        dh = self.topo.dev_host
        base = self.topo.host_base
        claims = self.claims
        pinned = job.tier == Tier.PREMIUM
        touched: dict[int, int] = {}
        for d in devices:
            if owner[d] != jid:
                raise StateError(f"job {jid}: releasing device {d} it does not hold (owner {owner[d]})")
            h = dh[d]
            hj = self.host_jobs[h]
            n = hj[jid] - 1
            if n:
                hj[jid] = n
            else:
                del hj[jid]
            if pinned:
                self.host_pinned[h] -= 1
                touched.setdefault(h, self.host_mask[h])
            w = claims.pop(d, None)
            if w is not None:
                owner[d] = w
                hj[w] = hj.get(w, 0) + 1
                wj = self.jobs[w]
                if wj.tier == Tier.PREMIUM:
                    self.host_pinned[h] += 1
                    touched.setdefault(h, self.host_mask[h])
                self._account(wj)
                wj.claims_left -= 1
                if wj.claims_left == 0:
                    self._ready.append(w)
            elif self.host_down[h]:
                owner[d] = DOWN
                self.down_devices += 1
            else:
                owner[d] = FREE
                touched[h] = touched.get(h, self.host_mask[h]) | (1 << (d - base[h]))
        for h, m in touched.items():
            if m != self.host_mask[h]:
                self.freed += 1
            self._set_host_mask(h, m)

    # ------------------------------------------------------------------ accounting

    def _account(self, job: Job) -> None:
        now = self.now
        dt = now - job.since
        if dt <= 0:
            job.since = now
            return
        ph = job.phase
        if ph == Phase.RUNNING:
            m = len(job.devices)
            job.done += job.rate * dt
            job.attained += m * dt
            job.run_dev_s += m * dt
            job.run_s += dt
            if job.new_devices:
                job.held_dev_s += (len(job.new_devices) - job.claims_left) * dt
        elif ph == Phase.QUEUED or ph == Phase.SUSPENDED:
            job.wait_s += dt
        elif ph == Phase.PENDING:
            job.wait_s += dt
            job.held_dev_s += (len(job.devices) - job.claims_left) * dt
        elif ph == Phase.MIGRATING:
            job.mech_s += dt
            job.mech_dev_s += (len(job.devices) + len(job.new_devices)) * dt
        elif ph == Phase.RESIZING:
            job.mech_s += dt
            job.mech_dev_s += len(set(job.devices).union(job.new_devices)) * dt
        elif ph == Phase.STARTING or ph == Phase.CHECKPOINTING:
            job.mech_s += dt
            job.mech_dev_s += len(job.devices) * dt
        job.since = now

    def _set_phase(self, job: Job, phase: Phase) -> None:
        self._account(job)
        if job.phase == Phase.RUNNING:
            self.running_devices -= len(job.devices)
            job.rate = 0.0
        job.phase = phase
        if phase == Phase.RUNNING:
            self.running_devices += len(job.devices)
            job.rate = self.costs.rate(job.k, self.proxied)

    def _lose_work(self, job: Job) -> None:
        """Throw away the progress since the last checkpoint (kill, failure)."""
        lost = job.done - job.ckpt_done
        if lost > 0:
            job.lost_work += lost
        job.attained_lost += job.attained - job.attained_ckpt
        job.attained_ckpt = job.attained
        job.done = job.ckpt_done

    # ------------------------------------------------------------------ actions

    def apply(self, action: Action) -> None:
        if isinstance(action, SetTimer):
            return
        job = self.job(action.job_id)
        if isinstance(action, Admit):
            # Admission happens before the job holds anything: its tier decides where it is
            # placed (premium hosts are pinned) and what it may displace.
            require(
                job.phase == Phase.QUEUED and not job.ever_ran and not job.devices,
                f"Admit: job {job.id} is {job.phase.name} (admission is before the first start)",
            )
            self.tier_gpus[job.tier] -= job.n
            self.tier_gpus[action.tier] += job.n
            job.tier = action.tier
        elif isinstance(action, (Place, Resume)):
            if isinstance(action, Place):
                require(not job.has_ckpt, f"Place: job {job.id} has a checkpoint; use Resume")
            else:
                require(job.has_ckpt, f"Resume: job {job.id} has no checkpoint; use Place")
            self._check_size(job, action.devices, action.ranks_per_device)
            if job.phase == Phase.PENDING:
                require(
                    job.claims_left == 0 and set(action.devices) == set(job.devices),
                    f"job {job.id}: start from PENDING needs all claimed devices, exactly",
                )
            else:
                require(
                    job.phase in (Phase.QUEUED, Phase.SUSPENDED),
                    f"{type(action).__name__}: job {job.id} is {job.phase.name}",
                )
                self._account(job)
                self._take(job, action.devices)
            job.devices = tuple(action.devices)
            job.k = action.ranks_per_device
            self._set_phase(job, Phase.STARTING)
        elif isinstance(action, Reserve):
            running = job.phase == Phase.RUNNING
            if running:
                # A running (time-sliced) job reserves devices to grow onto: it keeps running;
                # once every claimed device has arrived the policy resizes it.
                require(not job.new_devices, f"Reserve: job {job.id} already has a reservation")
            else:
                require(
                    job.phase in (Phase.QUEUED, Phase.SUSPENDED), f"Reserve: job {job.id} is {job.phase.name}"
                )
            self._check_claims(action.claims)
            self._account(job)
            self._take(job, action.devices)
            for d in action.claims:
                self.claims[d] = job.id
            if running:
                job.new_devices = tuple(action.devices) + tuple(action.claims)
            else:
                job.devices = tuple(action.devices) + tuple(action.claims)
            job.claims_left = len(action.claims)
            if not running:
                self._set_phase(job, Phase.PENDING)
            if job.claims_left == 0:
                self._ready.append(job.id)
        elif isinstance(action, Preempt):
            require(job.phase == Phase.RUNNING, f"Preempt: job {job.id} is {job.phase.name}")
            require(not job.new_devices, f"Preempt: job {job.id} holds a reservation to grow")
            job.preemptions += 1
            self._set_phase(job, Phase.CHECKPOINTING)
        elif isinstance(action, Kill):
            require(
                job.phase in (Phase.RUNNING, Phase.STARTING) and not job.new_devices,
                f"Kill: job {job.id} is {job.phase.name}",
            )
            self._account(job)
            job.kills += 1
            self._set_phase(job, Phase.QUEUED)
            self._release(job, job.devices)
            job.devices = ()
            self._lose_work(job)
        elif isinstance(action, Migrate):
            require(
                job.phase == Phase.RUNNING and not job.new_devices,
                f"Migrate: job {job.id} is {job.phase.name}",
            )
            require(
                len(action.devices) == len(job.devices), f"Migrate: job {job.id} must keep its device count"
            )
            self._account(job)
            self._take(job, action.devices)
            job.new_devices = tuple(action.devices)
            job.migrations += 1
            self._set_phase(job, Phase.MIGRATING)
        elif isinstance(action, Resize):
            require(job.phase == Phase.RUNNING, f"Resize: job {job.id} is {job.phase.name}")
            self._check_size(job, action.devices, action.ranks_per_device)
            require(set(action.devices) != set(job.devices), f"Resize: job {job.id}: same devices")
            require(
                job.claims_left == 0 and set(job.new_devices) <= set(action.devices),
                f"Resize: job {job.id} must use all its reserved devices",
            )
            held = set(job.devices).union(job.new_devices)
            self._account(job)
            self._take(job, [d for d in action.devices if d not in held])
            job.new_devices = tuple(action.devices)
            job.new_k = action.ranks_per_device
            job.resizes += 1
            job.last_resize = self.now
            self._set_phase(job, Phase.RESIZING)
        else:
            raise StateError(f"unknown action {action!r}")

    def _check_size(self, job: Job, devices: tuple[int, ...], k: int) -> None:
        m = len(devices)
        require(
            m >= job.min_devices and m <= job.n,
            f"job {job.id}: {m} devices outside [{job.min_devices}, {job.n}]",
        )
        require(
            k == ranks_per_device(job.n, m),
            f"job {job.id}: {m} devices need {ranks_per_device(job.n, m)} ranks per device, not {k}",
        )
        if job.dtype is not None:
            tod = self.topo.type_of_device
            require(all(tod(d) == job.dtype for d in devices), f"job {job.id}: needs device type {job.dtype}")

    def _check_claims(self, claims: tuple[int, ...]) -> None:
        for d in claims:
            o = self.owner[d] if 0 <= d < len(self.owner) else DOWN
            require(o >= 0, f"claim on device {d}: not held by a job")
            require(d not in self.claims, f"claim on device {d}: already claimed")
            hj = self.jobs[o]
            releasing = (
                hj.phase == Phase.CHECKPOINTING
                or (hj.phase == Phase.MIGRATING and d not in hj.new_devices)
                or (hj.phase == Phase.RESIZING and d not in hj.new_devices)
            )
            require(releasing, f"claim on device {d}: holder {o} is {hj.phase.name} and keeps it")

    # ------------------------------------------------------------------ events

    def observe(self, event: Event, now: float) -> Job | None:
        """Advance the clock to ``now`` and record ``event``; returns the job concerned, if any.

        A `JobFinished` job is removed from `jobs` and returned (with final accounting).
        """
        if now < self.now:
            raise StateError(f"time goes backwards: {now} < {self.now}")
        self.now = now
        if isinstance(event, JobArrived):
            spec = event.spec
            if spec.job_id in self.jobs:
                raise StateError(f"job {spec.job_id} arrived twice")
            j = Job(spec, now)
            self.jobs[spec.job_id] = j
            self.tier_gpus[j.tier] += j.n
            return j
        if isinstance(event, Timer):
            return self.jobs.get(event.job_id)
        if isinstance(event, HostFailed):
            self._host_failed(event.host)
            return None
        if isinstance(event, HostRecovered):
            self._host_recovered(event.host)
            return None
        job = self.job(event.job_id)
        t = type(event)
        if t is CheckpointDone:
            if job.phase == Phase.CHECKPOINTING:
                self._account(job)
                self._mark_checkpoint(job)
                self._set_phase(job, Phase.SUSPENDED)
                self._release(job, job.devices)
                job.devices = ()
            elif job.phase == Phase.MIGRATING:
                self._account(job)
                self._mark_checkpoint(job)
                self._move_to_new_devices(job)
                job.phase = Phase.STARTING
            else:
                raise StateError(f"CheckpointDone: job {job.id} is {job.phase.name}")
        elif t is RestoreDone:
            if job.phase == Phase.STARTING:
                job.ever_ran = True
                if job.first_start < 0:
                    job.first_start = now
                job.last_start = now
                self._set_phase(job, Phase.RUNNING)
            elif job.phase == Phase.RESIZING:
                self._account(job)
                self._move_to_new_devices(job)
                job.k = job.new_k
                job.phase = Phase.STARTING  # accounted as mechanism until now
                self._set_phase(job, Phase.RUNNING)
            else:
                raise StateError(f"RestoreDone: job {job.id} is {job.phase.name}")
        elif t is JobFinished:
            require(job.phase == Phase.RUNNING, f"JobFinished: job {job.id} is {job.phase.name}")
            self._set_phase(job, Phase.FINISHED)
            if job.new_devices:  # a reservation to grow, now void
                for d in job.new_devices:
                    if self.claims.get(d) == job.id:
                        del self.claims[d]
                self._release(job, [d for d in job.new_devices if self.owner[d] == job.id])
                job.new_devices = ()
                job.claims_left = 0
                if job.id in self._ready:
                    self._ready.remove(job.id)
            self._release(job, job.devices)
            del self.jobs[job.id]
            self.tier_gpus[job.tier] -= job.n
            self.finished_count += 1
        else:
            raise StateError(f"unknown event {event!r}")
        return job

    def _move_to_new_devices(self, job: Job) -> None:
        """A migration or resize is through: release the old devices it does not keep."""
        keep = set(job.new_devices)
        self._release(job, [d for d in job.devices if d not in keep])
        job.devices = job.new_devices
        job.new_devices = ()

    @staticmethod
    def _mark_checkpoint(job: Job) -> None:
        job.ckpt_done = job.done
        job.attained_ckpt = job.attained
        job.has_ckpt = True

    # ------------------------------------------------------------------ failures

    def _host_failed(self, h: int) -> None:
        if self.host_down[h]:
            return
        base = self.topo.host_base[h]
        hit = sorted(self.host_jobs[h])
        # Claims on this host's devices can never be honoured: cancel those reservations.
        for d in range(base, base + self.topo.host_ndev[h]):
            w = self.claims.get(d)
            if w is not None and w not in hit:
                hit.append(w)
        self.host_down[h] = True
        n_free = self.host_nfree[h]
        for d in self.free_devices(h):
            self.owner[d] = DOWN
        self._set_host_mask(h, 0)
        self.down_devices += n_free
        for jid in hit:
            self._abort(self.jobs[jid], failure=True)

    def _abort(self, job: Job, *, failure: bool) -> None:
        """Send a job back to waiting, releasing everything it holds or claims."""
        self._account(job)
        ph = job.phase
        for d in [d for d, w in self.claims.items() if w == job.id]:
            del self.claims[d]
        held = [d for d in dict.fromkeys(job.devices + job.new_devices) if self.owner[d] == job.id]
        if ph in (Phase.RUNNING, Phase.STARTING, Phase.CHECKPOINTING, Phase.MIGRATING, Phase.RESIZING):
            if failure:
                job.failures += 1
            self._lose_work(job)
        self._set_phase(job, Phase.SUSPENDED if job.has_ckpt else Phase.QUEUED)
        job.claims_left = 0
        self._release(job, held)
        job.devices = ()
        job.new_devices = ()
        job.k = 1
        if job.id in self._ready:
            self._ready.remove(job.id)
        self._requeued.append(job.id)

    def _host_recovered(self, h: int) -> None:
        if not self.host_down[h]:
            return
        self.host_down[h] = False
        base = self.topo.host_base[h]
        mask = 0
        for i in range(self.topo.host_ndev[h]):
            if self.owner[base + i] == DOWN:
                self.owner[base + i] = FREE
                self.down_devices -= 1
                mask |= 1 << i
        self.freed += 1
        self._set_host_mask(h, mask)

    # ------------------------------------------------------------------ checking

    def check(self) -> None:
        """Recompute everything from the job records and compare (O(fleet): tests only)."""
        t = self.topo
        held: dict[int, int] = {}
        for j in self.jobs.values():
            devs = list(dict.fromkeys(j.devices + j.new_devices))
            if j.phase in (Phase.QUEUED, Phase.SUSPENDED, Phase.FINISHED):
                require(not devs, f"job {j.id} is {j.phase.name} but holds devices")
            for d in devs:
                if self.claims.get(d) == j.id:
                    continue
                require(d not in held, f"device {d} held by jobs {held.get(d)} and {j.id}")
                held[d] = j.id
            require(
                j.claims_left == sum(1 for w in self.claims.values() if w == j.id),
                f"job {j.id}: claims_left out of step",
            )
        free_total = 0
        for h in range(t.n_hosts):
            mask = 0
            for i in range(t.host_ndev[h]):
                d = t.host_base[h] + i
                o = self.owner[d]
                if d in held:
                    require(o == held[d], f"device {d}: owner {o}, job records say {held[d]}")
                elif o == FREE:
                    mask |= 1 << i
                else:
                    require(o == DOWN and self.host_down[h], f"device {d}: owner {o} but no job holds it")
            require(mask == self.host_mask[h], f"host {h}: free mask out of step")
            n = mask.bit_count()
            require(n == self.host_nfree[h], f"host {h}: free count out of step")
            pinned = sum(cnt for jid, cnt in self.host_jobs[h].items() if self.jobs[jid].tier == Tier.PREMIUM)
            require(pinned == self.host_pinned[h], f"host {h}: premium count out of step")
            require(self.host_pool[h] == (1 if pinned else 0), f"host {h}: pool out of step")
            if n:
                c = t.host_cluster[h]
                require(
                    self.bucket[c][self.host_pool[h]][n][self.bpos[h]] == h,
                    f"host {h}: bucket index out of step",
                )
            free_total += n
            counts: dict[int, int] = {}
            for i in range(t.host_ndev[h]):
                o = self.owner[t.host_base[h] + i]
                if o >= 0:
                    counts[o] = counts.get(o, 0) + 1
            require(counts == self.host_jobs[h], f"host {h}: job index out of step")
        require(free_total == self.free_total, "free total out of step")
        room = [[0] * len(r) for r in self.cluster_room]
        for h in range(t.n_hosts):
            room[t.host_cluster[h]][t.host_ndev[h] - self.host_pinned[h]] += 1
        require(room == self.cluster_room, "premium-free room index out of step")
        require(
            sum(len(b) for bk in self.bucket for pl in bk for b in pl)
            == sum(1 for h in range(t.n_hosts) if self.host_nfree[h]),
            "bucket sizes out of step",
        )
        for d, w in self.claims.items():
            wj = self.jobs[w]
            require(
                wj.phase == Phase.PENDING or (wj.phase == Phase.RUNNING and d in wj.new_devices),
                f"claim on {d} by job {w}, which is {wj.phase.name}",
            )
        running = sum(len(j.devices) for j in self.jobs.values() if j.phase == Phase.RUNNING)
        require(running == self.running_devices, "running device count out of step")
        per_tier = [0] * len(Tier)
        for j in self.jobs.values():
            per_tier[j.tier] += j.n
        require(per_tier == self.tier_gpus, "devices asked for per tier out of step")
