"""The scheduler's store: one suite, run against SQLite and against a real etcd."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from daemon_support import etcd_server, wait_until

from scheduler.daemon.store import NameTakenError, NewJob, NotLeaderError, Store, StoreError
from scheduler.daemon.store_etcd import EtcdStore
from scheduler.daemon.store_sqlite import SqliteStore


@pytest.fixture(scope="module")
def etcd_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    with etcd_server(tmp_path_factory.mktemp("etcd")) as url:
        yield url


_prefixes = iter(range(10**6))


@pytest.fixture(params=["sqlite", "etcd"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Store]:
    if request.param == "sqlite":
        s: Store = SqliteStore(tmp_path / "state.db")
    else:
        # One etcd for the module; each test gets its own key prefix.
        s = EtcdStore(request.getfixturevalue("etcd_url"), prefix=f"/t{next(_prefixes)}")
    yield s
    s.close()


def test_jobs_get_ids_and_default_names(store: Store) -> None:
    a = store.add_job(NewJob(command=["python", "a.py"], tier="premium", devices=2), now=10.0)
    b = store.add_job(NewJob(command=["b"], devices=4, min_devices=2, env={"X": "1"}, cwd="/tmp"), now=11.0)
    assert (a.id, a.name, b.id, b.name) == (1, "j1", 2, "j2")
    assert a.min_devices == 2  # not elastic: min = devices
    got = store.get_job(2)
    assert got is not None and got.command == ["b"] and got.env == {"X": "1"} and got.cwd == "/tmp"
    assert got.min_devices == 2 and got.state == "queued" and got.submitted_at == 11.0
    assert [j.id for j in store.jobs()] == [1, 2]
    assert store.find_job("j1") is not None and store.find_job("nope") is None
    assert store.get_job(99) is None


def test_names_are_never_reused(store: Store) -> None:
    store.add_job(NewJob(command=["x"], name="train"), now=0.0)
    with pytest.raises(NameTakenError):
        store.add_job(NewJob(command=["y"], name="train"), now=0.0)
    # The failed submission took no id.
    assert store.add_job(NewJob(command=["z"]), now=0.0).id == 2
    assert [j.name for j in store.jobs()] == ["train", "j2"]


def test_update_and_cancel_are_separate(store: Store) -> None:
    j = store.add_job(NewJob(command=["x"]), now=0.0)
    store.request_cancel(j.id)
    store.update_job(j.id, state="running", placement=[{"rank": 0, "host": "h", "device": "sim:0"}])
    got = store.get_job(j.id)
    assert got is not None and got.cancel_requested and got.state == "running"
    assert got.placement == [{"rank": 0, "host": "h", "device": "sim:0"}]
    assert [x.cancel_requested for x in store.jobs()] == [True]
    with pytest.raises(StoreError):
        store.update_job(j.id, command=["other"])  # the submission is immutable
    with pytest.raises(StoreError):
        store.update_job(j.id, state="bogus")
    with pytest.raises(StoreError):
        store.request_cancel(42)


def test_event_log_is_ordered_and_paged(store: Store) -> None:
    seqs = [store.append_event("Timer", {"job": i, "tag": i}, at=100.0 + i) for i in range(5)]
    assert seqs == [1, 2, 3, 4, 5]
    evs = store.events()
    assert [e.seq for e in evs] == seqs and [e.at for e in evs] == [100.0 + i for i in range(5)]
    assert evs[2].kind == "Timer" and evs[2].body == {"job": 2, "tag": 2}
    assert [e.seq for e in store.events(since=3)] == [4, 5]
    assert [e.seq for e in store.events(since=1, limit=2)] == [2, 3]
    assert store.events(since=5) == []


def test_concurrent_appends_get_distinct_sequence_numbers(store: Store) -> None:
    out: list[int] = []
    lock = threading.Lock()

    def work(t: int) -> None:
        for i in range(5):
            s = store.append_event("X", {"t": t, "i": i}, at=0.0)
            with lock:
                out.append(s)

    threads = [threading.Thread(target=work, args=(t,)) for t in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(out) == list(range(1, 16))
    assert [e.seq for e in store.events()] == list(range(1, 16))


def test_heartbeats(store: Store) -> None:
    store.heartbeat("h1", "http://127.0.0.1:1", now=50.0, ttl_s=30.0)
    store.heartbeat("h2", "http://127.0.0.1:2", now=50.0, ttl_s=30.0)
    store.heartbeat("h1", "http://127.0.0.1:3", now=51.0, ttl_s=30.0)
    live = store.live_hosts(now=52.0)
    assert sorted(live) == ["h1", "h2"] and live["h1"].url == "http://127.0.0.1:3"


def test_sqlite_heartbeat_lapses(tmp_path: Path) -> None:
    s = SqliteStore(tmp_path / "db")
    s.heartbeat("h1", "u", now=0.0, ttl_s=5.0)
    assert "h1" in s.live_hosts(now=5.0)
    assert "h1" not in s.live_hosts(now=5.5)
    s.close()


def test_sqlite_survives_reopen(tmp_path: Path) -> None:
    s = SqliteStore(tmp_path / "db")
    s.add_job(NewJob(command=["x"]), now=1.0)
    s.append_event("JobArrived", {"job": 1}, at=1.0)
    s.close()
    s = SqliteStore(tmp_path / "db")
    assert [j.name for j in s.jobs()] == ["j1"] and [e.kind for e in s.events()] == ["JobArrived"]
    s.close()


def test_etcd_heartbeat_lease_lapses(etcd_url: str) -> None:
    s = EtcdStore(etcd_url, prefix="/lapse")
    s.heartbeat("h1", "u", now=0.0, ttl_s=1.0)
    assert "h1" in s.live_hosts(now=0.0)
    # The key goes with its lease: nobody renews it.
    wait_until(lambda: "h1" not in s.live_hosts(now=0.0), "the host key to expire", timeout=30)
    s.close()


def test_etcd_writes_are_fenced_on_the_leader_key(etcd_url: str) -> None:
    s = EtcdStore(etcd_url, prefix="/fence")
    s.client.put("/fence/leader", "me")
    s.fence = ("/fence/leader", "me")
    j = s.add_job(NewJob(command=["x"]), now=0.0)
    assert s.append_event("A", {}, at=0.0) == 1
    s.client.put("/fence/leader", "someone else")
    with pytest.raises(NotLeaderError):
        s.append_event("B", {}, at=0.0)
    with pytest.raises(NotLeaderError):
        s.add_job(NewJob(command=["y"]), now=0.0)
    with pytest.raises(NotLeaderError):
        s.update_job(j.id, state="running")
    with pytest.raises(NotLeaderError):
        s.request_cancel(j.id)
    assert [e.kind for e in s.events()] == ["A"] and len(s.jobs()) == 1
    s.close()
