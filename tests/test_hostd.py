"""The host daemon `singproxy serve` (issue 6, docs/control-plane.md), run for real: daemons
as processes, ranks as supervisors of tests/programs/ckpt_job.py on simulated devices, CRIU,
etcd.  Several daemons share one runtime directory (job sockets) and one data directory
(images, logs) and keep their own state directories, as on one machine of a test fleet.
"""
from __future__ import annotations

import asyncio
import json
import os
import shutil
import signal
import socket
import stat
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import httpx
import pytest
from aiohttp import web

from helpers import PROGRAMS, run_program

JOB = "ckpt_job.py"
# Paced by the pause, so a rank lasts seconds whatever the machine's speed: time enough for a
# periodic checkpoint and a stopping one before it ends.
STEPS, PAUSE = 80, "0.1"


def _env(rundir: Path) -> dict[str, str]:
    env = dict(os.environ)
    env["SINGULARITY_RUNTIME_DIR"] = str(rundir)
    env.pop("LD_PRELOAD", None)
    return env


def _alive(pid: int) -> bool:
    try:
        st = Path(f"/proc/{pid}/stat").read_text()
    except (FileNotFoundError, ProcessLookupError):
        return False
    return st.rsplit(")", 1)[1].split()[0] not in ("Z", "X")  # a zombie is dead, merely unreaped


def _wait(pred, what: str, timeout: float = 120.0, every: float = 0.1):
    deadline = time.monotonic() + timeout
    while True:
        value = pred()
        if value:
            return value
        assert time.monotonic() < deadline, f"gave up waiting for {what}"
        time.sleep(every)


class Daemon:
    """`singproxy serve` with 2 simulated devices, its log in BASE/NAME.log."""

    def __init__(self, base: Path, name: str, *extra: str, state: Path | None = None):
        self.base, self.name = base, name
        self.rundir, self.data = base / "run", base / "data"
        self.state = state or base / f"state-{name}"
        self.log_path = base / f"{name}.log"
        with open(self.log_path, "ab") as log:
            self.proc = subprocess.Popen(
                [sys.executable, "-P", "-m", "singularity_proxy.hostd.cli", "serve", "--name", name,
                 "--data-dir", str(self.data), "--devices", "sim:2", "--state-dir", str(self.state), *extra],
                env=_env(self.rundir), stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
        self.client = httpx.Client(transport=httpx.HTTPTransport(uds=str(self.state / "singproxy.sock")),
                                   base_url="http://singproxy", timeout=300)
        _wait(self._up, f"daemon {name} to answer")

    def _up(self) -> bool:
        assert self.proc.poll() is None, f"daemon {self.name} exited:\n{self.log_path.read_text()}"
        try:
            return self.client.get("/v1/health").json()["ok"]
        except (httpx.HTTPError, ValueError):
            return False

    def get(self, path: str, **kw) -> httpx.Response:
        return self.client.get(path, **kw)

    def post(self, path: str, body: object = None, **kw) -> httpx.Response:
        return self.client.post(path, json=body, **kw)

    def rank(self, name: str) -> dict:
        r = self.get(f"/v1/ranks/{name}")
        assert r.status_code == 200, r.text
        return r.json()

    def start_rank(self, job: str, steps: int = STEPS, pause: str = PAUSE, device: str = "sim:0", **extra) -> dict:
        body = {"job": job, "rank": 0, "command": [sys.executable, str(PROGRAMS / JOB), str(steps), pause],
                "env": {"PYTHONPATH": str(PROGRAMS), "PYTHONUNBUFFERED": "1"}, "device": device, **extra}
        r = self.post("/v1/ranks", body)
        assert r.status_code == 201, r.text
        return body

    def log_lines(self, job: str) -> list[str]:
        p = self.data / "logs" / job / "rank0.log"
        return p.read_text().splitlines() if p.exists() else []

    def wait_steps(self, job: str, n: int) -> None:
        _wait(lambda: sum(ln.startswith("step ") for ln in self.log_lines(job)) >= n, f"{n} steps of {job}")

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 120) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
        code = self.proc.wait(timeout=timeout)
        self.client.close()
        return code


def _job_pids(rundir: Path, name: str) -> list[int]:
    rec = json.loads((rundir / "jobs" / f"{name}.json").read_text())
    return [p for p in (rec["supervisor_pid"], rec["app_pid"], rec["proxy_pid"]) if p]


@pytest.fixture
def fleet(tmp_path: Path):
    """Starts daemons on demand; at the end stops them and kills, by pid, whatever of their
    ranks is left (nothing, when fencing works)."""
    started: list[Daemon] = []

    def start(name: str, *extra: str, state: Path | None = None) -> Daemon:
        d = Daemon(tmp_path, name, *extra, state=state)
        started.append(d)
        return d

    yield start
    for d in started:
        if d.proc.poll() is None:
            d.proc.kill()
            d.proc.wait(timeout=60)
    jobs = tmp_path / "run" / "jobs"
    for rec in jobs.glob("*.json") if jobs.exists() else []:
        for pid in _job_pids(tmp_path / "run", rec.stem):
            if _alive(pid):
                os.kill(pid, signal.SIGKILL)


@pytest.fixture(scope="module")
def uninterrupted() -> list[str]:
    r = run_program(JOB, str(STEPS), PAUSE, devices=2, timeout=300)
    assert r.returncode == 0, r.stderr
    return r.stdout.splitlines()


def test_checkpoint_here_restore_on_another_host(fleet, uninterrupted):
    a, b = fleet("a"), fleet("b")
    body = a.start_rank("mig", checkpoint_interval=1.0)
    again = a.post("/v1/ranks", body)
    assert again.status_code == 200 and again.json()["name"] == "mig.r0", again.text  # idempotent
    other = a.post("/v1/ranks", {**body, "command": body["command"][:-1] + ["0.2"]})
    assert other.status_code == 409, other.text
    a.wait_steps("mig", 3)
    _wait(lambda: a.rank("mig.r0")["checkpoints"] >= 1, "a periodic checkpoint")
    # Back to back: the second comes while the app is still reattaching to its proxy after the first.
    r = a.post("/v1/ranks/mig.r0/checkpoint", {"leave_running": True})
    assert r.status_code == 200 and r.json()["state"] == "running", r.text
    r = a.post("/v1/ranks/mig.r0/checkpoint", {"leave_running": False})
    assert r.status_code == 200, r.text
    stopped = r.json()
    assert stopped["state"] == "checkpointed" and stopped["pid"] is None, stopped
    assert a.post("/v1/ranks/mig.r0/checkpoint", {}).json()["state"] == "checkpointed"  # idempotent
    metrics = a.get("/metrics").text
    assert 'singproxy_checkpoints_total{reason="periodic",result="ok"}' in metrics, metrics
    assert 'singproxy_checkpoints_total{reason="requested",result="ok"} 2.0' in metrics, metrics
    assert 'singproxy_ranks{state="checkpointed"} 1.0' in metrics, metrics
    assert "singproxy_checkpoint_seconds_bucket" in metrics

    # Host b brings it back on its other device from the shared image; output goes on in the same log.
    r = b.post("/v1/ranks/mig.r0/restore", {"device": "sim:1"})
    assert r.status_code == 200, r.text
    restored = r.json()
    assert restored["state"] == "running" and restored["device"] == "sim:1" and restored["pid"], restored
    assert b.post("/v1/ranks/mig.r0/restore", {"device": "sim:1"}).status_code == 200  # idempotent
    assert b.post("/v1/ranks/mig.r0/restore", {"device": "sim:0"}).status_code == 409  # runs elsewhere
    done = _wait(lambda: (r := b.rank("mig.r0"))["state"] not in ("running", "checkpointing") and r,
                 "the restored rank to end", timeout=300)
    assert done["state"] == "exited" and done["exit_code"] == 0, done
    assert a.log_lines("mig") == uninterrupted
    assert 'singproxy_restores_total{result="ok"} 1.0' in b.get("/metrics").text

    # The log through the API, from an offset.
    full = (a.data / "logs" / "mig" / "rank0.log").read_bytes()
    r = a.get("/v1/ranks/mig.r0/log", params={"offset": 7})
    assert r.status_code == 200 and r.content == full[7:] and r.headers["X-Log-Offset"] == str(len(full))

    r = a.client.delete("/v1/ranks/mig.r0")
    assert r.status_code == 200 and r.json()["state"] == "checkpointed", r.text
    assert a.get("/v1/ranks/mig.r0").status_code == 404
    assert (a.data / "images" / "mig" / "rank0" / "manifest.json").exists()  # the image stays


def test_bad_input_is_refused_and_changes_nothing(fleet, tmp_path):
    a = fleet("a")
    good = {"job": "j", "rank": 0, "command": ["true"], "device": "sim:0"}
    cases = [
        (a.post("/v1/ranks", {**good, "bogus": 1}), 422, "bogus"),
        (a.post("/v1/ranks", {**good, "rank": -1}), 422, "rank"),
        (a.post("/v1/ranks", {**good, "rank": "0"}), 422, "rank"),
        (a.post("/v1/ranks", {**good, "checkpoint_interval": -5}), 422, "checkpoint_interval"),
        (a.post("/v1/ranks", {**good, "command": []}), 422, "command"),
        (a.post("/v1/ranks", {**good, "job": "../x"}), 422, "job"),
        (a.post("/v1/ranks", {**good, "env": {"A=B": "c"}}), 422, "env"),
        (a.post("/v1/ranks", {**good, "cwd": "relative"}), 422, "cwd"),
        (a.post("/v1/ranks", {k: v for k, v in good.items() if k != "device"}), 422, "device"),
        (a.post("/v1/ranks", {**good, "device": "sim:7"}), 400, "unknown device"),
        (a.post("/v1/ranks", {**good, "device": "cuda:0"}), 400, "unknown device"),
        (a.post("/v1/ranks", {**good, "cwd": str(tmp_path / "nowhere")}), 400, "not a directory"),
        (a.client.post("/v1/ranks", content=b"{not json"), 400, "not JSON"),
        (a.client.post("/v1/ranks", content=b"[1]"), 400, "JSON object"),
        (a.post("/v1/ranks/j.r0/checkpoint", {}), 404, "no rank"),
        (a.post("/v1/ranks/j.r0/checkpoint", {"leave_running": "yes"}), 422, "leave_running"),
        (a.post("/v1/ranks/j.r0/restore", {"device": "sim:0"}), 404, "no checkpoint image"),
        (a.post("/v1/ranks/j.r0/restore", {"device": "sim:5"}), 400, "unknown device"),
        (a.post("/v1/ranks/j.r0/restore", {"device": "sim:0", "image": "rel"}), 422, "image"),
        (a.post("/v1/ranks/nodot/restore", {"device": "sim:0"}), 400, "bad rank name"),
        (a.client.delete("/v1/ranks/j.r0"), 404, "no rank"),
        (a.get("/v1/ranks/j.r0/log"), 404, "no log"),
        (a.get("/v1/ranks/j.r0/log", params={"offset": -1}), 400, "offset"),
        (a.get("/v1/nothing"), 404, "Not Found"),
    ]
    for r, status, words in cases:
        assert r.status_code == status and words in r.json()["error"], (r.request.url, r.status_code, r.text)
    st = a.get("/v1/status").json()
    assert st["ranks"] == {} and [d["id"] for d in st["devices"]] == ["sim:0", "sim:1"]
    assert not (a.data / "logs").exists() and not (a.data / "images").exists()
    assert "singproxy_ranks_started_total 0.0" in a.get("/metrics").text

    # A rank that ends by itself: exit 0 is `exited`, anything else `failed`; both with their status.
    a.post("/v1/ranks", {**good, "job": "ok", "command": ["sh", "-c", "echo hello"]})
    a.post("/v1/ranks", {**good, "job": "bad", "command": ["sh", "-c", "exit 3"], "device": "sim:1"})
    ok = _wait(lambda: (r := a.rank("ok.r0"))["state"] in ("exited", "failed") and r, "rank ok to end")
    bad = _wait(lambda: (r := a.rank("bad.r0"))["state"] in ("exited", "failed") and r, "rank bad to end")
    assert (ok["state"], ok["exit_code"]) == ("exited", 0), ok
    assert (bad["state"], bad["exit_code"]) == ("failed", 3), bad
    assert a.log_lines("ok") == ["hello"]
    r = a.post("/v1/ranks/ok.r0/checkpoint", {})
    assert r.status_code == 409 and "exited" in r.json()["error"], r.text
    r = a.post("/v1/ranks", {**good, "job": "ok", "command": ["sh", "-c", "echo other"]})
    assert r.status_code == 409, r.text

    # DELETE kills a running rank (its supervisor ends the app and the proxy) and forgets it.
    a.post("/v1/ranks", {**good, "job": "long", "command": ["sleep", "600"]})
    _wait(lambda: a.rank("long.r0")["state"] == "running", "rank long to run")
    pids = _job_pids(a.rundir, "long.r0")
    r = a.client.delete("/v1/ranks/long.r0")
    assert r.status_code == 200 and (r.json()["state"], r.json()["exit_code"]) == ("failed", 128 + 15), r.text
    assert not any(map(_alive, pids)), pids
    assert a.get("/v1/ranks/long.r0").status_code == 404


def _status(state: Path, *extra: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-P", "-m", "singularity_proxy.hostd.cli", "status", "--state-dir",
                           str(state), *extra], capture_output=True, text=True, timeout=60)


def _raw_get_as(uid: int, sock: Path) -> str:
    """The status line of GET /v1/health on `sock`, sent by a process running as `uid`."""
    code = ("import socket,sys; s=socket.socket(socket.AF_UNIX); s.connect(sys.argv[1]); "
            "s.sendall(b'GET /v1/health HTTP/1.0\\r\\n\\r\\n'); print(s.recv(200).split(b'\\r\\n')[0].decode())")
    # The system's python: another uid may not be able to run this test's (under /root, say).
    python = shutil.which("python3", path="/usr/bin:/bin") or sys.executable
    r = subprocess.run([python, "-I", "-c", code, str(sock)], user=uid, capture_output=True, text=True, timeout=60)
    return r.stdout.strip() or r.stderr.strip()


@pytest.fixture
def open_dir():
    """A directory outside pytest's private tmp (which other uids cannot traverse)."""
    d = Path(tempfile.mkdtemp(prefix="singproxy-test-", dir="/tmp"))
    yield d
    shutil.rmtree(d, ignore_errors=True)


def test_tokens_peer_credentials_status_and_drain(fleet, tmp_path, open_dir):
    token = tmp_path / "token"
    token.write_text("s3cret-token\n")
    a = fleet("a", "--listen", "127.0.0.1:0", "--token-file", str(token), state=open_dir / "state")
    sock = a.state / "singproxy.sock"
    assert stat.S_IMODE(sock.stat().st_mode) == 0o600
    assert stat.S_IMODE(a.state.stat().st_mode) == 0o700
    url = a.get("/v1/health").json()["url"]
    assert url.startswith("http://127.0.0.1:")
    for headers in ({}, {"Authorization": "Bearer wrong"}, {"Authorization": "Basic s3cret-token"},
                    {"Authorization": "Bearer"}):
        r = httpx.get(f"{url}/v1/status", headers=headers, timeout=30)
        assert r.status_code == 401 and "unauthorized" in r.json()["error"], (headers, r.text)
    r = httpx.get(f"{url}/v1/status", headers={"Authorization": "Bearer s3cret-token"}, timeout=30)
    assert r.status_code == 200 and r.json()["host"] == "a", r.text

    # Not even a world-writable socket lets another uid in: the kernel's peer credentials decide.
    if os.getuid() == 0:
        try:
            open_dir.chmod(0o711)
            a.state.chmod(0o711)
            sock.chmod(0o666)
            answer = _raw_get_as(65534, sock)
            assert answer.split()[1:2] == ["403"], answer
            assert _raw_get_as(0, sock).split()[1:2] == ["200"]
        finally:
            sock.chmod(0o600)
            a.state.chmod(0o700)
            open_dir.chmod(0o700)

    # A second daemon on the same state directory is refused; the first one is untouched.
    r = subprocess.run([sys.executable, "-P", "-m", "singularity_proxy.hostd.cli", "serve", "--name", "a2",
                        "--data-dir", str(a.data), "--devices", "sim:1", "--state-dir", str(a.state)],
                       env=_env(a.rundir), capture_output=True, text=True, timeout=120)
    assert r.returncode == 2 and "already serves" in r.stderr, r.stderr

    st = _status(a.state, "--json")
    assert st.returncode == 0 and json.loads(st.stdout)["host"] == "a", st
    assert _status(a.state).returncode == 0
    r = a.post("/v1/drain", {})
    assert r.status_code == 200 and r.json() == {"ok": True, "ranks": {}}, r.text
    assert a.proc.wait(timeout=120) == 0
    assert not sock.exists() and not (a.state / "singproxy.pid").exists()
    st = _status(a.state)
    assert st.returncode == 1 and "no daemon answers" in st.stderr, st
    assert _status(tmp_path / "never").returncode == 1


def test_a_dead_daemon_takes_its_ranks_with_it(fleet):
    # The apps sleep after their first step: they make no driver call that could fail when their
    # proxy dies, so only the fence (PR_SET_PDEATHSIG) can end them within the wait below.
    a, b = fleet("a"), fleet("b")
    # One rank restored on b from a's image (its app comes back from CRIU: is it fenced too?) ...
    a.start_rank("moved", steps=3, pause="3600")
    a.wait_steps("moved", 1)
    assert a.post("/v1/ranks/moved.r0/checkpoint", {}).json()["state"] == "checkpointed"
    assert b.post("/v1/ranks/moved.r0/restore", {"device": "sim:0"}).json()["state"] == "running"
    # ... and one started on a.
    a.start_rank("local", steps=3, pause="3600", device="sim:1")
    a.wait_steps("local", 1)
    local, moved = _job_pids(a.rundir, "local.r0"), _job_pids(a.rundir, "moved.r0")
    assert len(local) == 3 and len(moved) == 3 and all(map(_alive, local + moved))
    a.stop(signal.SIGKILL)
    _wait(lambda: not any(map(_alive, local)), "a's supervisor, proxy and app to die", timeout=60)
    assert all(map(_alive, moved)), "b's rank died with a"
    b.stop(signal.SIGKILL)
    _wait(lambda: not any(map(_alive, moved)), "b's restored rank to die", timeout=60)


def test_sigterm_with_drain_leaves_a_restorable_image(fleet, uninterrupted):
    a = fleet("a", "--drain")
    a.start_rank("drained")
    a.wait_steps("drained", 3)
    pids = _job_pids(a.rundir, "drained.r0")
    assert a.stop(signal.SIGTERM) == 0
    assert not any(map(_alive, pids))
    assert "drained: {'drained.r0': 'checkpointed'}" in a.log_path.read_text()
    b = fleet("b")
    r = b.post("/v1/ranks/drained.r0/restore", {"device": "sim:0"})
    assert r.status_code == 200, r.text
    done = _wait(lambda: (r := b.rank("drained.r0"))["state"] not in ("running", "checkpointing") and r,
                 "the restored rank to end", timeout=300)
    assert done["state"] == "exited", done
    assert b.log_lines("drained") == uninterrupted


class FakeScheduler:
    """Two scheduler replicas on real sockets: a follower that answers 503 naming the leader,
    and the leader, which records the heartbeats it gets."""

    def __init__(self) -> None:
        self.beats: list[tuple[str, dict, str | None]] = []
        self.loop = asyncio.new_event_loop()
        self.follower_sock = socket.create_server(("127.0.0.1", 0))
        self.leader_sock = socket.create_server(("127.0.0.1", 0))
        self.follower = f"http://127.0.0.1:{self.follower_sock.getsockname()[1]}"
        self.leader = f"http://127.0.0.1:{self.leader_sock.getsockname()[1]}"
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.thread.start()
        asyncio.run_coroutine_threadsafe(self._start(), self.loop).result(30)

    async def _start(self) -> None:
        async def not_leader(request: web.Request) -> web.Response:
            return web.json_response({"error": "not the leader", "leader": self.leader}, status=503)

        async def beat(request: web.Request) -> web.Response:
            self.beats.append((request.match_info["host"], await request.json(),
                               request.headers.get("Authorization")))
            return web.json_response({"ok": True})

        self.runners = []
        for sock, handler in ((self.follower_sock, not_leader), (self.leader_sock, beat)):
            app = web.Application()
            app.router.add_post("/v1/hosts/{host}/heartbeat", handler)
            runner = web.AppRunner(app, access_log=None)
            await runner.setup()
            await web.SockSite(runner, sock).start()
            self.runners.append(runner)

    def close(self) -> None:
        async def stop() -> None:
            for r in self.runners:
                await r.cleanup()
        asyncio.run_coroutine_threadsafe(stop(), self.loop).result(30)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(30)


@pytest.fixture
def scheduler():
    s = FakeScheduler()
    yield s
    s.close()


def test_heartbeats_follow_the_leader(fleet, scheduler, tmp_path):
    token = tmp_path / "token"
    token.write_text("fleet-token")
    a = fleet("a", "--listen", "127.0.0.1:0", "--token-file", str(token),
              "--scheduler", f"{scheduler.follower},{scheduler.leader}")
    url = a.get("/v1/health").json()["url"]
    _wait(lambda: len(scheduler.beats) >= 2, "two heartbeats at the leader", timeout=60)
    host, body, auth = scheduler.beats[-1]
    assert host == "a" and body["url"] == url and auth == "Bearer fleet-token", scheduler.beats[-1]
    assert [d["id"] for d in body["devices"]] == ["sim:0", "sim:1"] and body["ranks"] == {}
    assert 'singproxy_heartbeats_total{result="ok"}' in a.get("/metrics").text


def test_heartbeat_steps_on_injected_time(scheduler):
    from singularity_proxy.hostd.heartbeat import SchedulerHeartbeat
    from singularity_proxy.hostd.metrics import Metrics

    async def run() -> list[bool | None]:
        hb = SchedulerHeartbeat(host="h", urls=[scheduler.follower, scheduler.leader],
                                payload=lambda: {"url": None, "devices": [], "ranks": {}}, token=None,
                                metrics=Metrics())
        try:
            return [await hb.step(t) for t in (100.0, 100.5, 100.99, 101.0, 101.2, 102.5)]
        finally:
            await hb.close()

    assert asyncio.run(run()) == [True, None, None, True, None, True]
    assert [b[0] for b in scheduler.beats] == ["h"] * 3


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def etcd(tmp_path: Path):
    exe = shutil.which("etcd")
    if not exe:
        pytest.fail("etcd is not installed (Debian package etcd-server)")
    client, peer = _free_port(), _free_port()
    c, p = f"http://127.0.0.1:{client}", f"http://127.0.0.1:{peer}"
    with open(tmp_path / "etcd.log", "wb") as log:
        proc = subprocess.Popen([exe, "--name", "t", "--data-dir", str(tmp_path / "etcd"),
                                 "--listen-client-urls", c, "--advertise-client-urls", c,
                                 "--listen-peer-urls", p, "--initial-advertise-peer-urls", p,
                                 "--initial-cluster", f"t={p}"], stdout=log, stderr=subprocess.STDOUT)
    try:
        def up() -> bool:
            assert proc.poll() is None, (tmp_path / "etcd.log").read_text()
            try:
                return httpx.get(f"{c}/health", timeout=5).json().get("health") == "true"
            except (httpx.HTTPError, ValueError):
                return False
        _wait(up, "etcd to start", timeout=60)
        yield c
    finally:
        proc.kill()
        proc.wait(timeout=60)


def test_etcd_lease_key_lives_and_dies_with_the_daemon(fleet, etcd):
    import etcd3gw

    port = int(etcd.rsplit(":", 1)[1])
    client = etcd3gw.client(host="127.0.0.1", port=port, timeout=10)
    a = fleet("a", "--etcd", etcd)
    value = _wait(lambda: client.get("/singularity/hosts/a"), "the host key in etcd", timeout=60)
    info = json.loads(value[0])
    assert [d["id"] for d in info["devices"]] == ["sim:0", "sim:1"] and "url" in info, info
    a.stop(signal.SIGKILL)
    # Nobody refreshes the lease any more: etcd drops the key when its 5 s run out.
    _wait(lambda: not client.get("/singularity/hosts/a"), "the key to expire", timeout=60, every=0.5)
    # A clean exit revokes the lease: the key is gone by the time the daemon has exited.
    b = fleet("b", "--etcd", etcd)
    _wait(lambda: client.get("/singularity/hosts/b"), "the host key of b", timeout=60)
    assert b.stop(signal.SIGTERM) == 0
    assert client.get("/singularity/hosts/b") == []


def test_periodic_checkpoints_are_due_on_injected_time(tmp_path):
    """RankManager.step(now) starts a leave-running checkpoint once `checkpoint_interval` has
    passed since the rank came up or was last checkpointed, and not again while one is due."""
    from singularity_proxy.hostd.devices import Device
    from singularity_proxy.hostd.metrics import Metrics
    from singularity_proxy.hostd.ranks import Rank, RankManager

    calls: list[tuple[str, bool, str]] = []

    class Recording(RankManager):
        async def checkpoint(self, name: str, *, leave_running: bool, reason: str = "requested") -> Rank:
            calls.append((name, leave_running, reason))
            rank = self.ranks[name]
            rank.last_checkpoint_at = rank.last_periodic_try  # as a real one would, at about that time
            return rank

    async def run() -> list[int]:
        m = Recording(data_dir=tmp_path, runtime_dir=tmp_path, metrics=Metrics(),
                      devices=[Device(id="sim:0", type="t", memory_bytes=1)])
        m.ranks["p.r0"] = Rank(name="p.r0", job="p", rank=0, device="sim:0", command=["x"], env={}, cwd=None,
                               checkpoint_interval=10.0, log=str(tmp_path / "log"), image=str(tmp_path / "img"),
                               state="running", running_since=1000.0)
        seen = []
        for now in (1005.0, 1009.9, 1010.0, 1010.1, 1015.0, 1020.0, 1029.0, 1030.5):
            m.step(now)
            await asyncio.sleep(0)  # let the started checkpoint run
            await asyncio.sleep(0)
            seen.append(len(calls))
        return seen

    assert asyncio.run(run()) == [0, 0, 1, 1, 1, 2, 2, 3]
    assert calls[0] == ("p.r0", True, "periodic")
