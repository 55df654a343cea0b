"""The report of a simulation: ``report.json``, ``report.md`` and plots (matplotlib, Agg backend).

``report.json`` is ``{"policies": {NAME: {...}}, "runs": [...], "setup": {...}[, "scale": {...}]}``:
``policies`` holds the first run (the trace at its own load); ``runs`` holds every load factor.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from .simulator import SimResult


@dataclass(kw_only=True)
class Run:
    label: str
    load_factor: float
    trace: dict[str, Any]
    results: dict[str, SimResult] = field(default_factory=dict)
    summaries: dict[str, dict[str, Any]] = field(default_factory=dict)


def _fmt(x: Any, nd: int = 3) -> str:
    if x is None:
        return "–"
    if isinstance(x, float):
        if math.isnan(x):
            return "–"
        return f"{x:.{nd}f}"
    return str(x)


def markdown_table(run: Run, *, baseline: str = "las") -> str:
    rows = [
        (
            "| policy | avg JCT h | vs las | p50 JCT h | p99 JCT h | avg queue h | util | lost GPU-h | "
            "overhead GPU-h | preempt/job | migr/job | resize/job | kill/job | SLA premium | SLA standard | "
            "SLA basic | demoted | SLA demoted | SLA premium requested |"
        ),
        "|---|" + "---:|" * 18,
    ]
    base = run.summaries.get(baseline, {}).get("avg_jct_h")
    for name, s in run.summaries.items():
        rel = "–"
        if base and s.get("avg_jct_h") is not None:
            rel = f"{(s['avg_jct_h'] / base - 1) * 100:+.1f}%"
        sla = s["sla_attainment"]
        adm = s["admission"]
        rows.append(
            "| "
            + " | ".join(
                [
                    name,
                    _fmt(s["avg_jct_h"]),
                    rel,
                    _fmt(s["p50_jct_h"]),
                    _fmt(s["p99_jct_h"], 1),
                    _fmt(s["avg_queue_h"]),
                    _fmt(s["utilization"]),
                    _fmt(s["lost_gpu_hours"], 0),
                    _fmt(s["overhead_gpu_hours"], 0),
                    _fmt(s["preemptions"]),
                    _fmt(s["migrations"]),
                    _fmt(s["resizes"]),
                    _fmt(s["kills"]),
                    _fmt(sla["premium"], 4),
                    _fmt(sla["standard"], 4),
                    _fmt(sla["basic"], 4),
                    _fmt(adm["premium_demoted"]),
                    _fmt(adm["sla_demoted"], 4),
                    _fmt(adm["sla_premium_requested"], 4),
                ]
            )
            + " |"
        )
    return "\n".join(rows)


TABLE_NOTES = (
    "SLA columns: share of jobs meeting the SLA of the tier they were served at.  *SLA premium*: "
    "jobs admitted as premium; *demoted*: premium requests beyond the premium quota, served as "
    "standard (counted in neither the premium nor the standard column); *SLA demoted*: their "
    "share meeting the standard SLA; *SLA premium requested*: every premium request, demoted ones "
    "included, against the premium SLA (comparable across policies: the baselines admit all)."
)


def _plots(out: Path, run: Run) -> list[str]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    files = []
    # CDF of JCT per policy.
    fig, ax = plt.subplots(figsize=(7, 4.5))
    for name, r in run.results.items():
        jct = np.sort((r.finish - r.arrival)[~np.isnan(r.finish)] / 3600.0)
        if len(jct):
            ax.plot(np.maximum(jct, 1e-3), np.arange(1, len(jct) + 1) / len(jct), label=name)
    ax.set_xscale("log")
    ax.set_xlabel("job completion time (h)")
    ax.set_ylabel("fraction of jobs")
    ax.set_title(f"JCT CDF — {run.label}")
    ax.grid(True, alpha=0.3)
    ax.legend()
    fig.tight_layout()
    f = f"jct_cdf_{run.label}.png"
    fig.savefig(out / f, dpi=110)
    plt.close(fig)
    files.append(f)
    # Utilisation over time (daily means of hourly samples).
    fig, ax = plt.subplots(figsize=(8, 4.5))
    for name, r in run.results.items():
        if not len(r.sample_t):
            continue
        t = (r.sample_t - r.sample_t[0]) / 86400.0
        u = r.sample_running / r.n_devices
        w = max(
            1, int(86400 // max(float(np.median(np.diff(r.sample_t))) if len(r.sample_t) > 1 else 3600, 1))
        )
        if len(u) >= w:
            u = np.convolve(u, np.ones(w) / w, mode="valid")
            t = t[w - 1 :]
        ax.plot(t, u, label=name, lw=1)
    ax.set_xlabel("day")
    ax.set_ylabel("devices running jobs (1-day mean)")
    ax.set_ylim(0, 1.05)
    ax.set_title(f"Utilisation — {run.label}")
    ax.grid(True, alpha=0.3)
    ax.legend()
    fig.tight_layout()
    f = f"utilization_{run.label}.png"
    fig.savefig(out / f, dpi=110)
    plt.close(fig)
    files.append(f)
    # SLA attainment per tier.
    fig, ax = plt.subplots(figsize=(7, 4.5))
    names = list(run.summaries)
    tiers = ("premium", "standard", "basic")
    width = 0.8 / max(len(names), 1)
    for i, name in enumerate(names):
        vals = [run.summaries[name]["sla_attainment"][t] or 0.0 for t in tiers]
        ax.bar(np.arange(3) + i * width, vals, width, label=name)
    ax.set_xticks(np.arange(3) + width * (len(names) - 1) / 2, tiers)
    ax.set_ylabel("jobs meeting their SLA")
    ax.set_ylim(0, 1.05)
    ax.set_title(f"SLA attainment — {run.label}")
    ax.legend(fontsize=8)
    fig.tight_layout()
    f = f"sla_{run.label}.png"
    fig.savefig(out / f, dpi=110)
    plt.close(fig)
    files.append(f)
    return files


def write_report(
    out: str | Path,
    *,
    runs: list[Run],
    setup: dict[str, Any],
    scale: dict[str, Any] | None = None,
    plots: bool = True,
) -> Path:
    d = Path(out)
    d.mkdir(parents=True, exist_ok=True)
    doc: dict[str, Any] = {
        "policies": runs[0].summaries if runs else {},
        "runs": [
            {"label": r.label, "load_factor": r.load_factor, "trace": r.trace, "policies": r.summaries}
            for r in runs
        ],
        "setup": setup,
    }
    if scale is not None:
        doc["scale"] = scale
    (d / "report.json").write_text(json.dumps(doc, indent=2, sort_keys=False) + "\n", encoding="utf-8")
    md = ["# Singularity scheduler — simulation report", ""]
    md.append("## Setup")
    md.append("")
    for k, v in setup.items():
        md.append(f"- **{k}**: {v if not isinstance(v, dict) else json.dumps(v)}")
    for r in runs:
        md += [
            "",
            f"## {r.label} (load factor {r.load_factor:g})",
            "",
            (
                f"Trace: {r.trace.get('name')}: {r.trace.get('jobs')} jobs, {r.trace.get('gpu_hours')} "
                f"GPU-hours over {r.trace.get('span_h')} h, offered load {r.trace.get('load')}."
            ),
            "",
            markdown_table(r),
            "",
            TABLE_NOTES,
            "",
        ]
        if plots and r.results:
            for f in _plots(d, r):
                md.append(f"![{f}]({f})")
    if scale is not None:
        md += [
            "",
            "## Scale",
            "",
            "| " + " | ".join(scale) + " |",
            "|" + "---|" * len(scale),
            "| " + " | ".join(_fmt(v) for v in scale.values()) + " |",
        ]
    (d / "report.md").write_text("\n".join(md) + "\n", encoding="utf-8")
    return d
