"""A private listening unix socket: mode 0600 from birth, never taken over from a live owner."""
from __future__ import annotations

import os
import socket
from pathlib import Path

from singularity_proxy.errors import SingularityError


def listen_private(path: Path, *, busy: str, backlog: int = 128) -> socket.socket:
    """Binds `path` (0600 through the umask, so no moment exists where others may connect).  A
    socket file some live process still answers on raises SingularityError(`busy`); one left by
    a process that died is replaced."""
    if path.exists() or path.is_symlink():
        probe = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            probe.connect(str(path))
            raise SingularityError(busy)
        except (ConnectionRefusedError, FileNotFoundError):
            path.unlink(missing_ok=True)
        finally:
            probe.close()
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    old = os.umask(0o177)
    try:
        sock.bind(str(path))
    finally:
        os.umask(old)
    sock.listen(backlog)
    return sock
