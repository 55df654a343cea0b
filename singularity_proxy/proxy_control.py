"""Talking to a proxy's management interface (csrc/common/wire/control.h:
Manage / ManageReply), and starting and stopping a job's proxy."""
from __future__ import annotations

import os
import socket
import struct
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

from singularity_proxy.errors import SingularityError
from singularity_proxy.fence import die_with_parent

from singularity_proxy._core import control as _wire

# Numbers and sizes from wire/control.h itself (through _core); the layouts below must match it.
MSG_MANAGE, MSG_MANAGE_REPLY = _wire.MSG_MANAGE, _wire.MSG_MANAGE_REPLY
OP_CHECKPOINT, OP_RESUME, OP_RELEASE = _wire.OP_CHECKPOINT, _wire.OP_RESUME, _wire.OP_RELEASE
OP_RESTORE, OP_STATUS = _wire.OP_RESTORE, _wire.OP_STATUS
RESULT_NOT_READY = _wire.RESULT_NOT_READY
_MANAGE = struct.Struct(f"<II{_wire.JOB_BYTES}s{_wire.PATH_BYTES}s{_wire.PATH_BYTES}s")
_REPLY = struct.Struct(f"<Ii4QQd{_wire.MESSAGE_BYTES}s")
if (_MANAGE.size, _REPLY.size) != (_wire.MANAGE_SIZE, _wire.MANAGE_REPLY_SIZE):
    raise ImportError("proxy_control.py does not match wire/control.h: rebuild the package")


class ProxyError(SingularityError):
    """The proxy refused or failed a management request (`result`: its CUresult, 0 if it gave none)."""

    def __init__(self, message: str, result: int = 0):
        super().__init__(message)
        self.result = result


@dataclass
class Reply:
    result: int
    bytes: int
    bytes_written: int
    chunks: int
    chunks_written: int
    token: int
    seconds: float
    message: str


def manage(proxy_socket: Path, op: int, job: str, path: str = "", chunks: str = "", timeout: float = 3600) -> Reply:
    with socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET) as s:
        s.settimeout(timeout)
        s.connect(str(proxy_socket))
        s.send(_MANAGE.pack(MSG_MANAGE, op, job.encode(), path.encode(), chunks.encode()))
        data = s.recv(_REPLY.size)
    if len(data) != _REPLY.size:
        raise ProxyError(f"the proxy at {proxy_socket} gave no answer")
    t, result, b, bw, c, cw, token, seconds, msg = _REPLY.unpack(data)
    reply = Reply(result, b, bw, c, cw, token, seconds, msg.split(b"\0", 1)[0].decode(errors="replace"))
    if t != MSG_MANAGE_REPLY or result != 0:
        raise ProxyError(reply.message or f"proxy request failed (CUresult {result})", result)
    return reply


def start_proxy(socket_path: Path, env: dict[str, str], log: Path | None = None) -> subprocess.Popen:
    """A proxy serving `socket_path` on the backend named in env (SINGULARITY_BACKEND)."""
    proxy = env["SINGULARITY_PROXY"]
    penv = {k: v for k, v in env.items() if k != "LD_PRELOAD"}
    if socket_path.exists():
        socket_path.unlink()
    out = open(log, "ab") if log else subprocess.DEVNULL
    # The proxy dies with whoever started it (the job's supervisor): see singularity_proxy/fence.py.
    proc = subprocess.Popen([proxy, "--backend", env["SINGULARITY_BACKEND"], "--socket", str(socket_path)],
                            env=penv, stdout=out, stderr=out, start_new_session=True, preexec_fn=die_with_parent())
    deadline = time.monotonic() + 10
    while not socket_path.exists():
        if proc.poll() is not None or time.monotonic() > deadline:
            raise ProxyError(f"the proxy did not start (see {log})" if log else "the proxy did not start")
        time.sleep(0.01)
    return proc


def stop_proxy(proc: subprocess.Popen, socket_path: Path) -> None:
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
    if socket_path.exists():
        socket_path.unlink()
