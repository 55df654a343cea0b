"""Figures of a simulation run: JCT, queueing, utilisation, SLA attainment, mechanism counts.

Definitions (also in docs/scheduler.md):

* JCT: completion minus arrival.  Queueing delay: all time a job spent without devices doing its
  work (queued, suspended after a preemption, pending its reserved devices).
* Utilisation: devices allocated to running jobs over fleet devices, averaged over the arrival
  window (first to last arrival; hourly samples) — the steady state while demand keeps coming.
  ``utilization_makespan`` uses first arrival to last completion (the drain tail included);
  ``busy_utilization`` (over the makespan) also counts devices held for mechanisms and pending.
* Lost GPU-hours: device-time whose work was thrown away (kill-and-requeue restarts, failures).
  Overhead GPU-hours: device-time spent starting, checkpointing, restoring, migrating, resizing,
  or held while a reservation fills — it costs GPU time but loses no work.
* SLA: a job meets its tier's SLA when its kept allocation ``served_s`` (seconds at full size)
  is at least ``fraction × (JCT − grace)``; attainment is the share of a tier's finished jobs
  that meet it.  Each job is judged by the tier it was *served* at.  Admission control may serve
  a premium request as standard ("quota-demoted"): the premium row counts the admitted premium
  jobs, the standard row the jobs that asked for standard, and the demoted jobs have their own
  row (``admission``), judged as standard and, for the record, against the premium fraction they
  asked for (``premium_requested``: every premium request, demoted ones included, against the
  premium fraction — the figure a customer sees, comparable across policies).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from .jobs import Tier
from .params import Params
from .simulator import SimResult


def _pct(x: np.ndarray, q: float) -> float:
    return float(np.percentile(x, q)) if len(x) else float("nan")


def _arrival_window_util(res: SimResult) -> float:
    if not len(res.sample_t):
        return float("nan")
    sel = res.sample_t <= float(res.arrival.max())
    if not sel.any():
        sel = np.ones(len(res.sample_t), dtype=bool)
    return float(res.sample_running[sel].mean()) / res.n_devices


def sla_met(res: SimResult, params: Params, *, requested: bool = False) -> np.ndarray:
    """Per job: does it meet the SLA of the tier it was served at (``requested``: asked for)?"""
    frac = np.array(
        [params.sla_premium_fraction, params.sla_standard_fraction, params.sla_basic_report_fraction]
    )
    jct = res.finish - res.arrival
    tier = res.tier if requested else res.admitted_tier
    need = frac[tier.astype(np.int64)] * np.maximum(jct - params.sla_grace_s, 0.0)
    # A relative tolerance: the served time and the JCT are sums of the same float intervals.
    met: np.ndarray = res.served_s >= need * (1 - 1e-9) - 1e-6
    return met


def summarize(res: SimResult, params: Params) -> dict[str, Any]:
    done = ~np.isnan(res.finish)
    jct = (res.finish - res.arrival)[done] / 3600.0
    queue = res.wait_s[done] / 3600.0
    first = (res.first_start - res.arrival)[done] / 3600.0
    start = float(res.arrival.min()) if len(res.arrival) else 0.0
    window = max(res.end_time - start, 1e-9) * res.n_devices
    n_done = int(done.sum())
    met = sla_met(res, params)
    demoted = res.admitted_tier != res.tier
    sla: dict[str, float | None] = {}
    per_tier: dict[str, Any] = {}
    for t in Tier:
        # Jobs served at the tier they asked for; demoted ones are reported on their own below.
        sel = done & (res.tier == int(t)) & ~demoted
        name = t.name.lower()
        sla[name] = round(float(met[sel].mean()), 4) if sel.any() else None
        tj = (res.finish - res.arrival)[sel] / 3600.0
        per_tier[name] = {
            "jobs": int(sel.sum()),
            "avg_jct_h": round(float(tj.mean()), 4) if len(tj) else None,
            "p99_jct_h": round(_pct(tj, 99), 4) if len(tj) else None,
        }
    asked = done & (res.tier == int(Tier.PREMIUM))
    dem = done & demoted
    met_asked = sla_met(res, params, requested=True)
    admission = {
        "premium_requested": int(asked.sum()),
        "premium_demoted": int(dem.sum()),
        "premium_demoted_share": round(float(dem.sum() / asked.sum()), 4) if asked.any() else 0.0,
        # Demoted jobs judged as what they were served as (standard) ...
        "sla_demoted": round(float(met[dem].mean()), 4) if dem.any() else None,
        # ... and every premium request against the premium fraction, demoted ones included.
        "sla_premium_requested": round(float(met_asked[asked].mean()), 4) if asked.any() else None,
        "demoted_avg_jct_h": round(float(((res.finish - res.arrival)[dem] / 3600.0).mean()), 4)
        if dem.any()
        else None,
    }
    lat = np.frombuffer(res.decision_ms, dtype=np.float64) if len(res.decision_ms) else np.zeros(0)
    cpu = np.frombuffer(res.decision_cpu_ms, dtype=np.float64) if len(res.decision_cpu_ms) else np.zeros(0)
    out: dict[str, Any] = {
        "avg_jct_h": round(float(jct.mean()), 4) if n_done else None,
        "p50_jct_h": round(_pct(jct, 50), 4),
        "p99_jct_h": round(_pct(jct, 99), 4),
        "avg_queue_h": round(float(queue.mean()), 4) if n_done else None,
        "avg_first_start_h": round(float(first.mean()), 4) if n_done else None,
        "utilization": round(_arrival_window_util(res), 4),
        "utilization_makespan": round(float(res.attained.sum()) / window, 4),
        "busy_utilization": round(
            float(res.attained.sum() + res.mech_dev_s.sum() + res.held_dev_s.sum()) / window, 4
        ),
        "lost_gpu_hours": round(float(res.attained_lost.sum()) / 3600.0, 2),
        "overhead_gpu_hours": round(float(res.mech_dev_s.sum() + res.held_dev_s.sum()) / 3600.0, 2),
        "preemptions": round(float(res.preemptions[done].mean()), 4) if n_done else 0.0,
        "migrations": round(float(res.migrations[done].mean()), 4) if n_done else 0.0,
        "resizes": round(float(res.resizes[done].mean()), 4) if n_done else 0.0,
        "kills": round(float(res.kills[done].mean()), 4) if n_done else 0.0,
        "totals": {
            "preemptions": int(res.preemptions.sum()),
            "migrations": int(res.migrations.sum()),
            "resizes": int(res.resizes.sum()),
            "kills": int(res.kills.sum()),
            "failures": int(res.failures.sum()),
        },
        "sla_attainment": sla,
        "admission": admission,
        "per_tier": per_tier,
        "jobs_finished": n_done,
        "jobs_rejected": int(res.rejected.sum()),
        "makespan_h": round((res.end_time - start) / 3600.0, 2),
        "sim_wall_s": round(res.wall_s, 2),
        "decisions": res.events,
        "decision_p50_ms": round(_pct(lat, 50), 4),
        "decision_p99_ms": round(_pct(lat, 99), 4),
        "decision_max_ms": round(float(lat.max()), 3) if len(lat) else None,
        "decision_cpu_p50_ms": round(_pct(cpu, 50), 4),
        "decision_cpu_p99_ms": round(_pct(cpu, 99), 4),
    }
    return out
