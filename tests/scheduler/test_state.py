"""Cluster state: placement index, transitions, claims, failures, refusal of bad actions."""

from __future__ import annotations

import pytest

from scheduler.actions import Kill, Migrate, Place, Preempt, Reserve, Resize, Resume
from scheduler.errors import StateError
from scheduler.events import CheckpointDone, HostFailed, HostRecovered, JobArrived, JobFinished, RestoreDone
from scheduler.jobs import JobSpec, Phase, Tier, allowed_sizes
from scheduler.params import CostModel, Params
from scheduler.placement import Placer
from scheduler.state import ClusterState
from scheduler.topology import ClusterSpec, Topology


def make_state(params: Params, *, hosts: int = 2, per_host: int = 8, clusters: int = 1) -> ClusterState:
    topo = Topology(
        clusters=[
            ClusterSpec(name=f"c{i}", region="r", device_type="gpu", hosts=hosts, devices_per_host=per_host)
            for i in range(clusters)
        ]
    )
    return ClusterState(topology=topo, costs=CostModel(params=params), proxied=True)


def arrive(
    st: ClusterState, jid: int, n: int, t: float = 0.0, *, min_gpus: int = 0, tier: Tier = Tier.BASIC
) -> None:
    st.observe(JobArrived(JobSpec(job_id=jid, tier=tier, num_gpus=n, min_gpus=min_gpus, arrival=t)), t)


def test_best_fit_and_whole_hosts(params: Params) -> None:
    st = make_state(params, hosts=3)
    pl = Placer(st)
    arrive(st, 1, 3)
    d1 = pl.find(3, None)
    assert d1 is not None and len({st.topo.dev_host[d] for d in d1}) == 1
    st.apply(Place(1, d1, 1))
    arrive(st, 2, 4)
    d2 = pl.find(4, None)
    assert d2 is not None
    # Best fit: the host that already has 5 free.
    assert st.topo.dev_host[d2[0]] == st.topo.dev_host[d1[0]]
    st.apply(Place(2, d2, 1))
    arrive(st, 3, 16)
    d3 = pl.find(16, None)
    assert d3 is not None and len({st.topo.dev_host[d] for d in d3}) == 2
    st.apply(Place(3, d3, 1))
    assert pl.find(2, None) is None  # one device left anywhere
    assert pl.find(1, None) is not None
    st.check()


def test_double_booking_refused_and_state_unchanged(params: Params) -> None:
    st = make_state(params)
    arrive(st, 1, 2)
    arrive(st, 2, 2)
    st.apply(Place(1, (0, 1), 1))
    before = (list(st.owner), st.free_total, list(st.host_mask))
    with pytest.raises(StateError):
        st.apply(Place(2, (1, 2), 1))
    assert (list(st.owner), st.free_total, list(st.host_mask)) == before
    assert st.job(2).phase == Phase.QUEUED
    with pytest.raises(StateError):
        st.apply(Place(2, (2, 2), 1))  # duplicate device
    with pytest.raises(StateError):
        st.apply(Place(2, (2, 3, 4), 1))  # wrong size
    with pytest.raises(StateError):
        st.apply(Resume(2, (2, 3), 1))  # nothing to resume from
    with pytest.raises(StateError):
        st.apply(Preempt(2))  # not running
    st.check()


def test_preempt_claim_handover_and_resume(params: Params) -> None:
    st = make_state(params, hosts=1)
    arrive(st, 1, 8, min_gpus=1)
    st.apply(Place(1, tuple(range(8)), 1))
    st.observe(RestoreDone(1), 30.0)
    assert st.job(1).phase == Phase.RUNNING and st.running_devices == 8
    arrive(st, 2, 4, 100.0, tier=Tier.PREMIUM)
    st.apply(Preempt(1))
    st.apply(Reserve(2, (), (0, 1, 2, 3)))
    assert st.job(2).phase == Phase.PENDING and st.take_ready() == []
    with pytest.raises(StateError):
        st.apply(Reserve(2, (), (4,)))  # not waiting any more
    st.observe(CheckpointDone(1), 110.0)
    j1 = st.job(1)
    assert j1.phase == Phase.SUSPENDED and j1.has_ckpt and j1.devices == ()
    assert j1.done == pytest.approx(70 * 0.98)
    assert st.take_ready() == [2]
    assert st.free_total == 4  # devices 4..7 back to the pool, 0..3 went to job 2
    st.apply(Place(2, (0, 1, 2, 3), 1))
    st.observe(RestoreDone(2), 140.0)
    st.apply(Resume(1, (4, 5, 6, 7), 2))  # time-sliced: 8 ranks on 4 devices
    st.observe(RestoreDone(1), 150.0)
    assert st.job(1).k == 2 and st.job(1).rate == pytest.approx(0.5 * 0.97 * 0.98)
    st.check()
    fin = st.observe(JobFinished(2), 200.0)
    assert fin is not None and fin.phase == Phase.FINISHED and 2 not in st.jobs
    assert fin.wait_s + fin.mech_s + fin.run_s == pytest.approx(100.0)
    st.check()


def test_migrate_and_resize(params: Params) -> None:
    st = make_state(params, hosts=2)
    arrive(st, 1, 4, min_gpus=1)
    st.apply(Place(1, (0, 1, 2, 3), 1))
    st.observe(RestoreDone(1), 10.0)
    st.apply(Migrate(1, (8, 9, 10, 11)))
    assert st.free_total == 8  # both sets held during the migration
    st.observe(CheckpointDone(1), 20.0)
    assert st.job(1).phase == Phase.STARTING and st.free_total == 12
    st.observe(RestoreDone(1), 22.0)
    st.apply(Resize(1, (8, 9), 2))
    st.observe(RestoreDone(1), 25.0)
    j = st.job(1)
    assert j.devices == (8, 9) and j.k == 2 and st.free_total == 14 and j.resizes == 1 and j.migrations == 1
    st.apply(Resize(1, (8, 9, 10, 11), 1))
    st.observe(RestoreDone(1), 30.0)
    assert st.job(1).k == 1 and st.free_total == 12
    st.check()


def test_kill_loses_work(params: Params) -> None:
    st = make_state(params, hosts=1)
    arrive(st, 1, 2)
    st.apply(Place(1, (0, 1), 1))
    st.observe(RestoreDone(1), 10.0)
    st.observe(JobArrived(JobSpec(job_id=2, tier=Tier.PREMIUM, num_gpus=8, arrival=110.0)), 110.0)
    st.apply(Kill(1))
    j = st.job(1)
    assert j.phase == Phase.QUEUED and j.done == 0 and j.lost_work == pytest.approx(100 * 0.98)
    assert j.attained_lost == pytest.approx(200.0) and j.served_s == 0
    st.check()


def test_host_failure_and_recovery(params: Params) -> None:
    st = make_state(params, hosts=2)
    arrive(st, 1, 16)
    st.apply(Place(1, tuple(range(16)), 1))
    st.observe(RestoreDone(1), 10.0)
    arrive(st, 2, 4, 20.0)
    st.observe(HostFailed(0), 50.0)
    j = st.job(1)
    assert j.phase == Phase.QUEUED and j.devices == () and j.failures == 1 and j.lost_work > 0
    assert st.take_requeued() == [1]
    assert st.free_total == 8 and st.down_devices == 8
    assert Placer(st).find(16, None) is None
    st.check()
    st.observe(HostRecovered(0), 60.0)
    assert st.free_total == 16 and st.down_devices == 0
    st.check()


def test_allowed_sizes() -> None:
    assert allowed_sizes(8, 1, 8) == (8, 4, 3, 2, 1)
    assert allowed_sizes(8, 2, 8) == (8, 4, 3, 2)
    assert allowed_sizes(1, 1, 8) == (1,)
    assert allowed_sizes(128, 16, 8) == (128, 64, 43, 32, 26, 22, 19, 16)
