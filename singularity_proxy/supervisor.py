"""The job supervisor: `singularity run --job NAME -- CMD` (docs/checkpoint.md).

It owns everything of one job on this host: the job's proxy, the app (its
child, also after a restore: CRIU restores it as a sibling of criu, i.e. a
child of this process), and a management socket on which `singularity
checkpoint / restore / migrate / ps` reach it.  It exits with the app's exit
status.  Requests are served one at a time, in the supervisor's own thread, so
they never overlap.
"""
from __future__ import annotations

import json
import os
import secrets
import select
import shutil
import signal
import socket
import stat
import subprocess
import time
from pathlib import Path
from typing import Any, Callable

from singularity_proxy import image_dir
from singularity_proxy.artifacts import proxied_env
from singularity_proxy.criu import Criu
from singularity_proxy.errors import SingularityError
from singularity_proxy.fence import die_with_parent
from singularity_proxy.jobs import JobRecord, job_socket, proxy_socket, runtime_dir, valid_name
from singularity_proxy.unix_socket import listen_private
from singularity_proxy.proxy_control import (OP_CHECKPOINT, OP_RELEASE, OP_RESTORE, OP_RESUME, OP_STATUS,
                                             RESULT_NOT_READY, ProxyError, manage,
                                             start_proxy, stop_proxy)

Progress = Callable[[dict[str, Any]], None]


def _dying(pid: int) -> bool:
    """Whether `pid` is exiting: a zombie, or SIGKILL pending for it (/proc/PID/status)."""
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return True  # gone (reaped by someone): not a living app either
    fields = dict(line.split(":", 1) for line in status.splitlines() if ":" in line)
    if fields.get("State", "").strip().startswith(("Z", "X")):
        return True
    kill_bit = 1 << (signal.SIGKILL - 1)
    return any(int(fields.get(k, "0").strip() or "0", 16) & kill_bit for k in ("SigPnd", "ShdPnd"))


def _meminfo(field: str) -> int:
    """A /proc/meminfo figure in bytes (0 when absent)."""
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith(field + ":"):
                return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    return 0


def _rss(pid: int) -> int:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    return 0


def _ram_room(directory: Path) -> int:
    """Bytes a migration image may take in `directory` (tmpfs): its free space, bounded by the
    memory the kernel says is available (tmpfs pages are RAM, and a tmpfs may be sized beyond it),
    less a reserve left to everything else ($SINGULARITY_MIGRATE_RAM_RESERVE bytes, default a
    tenth of the machine's memory)."""
    st = os.statvfs(directory)
    free = st.f_bavail * st.f_frsize
    available = _meminfo("MemAvailable")
    if available:
        free = min(free, available)
    raw = os.environ.get("SINGULARITY_MIGRATE_RAM_RESERVE", "")
    try:
        reserve = int(raw) if raw else _meminfo("MemTotal") // 10
    except ValueError:
        raise SingularityError(f"SINGULARITY_MIGRATE_RAM_RESERVE={raw!r} is not a number of bytes") from None
    return free - reserve


def _private_ram_dir() -> Path | None:
    """This user's directory for migration images in RAM ($SINGULARITY_MIGRATE_RAM_DIR, default
    /dev/shm; empty: never in RAM), or None when there is none to use safely."""
    base = os.environ.get("SINGULARITY_MIGRATE_RAM_DIR", "/dev/shm")
    if not base or not Path(base).is_dir():
        return None
    d = Path(base) / f"singularity-{os.getuid()}"
    try:
        d.mkdir(mode=0o700, exist_ok=True)
        st = os.lstat(d)
    except OSError:
        return None
    # /dev/shm is shared by every user: use the directory only if it is really ours and private
    # (not a link or a directory someone else made there first).
    if not stat.S_ISDIR(st.st_mode) or st.st_uid != os.getuid() or st.st_mode & 0o077:
        return None
    return d


class _Phases:
    """Seconds per step of a checkpoint or restore, in the order they ran (for `--json` and
    benchmarks/checkpoint.py: where the time of a migration goes)."""

    def __init__(self) -> None:
        self.phases: dict[str, float] = {}
        self._t = time.monotonic()

    def lap(self, name: str) -> None:
        now = time.monotonic()
        self.phases[name] = round(self.phases.get(name, 0.0) + now - self._t, 4)
        self._t = now


class Supervisor:
    def __init__(self, *, name: str, device: str, command: list[str], app_env: dict[str, str] | None = None):
        self.name = valid_name(name)
        self.device = device
        self.command = command
        # Variables for the app (and its proxy) only, not for this process: a user's PYTHONPATH
        # must not decide which singularity_proxy the supervisor itself imports.
        self.app_env = dict(app_env or {})
        self.proxy: subprocess.Popen | None = None
        self.app_pid = 0
        self.app_proc: subprocess.Popen | None = None
        self.exit_code: int | None = None
        self.record = JobRecord(name=self.name, state="starting", device=device, supervisor_pid=os.getpid(),
                                command=command)
        self._stop = False
        self.shell_job = False
        # Work done after a request is answered (deleting a migration's RAM image): not part of
        # the request's time, yet finished before the next request is served.
        self._after_reply: list[Callable[[], None]] = []

    # --- lifecycle ------------------------------------------------------
    def _env(self, device: str) -> dict[str, str]:
        env = proxied_env(device=device, job=self.name, base={**os.environ, **self.app_env})
        env["SINGULARITY_SOCKET"] = str(proxy_socket(self.name))
        return env

    def _start_proxy(self, device: str) -> None:
        self.proxy = start_proxy(proxy_socket(self.name), self._env(device),
                                 log=runtime_dir() / "jobs" / f"{self.name}.proxy.log")
        self.device = device
        self.record.device = device
        self.record.proxy_pid = self.proxy.pid

    def _stop_proxy(self) -> None:
        if self.proxy:
            stop_proxy(self.proxy, proxy_socket(self.name))
            self.proxy = None

    def _listen(self) -> socket.socket:
        # A live supervisor answering on the socket means the name is taken.
        return listen_private(job_socket(self.name), busy=f"a job named {self.name!r} is already running on this host",
                              backlog=8)

    def run(self, restore_from: Path | None = None) -> int:
        """Runs the job to its end (starting it, or restoring it from an image)."""
        listener = self._listen()
        signal.signal(signal.SIGTERM, lambda *_: setattr(self, "_stop", True))
        try:
            if restore_from:
                self._start_proxy(self.device)
                self.restore(restore_from, self.device, lambda e: None)
            else:
                self._start_proxy(self.device)
                # Without a terminal the app leads its own session, which CRIU dumps whole; with one
                # it stays in the terminal's session and CRIU treats it as a shell job.
                self.shell_job = any(os.isatty(fd) for fd in (0, 1, 2))
                # The app dies with this supervisor (singularity_proxy/fence.py): whoever restores
                # the job elsewhere after this host is gone must not find it still running here.
                self.app_proc = subprocess.Popen(self.command, env=self._env(self.device),
                                                 start_new_session=not self.shell_job,
                                                 preexec_fn=die_with_parent())
                self.app_pid = self.app_proc.pid
                self._set_state("running")
            while self.exit_code is None and not self._stop:
                ready, _, _ = select.select([listener], [], [], 0.1)
                if ready:
                    conn, _ = listener.accept()
                    with conn:
                        self._serve(conn)
                self._reap()
            if self._stop and self.app_pid:
                os.kill(self.app_pid, signal.SIGTERM)
                self._wait_app()
        finally:
            listener.close()
            job_socket(self.name).unlink(missing_ok=True)
            self._stop_proxy()
            self.record.exit_code = self.exit_code
            self._set_state("exited")
        return self.exit_code if self.exit_code is not None else 1

    def _set_state(self, state: str) -> None:
        self.record.state = state
        self.record.app_pid = self.app_pid
        self.record.save()

    def _reap(self) -> None:
        """Notices the app's end (not the kill of a checkpoint: app_pid is 0 then)."""
        if not self.app_pid:
            return
        pid, status = os.waitpid(self.app_pid, os.WNOHANG)
        if pid == self.app_pid:
            self.exit_code = os.waitstatus_to_exitcode(status)
            if self.exit_code < 0:  # killed by a signal: the shell's convention
                self.exit_code = 128 - self.exit_code
            self.app_pid = 0

    def _reap_if_dying(self, grace_s: float = 5.0) -> None:
        """`_reap`, waiting while the app is being killed.  An app killed while CRIU traced it is
        reported to this process only once CRIU is gone and every thread has exited, a moment after
        CRIU's exit: a plain WNOHANG there can still see it alive."""
        deadline = time.monotonic() + grace_s
        while self.app_pid:
            self._reap()
            if not self.app_pid or not _dying(self.app_pid) or time.monotonic() > deadline:
                return
            time.sleep(0.01)

    def _wait_app(self) -> None:
        if self.app_pid:
            _, status = os.waitpid(self.app_pid, 0)
            self.exit_code = os.waitstatus_to_exitcode(status)
            self.app_pid = 0

    # --- requests ---------------------------------------------------------
    def _serve(self, conn: socket.socket) -> None:
        conn.settimeout(30)
        data = b""
        while not data.endswith(b"\n"):
            chunk = conn.recv(65536)
            if not chunk:
                return
            data += chunk
        conn.settimeout(None)

        def send(msg: dict[str, Any]) -> None:
            try:
                conn.sendall((json.dumps(msg) + "\n").encode())
            except OSError:
                pass  # the client went away; the work goes on

        try:
            req = json.loads(data)
            op = req.get("op")
            progress: Progress = lambda event: send({"event": event})
            if op == "status":
                result: dict[str, Any] = {"job": self.record.__dict__}
            elif op == "checkpoint":
                result = self.checkpoint(Path(req["dir"]), bool(req.get("leave_running")), progress,
                                         release_later=True)
            elif op == "restore":
                result = self.restore(Path(req["dir"]), req.get("device") or self.device, progress)
            elif op == "migrate":
                result = self.migrate(req["device"], req.get("dir"), progress)
            else:
                raise SingularityError(f"unknown request {op!r}")
            send({"ok": True, **result})
        except (SingularityError, KeyError, ValueError, OSError) as e:
            send({"ok": False, "error": str(e)})
        finally:
            work, self._after_reply = self._after_reply, []
            for fn in work:
                fn()

    def checkpoint(self, image: Path, leave_running: bool, progress: Progress, *, release_later: bool = False
                   ) -> dict[str, Any]:
        """`release_later` (a stop checkpoint asked for by itself): the proxy frees what it held of
        the job after the answer, not before (a migration frees it first: its restore reuses the
        memory just freed)."""
        if not self.app_pid:
            raise SingularityError(f"job {self.name!r} is not running (state {self.record.state})")
        clock = _Phases()
        criu = Criu.find()
        image = image.resolve()
        ckpt, staging = image_dir.begin(image)
        intact = self._intact(image)
        stdio = image_dir.stdio_keys(self.app_pid)
        self._set_state("checkpointing")
        clock.lap("prepare")
        t0 = time.monotonic()
        progress({"phase": "device", "state": "start"})
        try:
            reply = manage(proxy_socket(self.name), OP_CHECKPOINT, self.name, str(staging / "device.json"),
                           str(image / "chunks"))
        except SingularityError as e:
            # The proxy resumed the app (or the app is gone, or the proxy is): nothing is committed.
            self._after_failure(f"{e}", intact, detached=False)
        t1 = time.monotonic()
        clock.lap("device")
        progress({"phase": "device", "state": "done", "bytes": reply.bytes, "written": reply.bytes_written})
        progress({"phase": "cpu", "state": "start"})
        try:
            criu.dump(self.app_pid, staging / "criu", leave_running=leave_running, shell_job=self.shell_job)
        except SingularityError as e:
            self._after_failure(f"{e}", intact, detached=True)
        t2 = time.monotonic()
        clock.lap("criu")
        progress({"phase": "cpu", "state": "done"})
        stuck = None
        if leave_running:
            manage(proxy_socket(self.name), OP_RESUME, self.name)
            stuck = self._wait_reattached()
            if stuck:
                # The image is whole (CRIU is done): committed below, the job lives on in it.
                self._stop_app()
                leave_running = False
        else:
            self._wait_app()  # CRIU killed it
            self.exit_code = None
        clock.lap("resume" if leave_running else "app_exit")
        try:
            manifest = image_dir.commit(image, ckpt, {
                "job": self.name, "device": self.device, "stdio": stdio, "shell_job": self.shell_job,
                "command": self.command,
                "device_bytes": reply.bytes, "device_bytes_written": reply.bytes_written,
                "chunks": reply.chunks, "chunks_written": reply.chunks_written})
        except OSError as e:
            if not leave_running:
                # The app is gone and its image cannot be committed: the job now lives only in the
                # last committed image, if any (the proxy keeps nothing for it).
                manage(proxy_socket(self.name), OP_RELEASE, self.name)
                self.record.last_image = str(intact[0]) if intact else ""
                self._set_state("checkpointed")
            else:
                self._set_state("running")
            raise SingularityError(f"cannot commit the checkpoint in {image}: {e}; {self._intact_text(intact)}"
                                   ) from None
        clock.lap("commit")
        if not leave_running:
            def release() -> None:
                try:
                    manage(proxy_socket(self.name), OP_RELEASE, self.name)
                except SingularityError:
                    pass  # the image is committed; a proxy gone meanwhile held nothing else of the job
            if release_later:
                self._after_reply.append(release)
            else:
                release()
                clock.lap("release")
        t3 = time.monotonic()
        self.record.last_image = str(image)
        self._set_state("running" if leave_running else "checkpointed")
        if stuck:
            raise SingularityError(f"checkpointed to {image}, but the job could not go on after it ({stuck}): it "
                                   f"was stopped; singularity restore {image}")
        return {"image": str(image), "checkpoint": manifest["checkpoint"], "device_bytes": reply.bytes,
                "device_bytes_written": reply.bytes_written, "chunks": reply.chunks,
                "chunks_written": reply.chunks_written, "device_seconds": t1 - t0, "criu_seconds": t2 - t1,
                "commit_seconds": t3 - t2, "seconds": t3 - t0, "left_running": leave_running,
                "proxy_seconds": reply.seconds, "phases": clock.phases}

    def _wait_reattached(self) -> str | None:
        """Waits for the app to be attached to its proxy again (after a restore, or a checkpoint that
        left it running): None once it is — or once it has ended, having run again — else why not.
        A checkpoint or restore answers only then, so a request right after it finds the job whole."""
        timeout = float(os.environ.get("SINGULARITY_REATTACH_TIMEOUT", "60"))
        deadline = time.monotonic() + timeout
        why = "no answer from its proxy"
        while True:
            try:
                manage(proxy_socket(self.name), OP_STATUS, self.name)
                return None
            except ProxyError as e:
                why = str(e)
                if e.result != RESULT_NOT_READY:
                    # Refused (the proxy says why), or unknown there: with the app alive, it will
                    # not come back.  An app already gone reattached, ran and ended meanwhile.
                    self._reap()
                    return why if self.app_pid else None
            except OSError as e:
                return f"its proxy is gone ({e})"
            self._reap()
            if not self.app_pid:
                # An app that cannot reattach waits for ever (the shim retries): one that ended
                # reattached and ran to its end in between two looks, or was killed.  Either way
                # the run loop reports its exit; nothing is left to stop.
                return None
            if time.monotonic() > deadline:
                return f"{why} after {timeout:g} s"
            time.sleep(0.002)

    def _stop_app(self) -> None:
        """Kills an app that cannot go on; the job then lives only in its image."""
        if self.app_pid:
            os.kill(self.app_pid, signal.SIGKILL)
            self._wait_app()
        self.exit_code = None

    def _intact(self, image: Path) -> tuple[Path, str] | None:
        """The committed checkpoint a failed one leaves usable: the one in `image`, else the job's last."""
        for candidate in (image, Path(self.record.last_image) if self.record.last_image else None):
            if candidate is None:
                continue
            try:
                m = image_dir.read_manifest(candidate)
            except SingularityError:
                continue
            if m.get("job") == self.name:
                return candidate, str(m.get("checkpoint"))
        return None

    @staticmethod
    def _intact_text(intact: tuple[Path, str] | None) -> str:
        if not intact:
            return "there is no earlier checkpoint of the job"
        return f"the previous checkpoint ({intact[1]} in {intact[0]}) is intact"

    def _after_failure(self, error: str, intact: tuple[Path, str] | None, *, detached: bool) -> None:
        """A checkpoint failed before its commit: the app goes on if it still lives; always raises.

        Whatever failed (CRIU killed or out of space, the app or the proxy killed), CRIU either
        never touched the app or let it go when it died (ptrace detaches a dead tracer's tasks),
        so a living app is whole and only has to reattach to its proxy."""
        self._reap_if_dying()
        if self.app_pid:
            if detached:
                try:
                    manage(proxy_socket(self.name), OP_RESUME, self.name)
                except SingularityError as e:
                    error += f"; the job cannot reattach to its proxy either ({e})"
            self._set_state("running")
            raise SingularityError(f"checkpoint failed: {error}; the job goes on; {self._intact_text(intact)}")
        if detached:
            try:  # nobody will reattach to what the proxy keeps for the dead app
                manage(proxy_socket(self.name), OP_RELEASE, self.name)
            except SingularityError:
                pass
        raise SingularityError(f"checkpoint failed: the job died during it (exit {self.exit_code}; {error}); "
                               f"{self._intact_text(intact)}"
                               + (f": singularity restore {intact[0]}" if intact else ""))

    def restore(self, image: Path, device: str, progress: Progress, *, private: bool = False) -> dict[str, Any]:
        """`private`: a migration's own RAM image, committed by this process a moment ago: its
        files' SHA-256 are not computed again (sizes are checked; the proxy verifies every
        device chunk as always)."""
        if self.app_pid:
            raise SingularityError(f"job {self.name!r} is running: checkpoint it first")
        clock = _Phases()
        criu = Criu.find()
        image = image.resolve()
        t0 = time.monotonic()
        manifest = image_dir.verify(image, checksums=not private)
        clock.lap("verify")
        if manifest.get("job") != self.name:
            raise SingularityError(f"{image} is an image of job {manifest.get('job')!r}, not {self.name!r}")
        self._set_state("restoring")
        if device != self.device or not self.proxy or self.proxy.poll() is not None:
            self._stop_proxy()
            clock.lap("proxy_stop")
            self._start_proxy(device)
            clock.lap("proxy_start")
        ckpt = image / manifest["checkpoint"]
        progress({"phase": "device", "state": "start"})
        try:
            reply = manage(proxy_socket(self.name), OP_RESTORE, self.name, str(ckpt / "device.json"),
                           str(image / "chunks"))
        except SingularityError:
            self._set_state("checkpointed")
            raise
        t1 = time.monotonic()
        clock.lap("device")
        progress({"phase": "device", "state": "done"})
        progress({"phase": "cpu", "state": "start"})
        self.shell_job = bool(manifest.get("shell_job", False))
        try:
            self.app_pid = criu.restore(ckpt / "criu", stdio={int(k): v for k, v in manifest.get("stdio", {}).items()},
                                        shell_job=self.shell_job, pidfile=ckpt / "restored.pid")
        except SingularityError:
            manage(proxy_socket(self.name), OP_RELEASE, self.name)
            self._set_state("checkpointed")
            raise
        t2 = time.monotonic()
        clock.lap("criu")
        progress({"phase": "cpu", "state": "done"})
        self.exit_code = None
        stuck = self._wait_reattached()
        if stuck:
            self._stop_app()
            try:  # nobody will reattach to what the proxy restored
                manage(proxy_socket(self.name), OP_RELEASE, self.name)
            except (SingularityError, OSError):
                pass
            self._set_state("checkpointed")
            raise SingularityError(f"restore failed: the restored job could not reattach to its proxy ({stuck}); "
                                   f"it was stopped; the image in {image} is intact")
        clock.lap("reattach")
        self._set_state("running")
        return {"image": str(image), "device": device, "pid": self.app_pid, "device_seconds": t1 - t0,
                "criu_seconds": t2 - t1, "seconds": t2 - t0, "proxy_seconds": reply.seconds,
                "phases": clock.phases}

    def migrate(self, device: str, image: str | None, progress: Progress) -> dict[str, Any]:
        """Stop checkpoint into an image, restore on `device`.  Without `image`, a private one: in RAM
        (tmpfs) when it fits (`_migration_image`), deleted once the job runs again; else on disk in
        the runtime directory, kept (its chunks spare the next migration rewriting unchanged memory)."""
        t0 = time.monotonic()
        in_ram = False
        if image:
            target = Path(image)
        else:
            target, in_ram = self._migration_image()
        # (The old proxy releases the job's memory before the new one restores it, not alongside:
        # measured, the restore then reuses the pages just freed and is faster than the release
        # costs; see docs/checkpoint.md.)
        try:
            ck = self.checkpoint(target, False, progress)
        except SingularityError:
            if in_ram:
                shutil.rmtree(target, ignore_errors=True)  # nothing committed (the job goes on or died)
            raise
        try:
            rs = self.restore(target, device, progress, private=in_ram)
        except SingularityError as e:
            where = " (in RAM: it does not survive a reboot)" if in_ram else ""
            raise SingularityError(f"{e}; the job's image stays in {target}{where}: singularity restore {target}"
                                   ) from None
        if in_ram:
            # Nothing needs it once the job runs again, and RAM must not hold a second copy of the
            # job's memory: deleted right after the answer (freeing 1 GiB of tmpfs takes a while).
            self.record.last_image = ""
            self._set_state("running")
            self._after_reply.append(lambda: shutil.rmtree(target, ignore_errors=True))
        return {"checkpoint": ck, "restore": rs, "device": device, "image": str(target.resolve()),
                "image_in_ram": in_ram, "seconds": time.monotonic() - t0}

    def _migration_image(self) -> tuple[Path, bool]:
        """Where a migration without `--dir` writes its image, and whether that is in RAM.

        RAM when the job's device memory (as its proxy counts it) plus the app's resident memory
        (CRIU's part), with a margin, fits `_ram_room`; otherwise the runtime directory, as
        before."""
        disk = runtime_dir() / "jobs" / f"{self.name}.migrate"
        ram = _private_ram_dir()
        if ram is None:
            return disk, False
        try:
            device_bytes = manage(proxy_socket(self.name), OP_STATUS, self.name).bytes
        except SingularityError:
            return disk, False
        need = int((device_bytes + _rss(self.app_pid)) * 1.1) + (64 << 20)
        if _ram_room(ram) < need:
            return disk, False
        return ram / f"{self.name}.migrate-{os.getpid()}-{secrets.token_hex(4)}", True
