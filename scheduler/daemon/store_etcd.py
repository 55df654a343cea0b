"""`Store` on etcd (v3, through its HTTP gateway with etcd3gw): for a replicated scheduler.

Keys under a prefix (default ``/singularity``):

    PREFIX/next_job_id        the next job id (compare-and-swap)
    PREFIX/jobs/<id:012d>     JobRecord (JSON, without the cancel flag)
    PREFIX/names/<name>       job id: created with the job, so a name is taken once and for all
    PREFIX/cancel/<id:012d>   present: the user asked to cancel the job
    PREFIX/events/<seq:020d>  one logged event {"at", "kind", "body"}
    PREFIX/hosts/<name>       {"url", "last_seen"}, attached to a lease of the heartbeat TTL: the key
                              vanishes when the host stops renewing it
    PREFIX/leader             the leader's {"id", "url"} on its lease (`leader.EtcdLeadership`)

Every write of the leader is one transaction that also compares PREFIX/leader with this
replica's value (`fence`), so a replica that lost the key without noticing yet cannot change
anything: the write fails with `NotLeaderError`.
"""

from __future__ import annotations

import base64
import json
import math
import threading
from typing import Any
from urllib.parse import urlsplit

import etcd3gw
from etcd3gw import exceptions as etcd_exc
from etcd3gw.client import Etcd3Client
from etcd3gw.lease import Lease

from .store import (
    HostRecord,
    JobRecord,
    LoggedEvent,
    NameTakenError,
    NewJob,
    NotLeaderError,
    Store,
    StoreError,
    dumps,
)


def _b64(s: str) -> str:
    return base64.b64encode(s.encode()).decode()


def _range_end(prefix: str) -> str:
    """The first key after every key starting with ``prefix`` (etcd's prefix range)."""
    return prefix[:-1] + chr(ord(prefix[-1]) + 1)


def etcd_client(url: str, timeout: float = 5.0) -> Etcd3Client:
    u = urlsplit(url if "://" in url else f"http://{url}")
    if not u.hostname:
        raise StoreError(f"bad etcd URL {url!r}")
    return etcd3gw.client(host=u.hostname, port=u.port or 2379, protocol=u.scheme or "http", timeout=timeout)


class EtcdStore(Store):
    def __init__(self, url: str, *, prefix: str = "/singularity", timeout: float = 5.0) -> None:
        self.url = url
        self.prefix = prefix.rstrip("/")
        self.client = etcd_client(url.split(",")[0], timeout)
        self.fence: tuple[str, str] | None = None  # (leader key, our value) once leader
        self._leases: dict[str, tuple[Lease, int]] = {}
        self._lock = threading.Lock()

    def k(self, *parts: str) -> str:
        return "/".join((self.prefix, *parts))

    # ------------------------------------------------------------------ plumbing

    def _call(self, fn: Any, *args: Any, **kw: Any) -> Any:
        try:
            return fn(*args, **kw)
        except etcd_exc.Etcd3Exception as e:
            raise StoreError(f"etcd {self.url}: {type(e).__name__}: {e}") from e

    def _get(self, key: str) -> tuple[str | None, int]:
        """(value, mod_revision) of ``key``; (None, 0) when absent."""
        got = self._call(self.client.get, key, metadata=True)
        if not got:
            return None, 0
        value, meta = got[0]
        return value.decode(), int(meta.get("mod_revision", 0))

    def _prefix(self, prefix: str, limit: int | None = None, start: str | None = None) -> list[tuple[str, str]]:
        got = self._call(
            self.client.get,
            start or prefix,
            metadata=True,
            range_end=_range_end(prefix),
            sort_order="ascend",
            sort_target="key",
            limit=limit,
        )
        return [(meta["key"].decode(), value.decode()) for value, meta in got]

    def _txn(self, compare: list[dict[str, Any]], puts: dict[str, str]) -> bool:
        """Puts ``puts`` if every comparison (and the leader fence) holds."""
        cmp = list(compare)
        if self.fence is not None:
            key, value = self.fence
            cmp.append({"key": _b64(key), "result": "EQUAL", "target": "VALUE", "value": _b64(value)})
        txn = {
            "compare": cmp,
            "success": [{"request_put": {"key": _b64(k), "value": _b64(v)}} for k, v in puts.items()],
            "failure": [],
        }
        r = self._call(self.client.transaction, txn)
        return bool(r.get("succeeded", False))

    def _check_fence(self) -> None:
        if self.fence is not None:
            key, value = self.fence
            if self._get(key)[0] != value:
                raise NotLeaderError(f"this replica no longer holds {key}")

    @staticmethod
    def _absent(key: str) -> dict[str, Any]:
        return {"key": _b64(key), "result": "EQUAL", "target": "CREATE", "create_revision": 0}

    @staticmethod
    def _unchanged(key: str, mod_revision: int) -> dict[str, Any]:
        if mod_revision == 0:
            return EtcdStore._absent(key)
        return {"key": _b64(key), "result": "EQUAL", "target": "MOD", "mod_revision": mod_revision}

    # ------------------------------------------------------------------ jobs

    def add_job(self, job: NewJob, *, now: float) -> JobRecord:
        with self._lock:
            for _ in range(100):
                raw, rev = self._get(self.k("next_job_id"))
                jid = int(raw) if raw else 1
                name = job.name or f"j{jid}"
                rec = JobRecord.submitted(job, job_id=jid, name=name, now=now)
                ok = self._txn(
                    [self._unchanged(self.k("next_job_id"), rev), self._absent(self.k("names", name))],
                    {
                        self.k("next_job_id"): str(jid + 1),
                        self.k("names", name): str(jid),
                        self.k("jobs", f"{jid:012d}"): dumps(rec.to_json()),
                    },
                )
                if ok:
                    return rec
                self._check_fence()
                if self._get(self.k("names", name))[0] is not None:
                    raise NameTakenError(f"a job named {name!r} exists already")
            raise StoreError("etcd: could not allocate a job id (too much contention)")

    def _cancelled(self) -> set[int]:
        return {int(k.rsplit("/", 1)[1]) for k, _ in self._prefix(self.k("cancel", ""))}

    def get_job(self, job_id: int) -> JobRecord | None:
        raw, _ = self._get(self.k("jobs", f"{job_id:012d}"))
        if raw is None:
            return None
        rec = JobRecord.from_json(json.loads(raw))
        rec.cancel_requested = self._get(self.k("cancel", f"{job_id:012d}"))[0] is not None
        return rec

    def find_job(self, name: str) -> JobRecord | None:
        raw, _ = self._get(self.k("names", name))
        return None if raw is None else self.get_job(int(raw))

    def jobs(self) -> list[JobRecord]:
        cancelled = self._cancelled()
        out = []
        for _, raw in self._prefix(self.k("jobs", "")):
            rec = JobRecord.from_json(json.loads(raw))
            rec.cancel_requested = rec.id in cancelled
            out.append(rec)
        return out

    def update_job(self, job_id: int, **changes: Any) -> None:
        self.check_changes(changes)
        key = self.k("jobs", f"{job_id:012d}")
        with self._lock:
            for _ in range(100):
                raw, rev = self._get(key)
                if raw is None:
                    raise StoreError(f"no job {job_id}")
                d = json.loads(raw)
                d.update(changes)
                if self._txn([self._unchanged(key, rev)], {key: dumps(d)}):
                    return
                self._check_fence()
            raise StoreError(f"etcd: job {job_id} keeps changing under this update")

    def request_cancel(self, job_id: int) -> None:
        if self._get(self.k("jobs", f"{job_id:012d}"))[0] is None:
            raise StoreError(f"no job {job_id}")
        if not self._txn([], {self.k("cancel", f"{job_id:012d}"): "1"}):
            raise NotLeaderError("this replica no longer holds the leader key")

    # ------------------------------------------------------------------ events

    def _last_seq(self) -> int:
        p = self.k("events", "")
        got = self._call(
            self.client.get,
            p,
            metadata=True,
            range_end=_range_end(p),
            sort_order="descend",
            sort_target="key",
            limit=1,
            keys_only=True,
        )
        return int(got[0][1]["key"].decode().rsplit("/", 1)[1]) if got else 0

    def append_event(self, kind: str, body: dict[str, Any], *, at: float) -> int:
        with self._lock:
            for _ in range(100):
                seq = self._last_seq() + 1
                key = self.k("events", f"{seq:020d}")
                if self._txn([self._absent(key)], {key: dumps({"at": at, "kind": kind, "body": body})}):
                    return seq
                self._check_fence()
            raise StoreError("etcd: could not append to the event log")

    def events(self, since: int = 0, limit: int | None = None) -> list[LoggedEvent]:
        p = self.k("events", "")
        out = []
        for key, raw in self._prefix(p, limit=limit, start=p + f"{since + 1:020d}"):
            d = json.loads(raw)
            out.append(LoggedEvent(seq=int(key.rsplit("/", 1)[1]), at=d["at"], kind=d["kind"], body=d["body"]))
        return out

    # ------------------------------------------------------------------ hosts

    def heartbeat(self, host: str, url: str, *, now: float, ttl_s: float) -> None:
        ttl = max(1, math.ceil(ttl_s))
        with self._lock:
            held = self._leases.get(host)
            lease: Lease | None = None
            if held is not None and held[1] == ttl:
                try:
                    if held[0].refresh() > 0:
                        lease = held[0]
                except etcd_exc.Etcd3Exception:
                    lease = None
            if lease is None:
                lease = self._call(self.client.lease, ttl)
                assert lease is not None
                self._leases[host] = (lease, ttl)
            self._call(self.client.put, self.k("hosts", host), dumps({"url": url, "last_seen": now}), lease)

    def live_hosts(self, *, now: float) -> dict[str, HostRecord]:
        out = {}
        for key, raw in self._prefix(self.k("hosts", "")):
            name = key.rsplit("/", 1)[1]
            try:
                d = json.loads(raw)
                out[name] = HostRecord(name=name, url=str(d["url"]), last_seen=float(d.get("last_seen", now)))
            except (ValueError, KeyError, TypeError):
                continue  # a malformed registration is a host we cannot reach
        return out

    def close(self) -> None:
        try:
            self.client.session.close()
        except Exception:  # noqa: BLE001 - closing a pooled HTTP session must not mask the caller's error
            pass
