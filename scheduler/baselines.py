"""Baseline policies, each as its original describes it (no strawmen).

* ``fifo`` — first in, first out, never preempts.  Kueue's *BestEffortFIFO*: a job that does not
  fit does not block smaller ones behind it (a strict FIFO would idle the fleet behind every large
  job).  Tier-blind.
* ``kill-requeue`` — priority preemption without transparent checkpointing, as Kueue, Volcano and
  Slurm (``PreemptMode=REQUEUE``) do it: a higher tier evicts lower-tier jobs, which restart from
  scratch (their work since start is lost).  FIFO within a tier; victims the lowest tier first,
  then the most recently started (the least work lost), as Kueue orders them.
* ``las`` — Tiresias' discretised two-dimensional least-attained-service (Gu et al., NSDI'19),
  with the thresholds of its reference simulator (``dlas-gpu``): attained service in GPU-seconds,
  queues split at 3,250 and 7,200 GPU-s, FIFO within a queue (by the time the job entered it), a
  job only preempts jobs of a lower queue.  Preemption is Tiresias' own: a framework checkpoint
  at an iteration boundary and a restart (no work lost; the checkpoint and the restart, including
  process start, cost device time).  Tier-blind; no migration, no elasticity.
"""

from __future__ import annotations

from .jobs import Job, Phase, Tier
from .params import Params
from .policy import QueuePolicy
from .queues import Key


class FifoPolicy(QueuePolicy):
    name = "fifo"

    def wait_key(self, job: Job) -> Key:
        return (job.arrival, job.id)


class KillRequeuePolicy(QueuePolicy):
    name = "kill-requeue"

    def wait_key(self, job: Job) -> Key:
        return (int(job.tier), job.arrival, job.id)

    def victim_key(self, job: Job) -> Key:
        return (-int(job.tier), -job.last_start, -job.id)

    def on_running(self, job: Job) -> None:
        if job.tier != Tier.PREMIUM:
            self.index_running(job)

    def can_make_room(self, job: Job) -> bool:
        v = self.best_victim()
        return v is not None and v.tier > job.tier

    def make_room(self, job: Job) -> bool:
        plan = self.victim_plan(job, job.n, lambda v: v.tier > job.tier)
        if plan is None:
            return False
        self.kill_for(job, plan)
        return True


class LasPolicy(QueuePolicy):
    """Discretised 2D-LAS (Tiresias)."""

    name = "las"

    def __init__(self, *, params: Params) -> None:
        super().__init__(params=params)
        self.limits = params.tiresias_queue_limits_gpu_s
        self.knob = params.tiresias_starve_knob

    def _service(self, job: Job) -> float:
        return self.s.attained_now(job) - job.level_base

    def _level(self, job: Job) -> int:
        g = self._service(job)
        lvl = 0
        for lim in self.limits:
            if g >= lim:
                lvl += 1
        return lvl

    def wait_key(self, job: Job) -> Key:
        return (job.level, job.level_since, job.id)

    def victim_key(self, job: Job) -> Key:
        return (-job.level, -job.level_since, -job.id)

    def enqueue(self, job: Job) -> None:
        lvl = self._level(job)
        if lvl != job.level:
            job.level = lvl
            job.level_since = self.s.now
        super().enqueue(job)
        if self.knob > 0 and job.level > 0 and job.run_s > 0:
            # Tiresias' starvation guard: promote to Q0 after waiting knob x executed time.
            self.set_timer(job, self.s.now + self.knob * job.run_s)

    def on_running(self, job: Job) -> None:
        self.index_running(job)
        if job.level < len(self.limits):
            m = len(job.devices)
            at = self.s.now + (self.limits[job.level] - self._service(job)) / m
            self.set_timer(job, max(at, self.s.now + 1.0))  # see SingularityPolicy._arm

    def on_timer(self, job: Job) -> None:
        if job.phase == Phase.RUNNING:
            lvl = self._level(job)
            if lvl != job.level:
                job.level = lvl
                job.level_since = self.s.now
            self.on_running(job)
        elif job.phase in (Phase.QUEUED, Phase.SUSPENDED) and self.knob > 0:
            job.level_base = self.s.attained_now(job)
            job.level = 0
            job.level_since = self.s.now
            super().enqueue(job)

    def _eligible(self, job: Job, v: Job) -> bool:
        return v.level > job.level

    def can_make_room(self, job: Job) -> bool:
        v = self.best_victim()
        return v is not None and v.level > job.level

    def make_room(self, job: Job) -> bool:
        plan = self.victim_plan(job, job.n, lambda v: v.level > job.level)
        if plan is None:
            return False
        self.preempt_for(job, plan)
        return True
