"""Job traces: the Philly trace, time compression, and synthetic traces drawn from it.

Rules that the trace does not carry, fixed here and documented in docs/scheduler.md:

* **Tier, by virtual cluster**: virtual clusters ranked by total GPU-hours (largest first, ties
  by id); rank r gets ``(standard, basic, premium)[r % 3]``.  On Philly: premium 24% of GPU-hours
  (29% of jobs), standard 45% (54%), basic 31% (17%).
* **Elasticity**: every multi-GPU job is data-parallel and elastic down to
  ceil(num_gpus / max_ranks_per_device) devices; single-GPU jobs are not elastic.
* **Device state**: ``device_state.default_gib_per_rank`` for every job.
"""

from __future__ import annotations

import csv
import math
import os
from dataclasses import dataclass, replace
from datetime import datetime
from pathlib import Path

import numpy as np

from .errors import TraceError
from .jobs import JobSpec, Tier

PHILLY_COLUMNS = ("timestamp", "duration", "num_gpus", "gpu_time", "cluster")
TIER_CYCLE = (Tier.STANDARD, Tier.BASIC, Tier.PREMIUM)


@dataclass(frozen=True, kw_only=True)
class Trace:
    """Jobs sorted by arrival.  ``work`` is each job's run time alone at full size (seconds)."""

    name: str
    arrival: np.ndarray  # float64 seconds from the first arrival, sorted
    work: np.ndarray  # float64 seconds
    num_gpus: np.ndarray  # int32
    min_gpus: np.ndarray  # int32, 0 = not elastic
    tier: np.ndarray  # int8 (Tier)
    group: np.ndarray  # int32, index into groups
    groups: tuple[str, ...]
    state_gib: np.ndarray  # float32 per rank

    def __post_init__(self) -> None:
        n = len(self.arrival)
        for name in ("work", "num_gpus", "min_gpus", "tier", "group", "state_gib"):
            if len(getattr(self, name)) != n:
                raise TraceError(
                    f"trace {self.name}: column {name} has {len(getattr(self, name))} rows, not {n}"
                )
        if n and np.any(np.diff(self.arrival) < 0):
            raise TraceError(f"trace {self.name}: arrivals not sorted")
        if n and (np.any(self.work <= 0) or np.any(self.num_gpus < 1)):
            raise TraceError(f"trace {self.name}: every job needs work > 0 and num_gpus >= 1")

    def __len__(self) -> int:
        return len(self.arrival)

    def spec(self, i: int, *, job_id: int | None = None) -> JobSpec:
        return JobSpec(
            job_id=i if job_id is None else job_id,
            tier=Tier(int(self.tier[i])),
            num_gpus=int(self.num_gpus[i]),
            min_gpus=int(self.min_gpus[i]),
            arrival=float(self.arrival[i]),
            state_gib_per_rank=float(self.state_gib[i]),
            group=self.groups[int(self.group[i])] if self.groups else "",
        )

    def gpu_hours(self) -> float:
        return float(np.sum(self.work * self.num_gpus)) / 3600.0

    def span_s(self) -> float:
        return float(self.arrival[-1] - self.arrival[0]) if len(self) else 0.0

    def load(self, gpus: int) -> float:
        """Offered load: GPU-time demanded over GPU-time available between first and last arrival."""
        span = self.span_s()
        return self.gpu_hours() * 3600.0 / (gpus * span) if span > 0 else math.inf

    def compressed(self, factor: float) -> Trace:
        """The same jobs arriving ``factor`` times faster (``factor`` × the load)."""
        if factor <= 0:
            raise TraceError("compression factor must be > 0")
        return replace(self, name=f"{self.name} x{factor:g}", arrival=self.arrival / factor)

    def head(self, n: int) -> Trace:
        return replace(
            self,
            name=f"{self.name}[:{n}]",
            arrival=self.arrival[:n],
            work=self.work[:n],
            num_gpus=self.num_gpus[:n],
            min_gpus=self.min_gpus[:n],
            tier=self.tier[:n],
            group=self.group[:n],
            state_gib=self.state_gib[:n],
        )

    def describe(self, gpus: int | None = None) -> dict[str, object]:
        gh = self.work * self.num_gpus / 3600.0
        total = float(gh.sum()) or 1.0
        tiers = {}
        for t in Tier:
            sel = self.tier == int(t)
            tiers[t.name.lower()] = {
                "jobs": int(sel.sum()),
                "gpu_hours_share": round(float(gh[sel].sum()) / total, 4),
            }
        out: dict[str, object] = {
            "name": self.name,
            "jobs": len(self),
            "gpu_hours": round(float(gh.sum()), 1),
            "span_h": round(self.span_s() / 3600.0, 2),
            "tiers": tiers,
            "multi_gpu_jobs": int((self.num_gpus > 1).sum()),
            "elastic_jobs": int((self.min_gpus > 0).sum()),
        }
        if gpus:
            out["load"] = round(self.load(gpus), 4)
        return out


def elastic_min(num_gpus: np.ndarray, max_ranks_per_device: int) -> np.ndarray:
    """The elasticity rule: multi-GPU jobs go down to ceil(n / max_ranks_per_device) devices."""
    m = -(-num_gpus // max_ranks_per_device)
    return np.where(num_gpus > 1, m, 0).astype(np.int32)


def tiers_by_group(group_gpu_hours: dict[str, float]) -> dict[str, Tier]:
    """The tier rule: groups ranked by GPU-hours (desc, ties by name), rank r → TIER_CYCLE[r % 3]."""
    ranked = sorted(group_gpu_hours, key=lambda g: (-group_gpu_hours[g], g))
    return {g: TIER_CYCLE[r % 3] for r, g in enumerate(ranked)}


def find_philly() -> Path | None:
    """The shared Philly trace, looked for relative to this checkout and the working directory."""
    env = os.environ.get("SINGULARITY_PHILLY_TRACE")
    candidates = [Path(env)] if env else []
    here = Path.cwd()
    for base in (here, *here.parents):
        candidates.append(base / "shared" / "traces" / "philly.csv")
        candidates.append(base.parent / "shared" / "traces" / "philly.csv")
    for c in candidates:
        if c.is_file():
            return c
    return None


def load_philly(
    path: str | Path,
    *,
    max_ranks_per_device: int = 8,
    state_gib_per_rank: float = 8.0,
    limit: int | None = None,
) -> Trace:
    """Read the Philly CSV (``timestamp,duration,num_gpus,gpu_time,cluster``)."""
    p = Path(path)
    try:
        with p.open(newline="", encoding="utf-8") as f:
            reader = csv.reader(f)
            header = next(reader, None)
            if header is None or tuple(h.strip() for h in header) != PHILLY_COLUMNS:
                raise TraceError(f"{p}: expected columns {','.join(PHILLY_COLUMNS)}, got {header}")
            rows = []
            for lineno, row in enumerate(reader, start=2):
                if not row:
                    continue
                try:
                    ts = datetime.fromisoformat(row[0]).timestamp()
                    dur = float(row[1])
                    g = int(row[2])
                except (ValueError, IndexError) as e:
                    raise TraceError(f"{p}:{lineno}: bad record {row!r}: {e}") from e
                if dur <= 0 or g < 1:
                    raise TraceError(f"{p}:{lineno}: duration and num_gpus must be positive")
                rows.append((ts, lineno, dur, g, row[4]))
    except OSError as e:
        raise TraceError(f"cannot read trace {p}: {e}") from e
    if not rows:
        raise TraceError(f"{p}: no jobs")
    rows.sort()
    if limit is not None:
        rows = rows[:limit]
    t0 = rows[0][0]
    arrival = np.array([r[0] - t0 for r in rows], dtype=np.float64)
    work = np.array([r[2] for r in rows], dtype=np.float64)
    gpus = np.array([r[3] for r in rows], dtype=np.int32)
    vcs = sorted({r[4] for r in rows})
    vidx = {v: i for i, v in enumerate(vcs)}
    group = np.array([vidx[r[4]] for r in rows], dtype=np.int32)
    gh = np.bincount(group, weights=work * gpus, minlength=len(vcs))
    tiers = tiers_by_group({v: float(gh[i]) for i, v in enumerate(vcs)})
    tier_of_group = np.array([int(tiers[v]) for v in vcs], dtype=np.int8)
    return Trace(
        name=f"philly({p.name})",
        arrival=arrival,
        work=work,
        num_gpus=gpus,
        min_gpus=elastic_min(gpus, max_ranks_per_device),
        tier=tier_of_group[group],
        group=group,
        groups=tuple(vcs),
        state_gib=np.full(len(rows), state_gib_per_rank, dtype=np.float32),
    )


def synthetic(
    source: Trace,
    *,
    jobs: int,
    gpus: int,
    load: float,
    seed: int = 1,
    max_gpus_per_job: int | None = None,
    max_ranks_per_device: int = 8,
) -> Trace:
    """``jobs`` jobs drawn from ``source``: (size, duration, group, tier) sampled jointly from its
    records, Poisson arrivals at the rate that offers ``load`` × ``gpus`` on average."""
    if jobs < 1 or gpus < 1 or load <= 0:
        raise TraceError("synthetic: jobs, gpus and load must be positive")
    rng = np.random.Generator(np.random.PCG64(seed))
    idx = rng.integers(0, len(source), size=jobs)
    num = source.num_gpus[idx].copy()
    if max_gpus_per_job is not None:
        np.minimum(num, max_gpus_per_job, out=num)
    work = source.work[idx].copy()
    mean_gpu_s = float(np.mean(work * num))
    rate = load * gpus / mean_gpu_s  # jobs per second
    gaps = rng.exponential(1.0 / rate, size=jobs)
    gaps[0] = 0.0
    arrival = np.cumsum(gaps)
    min_g = elastic_min(num, max_ranks_per_device)
    return Trace(
        name=f"synthetic({jobs} jobs from {source.name}, load {load:g} on {gpus} GPUs, seed {seed})",
        arrival=arrival,
        work=work,
        num_gpus=num.astype(np.int32),
        min_gpus=min_g,
        tier=source.tier[idx].copy(),
        group=source.group[idx].copy(),
        groups=source.groups,
        state_gib=source.state_gib[idx].copy(),
    )


def from_records(
    records: list[tuple[float, float, int, Tier]],
    *,
    name: str = "records",
    elastic: bool = True,
    max_ranks_per_device: int = 8,
    state_gib_per_rank: float = 8.0,
) -> Trace:
    """A small trace from ``(arrival_s, work_s, num_gpus, tier)`` tuples (tests, examples)."""
    recs = sorted(enumerate(records), key=lambda r: (r[1][0], r[0]))
    arrival = np.array([r[1][0] for r in recs], dtype=np.float64)
    work = np.array([r[1][1] for r in recs], dtype=np.float64)
    gpus = np.array([r[1][2] for r in recs], dtype=np.int32)
    tier = np.array([int(r[1][3]) for r in recs], dtype=np.int8)
    min_g = elastic_min(gpus, max_ranks_per_device) if elastic else np.zeros(len(recs), dtype=np.int32)
    return Trace(
        name=name,
        arrival=arrival,
        work=work,
        num_gpus=gpus,
        min_gpus=min_g,
        tier=tier,
        group=np.zeros(len(recs), dtype=np.int32),
        groups=("default",),
        state_gib=np.full(len(recs), state_gib_per_rank, dtype=np.float32),
    )
