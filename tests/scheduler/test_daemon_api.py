"""The scheduler daemon's REST API and the user CLI, against a real `singularity-scheduler serve`
(SQLite mode): validation, authentication, and that a refused request changes nothing."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from daemon_support import Scheduler, fleet_file, repo_env, wait_until

TOKEN = "tok-123"


@pytest.fixture(scope="module")
def sched(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Scheduler]:
    tmp = tmp_path_factory.mktemp("sched")
    tok = tmp / "token"
    tok.write_text(TOKEN + "\n")
    fleet = fleet_file(tmp / "fleet.toml", [("h0", "c0", "sim:2"), ("h1", "c0", "sim:2")])
    s = Scheduler(tmp, fleet=fleet, token_file=tok)
    s.tmp = tmp  # type: ignore[attr-defined]
    s.token_file = tok  # type: ignore[attr-defined]
    try:
        s.wait_up()
        yield s
    finally:
        s.kill()


def call(s: Scheduler, method: str, path: str, token: str | None = TOKEN, **kw: Any) -> httpx.Response:
    headers = {"Authorization": f"Bearer {token}"} if token is not None else {}
    return httpx.request(method, s.url + path, headers=headers, timeout=10, **kw)


def jobs(s: Scheduler) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = call(s, "GET", "/v1/jobs").json()["jobs"]
    return out


def cli(s: Scheduler, *args: str, token: bool = True) -> subprocess.CompletedProcess[str]:
    env = repo_env(SINGULARITY_SCHEDULER=s.url)
    env.pop("SINGULARITY_TOKEN", None)
    extra = ["--token-file", str(s.token_file)] if token else []  # type: ignore[attr-defined]
    sub, rest = args[0], list(args[1:])
    if "--" in rest:
        i = rest.index("--")
        rest = rest[:i] + extra + rest[i:]
    else:
        rest = rest + extra
    return subprocess.run(
        [sys.executable, "-P", "-m", "singularity_proxy.cli", sub, *rest],
        capture_output=True, text=True, env=env, timeout=60, check=False,
    )


BAD_BODIES = [
    ({"command": ["x"], "devices": 1, "colour": "red"}, 422, "colour"),
    ({"command": ["x"], "devices": 0}, 422, "devices"),
    ({"command": ["x"], "devices": -2}, 422, "devices"),
    ({"command": ["x"], "devices": "2"}, 422, "devices"),
    ({"command": ["x"], "tier": "gold"}, 422, "tier"),
    ({"command": []}, 422, "command"),
    ({"command": [""]}, 422, "command"),
    ({"devices": 1}, 422, "command"),
    ({"command": ["x"], "devices": 2, "min_devices": 3}, 422, "min_devices"),
    ({"command": ["x"], "devices": 1, "min_devices": 0}, 422, "min_devices"),
    ({"command": ["x"], "devices": 5}, 422, "largest cluster has 4"),
    ({"command": ["x"], "name": "../etc"}, 422, "name"),
    ({"command": ["x"], "cwd": "relative"}, 422, "cwd"),
    ({"command": ["x"], "env": {"A=B": "1"}}, 422, "env"),
]


@pytest.mark.parametrize("body,status,word", BAD_BODIES)
def test_bad_submissions_are_refused_and_change_nothing(sched: Scheduler, body: Any, status: int, word: str) -> None:
    before = call(sched, "GET", "/v1/events").json()["events"]
    n = len(jobs(sched))
    r = call(sched, "POST", "/v1/jobs", json=body)
    assert r.status_code == status, r.text
    assert word in r.json()["error"]
    assert len(jobs(sched)) == n
    assert call(sched, "GET", "/v1/events").json()["events"] == before


def test_not_json_is_400(sched: Scheduler) -> None:
    r = httpx.post(sched.url + "/v1/jobs", content=b"{nope",
                   headers={"Authorization": f"Bearer {TOKEN}", "Content-Type": "application/json"})
    assert r.status_code == 400 and "JSON" in r.json()["error"]


@pytest.mark.parametrize("token", [None, "wrong", TOKEN + "x", "Bearer"])
def test_every_endpoint_needs_the_token(sched: Scheduler, token: str | None) -> None:
    n = len(jobs(sched))
    for method, path, body in [
        ("GET", "/v1/jobs", None), ("POST", "/v1/jobs", {"command": ["x"]}), ("GET", "/v1/jobs/1", None),
        ("DELETE", "/v1/jobs/1", None), ("GET", "/v1/events", None), ("GET", "/metrics", None),
        ("POST", "/v1/hosts/h0/heartbeat", {"url": "http://127.0.0.1:1"}), ("GET", "/v1/health", None),
    ]:
        r = call(sched, method, path, token=token, json=body)
        assert r.status_code == 401, (method, path, r.status_code)
    assert len(jobs(sched)) == n


def test_submit_get_cancel(sched: Scheduler) -> None:
    r = call(sched, "POST", "/v1/jobs", json={"command": ["python", "t.py"], "devices": 2, "min_devices": 1,
                                              "tier": "basic", "name": "api-job", "env": {"K": "v"}})
    assert r.status_code == 201, r.text
    job = r.json()
    assert job["name"] == "api-job" and job["state"] == "queued" and "env" not in job
    assert call(sched, "GET", f"/v1/jobs/{job['id']}").json()["name"] == "api-job"
    assert call(sched, "GET", "/v1/jobs/api-job").json()["id"] == job["id"]
    assert call(sched, "GET", "/v1/jobs/nope").status_code == 404
    dup = call(sched, "POST", "/v1/jobs", json={"command": ["y"], "name": "api-job"})
    assert dup.status_code == 409
    # The daemon picks the job up (no host is alive: it waits).
    wait_until(lambda: any(e["kind"] == "JobArrived" and e["body"]["job"] == job["id"]
                           for e in call(sched, "GET", "/v1/events").json()["events"]), "JobArrived")
    assert call(sched, "DELETE", "/v1/jobs/api-job").status_code == 202
    wait_until(lambda: call(sched, "GET", "/v1/jobs/api-job").json()["state"] == "cancelled", "cancelled")
    assert call(sched, "DELETE", "/v1/jobs/api-job").status_code == 409
    kinds = [e["kind"] for e in call(sched, "GET", "/v1/events").json()["events"] if e["body"].get("job") == job["id"]]
    assert kinds == ["JobArrived", "JobCancelled"]


def test_heartbeats(sched: Scheduler) -> None:
    assert call(sched, "POST", "/v1/hosts/stranger/heartbeat", json={"url": "http://127.0.0.1:9"}).status_code == 403
    assert call(sched, "POST", "/v1/hosts/h0/heartbeat", json={"url": "not a url"}).status_code == 422
    assert call(sched, "POST", "/v1/hosts/h0/heartbeat", json={"url": "http://127.0.0.1:9", "x": 1}).status_code == 422
    r = call(sched, "POST", "/v1/hosts/h0/heartbeat", json={"url": "http://127.0.0.1:9"})
    assert r.status_code == 200 and r.json()["ok"] is True
    # What singproxy serve sends.
    r = call(sched, "POST", "/v1/hosts/h1/heartbeat",
             json={"url": "http://127.0.0.1:9/", "devices": [{"id": "sim:0", "type": "sim", "memory_bytes": 1}],
                   "ranks": {}})
    assert r.status_code == 200


def test_metrics(sched: Scheduler) -> None:
    text = call(sched, "GET", "/metrics").text
    assert 'singularity_jobs{state="queued"}' in text and "singularity_leader 1.0" in text
    assert "singularity_preemptions_total" in text and "singularity_checkpoint_seconds_bucket" in text


def test_second_daemon_on_the_same_database_refuses(sched: Scheduler) -> None:
    tmp: Path = sched.tmp  # type: ignore[attr-defined]
    other = Scheduler(tmp, fleet=tmp / "fleet.toml", token_file=sched.token_file, name="second")  # type: ignore[attr-defined]
    try:
        rc = other.proc.wait(60)
    finally:
        other.kill()
    assert rc != 0 and "another scheduler holds" in other.output()


def test_cli_submit_jobs_cancel_logs(sched: Scheduler) -> None:
    r = cli(sched, "submit", "--name", "cli-job", "--tier", "premium", "--devices", "1", "--env", "A=1",
            "--json", "--", "python", "-c", "print(1)")
    assert r.returncode == 0, r.stderr
    job = json.loads(r.stdout)
    assert job["name"] == "cli-job" and job["tier"] == "premium" and job["command"] == ["python", "-c", "print(1)"]
    r = cli(sched, "jobs", "--json")
    assert r.returncode == 0 and "cli-job" in [j["name"] for j in json.loads(r.stdout)]
    r = cli(sched, "jobs")
    assert r.returncode == 0 and "cli-job" in r.stdout
    # Logs are read from the shared storage when the scheduler has it.
    log = sched.tmp / "data" / "logs" / "cli-job" / "rank0.log"  # type: ignore[attr-defined]
    log.parent.mkdir(parents=True)
    log.write_text("hello from rank 0\n")
    r = cli(sched, "logs", "cli-job")
    assert r.returncode == 0 and r.stdout == "hello from rank 0\n"
    r = cli(sched, "cancel", "cli-job", "--json")
    assert r.returncode == 0 and json.loads(r.stdout)["cancel_requested"] is True
    wait_until(lambda: call(sched, "GET", "/v1/jobs/cli-job").json()["state"] == "cancelled", "cancelled")
    r = cli(sched, "logs", "cli-job", "-f")  # the job has ended: prints what there is and returns
    assert r.returncode == 0 and r.stdout == "hello from rank 0\n"


def test_cli_errors_and_exit_codes(sched: Scheduler) -> None:
    r = cli(sched, "submit", "--devices", "0", "--", "x")
    assert r.returncode == 1 and "devices" in r.stderr
    r = cli(sched, "cancel", "no-such-job")
    assert r.returncode == 1 and "no job" in r.stderr
    r = cli(sched, "jobs", token=False)
    assert r.returncode == 2 and "token" in r.stderr
    r = cli(sched, "submit", "--")
    assert r.returncode == 2 and "no command" in r.stderr
    env = repo_env(SINGULARITY_SCHEDULER="http://127.0.0.1:1", SINGULARITY_TOKEN=TOKEN)
    r = subprocess.run([sys.executable, "-P", "-m", "singularity_proxy.cli", "jobs"], capture_output=True,
                       text=True, env=env, timeout=60, check=False)
    assert r.returncode == 3 and "no scheduler leader reachable" in r.stderr
