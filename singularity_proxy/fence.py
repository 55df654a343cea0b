"""Fencing: children that die with the process that started them.

A host daemon that is gone is taken for a dead host, and the scheduler restores its jobs
elsewhere from their last checkpoint; a job left running here would then run twice (two
writers of one log and one image).  So every link of the chain daemon -> supervisor -> proxy
and app is started with PR_SET_PDEATHSIG = SIGKILL: the kernel kills the child when its
parent dies, however it dies (SIGKILL, OOM, crash).

Dangers:
* The signal fires when the parent *thread* that forked the child exits, not the parent
  process.  Spawn only from a thread that lives as long as the process (the main thread, the
  asyncio loop's thread); never from a worker of a thread pool.
* CRIU dumps and restores the setting (its zdtm test `pdeath_sig`), so an app restored by
  `criu restore --restore-sibling` under a new supervisor dies with that supervisor, as long
  as the app it was dumped from had it.
* A parent that dies between fork and prctl is missed; the child then sees a different
  parent and kills itself.
"""
from __future__ import annotations

import ctypes
import os
import signal
from typing import Callable

_PR_SET_PDEATHSIG = 1
_libc = ctypes.CDLL(None, use_errno=True)
_prctl = _libc.prctl
_prctl.argtypes = [ctypes.c_int, ctypes.c_ulong, ctypes.c_ulong, ctypes.c_ulong, ctypes.c_ulong]
_prctl.restype = ctypes.c_int


def die_with_parent() -> Callable[[], None]:
    """A `preexec_fn` for subprocess.Popen: the child gets SIGKILL when this process (rather:
    the calling thread) dies.  Runs in the forked child, so it does nothing but two syscalls."""
    parent = os.getpid()

    def preexec() -> None:
        if _prctl(_PR_SET_PDEATHSIG, int(signal.SIGKILL), 0, 0, 0) != 0:
            err = ctypes.get_errno()
            raise OSError(err, f"prctl(PR_SET_PDEATHSIG): {os.strerror(err)}")
        if os.getppid() != parent:
            os._exit(137)  # the parent died before prctl: nobody would kill us any more

    return preexec
