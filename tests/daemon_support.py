"""Helpers of the control-plane tests: a private etcd, free ports, a token file, and a whole control
plane on one machine (`Plane`: scheduler daemon(s) plus `singproxy serve` hosts on simulated
devices, driven through the user CLI) with the checks its end-to-end tests share."""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

ETCD = shutil.which("etcd") or "/usr/bin/etcd"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_until(cond, what: str, timeout: float = 30.0, every: float = 0.05):  # type: ignore[no-untyped-def]
    """Poll ``cond`` until it returns something truthy; fail with ``what`` after ``timeout`` s.

    A bound on waiting for something that must happen, not an assertion about how long it took."""
    deadline = time.monotonic() + timeout
    while True:
        v = cond()
        if v:
            return v
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(every)


@contextmanager
def etcd_server(tmp: Path) -> Iterator[str]:
    """A one-member etcd on free ports with its data in ``tmp``; killed (and waited for) on exit."""
    if not os.path.exists(ETCD):
        import pytest

        pytest.skip("etcd is not installed (scripts/setup-system.sh installs it)")
    client, peer = free_port(), free_port()
    url = f"http://127.0.0.1:{client}"
    log = open(tmp / "etcd.log", "wb")
    proc = subprocess.Popen(
        [
            ETCD,
            "--name", "t",
            "--data-dir", str(tmp / "etcd-data"),
            "--listen-client-urls", url,
            "--advertise-client-urls", url,
            "--listen-peer-urls", f"http://127.0.0.1:{peer}",
            "--initial-advertise-peer-urls", f"http://127.0.0.1:{peer}",
            "--initial-cluster", f"t=http://127.0.0.1:{peer}",
            "--log-level", "error",
        ],
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    try:
        def up() -> bool:
            if proc.poll() is not None:
                raise AssertionError(f"etcd exited: {(tmp / 'etcd.log').read_text()[-2000:]}")
            try:
                with urllib.request.urlopen(url + "/version", timeout=1) as r:
                    return r.status == 200
            except OSError:
                return False

        wait_until(up, "etcd to answer", timeout=60)
        yield url
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        log.close()


def fleet_file(path: Path, hosts: list[tuple[str, str, str]]) -> Path:
    """hosts: (name, cluster, devices such as 'sim:2')."""
    path.write_text(
        "".join(f'[[hosts]]\nname = "{n}"\ncluster = "{c}"\ndevices = "{d}"\n\n' for n, c, d in hosts)
    )
    return path


def repo_env(**extra: str) -> dict[str, str]:
    """Environment of a daemon or CLI subprocess: the tests' own (which runs the installed package,
    or a checkout put first on PYTHONPATH by whoever runs the tests), plus ``extra``.  Never the
    source tree by default: it has no compiled parts."""
    env = dict(os.environ)
    env.pop("LD_PRELOAD", None)
    env.update(extra)
    return env


class Scheduler:
    """A `singularity-scheduler serve` subprocess of this checkout."""

    def __init__(self, tmp: Path, *, fleet: Path, token_file: Path, name: str = "s", args: list[str] = ()) -> None:  # type: ignore[assignment]
        import sys

        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.token = token_file.read_text().strip()
        self.log_path = tmp / f"scheduler-{name}-{self.port}.log"
        self.log = open(self.log_path, "wb")
        cmd = [
            sys.executable, "-P", "-m", "scheduler.cli", "serve",
            "--fleet", str(fleet), "--data-dir", str(tmp / "data"),
            "--listen", f"127.0.0.1:{self.port}", "--token-file", str(token_file),
            "--poll-interval", "0.2", *args,
        ]
        self.proc = subprocess.Popen(cmd, stdout=self.log, stderr=subprocess.STDOUT, env=repo_env())

    def health(self) -> dict | None:  # type: ignore[type-arg]
        import httpx

        try:
            r = httpx.get(self.url + "/v1/health", headers={"Authorization": f"Bearer {self.token}"}, timeout=2)
            return r.json() if r.status_code == 200 else None
        except httpx.HTTPError:
            return None

    def wait_up(self, leader: bool | None = True) -> None:
        def ready() -> bool:
            if self.proc.poll() is not None:
                raise AssertionError(f"scheduler exited {self.proc.returncode}: {self.output()[-3000:]}")
            h = self.health()
            return h is not None and (leader is None or h["leader"] == leader)

        wait_until(ready, f"scheduler {self.url} to be up (leader={leader})", timeout=60)

    def output(self) -> str:
        if not self.log.closed:
            self.log.flush()
        return self.log_path.read_text(errors="replace")

    def kill(self, sig: int = signal.SIGKILL) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
        try:
            self.proc.wait(30)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        self.log.close()


# ---------------------------------------------------------------------------------------------
# A control plane end to end (tests/test_control_plane*.py).  Every job there is
# tests/programs/ckpt_job.py, which prints a digest of all its device state each step: whatever the
# control plane does to it, each rank's log must be an uninterrupted run's output.

PROGRAMS = Path(__file__).resolve().parent / "programs"
JOB = "ckpt_job.py"
PAUSE = "0.1"
TOKEN = "e2e-token"
FINAL = ("succeeded", "failed", "cancelled")


class Host:
    """`singproxy serve` with ``devices`` simulated devices, remote control on a TCP port."""

    def __init__(self, base: Path, name: str, *control: str, devices: str = "sim:1") -> None:
        import httpx  # noqa: F401 - fail here, not in a poll loop, if it is missing

        self.name, self.base = name, base
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log_path = base / f"host-{name}.log"
        env = repo_env(SINGULARITY_RUNTIME_DIR=str(base / "run"))
        with open(self.log_path, "ab") as log:
            self.proc = subprocess.Popen(
                [sys.executable, "-P", "-m", "singularity_proxy.hostd.cli", "serve", "--name", name,
                 "--data-dir", str(base / "data"), "--devices", devices, "--state-dir", str(base / f"state-{name}"),
                 "--listen", f"127.0.0.1:{self.port}", "--token-file", str(base / "token"), *control],
                env=env, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
        wait_until(self.up, f"host {name} to answer", timeout=60)

    def _get(self, path: str, timeout: float = 5) -> Any:
        import httpx

        return httpx.get(self.url + path, headers={"Authorization": f"Bearer {TOKEN}"}, timeout=timeout)

    def up(self) -> bool:
        import httpx

        assert self.proc.poll() is None, f"host {self.name} exited:\n{self.log_path.read_text()[-3000:]}"
        try:
            r = self._get("/v1/health", timeout=2)
            return bool(r.status_code == 200 and r.json()["ok"] is True)
        except httpx.HTTPError:
            return False

    def ranks(self) -> dict[str, dict[str, Any]]:
        """This host's ranks as its daemon reports them ({} if it does not answer)."""
        import httpx

        try:
            r = self._get("/v1/status")
        except httpx.HTTPError:
            return {}
        return dict(r.json()["ranks"]) if r.status_code == 200 else {}

    def app_pids(self) -> list[int]:
        return [rk["pid"] for rk in self.ranks().values() if rk.get("pid")]

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait(timeout=60)


class Plane:
    """A scheduler (or two, on etcd), hosts (``hosts``: name -> devices such as "sim:2", all in one
    cluster), and the CLI to talk to them.  ``args``: more options for the scheduler daemon."""

    def __init__(self, base: Path, etcd: str | None = None, checkpoint_interval: float = 0.0,
                 hosts: dict[str, str] | None = None, args: Sequence[str] = ()) -> None:
        self.base = base
        hosts = hosts or {f"h{i}": "sim:1" for i in range(3)}
        (base / "token").write_text(TOKEN + "\n")
        fleet = fleet_file(base / "fleet.toml", [(n, "c0", d) for n, d in hosts.items()])
        sargs = ["--heartbeat-ttl", "3", "--checkpoint-interval", str(checkpoint_interval), "--quantum", "1",
                 *args]
        self.schedulers: list[Scheduler] = []
        self.hosts: dict[str, Host] = {}
        if etcd:
            for rid in ("a", "b"):
                self.schedulers.append(Scheduler(base, fleet=fleet, token_file=base / "token", name=rid,
                                                 args=[*sargs, "--etcd", etcd, "--replica-id", rid]))
            wait_until(lambda: sum(bool((s.health() or {}).get("leader")) for s in self.schedulers) == 1,
                       "one scheduler replica to lead", timeout=60)
            control = ["--etcd", etcd]
        else:
            self.schedulers.append(Scheduler(base, fleet=fleet, token_file=base / "token", name="s", args=sargs))
            self.schedulers[0].wait_up()
            control = ["--scheduler", self.schedulers[0].url]
        for n, d in hosts.items():
            self.hosts[n] = Host(base, n, *control, devices=d)

    def cli(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        env = repo_env(SINGULARITY_SCHEDULER=",".join(s.url for s in self.schedulers), SINGULARITY_TOKEN=TOKEN)
        r = subprocess.run([sys.executable, "-P", "-m", "singularity_proxy.cli", *args], env=env, cwd=PROGRAMS,
                           capture_output=True, text=True, timeout=120)
        if check:
            assert r.returncode == 0, f"singularity {' '.join(args)} → {r.returncode}\n{r.stdout}\n{r.stderr}"
        return r

    def submit(self, name: str, tier: str, steps: int, *, devices: int = 1,
               min_devices: int | None = None) -> None:
        size = ["--devices", str(devices)]
        if min_devices is not None:
            size += ["--min-devices", str(min_devices)]
        self.cli("submit", "--name", name, "--tier", tier, *size, "--env", f"PYTHONPATH={PROGRAMS}",
                 "--env", "PYTHONUNBUFFERED=1", "--", sys.executable, str(PROGRAMS / JOB), str(steps), PAUSE)

    def jobs(self) -> dict[str, dict[str, Any]]:
        """Every job, through the CLI (`singularity jobs --json`)."""
        return {j["name"]: j for j in json.loads(self.cli("jobs", "--json").stdout)}

    def api_jobs(self) -> dict[str, dict[str, Any]]:
        """Every job, straight from the leader's REST API: what polling loops use (a CLI process
        per poll costs a core on a small machine); {} while no replica answers as the leader."""
        import httpx

        for s in self.schedulers:
            try:
                r = httpx.get(s.url + "/v1/jobs", headers={"Authorization": f"Bearer {TOKEN}"}, timeout=5)
            except httpx.HTTPError:
                continue
            if r.status_code == 200:
                return {j["name"]: j for j in r.json()["jobs"]}
        return {}

    def log(self, name: str, rank: int = 0) -> list[str]:
        p = self.base / "data" / "logs" / name / f"rank{rank}.log"
        return p.read_text().splitlines() if p.exists() else []

    def steps_done(self, name: str, rank: int = 0) -> int:
        return sum(ln.startswith("step ") for ln in self.log(name, rank))

    def wait_state(self, name: str, states: tuple[str, ...], timeout: float = 240) -> dict[str, Any]:
        def reached() -> dict[str, Any] | None:
            j = self.api_jobs().get(name)
            return j if j and j["state"] in states else None

        job: dict[str, Any] = wait_until(reached, f"{name} to be {'/'.join(states)}", timeout=timeout, every=0.3)
        return job

    def events(self, kind: str | None = None) -> list[dict[str, Any]]:
        import httpx

        leader = next(s for s in self.schedulers if (s.health() or {}).get("leader"))
        r = httpx.get(leader.url + "/v1/events", params={"since": 0, "limit": 10000},
                      headers={"Authorization": f"Bearer {TOKEN}"}, timeout=10)
        return [e for e in r.json()["events"] if kind is None or e["kind"] == kind]

    def close(self) -> None:
        pids = [p for h in self.hosts.values() for p in h.app_pids()]
        for h in self.hosts.values():
            h.kill()  # fenced: its ranks die with it
        for s in self.schedulers:
            s.kill()
        for pid in pids:  # only if fencing failed (a test of it would then fail, too)
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass

    def diagnostics(self) -> str:
        out = [f"--- {s.log_path.name}\n{s.output()[-3000:]}" for s in self.schedulers]
        out += [f"--- {h.log_path.name}\n{h.log_path.read_text()[-2000:]}" for h in self.hosts.values()]
        return "\n".join(out)


@contextmanager
def running_plane(base: Path, **kw: Any) -> Iterator[Plane]:
    """A `Plane`, closed on exit; its daemons' logs printed if the body failed."""
    p = Plane(base, **kw)
    try:
        yield p
    except BaseException:
        print(p.diagnostics())
        raise
    finally:
        p.close()


_reference: dict[int, list[str]] = {}


def uninterrupted(steps: int) -> list[str]:
    """What ckpt_job.py STEPS PAUSE prints when nothing stops it (run once per STEPS)."""
    from helpers import run_program  # needs the native parts: only the end-to-end tests call this

    if steps not in _reference:
        r = run_program(JOB, str(steps), PAUSE, timeout=300)
        assert r.returncode == 0, r.stderr
        _reference[steps] = r.stdout.splitlines()
    return _reference[steps]


def resumed_at(log: list[str], ref: list[str]) -> int | None:
    """k such that log == ref[:m] + ref[k:] with 0 < k <= m: a run cut after m lines that went on
    from a checkpoint taken after k (the lines in between are printed twice, the result is the
    same).  None if the log is no such thing; a fresh restart would be k == 0."""
    for m in range(len(log), 0, -1):
        rest = log[m:]
        k = len(ref) - len(rest)
        if 0 < k <= m and log[:m] == ref[:m] and ref[k:] == rest:
            return k
    return None
