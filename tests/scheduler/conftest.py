"""Fixtures of the scheduler tests: fleets, traces, a one-call simulation."""

from __future__ import annotations

from pathlib import Path

import pytest

from scheduler.jobs import Tier
from scheduler.params import Params
from scheduler.simulator import SimResult, Simulator, make_policy
from scheduler.topology import Topology
from scheduler.trace import Trace, from_records

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="session")
def params() -> Params:
    return Params.load()


@pytest.fixture(scope="session")
def philly_path() -> Path:
    """The shared Philly trace (never vendored): next to the checkout, as ../shared/traces."""
    for base in (REPO, *REPO.parents):
        p = base / "shared" / "traces" / "philly.csv"
        if p.is_file():
            return p
    pytest.skip("Philly trace not found (expected ../shared/traces/philly.csv next to the checkout)")


@pytest.fixture(scope="session")
def sim():  # type: ignore[no-untyped-def]
    """``sim(records, policy, params, gpus=8, ...)``: simulate a small trace, state checked every event."""
    return run


@pytest.fixture(scope="session")
def sim_trace():  # type: ignore[no-untyped-def]
    """``sim_trace(trace, topology, policy, params, **simulator_options)``."""
    return simulate_trace


def run(
    records: list[tuple[float, float, int, Tier]],
    policy: str,
    params: Params,
    *,
    gpus: int = 8,
    devices_per_host: int = 8,
    clusters: int = 1,
    elastic: bool = True,
    check_every: int = 1,
    **kw: object,
) -> SimResult:
    trace = from_records(
        records,
        elastic=elastic,
        max_ranks_per_device=params.timeslice_max_ranks_per_device,
        state_gib_per_rank=params.device_state_default_gib_per_rank,
    )
    topo = Topology.build(gpus=gpus, devices_per_host=devices_per_host, clusters_per_region=clusters)
    return simulate_trace(trace, topo, policy, params, check_every=check_every, **kw)


def simulate_trace(trace: Trace, topo: Topology, policy: str, params: Params, **kw: object) -> SimResult:
    return Simulator(
        topology=topo, policy=make_policy(policy, params=params), params=params, trace=trace, **kw
    ).run()  # type: ignore[arg-type]
