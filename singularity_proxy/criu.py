"""CRIU: finding a usable one, and dumping/restoring a job's process tree."""
from __future__ import annotations

import os
import re
import shutil
import stat
import subprocess
from dataclasses import dataclass
from pathlib import Path

from singularity_proxy.errors import SingularityError

MIN_MAJOR = 4
INSTALL_HINT = ("CRIU >= 4.0 is needed (CRIU 3.x cannot handle kernels >= 6.13): run scripts/install-criu.sh, "
                "or install Debian 13's 'criu' package")


class CriuError(SingularityError):
    """CRIU is missing, too old, or failed."""


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

    def dump(self, pid: int, images: Path, *, leave_running: bool, log: str = "dump.log") -> None:
        images.mkdir(parents=True, exist_ok=True)
        args = [self.path, "dump", "-t", str(pid), "-D", str(images), "-o", log, "-v2", "--shell-job",
                "--ext-unix-sk", "--file-locks"]
        if leave_running:
            args.append("--leave-running")
        self._run(args, images / log, "dump")

    def restore(self, images: Path, *, inherit: list[str], pidfile: Path, log: str = "restore.log") -> int:
        """Restores detached, as a sibling (a child of this process); returns the root pid."""
        args = [self.path, "restore", "-D", str(images), "-o", log, "-v2", "--shell-job", "--ext-unix-sk",
                "--file-locks", "-d", "--restore-sibling", "--pidfile", str(pidfile)]
        for spec in inherit:
            args += ["--inherit-fd", spec]
        self._run(args, images / log, "restore")
        return int(pidfile.read_text().strip())

    @staticmethod
    def _run(args: list[str], log: Path, what: str) -> None:
        r = subprocess.run(args, capture_output=True, text=True)
        if r.returncode != 0:
            tail = ""
            if log.exists():
                errors = [ln for ln in log.read_text(errors="replace").splitlines() if "Error" in ln]
                tail = "\n".join(errors[-5:])
            raise CriuError(f"criu {what} failed (exit {r.returncode}): {tail or r.stderr.strip()}")


def inherit_fd_specs(fds: tuple[int, ...] = (0, 1, 2)) -> list[str]:
    """--inherit-fd arguments that hand this process's stdio to a restored job.

    The job was started with these same descriptors inherited, so CRIU finds
    the same pipes/files/sockets in its image and reconnects them to ours;
    the job's output keeps going where it went.  Terminals are the shell job's.
    """
    specs = []
    for fd in fds:
        try:
            st = os.fstat(fd)
        except OSError:
            continue
        if stat.S_ISFIFO(st.st_mode):
            specs.append(f"fd[{fd}]:pipe:[{st.st_ino}]")
        elif stat.S_ISSOCK(st.st_mode):
            specs.append(f"fd[{fd}]:socket:[{st.st_ino}]")
        elif stat.S_ISREG(st.st_mode):
            path = os.readlink(f"/proc/self/fd/{fd}")
            specs.append(f"fd[{fd}]:{path.lstrip('/')}")
    return specs
