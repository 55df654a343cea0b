"""Each policy on small scenarios whose outcome is worked out by hand from the cost model."""

from __future__ import annotations

import numpy as np
import pytest

from scheduler.jobs import Tier
from scheduler.params import CostModel, Params

B, S, P = Tier.BASIC, Tier.STANDARD, Tier.PREMIUM


def test_fifo_waits(params: Params, sim) -> None:
    r = sim([(0, 3600, 8, B), (1000, 1800, 8, P)], "fifo", params)
    start = params.job_start_s
    assert r.finish[0] == pytest.approx(start + 3600)
    assert r.finish[1] == pytest.approx(2 * start + 3600 + 1800)
    assert r.preemptions.sum() == 0 and r.kills.sum() == 0


def test_fifo_does_not_block_small_jobs_behind_large(params: Params, sim) -> None:
    # 4 GPUs busy; an 8-GPU job waits, a later 2-GPU job starts at once (BestEffortFIFO).
    r = sim([(0, 3600, 4, B), (10, 100, 8, B), (20, 100, 2, B)], "fifo", params)
    st = params.job_start_s  # first_start: when the job first runs, after its start-up
    assert r.first_start[2] == pytest.approx(20 + st)
    assert r.first_start[1] == pytest.approx(2 * st + 3600)


def test_kill_requeue_loses_work(params: Params, sim) -> None:
    r = sim([(0, 3600, 8, B), (1000, 1800, 8, P)], "kill-requeue", params)
    st = params.job_start_s
    assert r.kills[0] == 1 and r.kills[1] == 0
    assert r.finish[1] == pytest.approx(1000 + st + 1800)
    assert r.finish[0] == pytest.approx(1000 + st + 1800 + st + 3600)
    assert r.lost_work[0] == pytest.approx(1000 - st)
    assert r.attained_lost[0] == pytest.approx(8 * (1000 - st))


def test_singularity_preempts_by_checkpoint_without_loss(params: Params, sim) -> None:
    c = CostModel(params=params)
    r = sim([(0, 3600, 8, B), (1000, 1800, 8, P)], "singularity", params)
    st = params.job_start_s
    rate = 1 - params.proxy_step_overhead
    ck = c.checkpoint_s(gib_per_rank=8.0, ranks_on_host=8)
    rs = c.restore_s(gib_per_rank=8.0, ranks_on_host=8)
    t_p = 1000 + ck + st + 1800 / rate
    assert r.finish[1] == pytest.approx(t_p)
    done_b = (1000 - st) * rate
    assert r.finish[0] == pytest.approx(t_p + rs + (3600 - done_b) / rate)
    assert r.preemptions[0] == 1 and r.preemptions[1] == 0
    assert r.lost_work.sum() == 0 and r.attained_lost.sum() == 0
    # The checkpoint and the restore cost device time, accounted as overhead.
    assert r.mech_dev_s[0] == pytest.approx(8 * (st + ck + rs))


def test_las_preempts_the_job_with_more_service(params: Params, sim) -> None:
    c = CostModel(params=params)
    r = sim([(0, 7200, 8, B), (2000, 600, 8, B)], "las", params)
    st = params.job_start_s
    ck = c.checkpoint_s(gib_per_rank=8.0, ranks_on_host=8, framework=True)
    rs = c.restore_s(gib_per_rank=8.0, ranks_on_host=8, framework_restart=True)
    t_c = 2000 + ck + st + 600
    assert r.finish[1] == pytest.approx(t_c)
    assert r.finish[0] == pytest.approx(t_c + rs + 7200 - (2000 - st))
    assert r.preemptions[0] == 1 and r.lost_work.sum() == 0


def test_las_leaves_equal_level_alone(params: Params, sim) -> None:
    # Both jobs in Q0 (little service): no preemption, FIFO.
    r = sim([(0, 300, 8, B), (100, 300, 8, B)], "las", params)
    assert r.preemptions.sum() == 0
    assert r.first_start[1] == pytest.approx(2 * params.job_start_s + 300)


def test_premium_is_never_preempted(params: Params, sim) -> None:
    for pol in ("singularity", "singularity-elastic", "kill-requeue"):
        r = sim([(0, 5000, 8, P), (10, 100, 8, P), (20, 100, 8, B)], pol, params)
        assert r.preemptions[0] == 0 and r.kills[0] == 0 and r.migrations[0] == 0 and r.resizes[0] == 0
        rate = 1.0 if pol == "kill-requeue" else 1 - params.proxy_step_overhead
        assert r.first_start[1] == pytest.approx(2 * params.job_start_s + 5000 / rate)


def test_elastic_shrinks_instead_of_preempting_and_grows_back(params: Params, sim) -> None:
    c = CostModel(params=params)
    r = sim([(0, 20000, 8, B), (1000, 3000, 4, P)], "singularity-elastic", params)
    assert r.preemptions.sum() == 0
    assert r.resizes[0] == 2  # 8 → 4 (time-sliced, two ranks per device), then back to 8
    shrink = c.resize_s(gib_per_rank=8.0, moved_ranks=4, new_hosts=0)
    assert r.first_start[1] == pytest.approx(1000 + shrink + params.job_start_s)
    assert r.lost_work.sum() == 0
    # The basic job kept running at half speed instead of stopping.
    assert r.wait_s[0] == pytest.approx(0.0)


def test_singularity_migrates_to_defragment(params: Params, sim) -> None:
    c = CostModel(params=params)
    # Two hosts of 8: a (6) and c (2) share host A (best fit), b (6) is on host B.  When a ends,
    # 8 devices are free in total but no host has 8: moving c to host B frees host A for w.
    recs = [(0, 1000, 6, B), (1, 10**5, 2, B), (2, 10**5, 6, B), (3000, 500, 8, B)]
    r = sim(recs, "singularity", params, gpus=16)
    assert r.migrations[1] == 1 and r.migrations.sum() == 1
    mig = c.migrate_out_s(gib_per_rank=8.0, ranks_on_host=2)
    assert r.first_start[3] == pytest.approx(3000 + mig + params.job_start_s)
    # Without migration or preemption (FIFO) w waits for b or c to end.
    r2 = sim(recs, "fifo", params, gpus=16)
    assert r2.migrations.sum() == 0 and r2.first_start[3] > 10**5


def test_standard_becomes_urgent_and_displaces_basic(params: Params, sim) -> None:
    # A long basic job (in a low LAS level by now) holds the fleet; a standard job with much more
    # service would not displace it on LAS grounds, but its SLA slack runs out and it does.
    recs = [(0, 10**5, 8, B), (0, 1, 1, B), (20000, 3000, 8, S)]
    r = sim(recs, "singularity", params)
    assert r.preemptions[0] >= 1
    grace, g = params.sla_grace_s, params.sla_standard_fraction
    assert r.first_start[2] - 20000 <= grace
    jct = r.finish[2] - r.arrival[2]
    assert r.served_s[2] >= g * (jct - grace)


def test_time_sliced_start_when_short_of_devices(params: Params, sim) -> None:
    # 6 of 8 devices busy with a premium job; an elastic 8-GPU basic job starts on 2 devices
    # (4 ranks each) at once instead of waiting, and grows to 8 when the premium job ends.
    r = sim([(0, 2000, 6, P), (10, 4000, 8, B)], "singularity-elastic", params)
    assert r.first_start[1] == pytest.approx(10 + params.job_start_s)
    assert r.resizes[1] >= 1
    r2 = sim([(0, 2000, 6, P), (10, 4000, 8, B)], "singularity", params)
    assert r2.first_start[1] > 2000
    assert r.finish[1] < r2.finish[1]


def test_all_policies_deterministic(params: Params, sim) -> None:
    rng = np.random.default_rng(5)
    recs = [
        (
            float(rng.uniform(0, 5e4)),
            float(rng.uniform(60, 2e4)),
            int(rng.choice([1, 2, 4, 8, 16])),
            Tier(int(rng.integers(0, 3))),
        )
        for _ in range(60)
    ]
    for pol in ("fifo", "kill-requeue", "las", "singularity", "singularity-elastic"):
        a = sim(recs, pol, params, gpus=32, check_every=0)
        b = sim(recs, pol, params, gpus=32, check_every=0)
        assert np.array_equal(a.finish, b.finish), pol
        assert a.action_counts == b.action_counts
