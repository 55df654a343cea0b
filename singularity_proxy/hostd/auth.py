"""Who may talk to the host daemon.

One aiohttp app is served on two kinds of socket, and the socket a request came in on decides
how it is checked:
* the local unix socket (mode 0600): the peer's uid from the kernel (SO_PEERCRED) must be root
  or the daemon's own uid.  The mode already keeps others out; the check also covers a socket
  whose mode was loosened, or a descriptor passed to another process.
* TCP (`--listen`): `Authorization: Bearer <token>`, compared in constant time so the answer's
  timing tells nothing about how much of a guess was right.
"""
from __future__ import annotations

import hmac
import socket
import struct
from pathlib import Path
from typing import Awaitable, Callable

from aiohttp import web
from aiohttp.typedefs import Middleware

from singularity_proxy.errors import SingularityError

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
_UCRED = struct.Struct("3i")  # struct ucred: pid, uid, gid


def read_token(path: Path) -> bytes:
    try:
        token = path.read_bytes().strip()
    except OSError as e:
        raise SingularityError(f"cannot read the token file {path}: {e.strerror}") from None
    if not token:
        raise SingularityError(f"the token file {path} is empty")
    return token


def peer_uid(sock: socket.socket) -> int:
    _pid, uid, _gid = _UCRED.unpack(sock.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, _UCRED.size))
    return uid


def _error(status: int, message: str, **headers: str) -> web.Response:
    return web.json_response({"error": message}, status=status, headers=headers)


def bearer_ok(header: str | None, token: bytes) -> bool:
    if not header:
        return False
    scheme, _, given = header.partition(" ")
    if scheme.lower() != "bearer":
        return False
    return hmac.compare_digest(given.strip().encode(), token)


def middleware(*, token: bytes | None, uid: int) -> Middleware:
    @web.middleware
    async def check(request: web.Request, handler: Handler) -> web.StreamResponse:
        sock = request.transport.get_extra_info("socket") if request.transport else None
        if sock is not None and sock.family == socket.AF_UNIX:
            try:
                peer = peer_uid(sock)
            except OSError as e:
                return _error(403, f"cannot read the peer's credentials: {e.strerror}")
            if peer not in (0, uid):
                return _error(403, f"uid {peer} may not control this daemon (root or uid {uid} only)")
            return await handler(request)
        if token is None:  # not reached: TCP is only served with a token (daemon.py)
            return _error(401, "this daemon has no token: use its unix socket")
        header = request.headers.get("Authorization")
        if not bearer_ok(header, token):
            why = "missing Authorization: Bearer <token> header" if not header else "wrong token"
            return _error(401, f"unauthorized: {why} (the token is in the daemon's --token-file)",
                          **{"WWW-Authenticate": 'Bearer realm="singproxy"'})
        return await handler(request)

    return check
