"""Jobs: what a user submits (`JobSpec`) and what the scheduler knows of it at run time (`Job`).

A job's duration is *not* part of either: no policy may know how long a job will run (the
simulator keeps the work of each job to itself and tells the state only that a job finished).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from enum import IntEnum

from .errors import StateError


class Tier(IntEnum):
    """SLA tiers after Singularity; a lower value is a stronger guarantee."""

    PREMIUM = 0  # guaranteed, never preempted
    STANDARD = 1  # guaranteed a fraction of its requested GPU-time
    BASIC = 2  # best effort on idle capacity, preemptible at any time

    @classmethod
    def parse(cls, name: str) -> Tier:
        try:
            return cls[name.upper()]
        except KeyError:
            raise StateError(f"unknown tier {name!r}") from None


class Phase(IntEnum):
    QUEUED = 0  # never started, or killed (work lost): waits without devices
    SUSPENDED = 1  # checkpointed: waits without devices, resumes where it stopped
    PENDING = 2  # holds some devices and claims on others being released for it
    STARTING = 3  # devices held, starting or restoring: no progress
    RUNNING = 4
    CHECKPOINTING = 5  # devices held while the checkpoint is written, then released
    MIGRATING = 6  # source devices held while the state moves; destination held too
    RESIZING = 7  # consistent cut and new rank mapping; old and new devices held
    FINISHED = 8


WAITING_PHASES = (Phase.QUEUED, Phase.SUSPENDED)
MECHANISM_PHASES = (Phase.STARTING, Phase.CHECKPOINTING, Phase.MIGRATING, Phase.RESIZING)


@dataclass(frozen=True, slots=True, kw_only=True)
class JobSpec:
    """A submitted job.

    ``num_gpus`` is the world size (number of ranks); it never changes.  An elastic job may run
    its ranks on as few as ``min_gpus`` devices, several ranks per device (time-slicing);
    ``min_gpus == num_gpus`` means not elastic.
    """

    job_id: int
    tier: Tier
    num_gpus: int
    arrival: float
    min_gpus: int = 0  # 0: same as num_gpus
    device_type: str | None = None
    state_gib_per_rank: float = 8.0
    group: str = ""  # virtual cluster / team; informational

    def __post_init__(self) -> None:
        if self.num_gpus < 1:
            raise StateError(f"job {self.job_id}: num_gpus must be >= 1")
        if self.min_gpus < 0 or self.min_gpus > self.num_gpus:
            raise StateError(f"job {self.job_id}: min_gpus must be in [1, num_gpus]")
        if not math.isfinite(self.arrival) or self.state_gib_per_rank < 0:
            raise StateError(f"job {self.job_id}: bad arrival or state size")

    @property
    def min_devices(self) -> int:
        return self.min_gpus or self.num_gpus


def allowed_sizes(num_gpus: int, min_devices: int, max_ranks_per_device: int) -> tuple[int, ...]:
    """Device counts an N-rank job can use, largest first: ceil(N/k) for k ranks per device."""
    sizes: list[int] = []
    for k in range(1, max_ranks_per_device + 1):
        m = -(-num_gpus // k)
        if m < min_devices:
            break
        if not sizes or m < sizes[-1]:
            sizes.append(m)
    return tuple(sizes)


def ranks_per_device(num_gpus: int, devices: int) -> int:
    return -(-num_gpus // devices)


class Job:
    """Run-time record of a job inside `ClusterState` (mutated only by the state)."""

    __slots__ = (
        "arrival",
        "attained",
        "attained_ckpt",
        "attained_lost",
        "ckpt_done",
        "claims_left",
        "cls",
        "devices",
        "done",
        "dtype",
        "ever_ran",
        "failures",
        "first_start",
        "gib",
        "has_ckpt",
        "held_dev_s",
        "id",
        "k",
        "kills",
        "last_resize",
        "last_start",
        "level",
        "level_base",
        "level_since",
        "lost_work",
        "mech_dev_s",
        "mech_s",
        "migrations",
        "min_devices",
        "n",
        "new_devices",
        "new_k",
        "phase",
        "pkey",
        "preemptions",
        "quantum",
        "rate",
        "requested",
        "resizes",
        "rtag",
        "run_dev_s",
        "run_s",
        "since",
        "spec",
        "stag",
        "tier",
        "ttag",
        "wait_s",
        "wtag",
    )

    def __init__(self, spec: JobSpec, now: float) -> None:
        self.spec = spec
        self.id = spec.job_id
        self.requested = spec.tier  # the tier asked for
        self.tier = spec.tier  # the tier served: admission control may lower it (`Admit`)
        self.n = spec.num_gpus
        self.min_devices = spec.min_devices
        self.dtype = spec.device_type
        self.gib = spec.state_gib_per_rank
        self.arrival = spec.arrival
        self.phase = Phase.QUEUED
        self.devices: tuple[int, ...] = ()
        self.new_devices: tuple[int, ...] = ()
        self.k = 1
        self.new_k = 1
        self.rate = 0.0
        self.since = now
        self.done = 0.0  # progress, in seconds of the job alone at full size
        self.ckpt_done = 0.0  # progress saved by the last checkpoint
        self.has_ckpt = False  # a checkpoint exists: the job resumes, it does not start afresh
        self.attained = 0.0  # device-seconds allocated while running
        self.attained_ckpt = 0.0  # `attained` when the last checkpoint was taken
        self.attained_lost = 0.0  # of which the work was later thrown away
        self.lost_work = 0.0  # progress thrown away (kill or failure), job-seconds
        self.first_start = -1.0
        self.last_start = -1.0
        self.last_resize = -math.inf
        self.ever_ran = False
        self.preemptions = 0
        self.migrations = 0
        self.resizes = 0
        self.kills = 0
        self.failures = 0
        self.wait_s = 0.0  # seconds waiting (queued, suspended, pending)
        self.mech_s = 0.0  # seconds in start/restore/checkpoint/migrate/resize
        self.run_s = 0.0  # seconds running
        self.mech_dev_s = 0.0  # device-seconds held for start/restore/checkpoint/migrate/resize
        self.run_dev_s = 0.0  # device-seconds held while running
        self.held_dev_s = 0.0  # device-seconds held idle while pending (waiting for claims)
        self.claims_left = 0
        # Owned by the policy (the state never reads them): priority key, version tags that
        # invalidate stale entries of its wait queue / running index / time-sliced index / timer,
        # least-attained-service level and when the job entered it, and an SLA class.
        self.pkey: tuple[float, ...] = ()
        self.wtag = 0
        self.rtag = 0
        self.stag = 0
        self.ttag = 0
        self.level = 0
        self.level_since = spec.arrival
        self.level_base = 0.0
        self.cls = 0
        self.quantum = 0.0

    @property
    def served_s(self) -> float:
        """Seconds of full-size allocation whose work was kept (the SLA numerator)."""
        return (self.attained - self.attained_lost) / self.n

    def __repr__(self) -> str:
        return (
            f"Job({self.id}, {self.tier.name}, n={self.n}, {self.phase.name}, "
            f"devices={len(self.devices)}, k={self.k}, done={self.done:.0f})"
        )


def require(cond: bool, message: str) -> None:
    if not cond:
        raise StateError(message)
