"""`singularity-scheduler serve`: the REST server, leader election and the driver in one process.

One asyncio loop serves HTTP; every ``poll_interval_s`` it renews (or campaigns for) leadership
and, while leader, runs one driver step on a worker thread (the step blocks on host and store
I/O; handlers keep answering meanwhile).  Becoming leader makes a fresh driver, which replays the
event log at its first step; losing leadership drops the driver at once, before anything else is
done.  SIGTERM/SIGINT set a flag; the loop then resigns (a follower takes over without waiting for
the lease to expire) and stops.
"""

from __future__ import annotations

import asyncio
import logging
import os
import signal
import socket
import time
from dataclasses import dataclass
from pathlib import Path

from aiohttp import web

from ..errors import ConfigError
from .config import DaemonConfig
from .driver import Driver
from .fleet import Fleet
from .hosts import HostApi
from .leader import EtcdLeadership, Leadership, SqliteLock
from .server import ServerContext, make_app
from .store import Store, StoreError
from .store_etcd import EtcdStore
from .store_sqlite import SqliteStore
from .telemetry import Telemetry

log = logging.getLogger("singularity.scheduler")


@dataclass(kw_only=True)
class ServeOptions:
    fleet: Path
    listen: str
    token: str
    config: DaemonConfig
    db: Path | None = None
    etcd: str | None = None
    etcd_prefix: str = "/singularity"
    replica_id: str | None = None
    advertise: str | None = None
    leader_ttl_s: int = 5


def parse_listen(listen: str) -> tuple[str, int]:
    host, sep, port = listen.rpartition(":")
    if not sep or not port.isdigit() or not host:
        raise ConfigError(f"--listen {listen!r}: expected HOST:PORT")
    return host, int(port)


class Service:
    def __init__(self, opts: ServeOptions) -> None:
        self.opts = opts
        self.fleet = Fleet.load(opts.fleet)
        self.host, self.port = parse_listen(opts.listen)
        self.url = opts.advertise or f"http://{self.host}:{self.port}"
        self.telemetry = Telemetry()
        self.hosts = HostApi(
            token=opts.token, timeout_s=opts.config.command_timeout_s, status_timeout_s=opts.config.status_timeout_s
        )
        self.store: Store
        self.leadership: Leadership
        if opts.etcd:
            es = EtcdStore(opts.etcd, prefix=opts.etcd_prefix)
            rid = opts.replica_id or f"{socket.gethostname()}-{os.getpid()}"
            self.store = es
            self.leadership = EtcdLeadership(es, replica_id=rid, url=self.url, ttl_s=opts.leader_ttl_s)
        else:
            db = opts.db or opts.config.data_dir / "scheduler.db"
            self.leadership = SqliteLock(db, self.url)  # first: refuse before touching the database
            self.store = SqliteStore(db)
        self.driver: Driver | None = None
        self._leader = False
        self._stop = asyncio.Event()

    def is_leader(self) -> bool:
        return self._leader

    def _lose(self, why: str) -> None:
        if self._leader:
            log.warning("no longer the leader: %s", why)
        self._leader = False
        self.telemetry.leader.set(0)
        if self.driver is not None:
            self.driver.close()
            self.driver = None

    async def _tick(self) -> None:
        leader = await asyncio.to_thread(self.leadership.step)
        if not leader:
            self._lose("lease lost or held by another replica")
            return
        if not self._leader:
            log.info("leader now (%s)", self.url)
            self.driver = Driver(
                fleet=self.fleet, store=self.store, config=self.opts.config, hosts=self.hosts, telemetry=self.telemetry
            )
        self._leader = True
        self.telemetry.leader.set(1)
        driver = self.driver
        assert driver is not None
        try:
            await asyncio.to_thread(driver.step, time.time())
        except StoreError as e:
            # A fenced write refused (we lost the key) or the store is unreachable: stop acting;
            # the next tick campaigns again and a new driver replays the log.
            self._lose(str(e))

    async def run(self) -> int:
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, self._stop.set)
        ctx = ServerContext(
            store=self.store,
            fleet=self.fleet,
            token=self.opts.token,
            data_dir=self.opts.config.data_dir,
            telemetry=self.telemetry,
            hosts=self.hosts,
            heartbeat_ttl_s=self.opts.config.heartbeat_ttl_s,
            is_leader=self.is_leader,
            leader_url=lambda: self.url if self._leader else self.leadership.leader_url(),
            clock=time.time,
        )
        runner = web.AppRunner(make_app(ctx), access_log=None)
        await runner.setup()
        await web.TCPSite(runner, self.host, self.port).start()
        log.info("serving on %s (%s)", self.url, "etcd " + str(self.opts.etcd) if self.opts.etcd else "sqlite")
        try:
            while not self._stop.is_set():
                t0 = time.monotonic()
                try:
                    await self._tick()
                except Exception:  # noqa: BLE001 - a bug in one step must not kill the daemon; logged
                    log.exception("driver step failed")
                    self._lose("step failed")
                left = self.opts.config.poll_interval_s - (time.monotonic() - t0)
                try:
                    await asyncio.wait_for(self._stop.wait(), timeout=max(0.05, left))
                except TimeoutError:
                    pass
        finally:
            self._lose("shutting down")
            await asyncio.to_thread(self.leadership.resign)
            await runner.cleanup()
            self.hosts.close()
            self.store.close()
        return 0
