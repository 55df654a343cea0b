"""Where a host's jobs live: the runtime directory, and one record per job."""
from __future__ import annotations

import json
import os
import socket
from dataclasses import asdict, dataclass, field
from pathlib import Path

from singularity_proxy.errors import SingularityError


class JobNotFound(SingularityError):
    """No job of that name on this host."""


def runtime_dir() -> Path:
    """$SINGULARITY_RUNTIME_DIR or /tmp/singularity-<uid>, private to the user."""
    d = Path(os.environ.get("SINGULARITY_RUNTIME_DIR") or f"/tmp/singularity-{os.getuid()}")
    (d / "jobs").mkdir(parents=True, exist_ok=True, mode=0o700)
    return d


def job_socket(name: str) -> Path:
    """The supervisor's management socket of a job."""
    return runtime_dir() / "jobs" / f"{name}.sock"


def proxy_socket(name: str) -> Path:
    """The socket of the job's proxy: the same path for every proxy the job ever
    has, so a restored app finds its new proxy where it left the old one."""
    return runtime_dir() / "jobs" / f"{name}.proxy"


def record_path(name: str) -> Path:
    return runtime_dir() / "jobs" / f"{name}.json"


def valid_name(name: str) -> str:
    if not name or len(name) > 60 or not all(c.isalnum() or c in "-_." for c in name) or name.startswith("."):
        raise SingularityError(f"bad job name {name!r}: use up to 60 letters, digits, '-', '_' or '.'")
    return name


@dataclass
class JobRecord:
    name: str
    state: str                      # running | checkpointing | checkpointed | restoring | exited
    device: str
    supervisor_pid: int
    app_pid: int = 0
    proxy_pid: int = 0
    command: list[str] = field(default_factory=list)
    last_image: str = ""
    exit_code: int | None = None

    def save(self) -> None:
        tmp = record_path(self.name).with_suffix(".json.tmp")
        tmp.write_text(json.dumps(asdict(self), indent=1))
        os.replace(tmp, record_path(self.name))

    @staticmethod
    def load(name: str) -> JobRecord:
        try:
            return JobRecord(**json.loads(record_path(valid_name(name)).read_text()))
        except FileNotFoundError:
            raise JobNotFound(f"no job named {name!r} on this host (see `singularity ps`)") from None

    def alive(self) -> bool:
        """The supervisor still runs (and so the job can be managed)."""
        try:
            os.kill(self.supervisor_pid, 0)
        except OSError:
            return False
        return job_socket(self.name).exists()


def all_jobs() -> list[JobRecord]:
    out = []
    for p in sorted((runtime_dir() / "jobs").glob("*.json")):
        try:
            out.append(JobRecord(**json.loads(p.read_text())))
        except (OSError, ValueError, TypeError):
            continue
    return out


def request(name: str, message: dict, timeout: float = 3600.0) -> dict:
    """One request to a job's supervisor; its answer (raises on errors it reports)."""
    return stream_request(name, message, lambda event: None, timeout)


def stream_request(name: str, message: dict, on_event, timeout: float = 3600.0) -> dict:
    """A request whose progress events are passed to `on_event` as they come."""
    rec = JobRecord.load(name)
    if not rec.alive():
        raise JobNotFound(f"job {name!r} has no supervisor any more (state {rec.state})")
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
        s.settimeout(timeout)
        try:
            s.connect(str(job_socket(name)))
        except (ConnectionRefusedError, FileNotFoundError):
            # It was alive a moment ago: the job has just ended and its supervisor is exiting.
            raise JobNotFound(f"job {name!r} has no supervisor any more (the job has exited)") from None
        s.sendall((json.dumps(message) + "\n").encode())
        reader = s.makefile("r")
        answer = None
        for line in reader:
            msg = json.loads(line)
            if "event" in msg:
                on_event(msg["event"])
                continue
            answer = msg
            break
    if answer is None:
        raise SingularityError(f"job {name!r}: the supervisor closed the connection")
    if not answer.get("ok"):
        raise SingularityError(answer.get("error", "failed"))
    return answer
