"""The host daemon: its sockets and state directory, the loop, signals, drain.

Two directories, for two different things:
* The *runtime directory* ($SINGULARITY_RUNTIME_DIR, default /tmp/singularity-$UID) holds the
  sockets of the jobs: each supervisor's management socket and, above all, the socket of the
  job's proxy, `jobs/NAME.proxy`.  A restored app reconnects to its proxy at the path it had
  when it was dumped (the shim keeps SINGULARITY_SOCKET; CRIU restores the app's memory, path
  included), so every host must put that socket at the same path: on a fleet each host uses
  the same default runtime directory.  Several host daemons on *one* machine (tests, a
  simulated fleet) must therefore share one runtime directory, which is safe because job
  names are unique fleet-wide: two daemons never run the same rank at once.
* The *state directory* (`--state-dir`, default RUNTIME_DIR/hostd) is the daemon's own: its
  control socket singproxy.sock and its pid file.  It is what keeps daemons on one machine
  apart.

The loop does not act in signal handlers: SIGTERM/SIGINT only set a flag, and the loop then
stops taking work, drains if asked (every running rank checkpointed into its image), ends
every rank, revokes its lease and exits.
"""
from __future__ import annotations

import asyncio
import logging
import os
import signal
import socket
import time
from pathlib import Path
from typing import Any

from aiohttp import web

from singularity_proxy.errors import SingularityError
from singularity_proxy.unix_socket import listen_private
from singularity_proxy.hostd.devices import Device
from singularity_proxy.hostd.heartbeat import EtcdLease, SchedulerHeartbeat
from singularity_proxy.hostd.metrics import Metrics
from singularity_proxy.hostd.ranks import STATES, RankManager
from singularity_proxy.hostd.server import build_app

log = logging.getLogger("singproxy")
SOCKET = "singproxy.sock"
PIDFILE = "singproxy.pid"
TICK_S = 0.2


def default_runtime_dir() -> Path:
    return Path(os.environ.get("SINGULARITY_RUNTIME_DIR") or f"/tmp/singularity-{os.getuid()}")


def default_state_dir() -> Path:
    return default_runtime_dir() / "hostd"


def parse_listen(spec: str) -> tuple[str, int]:
    """'HOST:PORT', '[V6]:PORT' or ':PORT' (every address)."""
    host, sep, port = spec.rpartition(":")
    if not sep or not port.isdigit() or int(port) > 65535:
        raise SingularityError(f"bad --listen {spec!r}: use HOST:PORT")
    return host.strip("[]") or "0.0.0.0", int(port)


def _bind_unix(path: Path) -> socket.socket:
    """The control socket, refusing to take over a live daemon's."""
    return listen_private(path, busy=f"another singproxy already serves {path.parent} (use another --state-dir)")


class HostDaemon:
    def __init__(self, *, name: str, data_dir: Path, state_dir: Path, devices: list[Device],
                 listen: str | None = None, token: bytes | None = None, advertise_url: str | None = None,
                 scheduler_urls: list[str] | None = None, etcd_urls: list[str] | None = None,
                 checkpoint_interval: float = 0.0, drain_on_term: bool = False):
        if listen and token is None:
            raise SingularityError("--listen needs --token-file: remote requests must carry the token")
        if scheduler_urls and etcd_urls:
            raise SingularityError("--scheduler and --etcd exclude each other (heartbeats or an etcd lease)")
        self.name = name
        self.data_dir = data_dir.resolve()
        self.state_dir = state_dir.resolve()
        self.devices = devices
        self.listen = parse_listen(listen) if listen else None
        self.token = token
        self.advertise_url = advertise_url
        self.url: str | None = None
        self.runtime_dir = default_runtime_dir().resolve()
        # The supervisors and singularity_proxy.jobs find the job sockets through this variable.
        os.environ["SINGULARITY_RUNTIME_DIR"] = str(self.runtime_dir)
        self.metrics = Metrics()
        self.ranks = RankManager(data_dir=self.data_dir, runtime_dir=self.runtime_dir, devices=devices,
                                 metrics=self.metrics, checkpoint_interval=checkpoint_interval)
        self.metrics.watch_ranks(lambda: list(self.ranks.ranks.values()), STATES)
        self.beat: SchedulerHeartbeat | EtcdLease | None = None
        if scheduler_urls:
            self.beat = SchedulerHeartbeat(host=name, urls=scheduler_urls, payload=self.heartbeat_payload,
                                           token=token, metrics=self.metrics)
        elif etcd_urls:
            self.beat = EtcdLease(host=name, endpoints=etcd_urls, value=self.lease_value, metrics=self.metrics)
        self.drain_on_term = drain_on_term
        self.stop_requested = False
        self.drain_requested = False
        self.draining = False
        self._drain_results: dict[str, str] = {}
        self._drained: asyncio.Event | None = None
        self._runner: web.AppRunner | None = None
        self._created: list[Path] = []  # removed on exit (never another daemon's socket)

    # --- what the API and the heartbeats report ----------------------------------------
    def status(self) -> dict[str, Any]:
        return {"host": self.name, "url": self.url, "draining": self.draining,
                "devices": [d.to_json() for d in self.devices], "ranks": self.ranks.snapshot()}

    def heartbeat_payload(self) -> dict[str, Any]:
        return {"url": self.url, "devices": [d.to_json() for d in self.devices], "ranks": self.ranks.snapshot(),
                "draining": self.draining}

    def lease_value(self) -> dict[str, Any]:
        return {"url": self.url, "devices": [d.to_json() for d in self.devices]}

    # --- signals: flags only ----------------------------------------------------------
    def request_stop(self, *, drain: bool) -> None:
        self.drain_requested = self.drain_requested or drain
        self.stop_requested = True

    async def drain_and_exit(self) -> dict[str, str]:
        """POST /v1/drain: answered once every rank is checkpointed; the daemon then exits."""
        assert self._drained is not None
        self.request_stop(drain=True)
        await self._drained.wait()
        return self._drain_results

    # --- the loop ------------------------------------------------------------------------
    def step(self, now: float) -> None:
        self.ranks.step(now)

    async def _tick(self, stop: asyncio.Event) -> None:
        while not stop.is_set():
            self.step(time.time())
            try:
                await asyncio.wait_for(stop.wait(), TICK_S)
            except asyncio.TimeoutError:
                pass

    async def _start_http(self) -> None:
        self.state_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
        self.data_dir.mkdir(parents=True, exist_ok=True)
        app = build_app(self, token=self.token)
        self._runner = web.AppRunner(app, access_log=None, handle_signals=False, shutdown_timeout=30)
        await self._runner.setup()
        unix = _bind_unix(self.state_dir / SOCKET)
        self._created.append(self.state_dir / SOCKET)
        await web.SockSite(self._runner, unix).start()
        if self.listen:
            host, port = self.listen
            family = socket.AF_INET6 if ":" in host else socket.AF_INET
            tcp = socket.create_server((host, port), family=family, backlog=128)
            await web.SockSite(self._runner, tcp).start()
            bound = tcp.getsockname()[1]
            shown = socket.getfqdn() if host in ("0.0.0.0", "::") else (f"[{host}]" if ":" in host else host)
            self.url = self.advertise_url or f"http://{shown}:{bound}"
        else:
            self.url = self.advertise_url
        (self.state_dir / PIDFILE).write_text(f"{os.getpid()}\n")
        self._created.append(self.state_dir / PIDFILE)

    async def loop(self) -> int:
        loop = asyncio.get_running_loop()
        self._drained = asyncio.Event()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, lambda: self.request_stop(drain=self.drain_on_term))
        stop_tick, stop_beat = asyncio.Event(), asyncio.Event()
        tasks: list[asyncio.Task[None]] = []
        try:
            await self._start_http()
            log.info("singproxy %s serving %s (%s)%s; devices %s", self.name, self.state_dir / SOCKET,
                     self.runtime_dir, f", {self.url}" if self.url else "", ", ".join(d.id for d in self.devices))
            tasks.append(asyncio.create_task(self._tick(stop_tick)))
            if self.beat:
                tasks.append(asyncio.create_task(self.beat.loop(stop_beat)))
            while not self.stop_requested:
                await asyncio.sleep(0.1)
            self.draining = True
            self.ranks.accepting = False
            if self.drain_requested:
                log.info("draining: checkpointing every running rank")
                self._drain_results = await self.ranks.drain()
                log.info("drained: %s", self._drain_results or "no ranks")
            self._drained.set()
            await self.ranks.stop_all()
        finally:
            stop_tick.set()
            stop_beat.set()
            for t in tasks:
                try:
                    await t
                except Exception:
                    log.exception("a daemon task failed")
            if self.beat:
                await self.beat.close()
            if self._runner:
                await self._runner.cleanup()
            for path in self._created:
                path.unlink(missing_ok=True)
            log.info("singproxy %s stopped", self.name)
        return 0
