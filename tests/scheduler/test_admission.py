"""Admission control: the premium quota of the singularity policies, and its honest accounting."""

from __future__ import annotations

import numpy as np
import pytest

from scheduler.actions import Admit, Place
from scheduler.errors import StateError
from scheduler.events import JobArrived
from scheduler.jobs import JobSpec, Tier
from scheduler.metrics import summarize
from scheduler.params import CostModel, Params
from scheduler.state import ClusterState
from scheduler.topology import Topology

B, S, P = Tier.BASIC, Tier.STANDARD, Tier.PREMIUM


def test_premium_beyond_quota_is_served_as_standard(params: Params, sim) -> None:
    p = params.replace(admission_premium_quota_fraction=0.5)  # 4 of 8 devices
    recs = [(0, 5000, 4, P), (10, 100, 4, P), (20, 100, 1, P), (6000, 100, 4, P)]
    for pol in ("singularity", "singularity-elastic"):
        r = sim(recs, pol, p)
        # Job 0 fills the quota; 1 and 2 would exceed it (8 and 5 devices asked for); by the time
        # job 3 arrives job 0 has finished and the quota is free again.
        assert r.admitted_tier.tolist() == [P, S, S, P], pol
        assert r.tier.tolist() == [P, P, P, P]
        s = summarize(r, p)
        adm = s["admission"]
        assert adm["premium_requested"] == 4 and adm["premium_demoted"] == 2
        assert adm["premium_demoted_share"] == 0.5
        # The premium row counts the admitted jobs; the demoted ones are not dropped: they have
        # their own row and count in the requested-premium figure.
        assert s["sla_attainment"]["premium"] == 1.0
        assert s["sla_attainment"]["standard"] is None
        assert adm["sla_demoted"] is not None and adm["sla_premium_requested"] is not None


def test_baselines_admit_every_request(params: Params, sim) -> None:
    p = params.replace(admission_premium_quota_fraction=0.0)
    recs = [(0, 500, 4, P), (10, 100, 4, P)]
    for pol in ("fifo", "kill-requeue", "las"):
        r = sim(recs, pol, p)
        assert np.array_equal(r.admitted_tier, r.tier), pol
        assert summarize(r, p)["admission"]["premium_demoted"] == 0


def test_zero_quota_demotes_every_premium_request(params: Params, sim) -> None:
    p = params.replace(admission_premium_quota_fraction=0.0)
    r = sim([(0, 500, 1, P), (10, 100, 2, P), (20, 100, 1, S)], "singularity", p)
    assert r.admitted_tier.tolist() == [S, S, S]
    s = summarize(r, p)
    assert s["sla_attainment"]["premium"] is None
    assert s["admission"]["premium_demoted"] == 2
    assert s["per_tier"]["standard"]["jobs"] == 1  # the demoted jobs are not in the standard row


def test_demoted_job_is_preemptible_admitted_premium_is_not(params: Params, sim) -> None:
    c = CostModel(params=params)
    p = params.replace(admission_premium_quota_fraction=0.75)  # 6 of 8 devices
    # 0: premium, admitted (4 asked for); 1: premium, demoted (8 > 6), runs as standard on the
    # other 4 devices; 2: premium, admitted (4 + 2 = 6): it preempts the demoted job at once.
    r = sim([(0, 10**5, 4, P), (10, 20000, 4, P), (3000, 1000, 2, P)], "singularity", p)
    assert r.admitted_tier.tolist() == [P, S, P]
    assert r.preemptions.tolist() == [0, 1, 0]
    ck = c.checkpoint_s(gib_per_rank=8.0, ranks_on_host=4)
    assert r.first_start[2] == pytest.approx(3000 + ck + params.job_start_s)
    assert summarize(r, p)["sla_attainment"]["premium"] == 1.0


def test_admit_only_before_the_first_start(params: Params) -> None:
    topo = Topology.build(gpus=8, devices_per_host=8)
    st = ClusterState(topology=topo, costs=CostModel(params=params), proxied=True)
    st.observe(JobArrived(JobSpec(job_id=1, tier=P, num_gpus=2, arrival=0.0)), 0.0)
    assert st.tier_gpus == [2, 0, 0]
    st.apply(Admit(1, S))
    assert st.tier_gpus == [0, 2, 0] and st.jobs[1].tier == S and st.jobs[1].requested == P
    st.apply(Place(1, (0, 1), 1))
    with pytest.raises(StateError):
        st.apply(Admit(1, P))
    assert st.tier_gpus == [0, 2, 0]
    st.check()
