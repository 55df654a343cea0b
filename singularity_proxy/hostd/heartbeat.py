"""Telling the scheduler that this host is alive (docs/control-plane.md).

Two ways, one per state backend of the scheduler:
* SchedulerHeartbeat (`--scheduler URL[,URL...]`, SQLite mode): every second
  POST URL/v1/hosts/NAME/heartbeat {"url", "devices", "ranks"}.  The URLs are tried in order;
  a replica that is not the leader answers 503 with {"leader": URL}, which is followed and
  tried first from then on.
* EtcdLease (`--etcd URL[,URL...]`): the key /singularity/hosts/NAME = {"url", "devices"}
  under a lease of 5 s, kept alive every second.  A host that stops refreshing (its daemon
  died, or the network is gone) loses the key when the lease expires; that is how the
  scheduler learns of the failure.  A clean exit revokes the lease: the key goes at once.

Both are roles with step(now) (does what is due at `now`, so tests inject time) and loop().
"""
from __future__ import annotations

import asyncio
import json
import logging
import time
from typing import Any, Callable
from urllib.parse import urlsplit

import httpx

from singularity_proxy.errors import SingularityError
from singularity_proxy.hostd.metrics import Metrics

log = logging.getLogger("singproxy.heartbeat")
PERIOD_S = 1.0
LEASE_TTL_S = 5


class _Complaints:
    """Logs a failure when it starts or changes, not once a second while it lasts."""

    def __init__(self) -> None:
        self.last: str | None = None

    def failed(self, message: str) -> None:
        if message != self.last:
            log.warning("%s", message)
        self.last = message

    def ok(self, message: str) -> None:
        if self.last is not None:
            log.info("%s", message)
        self.last = None


class _Periodic:
    """A role that does `step(now)` whenever `next_at` comes, until told to stop."""

    next_at: float

    async def step(self, now: float) -> bool | None:
        raise NotImplementedError

    async def loop(self, stop: asyncio.Event) -> None:
        while not stop.is_set():
            await self.step(time.time())
            try:
                await asyncio.wait_for(stop.wait(), max(0.05, self.next_at - time.time()))
            except asyncio.TimeoutError:
                pass


class SchedulerHeartbeat(_Periodic):
    def __init__(self, *, host: str, urls: list[str], payload: Callable[[], dict[str, Any]],
                 token: bytes | None, metrics: Metrics, period_s: float = PERIOD_S, timeout_s: float = 2.0):
        if not urls:
            raise SingularityError("--scheduler needs at least one URL")
        self.host = host
        self.urls = [u.rstrip("/") for u in urls]
        self.payload = payload
        self.metrics = metrics
        self.period_s = period_s
        self.leader: str | None = None
        self.next_at = 0.0
        headers = {"Authorization": f"Bearer {token.decode()}"} if token else {}
        self.client = httpx.AsyncClient(timeout=timeout_s, headers=headers)
        self._complaints = _Complaints()

    async def step(self, now: float) -> bool | None:
        """Sends a heartbeat if one is due; True/False whether a scheduler took it, None if none was due."""
        if now < self.next_at:
            return None
        self.next_at = now + self.period_s
        ok = await self.send()
        self.metrics.heartbeat(ok=ok)
        return ok

    async def _post(self, url: str, body: dict[str, Any]) -> httpx.Response | None:
        try:
            return await self.client.post(f"{url}/v1/hosts/{self.host}/heartbeat", json=body)
        except httpx.HTTPError as e:
            self._complaints.failed(f"heartbeat to {url}: {type(e).__name__}: {e}")
            return None

    async def send(self) -> bool:
        body = self.payload()
        order = ([self.leader] if self.leader else []) + [u for u in self.urls if u != self.leader]
        for url in order:
            r = await self._post(url, body)
            if r is not None and r.status_code == 503:
                leader = _leader(r)
                if leader and leader not in (url,):
                    r2 = await self._post(leader, body)
                    if r2 is not None and r2.is_success:
                        self.leader = leader
                        self._complaints.ok(f"heartbeats reach the scheduler leader at {leader}")
                        return True
                continue
            if r is None:
                continue
            if r.is_success:
                self.leader = url
                self._complaints.ok(f"heartbeats reach the scheduler at {url}")
                return True
            if 400 <= r.status_code < 500:
                # Refused (not in the fleet, bad token): every replica would say the same.
                self._complaints.failed(f"the scheduler at {url} refuses this host's heartbeat: "
                                        f"{r.status_code} {r.text[:200]}")
                return False
            self._complaints.failed(f"heartbeat to {url}: {r.status_code} {r.text[:200]}")
        return False

    async def close(self) -> None:
        await self.client.aclose()


def _leader(r: httpx.Response) -> str | None:
    try:
        leader = r.json().get("leader")
    except (ValueError, AttributeError):
        return None
    return leader.rstrip("/") if isinstance(leader, str) and leader.startswith(("http://", "https://")) else None


class EtcdLease(_Periodic):
    def __init__(self, *, host: str, endpoints: list[str], value: Callable[[], dict[str, Any]], metrics: Metrics,
                 period_s: float = PERIOD_S, ttl_s: int = LEASE_TTL_S, timeout_s: float = 2.0):
        import etcd3gw

        if not endpoints:
            raise SingularityError("--etcd needs at least one URL")
        self.key = f"/singularity/hosts/{host}"
        self.value = value
        self.metrics = metrics
        self.period_s = period_s
        self.ttl_s = ttl_s
        self.clients = []
        for url in endpoints:
            parts = urlsplit(url if "://" in url else f"http://{url}")
            if not parts.hostname:
                raise SingularityError(f"bad --etcd URL {url!r}")
            self.clients.append(etcd3gw.client(host=parts.hostname, port=parts.port or 2379,
                                               protocol=parts.scheme or "http", timeout=timeout_s))
        self.current = 0
        self.lease: Any = None
        self.next_at = 0.0
        self._complaints = _Complaints()

    def _keep(self) -> None:
        """Blocking (etcd3gw uses requests): runs in a worker thread."""
        client = self.clients[self.current]
        if self.lease is not None:
            # Lease ids are cluster-wide: after switching endpoints the same lease is refreshed.
            self.lease.client = client
            if self.lease.refresh() > 0:
                return
            self.lease = None  # expired (we were cut off longer than the TTL): a new one, and the key again
        lease = client.lease(ttl=self.ttl_s)
        client.put(self.key, json.dumps(self.value()), lease=lease)
        self.lease = lease

    async def step(self, now: float) -> bool | None:
        if now < self.next_at:
            return None
        self.next_at = now + self.period_s
        try:
            await asyncio.to_thread(self._keep)
        except Exception as e:  # etcd3gw raises its own and requests' errors, and KeyError on odd answers
            self._complaints.failed(f"etcd lease of {self.key}: {type(e).__name__}: {e}")
            self.current = (self.current + 1) % len(self.clients)
            self.metrics.heartbeat(ok=False)
            return False
        self._complaints.ok(f"etcd lease of {self.key} is kept again")
        self.metrics.heartbeat(ok=True)
        return True

    async def close(self) -> None:
        """A clean exit: the key goes now rather than when the lease runs out."""
        if self.lease is None:
            return
        try:
            await asyncio.to_thread(self.lease.revoke)
        except Exception as e:
            log.warning("revoking the etcd lease of %s: %s", self.key, e)
        self.lease = None
