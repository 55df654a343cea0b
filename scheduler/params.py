"""Mechanism costs, SLA tiers and policy knobs, read from one TOML file (``params.toml``).

The file documents each figure and its source; this module only loads, validates and turns
the figures into durations.  Every key is required and unknown keys are refused: a typo must
not silently fall back to a default.
"""

from __future__ import annotations

import math
import tomllib
from dataclasses import dataclass, fields
from importlib import resources
from pathlib import Path
from typing import Any

from .errors import ConfigError

GIB = 1024**3
GB = 1e9


@dataclass(frozen=True, slots=True, kw_only=True)
class Params:
    """Every figure of ``params.toml``, flattened to ``section_key`` names."""

    transport_shm_round_trip_us: float
    transport_cut_round_trips: int
    memory_memcpy_gbps: float
    storage_write_gbps: float
    storage_checkpoint_efficiency: float
    storage_read_gbps: float
    quiesce_drain_s: float
    criu_dump_fixed_s: float
    criu_restore_fixed_s: float
    criu_cpu_state_gib_per_rank: float
    migration_s_per_gib: float
    device_state_default_gib_per_rank: float
    device_state_replicated_fraction: float
    proxy_step_overhead: float
    timeslice_per_extra_rank_overhead: float
    timeslice_max_ranks_per_device: int
    job_start_s: float
    sla_grace_s: float
    sla_premium_fraction: float
    sla_standard_fraction: float
    sla_basic_report_fraction: float
    admission_premium_quota_fraction: float
    policy_las_thresholds_gpu_h: tuple[float, ...]
    policy_basic_level_offset: int
    policy_urgent_slack_s: float
    policy_protect_slack_s: float
    policy_urgent_level_boost: int
    policy_min_quantum_s: float
    policy_quantum_cost_factor: float
    policy_max_victims_examined: int
    policy_max_room_attempts: int
    policy_max_grows: int
    policy_elastic_start_min_fraction: float
    policy_min_resize_interval_s: float
    tiresias_queue_limits_gpu_s: tuple[float, ...]
    tiresias_starve_knob: float

    def __post_init__(self) -> None:
        for f in fields(self):
            v = getattr(self, f.name)
            values = v if isinstance(v, tuple) else (v,)
            for x in values:
                if not math.isfinite(x) or x < 0:
                    raise ConfigError(f"params: {f.name} must be a finite number >= 0, got {x!r}")
        for name in (
            "storage_write_gbps",
            "storage_read_gbps",
            "memory_memcpy_gbps",
            "storage_checkpoint_efficiency",
        ):
            if getattr(self, name) <= 0:
                raise ConfigError(f"params: {name} must be > 0")
        for name in (
            "storage_checkpoint_efficiency",
            "device_state_replicated_fraction",
            "proxy_step_overhead",
            "policy_elastic_start_min_fraction",
            "admission_premium_quota_fraction",
        ):
            if getattr(self, name) > 1:
                raise ConfigError(f"params: {name} must be <= 1")
        for name in ("sla_premium_fraction", "sla_standard_fraction", "sla_basic_report_fraction"):
            if not 0 <= getattr(self, name) <= 1:
                raise ConfigError(f"params: {name} must be in [0, 1]")
        if self.timeslice_max_ranks_per_device < 1:
            raise ConfigError("params: timeslice.max_ranks_per_device must be >= 1")
        if self.timeslice_per_extra_rank_overhead * (self.timeslice_max_ranks_per_device - 1) >= 1:
            raise ConfigError("params: timeslice overhead leaves no progress at max_ranks_per_device")
        for name in ("policy_las_thresholds_gpu_h", "tiresias_queue_limits_gpu_s"):
            t = getattr(self, name)
            if list(t) != sorted(set(t)) or any(x <= 0 for x in t):
                raise ConfigError(f"params: {name} must be strictly increasing and > 0")

    @classmethod
    def load(cls, path: str | Path | None = None) -> Params:
        """Read ``path``, or the packaged ``params.toml`` when ``path`` is None."""
        try:
            if path is None:
                text = resources.files(__package__).joinpath("params.toml").read_text(encoding="utf-8")
                where = "packaged params.toml"
            else:
                text = Path(path).read_text(encoding="utf-8")
                where = str(path)
            data = tomllib.loads(text)
        except (OSError, tomllib.TOMLDecodeError) as e:
            raise ConfigError(f"params: cannot read {path or 'packaged params.toml'}: {e}") from e
        return cls.from_mapping(data, where=where)

    @classmethod
    def from_mapping(cls, data: dict[str, Any], *, where: str = "params") -> Params:
        flat: dict[str, Any] = {}
        for section, body in data.items():
            if not isinstance(body, dict):
                raise ConfigError(f"{where}: top-level key {section!r} must be a [section]")
            for key, value in body.items():
                flat[f"{section}_{key}"] = value
        known = {f.name: f for f in fields(cls)}
        unknown = sorted(set(flat) - set(known))
        if unknown:
            raise ConfigError(f"{where}: unknown keys {unknown}")
        missing = sorted(set(known) - set(flat))
        if missing:
            raise ConfigError(f"{where}: missing keys {missing}")
        kwargs: dict[str, Any] = {}
        for name, f in known.items():
            v = flat[name]
            try:
                if "tuple" in str(f.type):
                    kwargs[name] = tuple(float(x) for x in v)
                elif f.type in ("int", int):
                    if isinstance(v, bool) or int(v) != v:
                        raise ValueError("not an integer")
                    kwargs[name] = int(v)
                else:
                    if isinstance(v, bool):
                        raise ValueError("not a number")
                    kwargs[name] = float(v)
            except (TypeError, ValueError) as e:
                raise ConfigError(f"{where}: {name}: bad value {v!r} ({e})") from e
        return cls(**kwargs)

    def replace(self, **changes: Any) -> Params:
        """A copy with some figures changed (validated again)."""
        values = {f.name: getattr(self, f.name) for f in fields(self)}
        unknown = set(changes) - set(values)
        if unknown:
            raise ConfigError(f"params: unknown keys {sorted(unknown)}")
        values.update(changes)
        return Params(**values)


class CostModel:
    """Durations of the mechanisms and the progress rate of a running job, from `Params`.

    Sizes are per rank (a rank is one process of a data-parallel job, normally one per device).
    ``ranks_on_host`` is the largest number of the job's ranks on any one of its hosts: hosts
    work in parallel, so the most loaded one sets the duration.
    """

    __slots__ = ("_ckpt_bps", "_cut_s", "_memcpy_bps", "_rate_cache", "_read_bps", "p")

    def __init__(self, *, params: Params) -> None:
        self.p = params
        self._ckpt_bps = params.storage_write_gbps * GB * params.storage_checkpoint_efficiency
        self._read_bps = params.storage_read_gbps * GB
        self._memcpy_bps = params.memory_memcpy_gbps * GB
        self._cut_s = (
            params.quiesce_drain_s
            + params.transport_cut_round_trips * params.transport_shm_round_trip_us * 1e-6
        )
        self._rate_cache: dict[tuple[int, bool], float] = {}

    def rate(self, ranks_per_device: int, proxied: bool) -> float:
        """Progress per second of a job (1.0 = alone, at full size, without the proxy)."""
        key = (ranks_per_device, proxied)
        r = self._rate_cache.get(key)
        if r is None:
            k = ranks_per_device
            r = (1.0 / k) * (1.0 - self.p.timeslice_per_extra_rank_overhead * (k - 1))
            if proxied:
                r *= 1.0 - self.p.proxy_step_overhead
            self._rate_cache[key] = r
        return r

    def _host_bytes(self, gib_per_rank: float, ranks_on_host: int) -> tuple[float, float]:
        """(device bytes, CPU bytes) one host writes for ``ranks_on_host`` ranks of a job."""
        rep = self.p.device_state_replicated_fraction
        dev = gib_per_rank * GIB * (rep + ranks_on_host * (1.0 - rep))
        cpu = self.p.criu_cpu_state_gib_per_rank * GIB * ranks_on_host
        return dev, cpu

    def checkpoint_s(self, *, gib_per_rank: float, ranks_on_host: int, framework: bool = False) -> float:
        """Consistent cut, then device state and CRIU image written to storage.

        ``framework``: a framework-level checkpoint (the Tiresias baseline) writes the device
        state only and needs no CRIU image; the process then exits.
        """
        dev, cpu = self._host_bytes(gib_per_rank, ranks_on_host)
        if framework:
            return self._cut_s + dev / self._ckpt_bps
        return self._cut_s + self.p.criu_dump_fixed_s + (dev + cpu) / self._ckpt_bps

    def restore_s(self, *, gib_per_rank: float, ranks_on_host: int, framework_restart: bool = False) -> float:
        """Read the image back and restore; a framework-level restart also pays a job start."""
        dev, cpu = self._host_bytes(gib_per_rank, ranks_on_host)
        if framework_restart:
            # No CRIU: the process starts afresh and loads the framework checkpoint (device bytes).
            return self.p.job_start_s + dev / self._read_bps
        return self.p.criu_restore_fixed_s + (dev + cpu) / self._read_bps

    def migrate_out_s(self, *, gib_per_rank: float, ranks_on_host: int) -> float:
        """Source side of a live migration: cut, CRIU dump, state streamed to the destination."""
        dev, cpu = self._host_bytes(gib_per_rank, ranks_on_host)
        return self._cut_s + self.p.criu_dump_fixed_s + self.p.migration_s_per_gib * (dev + cpu) / GIB

    def migrate_in_s(self) -> float:
        """Destination side after the state arrived: CRIU restore and re-attach."""
        return self.p.criu_restore_fixed_s

    def resize_s(self, *, gib_per_rank: float, moved_ranks: int, new_hosts: int) -> float:
        """Consistent cut and a new rank-to-device mapping (DESIGN.md §5).

        Ranks that change device move their private state: within a host through host memory;
        ranks that land on a host the job did not use are migrated (with one copy of the
        replicated state per new host).
        """
        rep = self.p.device_state_replicated_fraction
        private = gib_per_rank * GIB * (1.0 - rep)
        if new_hosts == 0:
            return self._cut_s + moved_ranks * private / self._memcpy_bps
        cpu = self.p.criu_cpu_state_gib_per_rank * GIB
        moved = moved_ranks * (private + cpu) + new_hosts * gib_per_rank * GIB * rep
        return (
            self._cut_s
            + self.p.criu_dump_fixed_s
            + self.p.criu_restore_fixed_s
            + self.p.migration_s_per_gib * moved / GIB
        )

    def preemption_cost_s(self, *, gib_per_rank: float, ranks_on_host: int, transparent: bool) -> float:
        """Checkpoint plus the later restore: the device time one preemption costs the victim."""
        return self.checkpoint_s(
            gib_per_rank=gib_per_rank, ranks_on_host=ranks_on_host, framework=not transparent
        ) + self.restore_s(
            gib_per_rank=gib_per_rank, ranks_on_host=ranks_on_host, framework_restart=not transparent
        )
