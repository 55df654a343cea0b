"""The scheduler's REST API (docs/control-plane.md), on aiohttp.

Every request must carry ``Authorization: Bearer <token>`` (401 otherwise).  Only the leader
answers; a follower says 503 ``{"error": "not the leader", "leader": URL}`` so clients can follow
the hint.  Bodies are validated by pydantic models that forbid unknown fields; a bad request is
answered 400/422 with a message naming the field, and changes nothing.  The handlers only read the
store and record requests in it (a submission, a cancellation flag, a heartbeat): the driver acts
on them at its next step, so the API never races the controller.
"""

from __future__ import annotations

import asyncio
import hmac
import json
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from aiohttp import web
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from singularity_proxy.launch_spec import Command, Cwd, Env

from .fleet import Fleet
from .hosts import HostApi, HostError
from .store import JobRecord, NameTakenError, NewJob, NotLeaderError, Store, StoreError
from .telemetry import Telemetry

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def _valid_name(v: str) -> str:
    # The same rule as singularity_proxy.jobs.valid_name: the name becomes directory names.
    if not v or len(v) > 60 or v.startswith(".") or not all(c.isalnum() or c in "-_." for c in v):
        raise ValueError("use up to 60 letters, digits, '-', '_' or '.', not starting with '.'")
    if v[1:].isdigit() and v[0] == "j":
        raise ValueError("names j<number> are the scheduler's default names")
    return v


class SubmitBody(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)

    command: Command
    tier: Literal["premium", "standard", "basic"] = "standard"
    devices: int = Field(default=1, ge=1, le=4096)
    min_devices: int | None = Field(default=None, ge=1)
    env: Env = Field(default_factory=dict)
    cwd: Cwd = None
    name: str | None = None




    @field_validator("name")
    @classmethod
    def _name(cls, v: str | None) -> str | None:
        return None if v is None else _valid_name(v)

    @model_validator(mode="after")
    def _sizes(self) -> SubmitBody:
        if self.min_devices is not None and self.min_devices > self.devices:
            raise ValueError(f"min_devices ({self.min_devices}) exceeds devices ({self.devices})")
        return self


class HeartbeatBody(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)

    url: str = Field(pattern=r"^https?://[^/\s]+/?$")
    # What `singproxy serve` sends along; informational (the driver polls GET /v1/status).
    devices: list[dict[str, Any]] | None = None
    ranks: dict[str, Any] | None = None
    # A draining host checkpoints its ranks and exits; its heartbeat then lapses and the jobs
    # resume from those (newest) images.  Nothing to do before that: declaring it failed early
    # would restore an older image while the drain is still writing the newer one.
    draining: bool = False


@dataclass
class ServerContext:
    store: Store
    fleet: Fleet
    token: str
    data_dir: Path
    telemetry: Telemetry
    hosts: HostApi
    heartbeat_ttl_s: float
    is_leader: Callable[[], bool]
    leader_url: Callable[[], str | None]
    clock: Callable[[], float]


CTX = web.AppKey("ctx", ServerContext)


def _err(status: int, message: str, **extra: Any) -> web.Response:
    return web.json_response({"error": message, **extra}, status=status)


def _validation_message(e: ValidationError) -> str:
    parts = []
    for d in e.errors():
        where = ".".join(str(x) for x in d["loc"]) or "body"
        parts.append(f"{where}: {d['msg']}")
    return "; ".join(parts)


async def _io(fn: Callable[..., Any], *args: Any, **kw: Any) -> Any:
    """Store and host calls block (sqlite, etcd over HTTP): off the event loop."""
    return await asyncio.to_thread(fn, *args, **kw)


@web.middleware
async def _guard(request: web.Request, handler: Handler) -> web.StreamResponse:
    ctx = request.app[CTX]
    given = request.headers.get("Authorization", "")
    if not hmac.compare_digest(given.encode(), f"Bearer {ctx.token}".encode()):
        return _err(401, "missing or wrong bearer token")
    if request.path != "/v1/health" and not ctx.is_leader():
        return _err(503, "not the leader", leader=ctx.leader_url())
    try:
        return await handler(request)
    except NotLeaderError:
        return _err(503, "not the leader", leader=ctx.leader_url())
    except StoreError as e:
        return _err(500, f"store: {e}")


async def _body(request: web.Request) -> Any:
    try:
        return await request.json()
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise web.HTTPBadRequest(
            text=json.dumps({"error": f"body is not JSON: {e}"}), content_type="application/json"
        ) from None


def _public(rec: JobRecord) -> dict[str, Any]:
    d = rec.to_json()
    d.pop("env")  # may hold secrets; the submitter knows it
    return d


async def _find(ctx: ServerContext, ref: str) -> JobRecord | None:
    if ref.isdigit():
        got: JobRecord | None = await _io(ctx.store.get_job, int(ref))
        return got
    found: JobRecord | None = await _io(ctx.store.find_job, ref)
    return found


async def health(request: web.Request) -> web.Response:
    ctx = request.app[CTX]
    return web.json_response({"ok": True, "leader": ctx.is_leader(), "leader_url": ctx.leader_url()})


async def submit(request: web.Request) -> web.Response:
    ctx = request.app[CTX]
    raw = await _body(request)
    if not isinstance(raw, dict):
        return _err(400, "body must be a JSON object")
    try:
        b = SubmitBody.model_validate(raw)
    except ValidationError as e:
        return _err(422, _validation_message(e))
    largest = ctx.fleet.largest_gang()
    need = b.min_devices or b.devices
    if need > largest:
        return _err(422, f"devices: the job needs {need} devices; the largest cluster has {largest}")
    job = NewJob(
        command=b.command,
        tier=b.tier,
        devices=b.devices,
        min_devices=b.min_devices or 0,
        env=b.env,
        cwd=b.cwd,
        name=b.name,
    )
    try:
        rec = await _io(ctx.store.add_job, job, now=ctx.clock())
    except NameTakenError as e:
        return _err(409, str(e))
    return web.json_response(_public(rec), status=201)


async def list_jobs(request: web.Request) -> web.Response:
    ctx = request.app[CTX]
    recs = await _io(ctx.store.jobs)
    return web.json_response({"jobs": [_public(r) for r in recs]})


async def get_job(request: web.Request) -> web.Response:
    rec = await _find(request.app[CTX], request.match_info["id"])
    if rec is None:
        return _err(404, f"no job {request.match_info['id']!r}")
    return web.json_response(_public(rec))


async def cancel_job(request: web.Request) -> web.Response:
    ctx = request.app[CTX]
    rec = await _find(ctx, request.match_info["id"])
    if rec is None:
        return _err(404, f"no job {request.match_info['id']!r}")
    if rec.terminal:
        return _err(409, f"job {rec.name} already {rec.state}", job=_public(rec))
    await _io(ctx.store.request_cancel, rec.id)
    rec.cancel_requested = True
    return web.json_response(_public(rec), status=202)


async def job_log(request: web.Request) -> web.Response:
    ctx = request.app[CTX]
    rec = await _find(ctx, request.match_info["id"])
    if rec is None:
        return _err(404, f"no job {request.match_info['id']!r}")
    try:
        rank = int(request.query.get("rank", "0"))
        offset = int(request.query.get("offset", "0"))
    except ValueError:
        return _err(400, "rank and offset must be integers")
    if not 0 <= rank < rec.devices or offset < 0:
        return _err(400, f"rank must be in [0, {rec.devices}) and offset >= 0")
    # Logs live on the shared storage: read them here when this replica shares it ...
    path = ctx.data_dir / "logs" / rec.name / f"rank{rank}.log"
    data: bytes | None = None
    if path.is_file():
        data = await _io(_read_from, path, offset)
    else:
        # ... else ask the host that ran the rank last (or any live host: they share it too).
        live = await _io(ctx.store.live_hosts, now=ctx.clock())
        order = [h for h in reversed(rec.hosts) if h in live] + [h for h in live if h not in rec.hosts]
        for h in order:
            try:
                data = await _io(ctx.hosts.log, live[h].url.rstrip("/"), f"{rec.name}.r{rank}", offset)
                break
            except HostError:
                continue
    if data is None:
        return _err(404, f"no log for {rec.name} rank {rank} yet")
    return web.Response(
        body=data, content_type="text/plain", charset="utf-8", headers={"X-Next-Offset": str(offset + len(data))}
    )


def _read_from(path: Path, offset: int, limit: int = 1 << 20) -> bytes:
    with open(path, "rb") as f:
        f.seek(offset)
        return f.read(limit)


async def events(request: web.Request) -> web.Response:
    ctx = request.app[CTX]
    try:
        since = int(request.query.get("since", "0"))
        limit = int(request.query.get("limit", "1000"))
    except ValueError:
        return _err(400, "since and limit must be integers")
    if since < 0 or not 1 <= limit <= 10000:
        return _err(400, "since must be >= 0 and limit in [1, 10000]")
    evs = await _io(ctx.store.events, since, limit)
    return web.json_response({"events": [e.to_json() for e in evs]})


async def heartbeat(request: web.Request) -> web.Response:
    ctx = request.app[CTX]
    name = request.match_info["name"]
    if name not in ctx.fleet.host_index:
        return _err(403, f"host {name!r} is not in the fleet file")
    raw = await _body(request)
    try:
        b = HeartbeatBody.model_validate(raw)
    except ValidationError as e:
        return _err(422, _validation_message(e))
    await _io(ctx.store.heartbeat, name, b.url.rstrip("/"), now=ctx.clock(), ttl_s=ctx.heartbeat_ttl_s)
    return web.json_response({"ok": True, "ttl_s": ctx.heartbeat_ttl_s})


async def metrics(request: web.Request) -> web.Response:
    ctx = request.app[CTX]
    return web.Response(body=ctx.telemetry.render(), headers={"Content-Type": "text/plain; version=0.0.4"})


def make_app(ctx: ServerContext) -> web.Application:
    app = web.Application(middlewares=[_guard], client_max_size=1 << 20)
    app[CTX] = ctx
    r = app.router
    r.add_get("/v1/health", health)
    r.add_post("/v1/jobs", submit)
    r.add_get("/v1/jobs", list_jobs)
    r.add_get("/v1/jobs/{id}", get_job)
    r.add_delete("/v1/jobs/{id}", cancel_job)
    r.add_get("/v1/jobs/{id}/log", job_log)
    r.add_get("/v1/events", events)
    r.add_post("/v1/hosts/{name}/heartbeat", heartbeat)
    r.add_get("/metrics", metrics)
    return app
