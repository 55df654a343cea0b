"""Who may act: exactly one scheduler replica drives the fleet at any time.

* SQLite: a single replica.  An exclusive `flock` on ``DB.lock`` is taken for the life of the
  process (the kernel drops it when the process dies, however it dies), so a second daemon on the
  same database refuses to start instead of acting beside the first.
* etcd: leader election on a lease-backed key.  A replica campaigns by creating PREFIX/leader with
  its {"id", "url"} attached to a fresh lease, in a create-if-absent transaction; the winner keeps
  the lease alive.  It counts itself leader only while its last successful keep-alive is younger
  than the TTL (minus a margin), and stops at the first failed keep-alive or when the key no longer
  holds its value: an old leader must stop before a new one can win (the key only goes when the
  lease expires on the server).  Every store write is fenced on the key as well, so a leader that
  was paused past its TTL cannot write after waking up.
"""

from __future__ import annotations

import fcntl
import json
import os
import time
from abc import ABC, abstractmethod
from pathlib import Path

from etcd3gw import exceptions as etcd_exc
from etcd3gw.lease import Lease

from ..errors import ConfigError
from .store import dumps
from .store_etcd import EtcdStore


class Leadership(ABC):
    @abstractmethod
    def step(self) -> bool:
        """Acquire or renew; True while this replica may act."""

    @abstractmethod
    def leader_url(self) -> str | None:
        """The current leader's advertised URL (for followers' 503 answers)."""

    def resign(self) -> None:
        """Give leadership up now (SIGTERM), so a follower need not wait for the TTL."""


class SqliteLock(Leadership):
    def __init__(self, db: str | Path, url: str) -> None:
        self.path = Path(f"{db}.lock")
        self.url = url
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._fd: int | None = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(self._fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(self._fd)
            self._fd = None
            raise ConfigError(
                f"another scheduler holds {self.path}: one SQLite database serves one replica "
                "(use --etcd for several)"
            ) from None
        os.ftruncate(self._fd, 0)
        os.write(self._fd, f"{os.getpid()} {url}\n".encode())

    def step(self) -> bool:
        return self._fd is not None

    def leader_url(self) -> str | None:
        return self.url

    def resign(self) -> None:
        if self._fd is not None:
            os.close(self._fd)  # drops the lock
            self._fd = None


class EtcdLeadership(Leadership):
    def __init__(self, store: EtcdStore, *, replica_id: str, url: str, ttl_s: int = 5) -> None:
        if ttl_s < 2:
            raise ConfigError("leader lease TTL must be at least 2 s")
        self.store = store
        self.key = store.k("leader")
        self.value = dumps({"id": replica_id, "url": url})
        self.ttl = ttl_s
        self._lease: Lease | None = None
        self._renewed = 0.0  # monotonic time of the last successful campaign or keep-alive
        self._leader_url: str | None = None
        # Fenced from the start: a replica that never won cannot write either.
        store.fence = (self.key, self.value)

    @property
    def is_leader(self) -> bool:
        return self._lease is not None and time.monotonic() - self._renewed < self.ttl * 0.8

    def step(self) -> bool:
        try:
            if self._lease is not None:
                self._renew()
            if self._lease is None:
                self._campaign()
        except etcd_exc.Etcd3Exception:
            self._lose()
        except OSError:
            self._lose()
        if not self.is_leader:
            self._lose()
            return False
        return True

    def _renew(self) -> None:
        assert self._lease is not None
        if time.monotonic() - self._renewed < self.ttl / 3:
            return
        left = self._lease.refresh()
        if left <= 0:
            self._lose()
            return
        self._renewed = time.monotonic()
        if self.store._get(self.key)[0] != self.value:
            self._lose()

    def _campaign(self) -> None:
        client = self.store.client
        t0 = time.monotonic()
        lease = client.lease(self.ttl)
        if client.create(self.key, self.value, lease):
            self._lease = lease
            self._renewed = t0  # the lease started no later than this
            self.store.fence = (self.key, self.value)
            self._leader_url = json.loads(self.value)["url"]
            return
        try:
            lease.revoke()
        except etcd_exc.Etcd3Exception:
            pass  # it expires by itself
        raw = self.store._get(self.key)[0]
        try:
            self._leader_url = json.loads(raw)["url"] if raw else None
        except (ValueError, KeyError, TypeError):
            self._leader_url = None

    def _lose(self) -> None:
        # The fence stays on our old value: any write attempted now fails instead of acting.
        self._lease = None

    def leader_url(self) -> str | None:
        return self._leader_url

    def resign(self) -> None:
        lease, self._lease = self._lease, None
        if lease is not None:
            try:
                lease.revoke()  # deletes the key: a follower wins at its next campaign
            except etcd_exc.Etcd3Exception:
                pass
