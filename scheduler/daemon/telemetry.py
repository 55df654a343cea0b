"""The daemon's Prometheus metrics (one registry per daemon, so tests can run several)."""

from __future__ import annotations

from collections.abc import Iterable

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest

from .store import STATES


class Telemetry:
    def __init__(self) -> None:
        r = self.registry = CollectorRegistry()
        self.jobs = Gauge("singularity_jobs", "Jobs by user-visible state", ["state"], registry=r)
        self.actions = Counter(
            "singularity_actions_total", "Policy actions carried out, by kind", ["action"], registry=r
        )
        self.events = Counter("singularity_events_total", "Events logged, by kind", ["kind"], registry=r)
        self.preemptions = Counter("singularity_preemptions_total", "Jobs preempted", registry=r)
        self.migrations = Counter("singularity_migrations_total", "Jobs migrated", registry=r)
        self.resizes = Counter("singularity_resizes_total", "Jobs resized", registry=r)
        self.commands = Counter(
            "singularity_host_commands_total", "Commands sent to host daemons", ["op", "result"], registry=r
        )
        self.checkpoint_seconds = Histogram(
            "singularity_checkpoint_seconds",
            "Duration of rank checkpoints, as the hosts report them",
            buckets=(0.1, 0.5, 1, 2, 5, 10, 30, 60, 120, 300, 600),
            registry=r,
        )
        self.checkpoint_bytes = Counter(
            "singularity_checkpoint_bytes_total", "Bytes written by rank checkpoints (hosts' reports)", registry=r
        )
        self.hosts_up = Gauge("singularity_hosts_up", "Hosts up (heartbeat fresh, status readable)", registry=r)
        self.leader = Gauge("singularity_leader", "1 while this replica is the leader", registry=r)

    def set_jobs(self, states: Iterable[str]) -> None:
        counts = dict.fromkeys(STATES, 0)
        for s in states:
            counts[s] = counts.get(s, 0) + 1
        for s, n in counts.items():
            self.jobs.labels(state=s).set(n)

    def render(self) -> bytes:
        return generate_latest(self.registry)
