"""CRIU: finding a usable one, and dumping/restoring a job's process tree."""
from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
from dataclasses import dataclass
from pathlib import Path

from singularity_proxy.errors import SingularityError

MIN_MAJOR = 4
INSTALL_HINT = ("CRIU >= 4.0 is needed (CRIU 3.x cannot handle kernels >= 6.13): run scripts/install-criu.sh, "
                "or install Debian 13's 'criu' package")


DEFAULT_TIMEOUT_S = 1800.0


class CriuError(SingularityError):
    """CRIU is missing, too old, or failed."""


def _timeout() -> float:
    """Seconds one CRIU run may take: $SINGULARITY_CRIU_TIMEOUT (a positive number) or 30 minutes."""
    raw = os.environ.get("SINGULARITY_CRIU_TIMEOUT", "")
    if not raw:
        return DEFAULT_TIMEOUT_S
    try:
        value = float(raw)
    except ValueError:
        value = -1.0
    if not 0 < value < float("inf"):  # NaN too
        raise CriuError(f"SINGULARITY_CRIU_TIMEOUT={raw!r} is not a positive number of seconds")
    return value


@dataclass(frozen=True)
class Criu:
    path: str
    version: str

    @staticmethod
    def find() -> Criu:
        """The CRIU to use: $SINGULARITY_CRIU, /usr/local/sbin/criu, then PATH; >= 4.0 or a clear error."""
        candidates = [os.environ.get("SINGULARITY_CRIU"), "/usr/local/sbin/criu", shutil.which("criu")]
        seen = []
        for c in candidates:
            if not c or c in seen or not os.access(c, os.X_OK):
                continue
            seen.append(c)
            out = subprocess.run([c, "--version"], capture_output=True, text=True).stdout
            m = re.search(r"Version:\s*(\d+)\.(\d+)", out)
            if m and int(m.group(1)) >= MIN_MAJOR:
                return Criu(c, f"{m.group(1)}.{m.group(2)}")
            if m:
                raise CriuError(f"{c} is CRIU {m.group(1)}.{m.group(2)}; {INSTALL_HINT}")
        raise CriuError(f"CRIU not found; {INSTALL_HINT}")

    def dump(self, pid: int, images: Path, *, leave_running: bool, shell_job: bool, log: str = "dump.log") -> None:
        """`shell_job`: the app shares this process's session and terminal (otherwise it leads its own)."""
        images.mkdir(parents=True, exist_ok=True)
        args = [self.path, "dump", "-t", str(pid), "-D", str(images), "-o", log, "-v2", "--ext-unix-sk",
                "--file-locks"]
        if shell_job:
            args.append("--shell-job")
        if leave_running:
            args.append("--leave-running")
        self._run(args, images / log, "dump")

    def restore(self, images: Path, *, stdio: dict[int, str], shell_job: bool, pidfile: Path,
                log: str = "restore.log") -> int:
        """Restores detached, as a sibling (a child of this process); returns the root pid.

        `stdio` maps the app's fds 0-2 to CRIU's names of what was behind them (`stdio_keys`): this
        process's own fds of the same number, which the app inherited when it started, take their
        place, so its output keeps going where it went."""
        args = [self.path, "restore", "-D", str(images), "-o", log, "-v2", "--ext-unix-sk", "--file-locks",
                "-d", "--restore-sibling", "--pidfile", str(pidfile)]
        if shell_job:
            args.append("--shell-job")
        # Left by an earlier restore of the same image: CRIU refuses to overwrite its pidfile.
        pidfile.unlink(missing_ok=True)
        passed = []
        try:
            for fd, key in stdio.items():
                try:
                    mine = os.dup(int(fd))
                except OSError:
                    continue  # closed here: CRIU reopens the file by its path if it can
                passed.append(mine)
                args += ["--inherit-fd", f"fd[{mine}]:{key}"]
            self._run(args, images / log, "restore", pass_fds=tuple(passed))
        finally:
            for fd in passed:
                os.close(fd)
        return int(pidfile.read_text().strip())

    @staticmethod
    def _run(args: list[str], log: Path, what: str, pass_fds: tuple[int, ...] = ()) -> None:
        # A CRIU that hangs keeps the app frozen: past the limit it is killed, which lets the app go.
        limit = _timeout()
        try:
            r = subprocess.run(args, capture_output=True, text=True, stdin=subprocess.DEVNULL, pass_fds=pass_fds,
                               timeout=limit)
        except subprocess.TimeoutExpired:
            raise CriuError(f"criu {what} did not finish within {limit:g} s (SINGULARITY_CRIU_TIMEOUT) and was "
                            f"killed; its log: {log}") from None
        if r.returncode < 0:
            # Killed: whatever its log says last is not why it stopped.
            try:
                name = signal.Signals(-r.returncode).name
            except ValueError:
                name = f"signal {-r.returncode}"
            raise CriuError(f"criu {what} was killed by {name} before it finished; its log: {log}")
        if r.returncode != 0:
            tail = ""
            if log.exists():
                errors = [ln for ln in log.read_text(errors="replace").splitlines() if "Error" in ln]
                tail = "\n".join(errors[-5:])
            raise CriuError(f"criu {what} failed (exit {r.returncode}): {tail or r.stderr.strip()}")
