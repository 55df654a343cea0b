"""Traces: the Philly reader, the tier rule, time compression, synthetic traces."""

from __future__ import annotations

import numpy as np
import pytest

from scheduler.errors import TraceError
from scheduler.jobs import Tier
from scheduler.trace import elastic_min, load_philly, synthetic, tiers_by_group

CSV = """timestamp,duration,num_gpus,gpu_time,cluster
2017-10-01 00:00:10,100.0,1,100.0,aa
2017-10-01 00:00:00,3600.0,8,28800.0,bb
2017-10-01 00:01:00,60.0,2,120.0,cc
2017-10-01 00:02:00,7200.0,16,115200.0,bb
2017-10-01 00:03:00,30.0,1,30.0,dd
"""


def test_reader_sorts_and_assigns_tiers(tmp_path) -> None:
    p = tmp_path / "t.csv"
    p.write_text(CSV)
    tr = load_philly(p)
    assert len(tr) == 5
    assert list(tr.arrival) == [0.0, 10.0, 60.0, 120.0, 180.0]
    assert list(tr.num_gpus) == [8, 1, 2, 16, 1]
    # GPU-hours by virtual cluster: bb > cc > aa > dd → standard, basic, premium, standard.
    tiers = {tr.groups[g]: Tier(t) for g, t in zip(tr.group, tr.tier, strict=True)}
    assert tiers == {"bb": Tier.STANDARD, "cc": Tier.BASIC, "aa": Tier.PREMIUM, "dd": Tier.STANDARD}
    assert list(tr.min_gpus) == [1, 0, 1, 2, 0]
    assert tr.gpu_hours() == pytest.approx((28800 + 100 + 120 + 115200 + 30) / 3600)
    d = tr.describe(gpus=16)
    assert d["jobs"] == 5 and d["elastic_jobs"] == 3


def test_reader_refuses_bad_files(tmp_path) -> None:
    p = tmp_path / "t.csv"
    p.write_text("a,b\n1,2\n")
    with pytest.raises(TraceError, match="columns"):
        load_philly(p)
    p.write_text(CSV.replace("100.0,1,100.0", "-5,1,100.0"))
    with pytest.raises(TraceError):
        load_philly(p)
    p.write_text(CSV.replace("2017-10-01 00:01:00", "yesterday"))
    with pytest.raises(TraceError, match="bad record"):
        load_philly(p)
    with pytest.raises(TraceError):
        load_philly(tmp_path / "absent.csv")


def test_compression_doubles_load(tmp_path) -> None:
    p = tmp_path / "t.csv"
    p.write_text(CSV)
    tr = load_philly(p)
    tr2 = tr.compressed(2.0)
    assert tr2.load(16) == pytest.approx(2 * tr.load(16))
    assert np.array_equal(tr2.work, tr.work)


def test_tier_rule_is_deterministic() -> None:
    t = tiers_by_group({"x": 5.0, "y": 5.0, "z": 1.0, "w": 9.0})
    assert t == {"w": Tier.STANDARD, "x": Tier.BASIC, "y": Tier.PREMIUM, "z": Tier.STANDARD}
    assert list(elastic_min(np.array([1, 2, 8, 9, 128]), 8)) == [0, 1, 1, 2, 16]


def test_synthetic_keeps_the_distributions(tmp_path) -> None:
    p = tmp_path / "t.csv"
    p.write_text(CSV)
    src = load_philly(p)
    tr = synthetic(src, jobs=20000, gpus=64, load=0.8, seed=3, max_gpus_per_job=8)
    assert len(tr) == 20000 and tr.num_gpus.max() == 8
    assert np.all(np.diff(tr.arrival) >= 0)
    assert tr.load(64) == pytest.approx(0.8, rel=0.05)
    # Sizes are drawn from the source records (16 capped to 8).
    assert set(np.unique(tr.num_gpus)) <= {1, 2, 8}
    again = synthetic(src, jobs=20000, gpus=64, load=0.8, seed=3, max_gpus_per_job=8)
    assert np.array_equal(tr.arrival, again.arrival)


def test_philly_trace(philly_path) -> None:
    tr = load_philly(philly_path)
    assert len(tr) == 82247
    assert tr.gpu_hours() == pytest.approx(978078, rel=1e-3)
    d = tr.describe()
    tiers = d["tiers"]
    assert tiers["premium"]["gpu_hours_share"] == pytest.approx(0.24, abs=0.01)
    assert tiers["standard"]["gpu_hours_share"] == pytest.approx(0.454, abs=0.01)
    assert tiers["basic"]["gpu_hours_share"] == pytest.approx(0.306, abs=0.01)
    assert int(tr.num_gpus.max()) == 128
