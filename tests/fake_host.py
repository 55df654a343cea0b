"""TEST DOUBLE of the host daemon's HTTP boundary (docs/control-plane.md, `singproxy serve`), for the
scheduler driver's unit tests only: it keeps rank records and moves them through the states the
real daemon reports, without running anything.  A checkpoint writes the image's commit point
(manifest.json) under the shared data dir, as the real one does, so the driver sees the image.
The end-to-end tests run the real `singproxy serve`.
"""

from __future__ import annotations

import asyncio
import json
import threading
from pathlib import Path
from typing import Any

from aiohttp import web

BODY = web.RequestKey("body", dict)


class FakeHost:
    def __init__(self, *, name: str, data_dir: Path, devices: int, token: str) -> None:
        self.name = name
        self.data_dir = data_dir
        self.devices = [f"sim:{i}" for i in range(devices)]
        self.token = token
        self.ranks: dict[str, dict[str, Any]] = {}
        self.calls: list[tuple[str, str, dict[str, Any]]] = []  # (method, path, body)
        self.lock = threading.Lock()
        self.url = ""
        self._loop: asyncio.AbstractEventLoop | None = None
        self._runner: web.AppRunner | None = None
        self._thread: threading.Thread | None = None

    # ---- test controls
    def exit(self, rank: str, code: int) -> None:
        with self.lock:
            r = self.ranks[rank]
            r["state"] = "exited" if code == 0 else "failed"
            r["exit_code"] = code

    def forget_all(self) -> None:
        """What a restarted host daemon reports: nothing (its ranks died with it)."""
        with self.lock:
            self.ranks.clear()

    def ops(self, method: str | None = None) -> list[tuple[str, str, dict[str, Any]]]:
        with self.lock:
            return [c for c in self.calls if method is None or c[0] == method]

    # ---- the API
    def _rank(self, name: str, job: str, rank: int, device: str, state: str) -> dict[str, Any]:
        return {
            "name": name, "job": job, "rank": rank, "device": device, "state": state, "exit_code": None,
            "image": str(self.data_dir / "images" / job / f"rank{rank}"), "checkpoints": 0,
            "last_checkpoint_at": None, "pid": 1000 + len(self.ranks),
        }

    @web.middleware
    async def _auth(self, request: web.Request, handler: Any) -> web.StreamResponse:
        if request.headers.get("Authorization") != f"Bearer {self.token}":
            return web.json_response({"error": "unauthorized"}, status=401)
        body = await request.json() if request.can_read_body else {}
        with self.lock:
            self.calls.append((request.method, request.path, body))
        request[BODY] = body
        return await handler(request)

    async def status(self, request: web.Request) -> web.Response:
        with self.lock:
            return web.json_response({
                "host": self.name,
                "devices": [{"id": d, "type": "sim", "memory_bytes": 1 << 30} for d in self.devices],
                "ranks": json.loads(json.dumps(self.ranks)),
            })

    async def start(self, request: web.Request) -> web.Response:
        b = request[BODY]
        name = f"{b['job']}.r{b['rank']}"
        with self.lock:
            r = self.ranks.get(name)
            if r is not None and r["state"] in ("running", "starting"):
                return web.json_response(r, status=200)
            r = self._rank(name, b["job"], b["rank"], b["device"], "running")
            r["command"] = b["command"]
            r["env"] = b["env"]
            self.ranks[name] = r
            return web.json_response(r, status=201)

    async def checkpoint(self, request: web.Request) -> web.Response:
        name = request.match_info["name"]
        with self.lock:
            r = self.ranks.get(name)
            if r is None:
                return web.json_response({"error": "no such rank"}, status=404)
            img = Path(r["image"])
            img.mkdir(parents=True, exist_ok=True)
            (img / "manifest.json").write_text("{}")
            r["checkpoints"] += 1
            if not request[BODY].get("leave_running"):
                r["state"] = "checkpointed"
            out = dict(r, checkpoint_bytes=1000)
            return web.json_response(out)

    async def restore(self, request: web.Request) -> web.Response:
        name = request.match_info["name"]
        b = request[BODY]
        job, _, rank = name.rpartition(".r")
        with self.lock:
            r = self.ranks.get(name) or self._rank(name, job, int(rank), b["device"], "checkpointed")
            if r["state"] == "running" and r["device"] == b["device"]:
                return web.json_response(r)
            if not (Path(b["image"]) / "manifest.json").is_file():
                return web.json_response({"error": "no image"}, status=409)
            r.update(device=b["device"], state="running", exit_code=None)
            self.ranks[name] = r
            return web.json_response(r)

    async def delete(self, request: web.Request) -> web.Response:
        name = request.match_info["name"]
        with self.lock:
            r = self.ranks.pop(name, None)
            if r is None:
                return web.json_response({"error": "no such rank"}, status=404)
            return web.json_response(dict(r, state="exited" if r["state"] in ("exited",) else "failed"))

    # ---- life cycle
    def start_server(self) -> None:
        ready = threading.Event()

        def run() -> None:
            loop = asyncio.new_event_loop()
            self._loop = loop
            app = web.Application(middlewares=[self._auth])
            app.router.add_get("/v1/status", self.status)
            app.router.add_post("/v1/ranks", self.start)
            app.router.add_post("/v1/ranks/{name}/checkpoint", self.checkpoint)
            app.router.add_post("/v1/ranks/{name}/restore", self.restore)
            app.router.add_delete("/v1/ranks/{name}", self.delete)
            self._runner = web.AppRunner(app)
            loop.run_until_complete(self._runner.setup())
            site = web.TCPSite(self._runner, "127.0.0.1", 0)
            loop.run_until_complete(site.start())
            port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
            self.url = f"http://127.0.0.1:{port}"
            ready.set()
            loop.run_forever()
            loop.run_until_complete(self._runner.cleanup())
            loop.close()

        self._thread = threading.Thread(target=run, daemon=True)
        self._thread.start()
        ready.wait(30)

    def stop(self) -> None:
        if self._loop is not None:
            self._loop.call_soon_threadsafe(self._loop.stop)
        if self._thread is not None:
            self._thread.join(30)
