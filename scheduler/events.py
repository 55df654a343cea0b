"""Events: what the world tells the scheduler.  The driver (simulator or daemon) feeds each one to
`ClusterState.observe` and then to the policy's `on_event`."""

from __future__ import annotations

from dataclasses import dataclass

from .jobs import JobSpec


@dataclass(frozen=True, slots=True)
class JobArrived:
    spec: JobSpec


@dataclass(frozen=True, slots=True)
class JobFinished:
    """The job's work is done; its devices are free."""

    job_id: int


@dataclass(frozen=True, slots=True)
class CheckpointDone:
    """A checkpoint finished: a preempted job's devices are free, or a migrating job's source."""

    job_id: int


@dataclass(frozen=True, slots=True)
class RestoreDone:
    """A start, restore, migration or resize finished: the job runs on its (new) devices."""

    job_id: int


@dataclass(frozen=True, slots=True)
class HostFailed:
    """A host is gone: its jobs lose the work since their last checkpoint."""

    host: int


@dataclass(frozen=True, slots=True)
class HostRecovered:
    host: int


@dataclass(frozen=True, slots=True)
class Timer:
    """A wake-up the policy asked for with `SetTimer`."""

    job_id: int
    tag: int


Event = JobArrived | JobFinished | CheckpointDone | RestoreDone | HostFailed | HostRecovered | Timer
