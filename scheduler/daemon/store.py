"""The scheduler's persistent state, behind one interface with two implementations
(`store_sqlite.SqliteStore`, the default; `store_etcd.EtcdStore`, for replicated schedulers).

What is kept:

* **jobs**: what the user submitted (immutable once written) plus what the leader reports about it
  (user-visible state, placement, exit codes, outcome).  A cancellation request is a separate flag,
  written by the REST server, so it never races the leader's state updates.
* **the event log**: every event the policy has seen, in order, with a sequence number and the
  time it was applied.  Appended *before* the event is applied; a new leader rebuilds the policy's
  `ClusterState` by replaying it (the policy is pure and deterministic).
* **host registrations**: each host daemon's URL and when it was last heard from.

Only the leader writes jobs' state and the log; in etcd mode every write is fenced on the leader
key, so a deposed leader that has not noticed yet cannot append (`NotLeaderError`).
"""

from __future__ import annotations

import json
from abc import ABC, abstractmethod
from dataclasses import asdict, dataclass, field, fields
from typing import Any

from ..errors import SchedulerError

TIERS = ("premium", "standard", "basic")

# What the user sees (`JobRecord.state`); terminal states last.
STATES = (
    "queued",
    "starting",
    "running",
    "checkpointing",
    "suspended",
    "migrating",
    "resizing",
    "succeeded",
    "failed",
    "cancelled",
)
TERMINAL = ("succeeded", "failed", "cancelled")


class StoreError(SchedulerError):
    """The store cannot be read or written (database, etcd unreachable)."""


class NotLeaderError(StoreError):
    """A write was refused because this replica no longer holds the leader key."""


class NameTakenError(StoreError):
    """A job of that name exists already (names name image and log directories: never reused)."""


@dataclass(kw_only=True)
class NewJob:
    """A submission, validated by the REST layer."""

    command: list[str]
    tier: str = "standard"
    devices: int = 1
    min_devices: int = 0  # 0: not elastic (same as devices)
    env: dict[str, str] = field(default_factory=dict)
    cwd: str | None = None
    name: str | None = None


@dataclass(kw_only=True)
class JobRecord:
    id: int
    name: str
    command: list[str]
    tier: str
    devices: int
    min_devices: int
    env: dict[str, str]
    cwd: str | None
    submitted_at: float
    state: str = "queued"
    # One entry per rank while placed: {"rank", "host", "device"}.
    placement: list[dict[str, Any]] = field(default_factory=list)
    hosts: list[str] = field(default_factory=list)  # every host the job has run on, most recent last
    exit_codes: dict[str, int] = field(default_factory=dict)  # rank (as a string: JSON keys) -> code
    message: str = ""
    finished_at: float | None = None
    cancel_requested: bool = False
    # The tier the job is served at when admission control changed it (a premium request beyond
    # the premium quota runs as standard): None while it is the tier asked for.
    served_tier: str | None = None

    @classmethod
    def submitted(cls, job: NewJob, *, job_id: int, name: str, now: float) -> JobRecord:
        """The record of a submission, as every store writes it."""
        return cls(id=job_id, name=name, command=list(job.command), tier=job.tier, devices=job.devices,
                   min_devices=job.min_devices or job.devices, env=dict(job.env), cwd=job.cwd, submitted_at=now)

    @property
    def terminal(self) -> bool:
        return self.state in TERMINAL

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_json(cls, d: dict[str, Any]) -> JobRecord:
        names = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in d.items() if k in names})


# Fields of `JobRecord` the leader may change after submission.
MUTABLE = ("state", "placement", "hosts", "exit_codes", "message", "finished_at", "served_tier")


@dataclass(frozen=True, kw_only=True)
class LoggedEvent:
    seq: int
    at: float
    kind: str
    body: dict[str, Any]

    def to_json(self) -> dict[str, Any]:
        return {"seq": self.seq, "at": self.at, "kind": self.kind, "body": self.body}


@dataclass(frozen=True, kw_only=True)
class HostRecord:
    name: str
    url: str
    last_seen: float


def dumps(obj: Any) -> str:
    return json.dumps(obj, sort_keys=True, separators=(",", ":"))


class Store(ABC):
    """Thread-safe: the REST server and the driver share one store."""

    # ------------------------------------------------------------------ jobs

    @abstractmethod
    def add_job(self, job: NewJob, *, now: float) -> JobRecord:
        """Assign an id (and the name ``j<id>`` unless one is given) and record the job."""

    @abstractmethod
    def get_job(self, job_id: int) -> JobRecord | None: ...

    @abstractmethod
    def find_job(self, name: str) -> JobRecord | None:
        """By name."""

    @abstractmethod
    def jobs(self) -> list[JobRecord]:
        """Every job, by id."""

    @abstractmethod
    def update_job(self, job_id: int, **changes: Any) -> None:
        """Change fields of `MUTABLE` (the leader's view of the job)."""

    @abstractmethod
    def request_cancel(self, job_id: int) -> None: ...

    # ------------------------------------------------------------------ the event log

    @abstractmethod
    def append_event(self, kind: str, body: dict[str, Any], *, at: float) -> int:
        """Append one event; returns its sequence number (1, 2, ...)."""

    @abstractmethod
    def events(self, since: int = 0, limit: int | None = None) -> list[LoggedEvent]:
        """Events with ``seq > since``, in order."""

    # ------------------------------------------------------------------ hosts

    @abstractmethod
    def heartbeat(self, host: str, url: str, *, now: float, ttl_s: float) -> None:
        """Host ``host`` is alive at ``url``; it counts as alive for ``ttl_s`` seconds."""

    @abstractmethod
    def live_hosts(self, *, now: float) -> dict[str, HostRecord]:
        """Hosts whose last heartbeat (or lease) has not lapsed at ``now``."""

    def close(self) -> None:
        """Release connections (idempotent)."""

    @staticmethod
    def check_changes(changes: dict[str, Any]) -> None:
        bad = set(changes) - set(MUTABLE)
        if bad:
            raise StoreError(f"job fields {sorted(bad)} cannot be changed after submission")
        st = changes.get("state")
        if st is not None and st not in STATES:
            raise StoreError(f"unknown job state {st!r}")
