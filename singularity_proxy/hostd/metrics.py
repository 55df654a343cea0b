"""The host daemon's Prometheus metrics (GET /metrics).

A registry of its own per daemon (not prometheus_client's global one), so that two daemons
in one process (tests) do not collide.  Rank gauges are computed at scrape time from the rank
table: they can never drift from what GET /v1/status says.
"""
from __future__ import annotations

import os
from typing import TYPE_CHECKING, Callable, Iterable

from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.registry import Collector

if TYPE_CHECKING:
    from singularity_proxy.hostd.ranks import Rank

CONTENT_TYPE = CONTENT_TYPE_LATEST
_PAGE = os.sysconf("SC_PAGE_SIZE")


def _rss_bytes(pid: int | None) -> int | None:
    """Resident memory of a process (/proc/PID/statm: pages), None if it is gone."""
    if not pid:
        return None
    try:
        with open(f"/proc/{pid}/statm") as f:
            return int(f.read().split()[1]) * _PAGE
    except (OSError, ValueError, IndexError):
        return None


_TICKS = os.sysconf("SC_CLK_TCK")


def _cpu_seconds(pid: int | None) -> float | None:
    """User + system CPU time of a process (/proc/PID/stat), None if it is gone."""
    if not pid:
        return None
    try:
        with open(f"/proc/{pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / _TICKS
    except (OSError, ValueError, IndexError):
        return None


def _proxy_pid(name: str) -> int | None:
    from singularity_proxy import jobs

    try:
        return jobs.JobRecord.load(name).proxy_pid or None
    except Exception:  # a record being replaced, or none: the gauge is skipped this time
        return None


class _RankCollector(Collector):
    def __init__(self, ranks: Callable[[], Iterable[Rank]], states: tuple[str, ...]):
        self._ranks = ranks
        self._states = states

    def collect(self) -> Iterable[GaugeMetricFamily | CounterMetricFamily]:
        ranks = list(self._ranks())
        by_state = GaugeMetricFamily("singproxy_ranks", "Ranks on this host by state", labels=["state"])
        for state in self._states:
            by_state.add_metric([state], sum(1 for r in ranks if r.state == state))
        yield by_state
        device = GaugeMetricFamily("singproxy_rank_device_state_bytes",
                                   "Device memory of the rank in its last checkpoint", labels=["rank"])
        proxy_rss = GaugeMetricFamily("singproxy_rank_proxy_rss_bytes",
                                      "Resident memory of the rank's proxy process", labels=["rank"])
        app_rss = GaugeMetricFamily("singproxy_rank_app_rss_bytes",
                                    "Resident memory of the rank's app process", labels=["rank"])
        # The proxy's cost in CPU next to the app's: what forwarding every driver call takes.
        proxy_cpu = CounterMetricFamily("singproxy_rank_proxy_cpu_seconds",
                                        "CPU time of the rank's current proxy process", labels=["rank"])
        app_cpu = CounterMetricFamily("singproxy_rank_app_cpu_seconds",
                                      "CPU time of the rank's app process (since its last restore)", labels=["rank"])
        for r in ranks:
            if r.checkpoints:
                device.add_metric([r.name], r.device_state_bytes)
            if r.state == "running":
                for pid, rss_family, cpu_family in ((_proxy_pid(r.name), proxy_rss, proxy_cpu),
                                                    (r.pid, app_rss, app_cpu)):
                    rss, cpu = _rss_bytes(pid), _cpu_seconds(pid)
                    if rss is not None:
                        rss_family.add_metric([r.name], rss)
                    if cpu is not None:
                        cpu_family.add_metric([r.name], cpu)
        yield from (device, proxy_rss, app_rss, proxy_cpu, app_cpu)


class Metrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        r = self.registry
        self.ranks_started = Counter("singproxy_ranks_started", "Ranks started on this host", registry=r)
        self.checkpoints = Counter("singproxy_checkpoints", "Checkpoints of ranks",
                                   ["reason", "result"], registry=r)
        self.checkpoint_seconds = Histogram("singproxy_checkpoint_seconds", "Duration of successful checkpoints",
                                            ["reason"], registry=r,
                                            buckets=(0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300))
        self.checkpoint_bytes = Counter("singproxy_checkpoint_written_bytes",
                                        "Device-state bytes written by checkpoints (unchanged chunks are not rewritten)",
                                        registry=r)
        self.restores = Counter("singproxy_restores", "Restores of ranks", ["result"], registry=r)
        self.heartbeats = Counter("singproxy_heartbeats", "Heartbeats (or etcd lease refreshes) sent",
                                  ["result"], registry=r)

    def watch_ranks(self, ranks: Callable[[], Iterable[Rank]], states: tuple[str, ...]) -> None:
        self.registry.register(_RankCollector(ranks, states))

    def rank_started(self) -> None:
        self.ranks_started.inc()

    def checkpoint_done(self, reason: str, seconds: float, bytes_written: int) -> None:
        self.checkpoints.labels(reason, "ok").inc()
        self.checkpoint_seconds.labels(reason).observe(seconds)
        self.checkpoint_bytes.inc(bytes_written)

    def checkpoint_failed(self, reason: str) -> None:
        self.checkpoints.labels(reason, "error").inc()

    def restore_done(self, *, ok: bool) -> None:
        self.restores.labels("ok" if ok else "error").inc()

    def heartbeat(self, *, ok: bool) -> None:
        self.heartbeats.labels("ok" if ok else "error").inc()

    def render(self) -> bytes:
        return generate_latest(self.registry)
