"""The ranks a host daemon runs.

A rank is a job supervisor (singularity_proxy/supervisor.py), started as

    python -P -m singularity_proxy.cli run --job NAME.rR --device DEV -- CMD...

or, to bring back a rank from its image when no supervisor of it is left on this host (it ran
on a host that died or was preempted, or it was checkpointed and stopped here),

    python -P -m singularity_proxy.cli _supervise --job NAME.rR --device DEV --restore IMAGE

with stdout and stderr appended to DATA_DIR/logs/NAME/rankR.log.  A restored app writes to
the same file: CRIU's --inherit-fd hands it the new supervisor's fds 1 and 2, which are that
file again (supervisor.py, criu.py).  Checkpoints and in-place restores are requests to the
supervisor's management socket (singularity_proxy.jobs.request).

Everything here runs in the daemon's event-loop thread, which is what keeps the fencing right:
a supervisor is started with PR_SET_PDEATHSIG, which fires when the *thread* that forked it
exits (fence.py), and this thread lives as long as the daemon.  Only the blocking requests to
supervisors go to worker threads (they start nothing).

State of a rank (`state`): starting -> running -> checkpointing -> running (left running) or
checkpointed (stopped: its supervisor is ended, the rank can be restored here or anywhere);
restoring -> running; exited (the app ended with status 0) or failed (a non-zero status, or
its supervisor could not start or restore it: `error` says why).
"""
from __future__ import annotations

import asyncio
import json
import logging
import os
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from singularity_proxy import image_dir, jobs
from singularity_proxy.errors import SingularityError
from singularity_proxy.fence import die_with_parent
from singularity_proxy.hostd.devices import Device
from singularity_proxy.hostd.errors import ApiError, BadRequest, Conflict, NotFound, Unavailable
from singularity_proxy.hostd.metrics import Metrics
from singularity_proxy.hostd.models import RankCreate, RestoreBody, parse_rank_name

log = logging.getLogger("singproxy.ranks")

LIVE = ("starting", "running", "checkpointing", "restoring")
STATES = LIVE + ("checkpointed", "exited", "failed")
# How long a supervisor gets to end its app and proxy after SIGTERM before it is killed (its
# proxy and app then die with it: fence.py).
GRACE_S = 10.0
# A restore returns once the app runs again: CRIU plus reloading the device state.
RESTORE_TIMEOUT_S = 600.0
# An app is checkpointable only while attached to its proxy, and it first attaches on its own
# time: at its first CUDA call.  (After a leave-running checkpoint or a restore the supervisor
# answers only once the app is back.)  A checkpoint asked for before that is refused by the
# proxy ("no running job"); it is retried for this long before the refusal is answered.
ATTACH_WAIT_S = 15.0
_NOT_ATTACHED = ("no running job", "not attached")


@dataclass(kw_only=True)
class Rank:
    name: str
    job: str
    rank: int
    device: str
    command: list[str]
    env: dict[str, str]
    cwd: str | None
    checkpoint_interval: float
    log: str
    image: str
    state: str = "starting"
    exit_code: int | None = None
    checkpoints: int = 0
    last_checkpoint_at: float | None = None
    pid: int | None = None              # the app's
    supervisor_pid: int | None = None
    error: str | None = None
    device_state_bytes: int = 0         # device memory in the last checkpoint
    # Bookkeeping, not reported.
    proc: subprocess.Popen[bytes] | None = field(default=None, repr=False)
    lock: asyncio.Lock = field(default_factory=asyncio.Lock, repr=False)
    running_since: float = 0.0
    last_periodic_try: float = 0.0
    ending: bool = False                # the daemon ends the supervisor on purpose
    deleted: bool = False

    def to_json(self) -> dict[str, Any]:
        return {"name": self.name, "job": self.job, "rank": self.rank, "device": self.device, "state": self.state,
                "exit_code": self.exit_code, "image": self.image, "checkpoints": self.checkpoints,
                "last_checkpoint_at": self.last_checkpoint_at, "pid": self.pid,
                "supervisor_pid": self.supervisor_pid, "error": self.error, "command": self.command,
                "checkpoint_interval": self.checkpoint_interval}


def _last_error(log_path: str) -> str | None:
    """The supervisor's last complaint in the rank's log (`singularity: ...` on its stderr)."""
    try:
        with open(log_path, "rb") as f:
            f.seek(max(0, os.fstat(f.fileno()).st_size - 8192))
            tail = f.read().decode(errors="replace")
    except OSError:
        return None
    errors = [ln[len("singularity: "):] for ln in tail.splitlines() if ln.startswith("singularity: ")]
    return errors[-1] if errors else None


def _shell_status(code: int) -> int:
    """Killed by signal N (negative in Python) -> 128+N, as a shell reports it."""
    return 128 - code if code < 0 else code


class RankManager:
    def __init__(self, *, data_dir: Path, runtime_dir: Path, devices: list[Device], metrics: Metrics,
                 checkpoint_interval: float = 0.0, grace_s: float = GRACE_S):
        self.data_dir = data_dir
        self.runtime_dir = runtime_dir
        self.devices = {d.id: d for d in devices}
        self.metrics = metrics
        self.default_interval = checkpoint_interval
        self.grace_s = grace_s
        self.ranks: dict[str, Rank] = {}
        self.accepting = True
        self._tasks: set[asyncio.Task[None]] = set()

    # --- lookups -----------------------------------------------------------
    def get(self, name: str) -> Rank:
        parse_rank_name(name)
        rank = self.ranks.get(name)
        if rank is None:
            raise NotFound(f"no rank {name!r} on this host")
        return rank

    def snapshot(self) -> dict[str, dict[str, Any]]:
        return {name: r.to_json() for name, r in sorted(self.ranks.items())}

    def image_path(self, job: str, rank: int) -> Path:
        return self.data_dir / "images" / job / f"rank{rank}"

    def log_path(self, job: str, rank: int) -> Path:
        return self.data_dir / "logs" / job / f"rank{rank}.log"

    def _check_device(self, device: str) -> None:
        if device not in self.devices:
            raise BadRequest(f"unknown device {device!r}: this host has {', '.join(self.devices)}")

    # --- starting ------------------------------------------------------------
    def _env(self, app_env: dict[str, str]) -> dict[str, str]:
        """The supervisor's environment: the daemon's own, plus the request's variables for the
        app alone (SINGULARITY_APP_ENV, read by `singularity run`).  Merged into the supervisor's
        environment, a request's PYTHONPATH would decide which singularity_proxy it imports."""
        env = dict(os.environ)
        env["SINGULARITY_APP_ENV"] = json.dumps(app_env)
        # Ours, whatever the request says: the supervisor must put its sockets where this daemon
        # and every other supervisor of the job look for them (daemon.py explains the sharing).
        env["SINGULARITY_RUNTIME_DIR"] = str(self.runtime_dir)
        sims = [d for d in self.devices if d.startswith("sim:")]
        if sims:
            env["SINGULARITY_SIM_DEVICES"] = str(len(sims))
        return env

    def _spawn(self, rank: Rank, argv: list[str], env: dict[str, str], cwd: str | None) -> None:
        """Starts the rank's supervisor.  Called in the event-loop thread only (fence.py)."""
        path = Path(rank.log)
        path.parent.mkdir(parents=True, exist_ok=True)
        with open(path, "ab") as out:
            rank.proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=out, stderr=out, env=env, cwd=cwd,
                                         start_new_session=True, preexec_fn=die_with_parent())
        rank.supervisor_pid = rank.proc.pid
        rank.pid = None
        rank.ending = False

    def create(self, req: RankCreate) -> tuple[Rank, bool]:
        """Starts a rank; (rank, True), or (the rank already there, False) for a repeated request."""
        name = req.name
        interval = self.default_interval if req.checkpoint_interval is None else req.checkpoint_interval
        self._check_device(req.device)
        existing = self.ranks.get(name)
        if existing:
            theirs = (existing.command, existing.env, existing.cwd)
            if theirs != (req.command, req.env, req.cwd):
                raise Conflict(f"rank {name} already exists here with another command, env or cwd "
                               f"(state {existing.state}): delete it first")
            if existing.device != req.device and existing.state in LIVE:
                raise Conflict(f"rank {name} already runs here on {existing.device}, not {req.device}")
            return existing, False
        if not self.accepting:
            raise Unavailable("this host is shutting down and takes no new ranks")
        if req.cwd is not None and not os.path.isdir(req.cwd):
            raise BadRequest(f"cwd {req.cwd!r} is not a directory on this host")
        rank = Rank(name=name, job=req.job, rank=req.rank, device=req.device, command=list(req.command),
                    env=dict(req.env), cwd=req.cwd, checkpoint_interval=interval,
                    log=str(self.log_path(req.job, req.rank)), image=str(self.image_path(req.job, req.rank)))
        argv = [sys.executable, "-P", "-m", "singularity_proxy.cli", "run", "--job", name, "--device", req.device,
                "--", *req.command]
        try:
            self._spawn(rank, argv, self._env(req.env), req.cwd)
        except OSError as e:
            raise ApiError(f"cannot start rank {name}: {e}") from None
        self.ranks[name] = rank
        self.metrics.rank_started()
        log.info("rank %s started on %s (supervisor %d)", name, rank.device, rank.supervisor_pid)
        return rank, True

    # --- watching ----------------------------------------------------------------
    def _record(self, rank: Rank, pid: int) -> jobs.JobRecord | None:
        """The supervisor's own record of the job, if it is this supervisor's (the runtime
        directory may hold one of an earlier supervisor of the same rank)."""
        try:
            rec = jobs.JobRecord.load(rank.name)
        except (SingularityError, OSError, ValueError, TypeError):
            return None
        return rec if rec.supervisor_pid == pid else None

    def observe(self, rank: Rank, now: float) -> None:
        """Brings the rank's state up to date with its supervisor."""
        proc = rank.proc
        if proc is None:
            return
        code = proc.poll()
        if code is None:
            if rank.state in ("starting", "restoring"):
                rec = self._record(rank, proc.pid)
                if rec and rec.state == "running" and rec.app_pid:
                    rank.state, rank.pid, rank.running_since = "running", rec.app_pid, now
            return
        rank.proc = None
        rank.pid = None
        if rank.ending:
            return  # ended by the daemon: whoever ended it sets the state
        rec = self._record(rank, proc.pid)
        if rec and rec.exit_code is not None:
            rank.exit_code = _shell_status(rec.exit_code)
            rank.state = "exited" if rank.exit_code == 0 else "failed"
            if rank.exit_code:
                rank.error = f"the app exited with status {rank.exit_code}"
        else:
            rank.exit_code = _shell_status(code)
            rank.state = "failed"
            rank.error = _last_error(rank.log) or f"the rank's supervisor exited with status {code}"
        log.info("rank %s %s (exit %s)", rank.name, rank.state, rank.exit_code)

    def step(self, now: float) -> None:
        """Notices supervisors that ended and ranks that came up; starts due periodic checkpoints."""
        for rank in list(self.ranks.values()):
            self.observe(rank, now)
            if (self.accepting and rank.state == "running" and rank.checkpoint_interval > 0
                    and not rank.lock.locked()):
                last = max(rank.last_checkpoint_at or 0.0, rank.running_since, rank.last_periodic_try)
                if now - last >= rank.checkpoint_interval:
                    rank.last_periodic_try = now
                    self._background(self._periodic(rank.name))

    def _background(self, coro: Any) -> None:
        task = asyncio.get_running_loop().create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _periodic(self, name: str) -> None:
        try:
            await self.checkpoint(name, leave_running=True, reason="periodic")
        except ApiError as e:
            log.warning("periodic checkpoint of %s: %s", name, e)

    # --- checkpoint -----------------------------------------------------------------
    async def checkpoint(self, name: str, *, leave_running: bool, reason: str = "requested") -> Rank:
        rank = self.get(name)
        async with rank.lock:
            if rank.deleted:
                raise NotFound(f"rank {name!r} was deleted")
            if rank.state == "checkpointed" and not leave_running:
                return rank  # done already: commands are idempotent
            if rank.state != "running":
                raise Conflict(f"rank {name} is {rank.state}: only a running rank can be checkpointed")
            rank.state = "checkpointing"
            image = Path(rank.image)
            t0 = time.monotonic()
            try:
                result = await self._checkpoint_request(rank, image, leave_running)
            except (SingularityError, OSError, ValueError) as e:
                self.metrics.checkpoint_failed(reason)
                if rank.state == "checkpointing":
                    rank.state = "running"
                self.observe(rank, time.time())
                if rank.deleted:
                    raise NotFound(f"rank {name!r} was deleted during its checkpoint") from None
                if rank.state != "running" or any(w in str(e) for w in _NOT_ATTACHED + ("not running",)):
                    raise Conflict(f"checkpoint of {name} failed: {e} (rank {rank.state})") from None
                raise ApiError(f"checkpoint of {name} failed: {e}") from None
            rank.checkpoints += 1
            rank.last_checkpoint_at = time.time()
            rank.device_state_bytes = int(result.get("device_bytes", 0))
            self.metrics.checkpoint_done(reason, time.monotonic() - t0, int(result.get("device_bytes_written", 0)))
            if leave_running:
                rank.state = "running"
                return rank
            # Stopped: the app is gone; its supervisor (and proxy) would wait forever for a restore
            # request.  A restore, here or on any host, starts a new supervisor instead.
            rank.state, rank.pid = "checkpointed", None
            await self._end_supervisor(rank)
            log.info("rank %s checkpointed to %s", name, image)
            return rank

    async def _checkpoint_request(self, rank: Rank, image: Path, leave_running: bool) -> dict[str, Any]:
        deadline = time.monotonic() + ATTACH_WAIT_S
        while True:
            try:
                return await asyncio.to_thread(jobs.request, rank.name, {"op": "checkpoint", "dir": str(image),
                                                                         "leave_running": leave_running})
            except SingularityError as e:
                # A refused checkpoint changes nothing (the supervisor says so and goes on).
                waiting = any(w in str(e) for w in _NOT_ATTACHED)
                alive = rank.proc is not None and rank.proc.poll() is None and not rank.deleted
                if not (waiting and alive and time.monotonic() < deadline):
                    raise
            await asyncio.sleep(0.2)

    async def _end_supervisor(self, rank: Rank) -> None:
        """SIGTERM (the supervisor stops its app and proxy), SIGKILL after the grace period."""
        proc = rank.proc
        if proc is None:
            return
        rank.ending = True
        if proc.poll() is None:
            proc.terminate()
            deadline = time.monotonic() + self.grace_s
            while proc.poll() is None:
                if time.monotonic() > deadline:
                    proc.kill()
                await asyncio.sleep(0.05)
        rank.proc, rank.pid = None, None

    # --- restore --------------------------------------------------------------------
    def _manifest(self, name: str, image: Path) -> dict[str, Any]:
        try:
            manifest = image_dir.read_manifest(image)
        except image_dir.ImageError as e:
            if not (image / image_dir.MANIFEST).exists():
                raise NotFound(f"no checkpoint image of {name} at {image}") from None
            raise Conflict(f"the image of {name} cannot be restored: {e}") from None
        if manifest.get("job") != name:
            raise BadRequest(f"{image} is an image of {manifest.get('job')!r}, not of {name}")
        return manifest

    async def restore(self, name: str, body: RestoreBody) -> tuple[Rank, bool]:
        """Brings the rank back from its image on `body.device`; (rank, False) if it already runs there."""
        job, r = parse_rank_name(name)
        self._check_device(body.device)
        image = Path(body.image) if body.image else self.image_path(job, r)
        rank = self.ranks.get(name)
        if rank is None:
            if not self.accepting:
                raise Unavailable("this host is shutting down and takes no new ranks")
            manifest = self._manifest(name, image)
            interval = self.default_interval if body.checkpoint_interval is None else body.checkpoint_interval
            rank = Rank(name=name, job=job, rank=r, device=body.device, command=list(manifest.get("command", [])),
                        env={}, cwd=None, checkpoint_interval=interval, log=str(self.log_path(job, r)),
                        image=str(image), state="checkpointed")
            self.ranks[name] = rank
        async with rank.lock:
            if rank.deleted:
                raise NotFound(f"rank {name!r} was deleted")
            if rank.state == "running":
                if rank.device == body.device:
                    return rank, False
                raise Conflict(f"rank {name} runs on {rank.device}: checkpoint it before restoring it elsewhere")
            if rank.state in LIVE:
                raise Conflict(f"rank {name} is {rank.state}")
            if not self.accepting:
                raise Unavailable("this host is shutting down and takes no new ranks")
            self._manifest(name, image)
            if body.checkpoint_interval is not None:
                rank.checkpoint_interval = body.checkpoint_interval
            rank.device, rank.image, rank.state = body.device, str(image), "restoring"
            rank.exit_code, rank.error = None, None
            try:
                if rank.proc is not None and rank.proc.poll() is None:
                    # Its supervisor is still here (it outlived a stop): it restores in place.
                    await asyncio.to_thread(jobs.request, name, {"op": "restore", "dir": str(image),
                                                                 "device": body.device})
                else:
                    argv = [sys.executable, "-P", "-m", "singularity_proxy.cli", "_supervise", "--job", name,
                            "--device", body.device, "--restore", str(image)]
                    self._spawn(rank, argv, self._env(rank.env), rank.cwd)
                await self._until_running(rank)
            except (SingularityError, OSError) as e:
                self.metrics.restore_done(ok=False)
                if isinstance(e, ApiError):
                    raise
                if rank.state == "restoring":
                    rank.state, rank.error = "failed", str(e)
                raise ApiError(f"restore of {name} failed: {e}") from None
            self.metrics.restore_done(ok=True)
            log.info("rank %s restored from %s on %s", name, image, body.device)
            return rank, True

    async def _until_running(self, rank: Rank) -> None:
        deadline = time.monotonic() + RESTORE_TIMEOUT_S
        while True:
            self.observe(rank, time.time())
            if rank.deleted:
                raise Conflict(f"rank {rank.name} was deleted while it was being restored")
            if rank.state == "running":
                return
            if rank.state != "restoring":
                raise ApiError(f"restore of {rank.name} failed: {rank.error or rank.state}")
            if time.monotonic() > deadline:
                raise ApiError(f"restore of {rank.name} did not finish in {RESTORE_TIMEOUT_S:.0f} s")
            await asyncio.sleep(0.05)

    # --- delete, drain, stop -----------------------------------------------------------
    async def delete(self, name: str) -> Rank:
        """Kills the rank (its image stays) and forgets it."""
        rank = self.get(name)
        rank.deleted = True
        del self.ranks[name]
        proc = rank.proc
        if proc is not None:
            await self._end_supervisor(rank)
            # What the app's end looked like, as if it had ended by itself.
            rank.proc, rank.ending = proc, False
            self.observe(rank, time.time())
        log.info("rank %s deleted (%s)", name, rank.state)
        return rank

    async def drain(self, settle_s: float = 30.0) -> dict[str, str]:
        """Takes no new work, then checkpoints every running rank into its image (stopping it).
        Ranks still coming up get `settle_s` to attach to their proxies.  Returns per rank
        'checkpointed' or what went wrong."""
        self.accepting = False
        deadline = time.monotonic() + settle_s
        results: dict[str, str] = {}

        async def one(name: str) -> None:
            while True:
                rank = self.ranks.get(name)
                if rank is None:
                    results[name] = "deleted"
                    return
                if rank.state in ("starting", "restoring") and time.monotonic() < deadline:
                    await asyncio.sleep(0.1)
                    continue
                try:
                    await self.checkpoint(name, leave_running=False, reason="drain")
                    results[name] = "checkpointed"
                    return
                except Conflict as e:
                    # An app not yet attached to its proxy cannot be checkpointed yet.
                    if any(w in str(e) for w in _NOT_ATTACHED) and time.monotonic() < deadline:
                        await asyncio.sleep(0.2)
                        continue
                    results[name] = f"not checkpointed: {e}"
                    return
                except ApiError as e:
                    results[name] = f"not checkpointed: {e}"
                    return

        todo = [n for n, r in self.ranks.items() if r.state in ("starting", "running", "checkpointing", "restoring")]
        await asyncio.gather(*(one(n) for n in todo))
        return results

    async def stop_all(self) -> None:
        """Ends every supervisor (the daemon is exiting)."""
        self.accepting = False
        ranks = [r for r in self.ranks.values() if r.proc is not None]
        await asyncio.gather(*(self._end_supervisor(r) for r in ranks))
        for r in ranks:
            if r.state in LIVE:
                r.state, r.error = "failed", "the host daemon stopped"
        for task in list(self._tasks):
            task.cancel()
