"""The host daemon's HTTP API (docs/control-plane.md), as one aiohttp app.

The same app is served on the local unix socket and on TCP; auth.py tells them apart.
Every error is `{"error": "..."}`: 400 bad input, 401/403 not allowed, 404 unknown rank,
409 the rank's state does not allow it, 422 a body that does not fit its model (unknown
field, wrong type, negative number), 503 shutting down, 500 a failure.  A refused request
changes nothing.
"""
from __future__ import annotations

import json
import logging
import os
from typing import TYPE_CHECKING, Any, TypeVar

from aiohttp import web
from pydantic import BaseModel, ValidationError

from singularity_proxy.hostd import auth
from singularity_proxy.hostd.errors import ApiError, BadRequest, NotFound
from singularity_proxy.hostd.metrics import CONTENT_TYPE
from singularity_proxy.hostd.models import CheckpointBody, RankCreate, RestoreBody, parse_rank_name

if TYPE_CHECKING:
    from singularity_proxy.hostd.daemon import HostDaemon

log = logging.getLogger("singproxy.http")
M = TypeVar("M", bound=BaseModel)
DAEMON = web.AppKey("daemon", object)
LOG_CHUNK = 1 << 20  # the most one GET .../log answers (a client follows with ?offset=)


def _describe(e: ValidationError) -> str:
    parts = []
    for err in e.errors():
        where = ".".join(str(x) for x in err["loc"]) or "body"
        parts.append(f"{where}: {err['msg']}")
    return "; ".join(parts)


async def _body(request: web.Request, model: type[M]) -> M:
    raw = await request.read()
    try:
        data: Any = json.loads(raw) if raw.strip() else {}
    except ValueError as e:
        raise BadRequest(f"the body is not JSON: {e}") from None
    if not isinstance(data, dict):
        raise BadRequest("the body must be a JSON object")
    try:
        return model.model_validate(data)
    except ValidationError as e:
        raise ApiError(f"bad request: {_describe(e)}", status=422) from None


@web.middleware
async def _errors(request: web.Request, handler: auth.Handler) -> web.StreamResponse:
    try:
        return await handler(request)
    except ApiError as e:
        return web.json_response({"error": str(e)}, status=e.status)
    except web.HTTPException as e:
        if e.status < 400:
            raise
        return web.json_response({"error": f"{e.reason}: {request.method} {request.path}"}, status=e.status,
                                 headers={k: v for k, v in e.headers.items() if k.lower() == "allow"})
    except Exception as e:  # a bug: say so, and keep serving
        log.exception("%s %s failed", request.method, request.path)
        return web.json_response({"error": f"internal error: {type(e).__name__}: {e}"}, status=500)


def _daemon(request: web.Request) -> HostDaemon:
    return request.app[DAEMON]  # type: ignore[return-value]


async def health(request: web.Request) -> web.Response:
    d = _daemon(request)
    return web.json_response({"ok": True, "host": d.name, "pid": os.getpid(), "url": d.url,
                              "draining": d.draining})


async def status(request: web.Request) -> web.Response:
    return web.json_response(_daemon(request).status())


async def create_rank(request: web.Request) -> web.Response:
    req = await _body(request, RankCreate)
    rank, created = _daemon(request).ranks.create(req)
    return web.json_response(rank.to_json(), status=201 if created else 200)


async def get_rank(request: web.Request) -> web.Response:
    return web.json_response(_daemon(request).ranks.get(request.match_info["name"]).to_json())


async def checkpoint_rank(request: web.Request) -> web.Response:
    name = request.match_info["name"]
    body = await _body(request, CheckpointBody)
    rank = await _daemon(request).ranks.checkpoint(name, leave_running=body.leave_running)
    return web.json_response(rank.to_json())


async def restore_rank(request: web.Request) -> web.Response:
    name = request.match_info["name"]
    parse_rank_name(name)
    body = await _body(request, RestoreBody)
    rank, _ = await _daemon(request).ranks.restore(name, body)
    return web.json_response(rank.to_json())


async def delete_rank(request: web.Request) -> web.Response:
    rank = await _daemon(request).ranks.delete(request.match_info["name"])
    return web.json_response(rank.to_json())


async def rank_log(request: web.Request) -> web.Response:
    """The rank's log from byte `offset` (at most LOG_CHUNK bytes); X-Log-Offset is where the
    next read starts, X-Log-Size the file's size.  Any rank whose log is in the shared data
    directory, also one that runs on another host."""
    d = _daemon(request)
    name = request.match_info["name"]
    job, r = parse_rank_name(name)
    try:
        offset = int(request.query.get("offset", "0"))
    except ValueError:
        raise BadRequest(f"offset must be a number of bytes, not {request.query.get('offset')!r}") from None
    if offset < 0:
        raise BadRequest("offset must not be negative")
    path = d.ranks.log_path(job, r)
    try:
        with open(path, "rb") as f:
            size = os.fstat(f.fileno()).st_size
            f.seek(min(offset, size))
            data = f.read(LOG_CHUNK)
    except FileNotFoundError:
        raise NotFound(f"no log of rank {name!r}") from None
    return web.Response(body=data, content_type="text/plain", charset="utf-8",
                        headers={"X-Log-Offset": str(min(offset, size) + len(data)), "X-Log-Size": str(size)})


async def drain(request: web.Request) -> web.Response:
    results = await _daemon(request).drain_and_exit()
    return web.json_response({"ok": True, "ranks": results})


async def metrics(request: web.Request) -> web.Response:
    return web.Response(body=_daemon(request).metrics.render(), headers={"Content-Type": CONTENT_TYPE})


def build_app(daemon: HostDaemon, *, token: bytes | None) -> web.Application:
    app = web.Application(middlewares=[auth.middleware(token=token, uid=os.getuid()), _errors],
                          client_max_size=4 << 20)
    app[DAEMON] = daemon
    app.router.add_get("/v1/health", health)
    app.router.add_get("/v1/status", status)
    app.router.add_post("/v1/ranks", create_rank)
    app.router.add_get("/v1/ranks/{name}", get_rank)
    app.router.add_delete("/v1/ranks/{name}", delete_rank)
    app.router.add_post("/v1/ranks/{name}/checkpoint", checkpoint_rank)
    app.router.add_post("/v1/ranks/{name}/restore", restore_rank)
    app.router.add_get("/v1/ranks/{name}/log", rank_log)
    app.router.add_post("/v1/drain", drain)
    app.router.add_get("/metrics", metrics)
    return app
