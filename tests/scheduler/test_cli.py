"""The singularity-scheduler command end to end on a small trace: every policy in one run,
report.json of the required shape, markdown and plots."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from scheduler.cli import main

KEYS = {
    "avg_jct_h",
    "p50_jct_h",
    "p99_jct_h",
    "avg_queue_h",
    "utilization",
    "lost_gpu_hours",
    "preemptions",
    "migrations",
    "resizes",
    "sla_attainment",
}


def small_csv(tmp_path):  # type: ignore[no-untyped-def]
    import numpy as np

    rng = np.random.default_rng(7)
    lines = ["timestamp,duration,num_gpus,gpu_time,cluster"]
    t = 0.0
    for i in range(300):
        t += float(rng.exponential(120))
        g = int(rng.choice([1, 1, 1, 2, 4, 8, 16]))
        d = float(rng.lognormal(6, 1.2)) + 10
        day, hour, minute, sec = 1 + int(t // 86400), int(t % 86400 // 3600), int(t % 3600 // 60), int(t % 60)
        ts = f"2017-10-{day:02d} {hour:02d}:{minute:02d}:{sec:02d}"
        lines.append(f"{ts},{d:.1f},{g},{d * g:.1f},vc{i % 5}")
    p = tmp_path / "small.csv"
    p.write_text("\n".join(lines) + "\n")
    return p


def test_simulate_all_policies(tmp_path, capsys) -> None:
    csv = small_csv(tmp_path)
    out = tmp_path / "rep"
    rc = main(
        [
            "simulate",
            "--trace",
            str(csv),
            "--gpus",
            "64",
            "--policy",
            "all",
            "--report",
            str(out),
            "--load-factors",
            "1,2",
            "--check-every",
            "50",
        ]
    )
    assert rc == 0
    doc = json.loads((out / "report.json").read_text())
    assert set(doc["policies"]) == {"fifo", "kill-requeue", "las", "singularity", "singularity-elastic"}
    for name, s in doc["policies"].items():
        assert set(s) >= KEYS, name
        assert set(s["sla_attainment"]) == {"premium", "standard", "basic"}
    assert [r["load_factor"] for r in doc["runs"]] == [1.0, 2.0]
    for pol in ("singularity", "singularity-elastic", "las", "fifo"):
        assert doc["policies"][pol]["lost_gpu_hours"] == 0
    assert doc["policies"]["singularity"]["sla_attainment"]["premium"] == 1.0
    md = (out / "report.md").read_text()
    assert "| singularity-elastic |" in md
    for f in ("jct_cdf_load_1x.png", "utilization_load_1x.png", "sla_load_2x.png"):
        assert (out / f).stat().st_size > 1000


def test_simulate_synthetic_scale_figures(tmp_path) -> None:
    csv = small_csv(tmp_path)
    out = tmp_path / "scale"
    rc = main(
        [
            "simulate",
            "--trace",
            str(csv),
            "--synthetic-gpus",
            "256",
            "--synthetic-jobs",
            "2000",
            "--report",
            str(out),
            "--no-plots",
        ]
    )
    assert rc == 0
    doc = json.loads((out / "report.json").read_text())
    assert set(doc["scale"]) >= {
        "gpus",
        "jobs",
        "wall_s",
        "peak_rss_gib",
        "decisions_per_s",
        "decision_p50_ms",
        "decision_p99_ms",
    }
    assert doc["scale"]["gpus"] == 256 and doc["scale"]["jobs"] == 2000
    assert "singularity-elastic" in doc["policies"]


def test_errors_are_reported_not_raised(tmp_path, capsys) -> None:
    assert main(["simulate", "--trace", str(tmp_path / "none.csv"), "--report", str(tmp_path)]) == 1
    assert "cannot read trace" in capsys.readouterr().err
    assert (
        main(["simulate", "--trace", str(small_csv(tmp_path)), "--policy", "nope", "--report", str(tmp_path)])
        == 1
    )


def test_console_script_installed() -> None:
    r = subprocess.run(
        [sys.executable, "-m", "scheduler.cli", "params"], capture_output=True, text=True, check=False
    )
    assert r.returncode == 0 and "checkpoint_1rank_s" in r.stdout


@pytest.mark.slow
def test_philly_head_end_to_end(philly_path, tmp_path) -> None:
    out = tmp_path / "ph"
    assert (
        main(
            [
                "simulate",
                "--trace",
                str(philly_path),
                "--limit",
                "3000",
                "--gpus",
                "128",
                "--report",
                str(out),
                "--load-factors",
                "1",
                "--no-plots",
            ]
        )
        == 0
    )
    doc = json.loads((out / "report.json").read_text())
    assert doc["policies"]["singularity"]["lost_gpu_hours"] == 0
    assert doc["policies"]["kill-requeue"]["lost_gpu_hours"] > 0
