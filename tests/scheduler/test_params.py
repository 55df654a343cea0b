"""The parameter file: every figure present and documented, validation, derived costs."""

from __future__ import annotations

import math
import tomllib
from importlib import resources

import pytest

from scheduler.errors import ConfigError
from scheduler.params import GIB, CostModel, Params


def test_packaged_file_loads_and_every_key_is_documented() -> None:
    text = resources.files("scheduler").joinpath("params.toml").read_text()
    data = tomllib.loads(text)
    lines = text.splitlines()
    for section, body in data.items():
        for key in body:
            i = next(n for n, line in enumerate(lines) if line.startswith(f"{key} ="))
            # Each figure is preceded by a comment saying what it is and where it comes from.
            assert lines[i - 1].startswith("#"), f"{section}.{key} has no comment"
    p = Params.load()
    assert p.transport_shm_round_trip_us == 0.13
    assert p.memory_memcpy_gbps == 12.0
    assert p.storage_write_gbps == 2.0
    assert p.storage_checkpoint_efficiency == 0.9
    assert p.migration_s_per_gib == 2.0
    assert p.proxy_step_overhead == 0.02


def test_sources_named() -> None:
    text = resources.files("scheduler").joinpath("params.toml").read_text()
    for figure in ("0.13 µs", "12 GB/s", "2 GB/s", "90%", "≤ 2 s", "≤ 2%"):
        assert figure in text


def test_unknown_and_missing_keys_refused(tmp_path) -> None:
    text = resources.files("scheduler").joinpath("params.toml").read_text()
    bad = tmp_path / "p.toml"
    bad.write_text(text.replace("write_gbps = 2.0", "write_gbs = 2.0"))
    with pytest.raises(ConfigError, match="unknown keys"):
        Params.load(bad)
    bad.write_text(text.replace("read_gbps = 2.0\n", ""))
    with pytest.raises(ConfigError, match="missing keys"):
        Params.load(bad)
    bad.write_text(text.replace("write_gbps = 2.0", "write_gbps = -1.0"))
    with pytest.raises(ConfigError):
        Params.load(bad)
    with pytest.raises(ConfigError):
        Params.load(tmp_path / "absent.toml")


def test_costs_grow_with_state_and_shrink_with_bandwidth(params: Params) -> None:
    c = CostModel(params=params)
    for f in (c.checkpoint_s, c.restore_s, c.migrate_out_s):
        small = f(gib_per_rank=1.0, ranks_on_host=1)
        big = f(gib_per_rank=16.0, ranks_on_host=1)
        many = f(gib_per_rank=16.0, ranks_on_host=8)
        assert 0 < small < big < many
    fast = CostModel(params=params.replace(storage_write_gbps=20.0, storage_read_gbps=20.0))
    assert fast.checkpoint_s(gib_per_rank=8, ranks_on_host=8) < c.checkpoint_s(
        gib_per_rank=8, ranks_on_host=8
    )
    assert fast.restore_s(gib_per_rank=8, ranks_on_host=8) < c.restore_s(gib_per_rank=8, ranks_on_host=8)


def test_checkpoint_formula(params: Params) -> None:
    c = CostModel(params=params)
    # 1 rank of 8 GiB device state + 2 GiB CPU state at 90% of 2 GB/s, plus cut and CRIU.
    expect = 1.0 + 3 * 0.13e-6 + 2.0 + 10 * GIB / 1.8e9
    assert math.isclose(c.checkpoint_s(gib_per_rank=8.0, ranks_on_host=1), expect)
    # Migration target: a 1 GiB-state job in 2 s plus CRIU (no CPU state here).
    p0 = params.replace(criu_cpu_state_gib_per_rank=0.0)
    c0 = CostModel(params=p0)
    t = c0.migrate_out_s(gib_per_rank=1.0, ranks_on_host=1) + c0.migrate_in_s()
    assert math.isclose(t, 2.0 + 1.0 + 3 * 0.13e-6 + 2.0 + 2.0)


def test_rates(params: Params) -> None:
    c = CostModel(params=params)
    assert c.rate(1, False) == 1.0
    assert math.isclose(c.rate(1, True), 0.98)
    assert math.isclose(c.rate(2, False), 0.5 * 0.97)
    assert c.rate(4, True) < c.rate(2, True) < c.rate(1, True)
