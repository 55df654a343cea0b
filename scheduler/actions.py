"""Actions: what the policy asks the world to do.

When `Policy.on_event` returns, `ClusterState` already reflects its actions (devices reserved,
phases changed); the driver carries them out and reports the completion events:

=============  =====================================================  ======================
action         meaning                                                completion event
=============  =====================================================  ======================
Admit          serve a just-arrived job at ``tier`` (admission        (none: bookkeeping)
               control: a premium request beyond the premium quota
               is admitted as standard)
Place          start a fresh job on ``devices``                       RestoreDone
Resume         restore a checkpointed job on ``devices``              RestoreDone
Reserve        hold free ``devices`` for a job and claim ``claims``   (none: bookkeeping)
               (devices being released by preempted/shrunk jobs)
Preempt        transparent checkpoint, then release the devices       CheckpointDone
Kill           stop the job, release its devices; work since start    (none: immediate)
               is lost (baselines only)
Migrate        checkpoint-and-restore onto ``devices`` elsewhere      CheckpointDone (source
                                                                      free), RestoreDone
Resize         grow or shrink to ``devices`` (same world size)        RestoreDone
SetTimer       deliver Timer(job_id, tag) at time ``at``              Timer
=============  =====================================================  ======================

``ranks_per_device`` > 1 means the job is time-sliced: its N ranks share ceil(N/k) devices.
"""

from __future__ import annotations

from dataclasses import dataclass

from .jobs import Tier


@dataclass(frozen=True, slots=True)
class Admit:
    job_id: int
    tier: Tier


@dataclass(frozen=True, slots=True)
class Place:
    job_id: int
    devices: tuple[int, ...]
    ranks_per_device: int = 1


@dataclass(frozen=True, slots=True)
class Resume:
    job_id: int
    devices: tuple[int, ...]
    ranks_per_device: int = 1


@dataclass(frozen=True, slots=True)
class Reserve:
    job_id: int
    devices: tuple[int, ...]
    claims: tuple[int, ...]


@dataclass(frozen=True, slots=True)
class Preempt:
    job_id: int


@dataclass(frozen=True, slots=True)
class Kill:
    job_id: int


@dataclass(frozen=True, slots=True)
class Migrate:
    job_id: int
    devices: tuple[int, ...]


@dataclass(frozen=True, slots=True)
class Resize:
    job_id: int
    devices: tuple[int, ...]
    ranks_per_device: int


@dataclass(frozen=True, slots=True)
class SetTimer:
    job_id: int
    at: float
    tag: int


Action = Admit | Place | Resume | Reserve | Preempt | Kill | Migrate | Resize | SetTimer
