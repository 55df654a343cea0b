"""The controller: host reports and user requests become events, events go through the policy
(`brain.Brain`, the simulator's own code), and what the policy's `ClusterState` says each job should
be doing becomes commands to host daemons.

Level-triggered.  Nothing remembers "which command was sent for which action": every step compares
the desired state (each job's phase, devices and rank mapping in `ClusterState`) with the actual
one (``GET /v1/status`` of every live host) and sends whatever is still missing.  Commands are
idempotent, so sending one twice, or a new leader sending it again after a failover, is harmless.
A step:

1. collect the results of finished commands; poll every live host's status (in parallel);
2. hosts: heartbeat lapsed or status unreadable for ``heartbeat_ttl_s`` → ``HostFailed``; back →
   ``HostRecovered``;
3. new submissions → ``JobArrived``; cancellation requests; due timers → ``Timer``;
4. every job in the state: reconcile (below), repeated while events change the state;
5. ranks that a host runs but no job should have there are killed; user-visible state published.

Per phase (rank r of an N-rank job with k ranks per device runs on ``devices[r // k]``):

=============  ==============================================  ==================================
phase          what the driver makes happen                    event once every rank is there
=============  ==============================================  ==================================
STARTING       start each rank (POST /v1/ranks), or restore it  RestoreDone (all running)
               where an image exists (a Resume, a migration's
               destination, or a periodic checkpoint)
RUNNING        watch: all ranks exited 0 → succeeded; one      JobFinished (after the outcome is
               failed → failed (the others are killed)          recorded)
CHECKPOINTING  checkpoint each rank, leave_running false        CheckpointDone (all checkpointed)
MIGRATING      the same at the source; the destination is       CheckpointDone, then as STARTING
               then STARTING with the image
RESIZING       checkpoint every rank at the old mapping, then   RestoreDone (all running at the
               restore every rank at the new one                new mapping)
=============  ==============================================  ==================================

A rank missing from a host that should run it (the host daemon restarted: its jobs died with it)
is a ``HostFailed`` of that host.  A job with an outcome (succeeded, failed, cancelled) is drained:
its live ranks are killed, then it is walked out of the state by the shortest legal path
(RestoreDone / CheckpointDone / JobFinished, or ``JobCancelled`` once it is waiting).  The
outcome is written to the job's record *before* those events are logged, so a new leader drains
it too.  Every event is appended to the store before it is applied.
"""

from __future__ import annotations

import logging
import math
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import Any

from ..actions import Admit, Kill, Migrate, Preempt, Reserve, Resize, SetTimer
from ..jobs import Phase
from ..state import ClusterState
from .brain import Brain
from .config import DaemonConfig
from .fleet import Fleet
from .hosts import HostApi, HostError
from .store import JobRecord, Store
from .telemetry import Telemetry

log = logging.getLogger("singularity.scheduler")

LIVE = ("starting", "running", "checkpointing", "restoring")
RUNNING_STATES = ("running", "checkpointing")  # a periodic checkpoint leaves the rank running

USER_STATE = {
    Phase.QUEUED: "queued",
    Phase.PENDING: "queued",
    Phase.SUSPENDED: "suspended",
    Phase.STARTING: "starting",
    Phase.RUNNING: "running",
    Phase.CHECKPOINTING: "checkpointing",
    Phase.MIGRATING: "migrating",
    Phase.RESIZING: "resizing",
}

Pos = tuple[str, str]  # (host name, local device)


def rank_name(job: str, r: int) -> str:
    return f"{job}.r{r}"


def parse_rank_name(name: str) -> tuple[str, int] | None:
    job, sep, r = name.rpartition(".r")
    return (job, int(r)) if sep and job and r.isdigit() else None


class Driver:
    def __init__(
        self,
        *,
        fleet: Fleet,
        store: Store,
        config: DaemonConfig,
        hosts: HostApi,
        telemetry: Telemetry | None = None,
    ) -> None:
        self.fleet = fleet
        self.store = store
        self.cfg = config
        self.hosts = hosts
        self.tm = telemetry or Telemetry()
        self.params = config.params()
        self.brain = Brain(fleet=fleet, params=self.params, policy=config.policy)
        self.recovered = False
        self._cmd_pool = ThreadPoolExecutor(max_workers=16, thread_name_prefix="host-cmd")
        self._poll_pool = ThreadPoolExecutor(max_workers=8, thread_name_prefix="host-poll")
        self.inflight: dict[tuple[str, str], tuple[str, Future[dict[str, Any]]]] = {}
        self.errors: dict[str, str] = {}  # rank name -> last command error
        self.urls: dict[str, str] = {}  # live hosts' URLs
        self.status: dict[str, dict[str, dict[str, Any]]] = {}  # host -> ranks, polled this step
        self.last_ok: dict[str, float] = {}
        self.records: dict[int, JobRecord] = {}
        self.by_name: dict[str, JobRecord] = {}
        self.launched: dict[int, set[tuple[int, str, str]]] = {}  # ranks started in the current phase
        self.cut_done: set[int] = set()  # RESIZING jobs whose every rank is checkpointed
        self.replayed = 0

    @property
    def state(self) -> ClusterState:
        return self.brain.state

    # ------------------------------------------------------------------ events

    def recover(self) -> None:
        """Rebuild the policy's state from the event log (a new leader; a restart)."""
        self.brain = Brain(fleet=self.fleet, params=self.params, policy=self.cfg.policy)
        n = 0
        for ev in self.store.events():
            self.brain.apply(ev.kind, ev.body, ev.at)
            n += 1
        self.replayed = n
        self.launched.clear()
        self.cut_done.clear()
        self.recovered = True
        if n == 0:
            # First start: every declared host is down until it is heard from.
            for h in self.fleet.hosts:
                self._event("HostFailed", {"host": h.name}, self.state.now)
        log.info("replayed %d events; %d jobs in the state", n, len(self.state.jobs))

    def _event(self, kind: str, body: dict[str, Any], now: float) -> None:
        at = max(now, self.state.now)
        self.store.append_event(kind, body, at=at)  # persisted before it is applied
        if kind == "HostFailed":
            h = self.fleet.host_index[body["host"]]
            for jid in list(self.state.host_jobs[h]):
                self._new_phase(jid)
        if "job" in body:
            self._new_phase(int(body["job"]))
        actions = self.brain.apply(kind, body, at)
        self.tm.events.labels(kind=kind).inc()
        for a in actions:
            self.tm.actions.labels(action=type(a).__name__).inc()
            if isinstance(a, (SetTimer, Reserve)):
                continue
            if isinstance(a, Admit):
                # Bookkeeping only; the user sees it on the job (the policy admits at arrival).
                rec = self.store.get_job(a.job_id)
                served = a.tier.name.lower()
                if rec is not None and served != rec.tier and rec.served_tier != served:
                    self.store.update_job(a.job_id, served_tier=served)
                continue
            self._new_phase(a.job_id)
            if isinstance(a, Preempt):
                self.tm.preemptions.inc()
            elif isinstance(a, Migrate):
                self.tm.migrations.inc()
            elif isinstance(a, Resize):
                self.tm.resizes.inc()
            elif isinstance(a, Kill):
                self.tm.preemptions.inc()

    def _new_phase(self, jid: int) -> None:
        self.launched.pop(jid, None)
        self.cut_done.discard(jid)

    # ------------------------------------------------------------------ the step

    def step(self, now: float) -> None:
        if not self.recovered:
            self.recover()
        now = max(now, self.state.now)
        self._collect()
        self._poll(now)
        self._liveness(now)
        self._intake(now)
        for jid, tag in self.brain.due_timers(now):
            if jid in self.state.jobs:
                self._event("Timer", {"job": jid, "tag": tag}, now)
        for _ in range(50):
            changed = False
            for jid in sorted(self.state.jobs):
                job = self.state.jobs.get(jid)
                if job is not None and self._reconcile(jid, now):
                    changed = True
            if not changed:
                break
        self._clean_stale()
        self._publish()

    def wait_commands(self, timeout: float = 60.0) -> None:
        """Block until every command sent so far has answered (tests)."""
        for _, fut in list(self.inflight.values()):
            try:
                fut.result(timeout=timeout)
            except Exception:  # noqa: BLE001 - recorded by _collect
                pass

    def close(self) -> None:
        self._cmd_pool.shutdown(wait=False, cancel_futures=True)
        self._poll_pool.shutdown(wait=False, cancel_futures=True)

    # ------------------------------------------------------------------ hosts

    def _collect(self) -> None:
        for key, (op, fut) in list(self.inflight.items()):
            if not fut.done():
                continue
            del self.inflight[key]
            exc = fut.exception()
            if exc is not None:
                self.errors[key[1]] = f"{op} on {key[0]}: {exc}"
                self.tm.commands.labels(op=op, result="error").inc()
                log.warning("%s %s on %s failed: %s", op, key[1], key[0], exc)
                continue
            self.errors.pop(key[1], None)
            self.tm.commands.labels(op=op, result="ok").inc()
            res = fut.result()
            if op == "checkpoint":
                secs, size = res.get("checkpoint_seconds"), res.get("checkpoint_bytes")
                if isinstance(secs, (int, float)) and math.isfinite(secs):
                    self.tm.checkpoint_seconds.observe(secs)
                if isinstance(size, int) and size >= 0:
                    self.tm.checkpoint_bytes.inc(size)

    def _poll(self, now: float) -> None:
        live = self.store.live_hosts(now=now)
        self.urls = {n: r.url.rstrip("/") for n, r in live.items() if n in self.fleet.host_index}
        futs = {n: self._poll_pool.submit(self.hosts.status, url) for n, url in self.urls.items()}
        self.status = {}
        for n, fut in futs.items():
            try:
                st = fut.result()
            except HostError as e:
                log.warning("status of %s: %s", n, e)
                continue
            ranks = st["ranks"]
            self.status[n] = {k: v for k, v in ranks.items() if isinstance(v, dict)}
            self.last_ok[n] = now

    def _liveness(self, now: float) -> None:
        ttl = self.cfg.heartbeat_ttl_s
        up = 0
        for h, fh in enumerate(self.fleet.hosts):
            alive = fh.name in self.urls and now - self.last_ok.get(fh.name, -math.inf) <= ttl
            if self.state.host_down[h]:
                if fh.name in self.status:
                    self._event("HostRecovered", {"host": fh.name}, now)
                    up += 1
            elif not alive:
                log.warning("host %s is down (heartbeat or status lapsed)", fh.name)
                self._event("HostFailed", {"host": fh.name}, now)
            else:
                up += 1
        self.tm.hosts_up.set(up)

    # ------------------------------------------------------------------ jobs in, outcomes

    def _intake(self, now: float) -> None:
        recs = self.store.jobs()
        self.records = {r.id: r for r in recs}
        self.by_name = {r.name: r for r in recs}
        for rec in recs:
            if rec.terminal:
                continue
            if rec.id not in self.brain.arrived:
                if rec.cancel_requested:
                    self._outcome(rec, "cancelled", "cancelled before it was scheduled", now)
                    continue
                self._event(
                    "JobArrived",
                    {
                        "job": rec.id,
                        "tier": rec.tier,
                        "devices": rec.devices,
                        "min_devices": rec.min_devices,
                        "gib": self.params.device_state_default_gib_per_rank,
                    },
                    now,
                )
            elif rec.cancel_requested:
                self._outcome(rec, "cancelled", "cancelled by the user", now)

    def _outcome(self, rec: JobRecord, state: str, message: str, now: float, **extra: Any) -> None:
        self.store.update_job(rec.id, state=state, message=message, finished_at=now, **extra)
        rec.state, rec.message, rec.finished_at = state, message, now
        for k, v in extra.items():
            setattr(rec, k, v)
        log.info("job %s (%d): %s: %s", rec.name, rec.id, state, message)

    # ------------------------------------------------------------------ reconcile

    def positions(self, devices: tuple[int, ...], k: int, n: int) -> list[Pos]:
        return [self.fleet.place(devices[r // k]) for r in range(n)]

    def image(self, job: str, r: int) -> Path:
        return self.cfg.data_dir / "images" / job / f"rank{r}"

    def _rank(self, pos: Pos, name: str) -> dict[str, Any] | None:
        return self.status[pos[0]].get(name)

    def _issue(self, op: str, host: str, name: str, fn: Any, *args: Any, **kw: Any) -> None:
        key = (host, name)
        if key in self.inflight:
            return
        self.inflight[key] = (op, self._cmd_pool.submit(fn, *args, **kw))

    def _reconcile(self, jid: int, now: float) -> bool:
        """Move job ``jid`` towards what the state wants; True if an event was applied."""
        job = self.state.jobs[jid]
        rec = self.records.get(jid)
        if rec is None:
            return False
        if rec.terminal:
            return self._drain(jid, rec, now)
        ph = job.phase
        if ph in (Phase.QUEUED, Phase.SUSPENDED, Phase.PENDING):
            return False  # its ranks, if any, go in _clean_stale
        cur = self.positions(job.devices, job.k, job.n)
        new: list[Pos] = []
        if ph == Phase.RESIZING:
            new = self.positions(job.new_devices, job.new_k, job.n)
        if any(p[0] not in self.status for p in cur + new):
            return False  # a host we could not read this step: look again next step
        if ph == Phase.STARTING:
            return self._bring_up(jid, rec, cur, now, "RestoreDone")
        if ph == Phase.RUNNING:
            return self._watch(jid, rec, cur, now)
        if ph in (Phase.CHECKPOINTING, Phase.MIGRATING):
            return self._cut(jid, rec, cur, now, "CheckpointDone")
        if ph == Phase.RESIZING:
            done = self._finished(rec)
            moved = [r for r in range(job.n) if cur[r] != new[r] and r not in done]
            if jid not in self.cut_done and any(
                (x := self._rank(new[r], rank_name(rec.name, r))) is not None
                and x.get("device") == new[r][1]
                and x.get("state") in LIVE
                for r in moved
            ):
                self.cut_done.add(jid)  # a previous leader was already restoring
            if jid not in self.cut_done:
                return self._cut(jid, rec, cur, now, None)
            return self._bring_up(jid, rec, new, now, "RestoreDone")
        return False

    def _exit_codes(self, rec: JobRecord, codes: dict[int, Any]) -> dict[str, int]:
        out = dict(rec.exit_codes)
        for r, c in codes.items():
            if isinstance(c, int):
                out[str(r)] = c
        return out

    @staticmethod
    def _finished(rec: JobRecord) -> set[int]:
        """Ranks of a live job that already exited 0.  The policy moves jobs, not ranks: a resize,
        preemption or migration of a job whose ranks do not all end together still maps every
        rank.  A finished rank is never brought up again (from scratch it would redo its work; from
        an older image, its tail), and its absence from any host is not a loss."""
        return {int(r) for r, c in rec.exit_codes.items() if c == 0 and r.isdigit()}

    def _note_exits(self, jid: int, rec: JobRecord, codes: dict[int, Any]) -> None:
        """Record the ranks seen to have exited 0 (in the store, so a new leader knows them too)
        before anything can take the evidence away (a resize, a clean-up of stale records)."""
        new = {r: c for r, c in codes.items() if c == 0 and rec.exit_codes.get(str(r)) != 0}
        if new:
            rec.exit_codes = self._exit_codes(rec, new)
            self.store.update_job(jid, exit_codes=rec.exit_codes)

    def _bring_up(self, jid: int, rec: JobRecord, target: list[Pos], now: float, done_event: str) -> bool:
        """Every rank running at ``target``: start or restore what is not."""
        job = self.state.jobs[jid]
        mine = self.launched.setdefault(jid, set())
        done = self._finished(rec)
        # All ranks from images or none: a job half restored and half started afresh would not
        # be one consistent job.  Images from the host's periodic checkpoints count too.
        imaged = all(
            (self.image(rec.name, r) / "manifest.json").is_file() for r in range(len(target)) if r not in done
        )
        ok = 0
        codes: dict[int, Any] = {}
        failed = ""
        for r, pos in enumerate(target):
            host, dev = pos
            name = rank_name(rec.name, r)
            if r in done:
                ok += 1
                continue
            if (host, name) in self.inflight:
                continue
            x = self._rank(pos, name)
            st = x.get("state") if x else None
            here = x is not None and x.get("device") == dev
            if here and st in RUNNING_STATES:
                ok += 1
                continue
            if here and st in ("starting", "restoring"):
                continue
            if x is not None and st in ("exited", "failed") and (r, host, dev) in mine:
                codes[r] = x.get("exit_code")
                self._note_exits(jid, rec, codes)
                if st == "exited" and x.get("exit_code") == 0:
                    ok += 1
                else:
                    failed = failed or f"rank {r} {st} (exit code {x.get('exit_code')}) on {host}"
                continue
            if x is not None and (st in LIVE or st in ("exited", "failed")):
                # Somebody else's incarnation of this rank (an earlier placement on this host):
                # out of the way first; the launch follows at a later step.
                self._issue("delete", host, name, self.hosts.delete, self.urls[host], name)
                continue
            url = self.urls[host]
            img = self.image(rec.name, r)
            if imaged:
                self._issue(
                    "restore", host, name, self.hosts.restore, url, name,
                    device=dev, image=str(img), checkpoint_interval=self.cfg.checkpoint_interval_s,
                )
            elif job.has_ckpt:
                failed = failed or f"checkpoint images missing (rank {r}: {img})"
                continue
            else:
                env = dict(rec.env)
                env.update(
                    SINGULARITY_JOB=rec.name, SINGULARITY_RANK=str(r), SINGULARITY_WORLD_SIZE=str(job.n)
                )
                body: dict[str, Any] = {
                    "job": rec.name,
                    "rank": r,
                    "command": rec.command,
                    "env": env,
                    "device": dev,
                    "checkpoint_interval": self.cfg.checkpoint_interval_s,
                }
                if rec.cwd:
                    body["cwd"] = rec.cwd
                self._issue("start", host, name, self.hosts.start, url, body)
            mine.add((r, host, dev))
        if failed:
            self._outcome(rec, "failed", failed, now, exit_codes=self._exit_codes(rec, codes))
            return True
        if ok == len(target):
            if codes:
                self.store.update_job(jid, exit_codes=self._exit_codes(rec, codes))
            self._event(done_event, {"job": jid}, now)
            return True
        return False

    def _watch(self, jid: int, rec: JobRecord, cur: list[Pos], now: float) -> bool:
        lost: set[str] = set()
        codes: dict[int, Any] = {}
        failed = ""
        running = 0
        done = self._finished(rec)
        for r, pos in enumerate(cur):
            if r in done:
                codes[r] = 0  # wherever its record went (moved by a resize, cleaned up)
                continue
            x = self._rank(pos, rank_name(rec.name, r))
            st = x.get("state") if x else None
            if x is None or x.get("device") != pos[1] or st not in RUNNING_STATES + ("exited", "failed"):
                lost.add(pos[0])
                continue
            if st in RUNNING_STATES:
                running += 1
                continue
            codes[r] = x.get("exit_code")
            if st == "failed" or x.get("exit_code") != 0:
                failed = failed or f"rank {r} {st} (exit code {x.get('exit_code')}) on {pos[0]}"
        self._note_exits(jid, rec, codes)
        if lost:
            # The host no longer runs a rank it ran: its daemon restarted and the rank died with
            # it.  That host failed, whatever its heartbeat says; the job resumes from its image.
            for host in sorted(lost):
                log.warning("job %s: ranks gone from %s: treating the host as failed", rec.name, host)
                self._event("HostFailed", {"host": host}, now)
            return True
        if failed:
            self._outcome(rec, "failed", failed, now, exit_codes=self._exit_codes(rec, codes))
            return True
        if running == 0:
            self._outcome(rec, "succeeded", "every rank exited 0", now, exit_codes=self._exit_codes(rec, codes))
            return True
        return False

    def _cut(self, jid: int, rec: JobRecord, cur: list[Pos], now: float, done_event: str | None) -> bool:
        """Checkpoint every rank at ``cur`` (leave_running false)."""
        done = exited = 0
        codes: dict[int, Any] = {}
        failed = ""
        lost: set[str] = set()
        finished = self._finished(rec)
        for r, pos in enumerate(cur):
            host, dev = pos
            name = rank_name(rec.name, r)
            if r in finished:
                exited += 1
                codes[r] = 0
                continue
            if (host, name) in self.inflight:
                continue
            x = self._rank(pos, name)
            if x is None or x.get("device") != dev:
                lost.add(host)
                continue
            st = x.get("state")
            if st == "checkpointed":
                done += 1
            elif st == "running":
                self._issue(
                    "checkpoint", host, name, self.hosts.checkpoint, self.urls[host], name, leave_running=False
                )
            elif st == "exited" and x.get("exit_code") == 0:
                exited += 1
                codes[r] = 0
            elif st in ("exited", "failed"):
                codes[r] = x.get("exit_code")
                failed = failed or f"rank {r} {st} (exit code {x.get('exit_code')}) on {host}"
        self._note_exits(jid, rec, codes)
        if lost:
            for host in sorted(lost):
                self._event("HostFailed", {"host": host}, now)
            return True
        if failed:
            self._outcome(rec, "failed", failed, now, exit_codes=self._exit_codes(rec, codes))
            return True
        if exited == len(cur):
            self._outcome(rec, "succeeded", "every rank exited 0", now, exit_codes=self._exit_codes(rec, codes))
            return True
        if done + exited == len(cur):
            if done_event is None:
                self.cut_done.add(jid)
                return True
            self._event(done_event, {"job": jid}, now)
            return True
        return False

    def _drain(self, jid: int, rec: JobRecord, now: float) -> bool:
        """Kill what still runs of a job with an outcome, then walk it out of the state."""
        busy = False
        for host, ranks in self.status.items():
            for name, x in ranks.items():
                p = parse_rank_name(name)
                if p is not None and p[0] == rec.name and x.get("state") in LIVE:
                    self._issue("delete", host, name, self.hosts.delete, self.urls[host], name)
                    busy = True
        if busy:
            return False
        ph = self.state.jobs[jid].phase
        if ph in (Phase.STARTING, Phase.RESIZING):
            self._event("RestoreDone", {"job": jid}, now)
        elif ph in (Phase.CHECKPOINTING, Phase.MIGRATING):
            self._event("CheckpointDone", {"job": jid}, now)
        elif ph == Phase.RUNNING:
            self._event("JobFinished", {"job": jid}, now)
        elif ph in (Phase.QUEUED, Phase.SUSPENDED):
            self._event("JobCancelled", {"job": jid}, now)
        else:
            return False  # PENDING: it starts once its claims arrive, and is drained then
        return True

    # ------------------------------------------------------------------ clean-up, publishing

    def _expected(self, rec: JobRecord) -> set[tuple[int, str, str]] | None:
        """(rank, host, device) where the job's ranks may be; None: not ours to judge."""
        job = self.state.jobs.get(rec.id)
        if rec.terminal:
            return None
        if job is None:
            return set()
        out: set[tuple[int, str, str]] = set()
        if job.phase in (Phase.STARTING, Phase.RUNNING, Phase.CHECKPOINTING, Phase.MIGRATING, Phase.RESIZING):
            for r, (h, d) in enumerate(self.positions(job.devices, job.k, job.n)):
                out.add((r, h, d))
        if job.phase == Phase.RESIZING:
            for r, (h, d) in enumerate(self.positions(job.new_devices, job.new_k, job.n)):
                out.add((r, h, d))
        return out

    def _clean_stale(self) -> None:
        """Ranks where no job should run them are killed: a host that comes back after a failure
        must not run a job that was restored elsewhere meanwhile.  Records left by a waiting job
        go too (DELETE keeps the image); those of finished jobs stay for inspection."""
        for host, ranks in self.status.items():
            for name, x in ranks.items():
                p = parse_rank_name(name)
                rec = self.by_name.get(p[0]) if p else None
                if p is None or rec is None or (host, name) in self.inflight:
                    continue
                exp = self._expected(rec)
                if exp is None or (p[1], host, x.get("device")) in exp:
                    continue
                if x.get("state") in LIVE or rec.id in self.state.jobs:
                    self._issue("delete", host, name, self.hosts.delete, self.urls[host], name)

    def _publish(self) -> None:
        states = []
        for rec in self.records.values():
            job = self.state.jobs.get(rec.id)
            if rec.terminal or job is None:
                states.append(rec.state)
                continue
            changes: dict[str, Any] = {}
            st = USER_STATE[job.phase]
            place: list[dict[str, Any]] = []
            if job.phase in (Phase.STARTING, Phase.RUNNING, Phase.CHECKPOINTING, Phase.MIGRATING, Phase.RESIZING):
                place = [
                    {"rank": r, "host": h, "device": d}
                    for r, (h, d) in enumerate(self.positions(job.devices, job.k, job.n))
                ]
            hosts = list(rec.hosts)
            for p in place:
                h = str(p["host"])
                if not hosts or hosts[-1] != h:
                    if h in hosts:
                        hosts.remove(h)
                    hosts.append(h)
            msg = next((e for n, e in sorted(self.errors.items()) if (q := parse_rank_name(n)) and q[0] == rec.name), "")
            if st != rec.state:
                changes["state"] = st
            if place != rec.placement:
                changes["placement"] = place
            if hosts != rec.hosts:
                changes["hosts"] = hosts
            if msg != rec.message:
                changes["message"] = msg
            if changes:
                self.store.update_job(rec.id, **changes)
                for k, v in changes.items():
                    setattr(rec, k, v)
            states.append(rec.state)
        self.tm.set_jobs(states)
