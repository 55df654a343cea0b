"""Property-based tests: random small fleets and traces through every policy, with the whole
state re-verified after every event (no device double-booked, indexes consistent), then the
outcome checked against the invariants of the issue."""

from __future__ import annotations

import numpy as np
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from scheduler.jobs import Tier
from scheduler.metrics import sla_met, summarize
from scheduler.params import Params
from scheduler.simulator import POLICIES, SimResult
from scheduler.topology import Topology
from scheduler.trace import from_records

TRANSPARENT = ("singularity", "singularity-elastic")


@st.composite
def scenarios(draw):  # type: ignore[no-untyped-def]
    per_host = draw(st.sampled_from([2, 4, 8]))
    hosts = draw(st.integers(1, 4))
    clusters = draw(st.integers(1, 2))
    cap = per_host * hosts
    sizes = sorted({1, 2, 4, 8, 16} | {cap})
    sizes = [g for g in sizes if g <= cap]
    n = draw(st.integers(1, 18))
    recs = []
    for _ in range(n):
        recs.append(
            (
                draw(st.floats(0, 30000, allow_nan=False)),
                draw(st.floats(30, 20000, allow_nan=False)),
                draw(st.sampled_from(sizes)),
                Tier(draw(st.integers(0, 2))),
            )
        )
    return per_host, hosts, clusters, recs


def _run(
    sim_trace,
    params: Params,
    per_host: int,
    hosts: int,
    clusters: int,
    recs,
    policy: str,  # type: ignore[no-untyped-def]
    **kw,
) -> SimResult:
    trace = from_records(recs, max_ranks_per_device=params.timeslice_max_ranks_per_device)
    topo = Topology.build(
        gpus=per_host * hosts * clusters, devices_per_host=per_host, clusters_per_region=clusters
    )
    return sim_trace(trace, topo, policy, params, check_every=1, **kw)  # type: ignore[no-any-return]


def check_invariants(r: SimResult, params: Params, policy: str, *, failures: bool = False) -> None:
    done = ~np.isnan(r.finish)
    # Every job that fits the fleet finishes: in particular every preempted job resumed.
    assert np.all(done | r.rejected)
    assert not np.any(r.rejected & done)
    f = done
    jct = (r.finish - r.arrival)[f]
    # Time accounting adds up, per job.
    np.testing.assert_allclose(r.wait_s[f] + r.mech_s[f] + r.run_s[f], jct, rtol=1e-9, atol=1e-6)
    assert np.all(r.served_s[f] <= r.run_s[f] + 1e-6)
    assert np.all(r.first_start[f] >= r.arrival[f])
    # Device-time accounting: nothing holds more than the fleet.
    span = r.end_time - float(r.arrival.min())
    assert (
        r.attained.sum() + r.mech_dev_s.sum() + r.held_dev_s.sum() <= r.n_devices * span * (1 + 1e-9) + 1e-6
    )
    # SLA attainment is the share of each tier's jobs meeting the rule.
    s = summarize(r, params)
    met = sla_met(r, params)
    demoted = r.admitted_tier != r.tier
    for t in Tier:
        sel = f & (r.tier == int(t)) & ~demoted
        if sel.any():
            assert abs(s["sla_attainment"][t.name.lower()] - met[sel].mean()) < 1e-3
    # Nobody vanishes from the accounting: every job is in exactly one row.
    rows = sum(s["per_tier"][t.name.lower()]["jobs"] for t in Tier) + s["admission"]["premium_demoted"]
    assert rows == int(f.sum())
    # Admission only ever lowers premium requests to standard, and only the singularity policies
    # have a quota.
    assert np.all(r.tier[demoted] == int(Tier.PREMIUM))
    assert np.all(r.admitted_tier[demoted] == int(Tier.STANDARD))
    if policy not in TRANSPARENT:
        assert not demoted.any()
    premium = r.admitted_tier == int(Tier.PREMIUM)
    if policy in TRANSPARENT:
        # The quota holds: whenever a job was admitted as premium, the admitted premium jobs in
        # the system (its own size included) asked for at most the quota.
        quota = int(params.admission_premium_quota_fraction * r.n_devices)
        for i in np.nonzero(premium)[0]:
            t = r.arrival[i]
            inside = premium & (r.arrival <= t) & ~(r.finish < t) & (np.arange(len(r.arrival)) <= i)
            assert r.num_gpus[inside].sum() <= quota
    if policy in TRANSPARENT + ("kill-requeue",):
        # Admitted premium is never preempted, killed, migrated or shrunk.
        assert r.preemptions[premium].sum() == 0 and r.kills[premium].sum() == 0
        assert r.migrations[premium].sum() == 0 and r.resizes[premium].sum() == 0
    if policy in TRANSPARENT and not failures:
        # ... nor starved: within the quota an admitted premium job always finds room by
        # displacing non-premium jobs, so every one meets the premium SLA.
        assert met[premium & f].all()
    if policy != "kill-requeue" and not failures:
        # No work is ever thrown away.
        assert r.lost_work.sum() == 0 and r.attained_lost.sum() == 0
    if policy == "fifo":
        assert r.preemptions.sum() == 0 and r.kills.sum() == 0
    if policy != "singularity-elastic":
        assert r.resizes.sum() == 0
    if policy not in TRANSPARENT:
        assert r.migrations.sum() == 0


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(scenarios(), st.sampled_from(POLICIES))
def test_random_fleets_and_traces(params: Params, sim_trace, scenario, policy: str) -> None:  # type: ignore[no-untyped-def]
    per_host, hosts, clusters, recs = scenario
    r = _run(sim_trace, params, per_host, hosts, clusters, recs, policy)
    check_invariants(r, params, policy)


@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(scenarios(), st.sampled_from(POLICIES))
def test_random_with_host_failures(params: Params, sim_trace, scenario, policy: str) -> None:  # type: ignore[no-untyped-def]
    per_host, hosts, clusters, recs = scenario
    r = _run(
        sim_trace, params, per_host, hosts, clusters, recs, policy, host_failures_per_day=4.0, repair_s=1800.0
    )
    check_invariants(r, params, policy, failures=True)


@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(scenarios())
def test_same_trace_same_result(params: Params, sim_trace, scenario) -> None:  # type: ignore[no-untyped-def]
    per_host, hosts, clusters, recs = scenario
    for policy in TRANSPARENT:
        a = _run(sim_trace, params, per_host, hosts, clusters, recs, policy)
        b = _run(sim_trace, params, per_host, hosts, clusters, recs, policy)
        assert np.array_equal(a.finish, b.finish, equal_nan=True)


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(scenarios(), st.sampled_from(TRANSPARENT), st.sampled_from([0.0, 0.25, 0.5, 0.75, 1.0]))
def test_random_premium_quota(  # type: ignore[no-untyped-def]
    params: Params, sim_trace, scenario, policy: str, quota: float
) -> None:
    # Premium-heavy variants of the random traces, under quotas from none to the whole fleet:
    # the quota holds, admitted premium jobs are never displaced and always meet their SLA.
    per_host, hosts, clusters, recs = scenario
    recs = [(a, w, g, Tier.PREMIUM if i % 3 else t) for i, (a, w, g, t) in enumerate(recs)]
    p = params.replace(admission_premium_quota_fraction=quota)
    r = _run(sim_trace, p, per_host, hosts, clusters, recs, policy)
    check_invariants(r, p, policy)
