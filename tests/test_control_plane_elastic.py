"""Elastic resize and defragmenting migration end to end (issue 6): real host daemons (`singproxy
serve`) on simulated devices and the scheduler daemon with its default policy, singularity-elastic.

Every rank runs tests/programs/ckpt_job.py (ranks are independent processes: no collective
library yet), which prints a digest of all its device state each step, so each rank's log must be
exactly an uninterrupted run's output however often the job was resized or moved (only stopping
checkpoints are taken here: nothing is repeated).

Determinism: the scheduler runs with ``--min-resize-interval 0``, so a time-sliced job grows on the
first scheduling pass that sees a free device, may be shrunk at once, and a running job may be
moved (`_movable` also waits that long after a start); with the default (120 s) nothing would
happen for minutes.  Devices are freed by cancelling an endless job at a chosen moment, never by
guessing when one ends; the jobs under test run about twice the steps their scenario needs on this
2-core machine.  Timeouts bound waiting for what must happen; nothing asserts how long it took.
"""
from __future__ import annotations

import re
import sys
from pathlib import Path
from typing import Any

import httpx

from daemon_support import JOB, PAUSE, PROGRAMS, TOKEN, Plane, running_plane, uninterrupted, wait_until

LONG = 100_000  # steps of a job that only ends when cancelled


def placement(job: dict[str, Any]) -> list[tuple[str, str]]:
    return [(p["host"], p["device"]) for p in sorted(job["placement"], key=lambda p: p["rank"])]


def running_at(plane: Plane, name: str, devices: int) -> Any:
    """Wait predicate: job ``name`` running with its ranks on ``devices`` distinct devices, and
    the hosts agree (every rank running where the placement says); returns the job."""
    j = plane.api_jobs().get(name)
    if not j or j["state"] != "running" or len(set(placement(j))) != devices:
        return None
    for r, (host, dev) in enumerate(placement(j)):
        x = plane.hosts[host].ranks().get(f"{name}.r{r}")
        if not x or x["state"] != "running" or x["device"] != dev:
            return None
    return j


def progress(plane: Plane, name: str, ranks: int, more: int) -> None:
    """Wait until every rank of ``name`` has printed ``more`` steps beyond what it has now."""
    base = [plane.steps_done(name, r) for r in range(ranks)]
    wait_until(lambda: all(plane.steps_done(name, r) >= base[r] + more for r in range(ranks)),
               f"{name} to make progress", timeout=180, every=0.2)


def scheduler_metric(plane: Plane, series: str) -> float:
    text = httpx.get(plane.schedulers[0].url + "/metrics", headers={"Authorization": f"Bearer {TOKEN}"},
                     timeout=10).text
    m = re.search(rf"^{re.escape(series)} ([\d.e+]+)$", text, re.M)
    return float(m.group(1)) if m else 0.0


def test_elastic_job_starts_time_sliced_grows_onto_a_freed_device_and_shrinks_for_premium(
        tmp_path: Path) -> None:
    # About 80 steps of the elastic job pass between its start and its last resize here.
    steps, premium_steps = 200, 20
    with running_plane(tmp_path, hosts={"h0": "sim:2"}, args=["--min-resize-interval", "0"]) as plane:
        h0 = plane.hosts["h0"]
        plane.submit("other", "basic", LONG)
        plane.wait_state("other", ("running",))
        # One device free: the 2-rank elastic job (at least 1 device) starts time-sliced on it.
        plane.submit("elastic", "basic", steps, devices=2, min_devices=1)
        job = wait_until(lambda: running_at(plane, "elastic", 1), "elastic to run time-sliced", timeout=180)
        ranks = h0.ranks()
        assert ranks["elastic.r0"]["device"] == ranks["elastic.r1"]["device"] != ranks["other.r0"]["device"]
        assert ranks["elastic.r0"]["checkpoints"] == 0
        progress(plane, "elastic", 2, 3)

        # The other device frees up: the job grows to one rank per device (checkpoint + restore).
        plane.cli("cancel", "other")
        job = wait_until(lambda: running_at(plane, "elastic", 2), "elastic to grow to 2 devices", timeout=240)
        assert sorted(d for _, d in placement(job)) == ["sim:0", "sim:1"]
        ranks = h0.ranks()
        assert all(ranks[f"elastic.r{r}"]["checkpoints"] == 1 for r in range(2)), ranks
        assert scheduler_metric(plane, 'singularity_actions_total{action="Resize"}') == 1
        progress(plane, "elastic", 2, 3)

        # A premium job needs a device: the elastic job is shrunk back onto one (not preempted).
        plane.submit("premium", "premium", premium_steps)
        wait_until(lambda: running_at(plane, "premium", 1) and running_at(plane, "elastic", 1),
                   "premium to run beside the shrunk elastic job", timeout=240)
        assert scheduler_metric(plane, 'singularity_actions_total{action="Resize"}') == 2
        assert scheduler_metric(plane, "singularity_preemptions_total") == 0

        # Premium done: the elastic job grows again and runs to its end.
        assert plane.wait_state("premium", ("succeeded", "failed"), timeout=300)["state"] == "succeeded"
        wait_until(lambda: running_at(plane, "elastic", 2), "elastic to grow back", timeout=240)
        assert scheduler_metric(plane, 'singularity_actions_total{action="Resize"}') == 3
        job = plane.wait_state("elastic", ("succeeded", "failed"), timeout=600)
        assert job["state"] == "succeeded", job
        assert job["exit_codes"] == {"0": 0, "1": 0}
        ranks = h0.ranks()
        assert all(ranks[f"elastic.r{r}"]["checkpoints"] == 3 for r in range(2)), ranks
        for r in range(2):
            assert plane.log("elastic", r) == uninterrupted(steps), f"rank {r}"
        assert plane.log("premium") == uninterrupted(premium_steps)


def test_a_job_migrates_to_another_host_so_that_a_waiting_gang_fits_on_one(tmp_path: Path) -> None:
    # Two hosts of two devices.  Best fit packs the first two single-device jobs onto one host and
    # the third onto the other; cancelling one of the pair leaves one device free on each host:
    # two free devices, but no host with two.  A 2-device gang (not elastic) can only start once a
    # single-device job moves off one host (_defragment runs before any preemption is considered;
    # jobs of one tier and level could not preempt each other anyway).
    gang_steps = 20
    hosts = {"h0": "sim:2", "h1": "sim:2"}
    with running_plane(tmp_path, hosts=hosts, args=["--min-resize-interval", "0"]) as plane:
        for name in ("a", "b", "c"):
            plane.submit(name, "basic", LONG)
            plane.wait_state(name, ("running",))
        where = {n: placement(plane.api_jobs()[n])[0] for n in ("a", "b", "c")}
        pair = [n for n in ("a", "b", "c") if [w[0] for w in where.values()].count(where[n][0]) == 2]
        assert len(pair) == 2, where  # best fit: two on one host
        plane.cli("cancel", pair[0])
        plane.wait_state(pair[0], ("cancelled",))
        stay = [n for n in ("a", "b", "c") if n != pair[0]]
        assert {where[n][0] for n in stay} == {"h0", "h1"}, where
        for n in stay:
            progress(plane, n, 1, 3)

        plane.submit("gang", "basic", gang_steps, devices=2)
        gang = wait_until(lambda: running_at(plane, "gang", 2), "the gang to run", timeout=240)
        ghost = placement(gang)[0][0]
        assert {h for h, _ in placement(gang)} == {ghost}
        # Exactly one job moved: the one that was on the gang's host, now beside the other.
        now = {n: placement(plane.api_jobs()[n])[0] for n in stay}
        moved = [n for n in stay if now[n] != where[n]]
        assert len(moved) == 1 and where[moved[0]][0] == ghost and now[moved[0]][0] != ghost, (where, now)
        (mover,) = moved
        assert plane.api_jobs()[mover]["hosts"] == [ghost, now[mover][0]]
        assert scheduler_metric(plane, "singularity_migrations_total") == 1
        assert scheduler_metric(plane, "singularity_preemptions_total") == 0
        wait_until(lambda: running_at(plane, mover, 1), f"{mover} to run on its new host", timeout=240)
        progress(plane, mover, 1, 3)

        assert plane.wait_state("gang", ("succeeded", "failed"), timeout=300)["state"] == "succeeded"
        for r in range(2):
            assert plane.log("gang", r) == uninterrupted(gang_steps), f"gang rank {r}"
        for n in stay:
            plane.cli("cancel", n)
        for n in stay:
            plane.wait_state(n, ("cancelled",))
        # Cut off by the cancel: the moved job's log is the start of an uninterrupted run (the
        # program's lines do not depend on how many steps it was asked for, but for "done").
        text = (plane.base / "data" / "logs" / mover / "rank0.log").read_text()
        log = [ln for ln in text[:text.rfind("\n") + 1].splitlines() if ln.startswith("step ")]  # whole lines
        assert len(log) > 6 and log == uninterrupted(len(log))[:len(log)], text


def test_a_rank_that_already_finished_is_not_run_again_when_its_job_is_resized(tmp_path: Path) -> None:
    # Ranks are independent programs and need not end together: rank 0 of this elastic job runs
    # `short` steps, rank 1 `steps`.  The job grows after rank 0 has exited: the resize checkpoints
    # and restores rank 1 only; rank 0 must neither start again (from scratch or an old image) nor
    # count as lost, and the job succeeds with each rank's log that of one uninterrupted run.
    short, steps = 8, 150
    with running_plane(tmp_path, hosts={"h0": "sim:2"}, args=["--min-resize-interval", "0"]) as plane:
        h0 = plane.hosts["h0"]
        plane.submit("other", "basic", LONG)
        plane.wait_state("other", ("running",))
        plane.cli("submit", "--name", "elastic", "--tier", "basic", "--devices", "2", "--min-devices", "1",
                  "--env", f"PYTHONPATH={PROGRAMS}", "--env", "PYTHONUNBUFFERED=1", "--",
                  "/bin/sh", "-c", 'exec "$0" "$1" $(($2 + SINGULARITY_RANK * ($3 - $2))) "$4"',
                  sys.executable, str(PROGRAMS / JOB), str(short), str(steps), PAUSE)
        wait_until(lambda: running_at(plane, "elastic", 1), "elastic to run time-sliced", timeout=180)
        wait_until(lambda: (h0.ranks().get("elastic.r0") or {}).get("state") == "exited", "rank 0 to end",
                   timeout=180)
        assert plane.api_jobs()["elastic"]["state"] == "running"
        plane.cli("cancel", "other")
        # (Before the fix: rank 0 started again from scratch, then the job hung in "resizing", rank 1
        # "started" again and again where its checkpointed record was, as no image of rank 0 existed.)
        job = plane.wait_state("elastic", ("succeeded", "failed"), timeout=300)
        assert scheduler_metric(plane, 'singularity_actions_total{action="Resize"}') == 1
        assert job["state"] == "succeeded", job
        assert job["exit_codes"] == {"0": 0, "1": 0}
        assert plane.log("elastic", 0) == uninterrupted(short)
        assert plane.log("elastic", 1) == uninterrupted(steps)
        assert not plane.events("HostFailed")[1:], "a finished rank was taken for a lost one"


def test_a_time_sliced_job_grows_onto_two_other_hosts(tmp_path: Path) -> None:
    # Three one-device hosts: the elastic job starts time-sliced on the one device left free.  A
    # 2-device placement that is not its own host's (which has no room) takes two whole free hosts
    # (placement.py), so the resize moves both ranks to other hosts: checkpoint on one daemon,
    # restore on two others, and the old host's records cleaned up.
    steps = 120
    with running_plane(tmp_path, args=["--min-resize-interval", "0"]) as plane:
        for name in ("o1", "o2"):
            plane.submit(name, "basic", LONG)
            plane.wait_state(name, ("running",))
        plane.submit("elastic", "basic", steps, devices=2, min_devices=1)
        job = wait_until(lambda: running_at(plane, "elastic", 1), "elastic to run time-sliced", timeout=180)
        (first,) = {h for h, _ in placement(job)}
        progress(plane, "elastic", 2, 3)
        plane.cli("cancel", "o1")  # one free device elsewhere: no 2-device placement yet
        plane.cli("cancel", "o2")
        job = wait_until(lambda: running_at(plane, "elastic", 2), "elastic to grow onto two hosts",
                         timeout=240)
        hosts = [h for h, _ in placement(job)]
        assert len(set(hosts)) == 2 and first not in hosts, job
        wait_until(lambda: not [n for n in plane.hosts[first].ranks() if n.startswith("elastic.")],
                   f"the ranks' old records on {first} to go", timeout=60)
        job = plane.wait_state("elastic", ("succeeded", "failed"), timeout=300)
        assert job["state"] == "succeeded", job
        assert job["hosts"][0] == first and sorted(job["hosts"][1:]) == sorted(hosts), job
        assert scheduler_metric(plane, 'singularity_actions_total{action="Resize"}') == 1
        for r in range(2):
            assert plane.log("elastic", r) == uninterrupted(steps), f"rank {r}"
