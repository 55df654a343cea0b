"""User commands that talk to the scheduler daemon (docs/control-plane.md):

    singularity submit [--name N] [--tier T] [--devices N] [--min-devices M] [--env K=V]... -- CMD...
    singularity jobs
    singularity cancel ID
    singularity logs ID [--rank R] [-f]

All take ``--json``, ``--scheduler URL[,URL...]`` (default $SINGULARITY_SCHEDULER) and
``--token-file FILE`` (default $SINGULARITY_TOKEN).  Each URL is tried in turn; a follower's
503 names the leader, which is tried next.  Exit status: 0 done; 1 the scheduler refused the
request (bad input, unknown job, conflict); 2 usage or configuration errors; 3 no leader reachable.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path
from typing import Any

import httpx

from singularity_proxy.errors import SingularityError

EXIT_REFUSED = 1
EXIT_USAGE = 2
EXIT_UNREACHABLE = 3


class ClientError(SingularityError):
    def __init__(self, message: str, code: int) -> None:
        super().__init__(message)
        self.code = code


class SchedulerClient:
    def __init__(self, urls: list[str], token: str, timeout: float = 30.0) -> None:
        self.urls = [u.rstrip("/") for u in urls]
        self.http = httpx.Client(headers={"Authorization": f"Bearer {token}"}, timeout=timeout)

    def request(self, method: str, path: str, **kw: Any) -> httpx.Response:
        tried: list[str] = []
        queue = list(self.urls)
        problems: list[str] = []
        while queue:
            base = queue.pop(0)
            if base in tried:
                continue
            tried.append(base)
            try:
                r = self.http.request(method, base + path, **kw)
            except httpx.HTTPError as e:
                problems.append(f"{base}: {type(e).__name__}: {e}")
                continue
            if r.status_code == 503:
                hint = _error(r).get("leader")
                problems.append(f"{base}: not the leader")
                if isinstance(hint, str) and hint and hint.rstrip("/") not in tried:
                    queue.insert(0, hint.rstrip("/"))
                continue
            if r.status_code == 401:
                raise ClientError(f"{base}: the scheduler refused the token", EXIT_USAGE)
            if r.status_code >= 400:
                raise ClientError(f"{_error(r).get('error', r.text)}", EXIT_REFUSED)
            return r
        raise ClientError("no scheduler leader reachable: " + "; ".join(problems), EXIT_UNREACHABLE)

    def json(self, method: str, path: str, **kw: Any) -> Any:
        return self.request(method, path, **kw).json()


def _error(r: httpx.Response) -> dict[str, Any]:
    try:
        d = r.json()
    except ValueError:
        return {"error": r.text.strip() or f"HTTP {r.status_code}"}
    return d if isinstance(d, dict) else {"error": str(d)}


def _client(args: argparse.Namespace) -> SchedulerClient:
    urls = args.scheduler or os.environ.get("SINGULARITY_SCHEDULER", "")
    urls_list = [u.strip() for u in urls.split(",") if u.strip()]
    if not urls_list:
        raise ClientError("no scheduler: give --scheduler URL or set SINGULARITY_SCHEDULER", EXIT_USAGE)
    if args.token_file:
        try:
            token = Path(args.token_file).read_text().strip()
        except OSError as e:
            raise ClientError(f"cannot read --token-file: {e}", EXIT_USAGE) from None
    else:
        token = os.environ.get("SINGULARITY_TOKEN", "").strip()
    if not token:
        raise ClientError("no token: give --token-file FILE or set SINGULARITY_TOKEN", EXIT_USAGE)
    return SchedulerClient(urls_list, token)


def _out(args: argparse.Namespace, data: Any, text: str) -> None:
    print(json.dumps(data, indent=2) if args.json else text)


def cmd_submit(args: argparse.Namespace) -> int:
    cmd = list(args.cmd)
    if cmd and cmd[0] == "--":
        cmd = cmd[1:]
    if not cmd:
        raise ClientError("no command given: put it after --", EXIT_USAGE)
    env = {}
    for kv in args.env or []:
        k, sep, v = kv.partition("=")
        if not sep or not k:
            raise ClientError(f"--env {kv!r}: expected KEY=VALUE", EXIT_USAGE)
        env[k] = v
    body: dict[str, Any] = {"command": cmd, "tier": args.tier, "devices": args.devices, "env": env,
                            "cwd": os.getcwd()}
    if args.min_devices is not None:
        body["min_devices"] = args.min_devices
    if args.name:
        body["name"] = args.name
    job = _client(args).json("POST", "/v1/jobs", json=body)
    _out(args, job, f"submitted {job['name']} (id {job['id']})")
    return 0


def cmd_jobs(args: argparse.Namespace) -> int:
    jobs = _client(args).json("GET", "/v1/jobs")["jobs"]
    if args.json:
        print(json.dumps(jobs, indent=2))
        return 0
    print(f"{'ID':>5} {'NAME':20} {'TIER':16} {'DEV':>3} {'STATE':13} {'WHERE':24} COMMAND")
    for j in jobs:
        where = ",".join(sorted({f"{p['host']}:{p['device']}" for p in j["placement"]}))
        # A premium request beyond the premium quota runs as standard: show both.
        tier = f"{j['tier']}→{j['served_tier']}" if j.get("served_tier") else j["tier"]
        print(f"{j['id']:>5} {j['name'][:20]:20} {tier:16} {j['devices']:>3} {j['state']:13} "
              f"{where[:24]:24} {' '.join(j['command'])[:50]}")
    return 0


def cmd_cancel(args: argparse.Namespace) -> int:
    job = _client(args).json("DELETE", f"/v1/jobs/{args.id}")
    _out(args, job, f"cancelling {job['name']} (id {job['id']})")
    return 0


def cmd_logs(args: argparse.Namespace) -> int:
    c = _client(args)
    offset = 0
    while True:
        try:
            r = c.request("GET", f"/v1/jobs/{args.id}/log", params={"rank": args.rank, "offset": offset})
            data = r.content
            offset = int(r.headers.get("X-Next-Offset", offset + len(data)))
        except ClientError as e:
            if not (args.follow and e.code == EXIT_REFUSED and "no log" in str(e)):
                raise
            data = b""  # not started yet: keep following
        if args.json and not args.follow:
            print(json.dumps({"job": args.id, "rank": args.rank, "offset": offset,
                              "text": data.decode("utf-8", "replace")}))
            return 0
        sys.stdout.buffer.write(data)
        sys.stdout.flush()
        if not args.follow:
            return 0
        if not data:
            job = c.json("GET", f"/v1/jobs/{args.id}")
            if job["state"] in ("succeeded", "failed", "cancelled"):
                # One more read: output written just before the job ended.
                r = c.request("GET", f"/v1/jobs/{args.id}/log", params={"rank": args.rank, "offset": offset})
                sys.stdout.buffer.write(r.content)
                sys.stdout.flush()
                return 0
            time.sleep(1.0)


def _common(sp: argparse.ArgumentParser) -> None:
    sp.add_argument("--scheduler", default=None, help="URL[,URL...] (default $SINGULARITY_SCHEDULER)")
    sp.add_argument("--token-file", default=None, help="bearer token file (default $SINGULARITY_TOKEN)")
    sp.add_argument("--json", action="store_true")


def add_parsers(sub: Any) -> None:
    sp = sub.add_parser("submit", help="submit a job to the scheduler")
    sp.add_argument("--name", default=None)
    sp.add_argument("--tier", default="standard", choices=["premium", "standard", "basic"])
    sp.add_argument("--devices", type=int, default=1, help="ranks (one device each at full size)")
    sp.add_argument("--min-devices", type=int, default=None,
                    help="elastic: run on as few as M devices, several ranks per device")
    sp.add_argument("--env", action="append", metavar="K=V", help="environment of every rank (repeatable)")
    _common(sp)
    sp.add_argument("cmd", nargs=argparse.REMAINDER, help="-- CMD [ARGS...]")
    sp.set_defaults(func=cmd_submit)

    sp = sub.add_parser("jobs", help="the scheduler's jobs")
    _common(sp)
    sp.set_defaults(func=cmd_jobs)

    sp = sub.add_parser("cancel", help="cancel a job (id or name)")
    sp.add_argument("id")
    _common(sp)
    sp.set_defaults(func=cmd_cancel)

    sp = sub.add_parser("logs", help="a job's output (one rank; default rank 0)")
    sp.add_argument("id")
    sp.add_argument("--rank", type=int, default=0)
    sp.add_argument("-f", "--follow", action="store_true", help="keep printing until the job ends")
    _common(sp)
    sp.set_defaults(func=cmd_logs)
