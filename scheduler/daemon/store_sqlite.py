"""`Store` on one SQLite file (stdlib sqlite3, WAL): the default, for a single scheduler replica.

WAL lets the REST server read while the driver writes; every write is one transaction, so a crash
leaves either the whole change or none of it.  One connection guarded by a lock: the daemon's two
threads (the asyncio server and the driver) are its only users, and the leader lock
(`leader.SqliteLock`) keeps every other process out.
"""

from __future__ import annotations

import json
import sqlite3
import threading
from pathlib import Path
from typing import Any

from .store import (
    HostRecord,
    JobRecord,
    LoggedEvent,
    NameTakenError,
    NewJob,
    Store,
    StoreError,
    dumps,
)

_SCHEMA = """
CREATE TABLE IF NOT EXISTS jobs (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    name TEXT UNIQUE,
    record TEXT NOT NULL,
    cancel_requested INTEGER NOT NULL DEFAULT 0
);
CREATE TABLE IF NOT EXISTS events (
    seq INTEGER PRIMARY KEY,
    at REAL NOT NULL,
    kind TEXT NOT NULL,
    body TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS hosts (
    name TEXT PRIMARY KEY,
    url TEXT NOT NULL,
    last_seen REAL NOT NULL,
    ttl_s REAL NOT NULL
);
"""


class SqliteStore(Store):
    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self._lock = threading.Lock()
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            # isolation_level=None: transactions are explicit (BEGIN IMMEDIATE ... COMMIT).
            self._db: sqlite3.Connection | None = sqlite3.connect(
                str(self.path), check_same_thread=False, isolation_level=None, timeout=10.0
            )
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("PRAGMA synchronous=FULL")
            self._db.executescript(_SCHEMA)
        except sqlite3.Error as e:
            raise StoreError(f"sqlite store {self.path}: {e}") from e

    def _conn(self) -> sqlite3.Connection:
        if self._db is None:
            raise StoreError(f"sqlite store {self.path} is closed")
        return self._db

    def _write(self, fn: Any) -> Any:
        with self._lock:
            db = self._conn()
            try:
                db.execute("BEGIN IMMEDIATE")
                try:
                    out = fn(db)
                except BaseException:
                    db.execute("ROLLBACK")
                    raise
                db.execute("COMMIT")
                return out
            except sqlite3.Error as e:
                raise StoreError(f"sqlite store {self.path}: {e}") from e

    def _read(self, sql: str, args: tuple[Any, ...] = ()) -> list[Any]:
        with self._lock:
            try:
                return self._conn().execute(sql, args).fetchall()
            except sqlite3.Error as e:
                raise StoreError(f"sqlite store {self.path}: {e}") from e

    # ------------------------------------------------------------------ jobs

    def add_job(self, job: NewJob, *, now: float) -> JobRecord:
        def tx(db: sqlite3.Connection) -> JobRecord:
            if job.name is not None and db.execute("SELECT 1 FROM jobs WHERE name = ?", (job.name,)).fetchone():
                raise NameTakenError(f"a job named {job.name!r} exists already")
            cur = db.execute("INSERT INTO jobs (record) VALUES ('{}')")
            jid = int(cur.lastrowid or 0)
            name = job.name or f"j{jid}"
            if job.name is None and db.execute("SELECT 1 FROM jobs WHERE name = ?", (name,)).fetchone():
                raise NameTakenError(f"the default name {name!r} was taken by a user; give --name")
            rec = JobRecord.submitted(job, job_id=jid, name=name, now=now)
            db.execute("UPDATE jobs SET name = ?, record = ? WHERE id = ?", (name, dumps(rec.to_json()), jid))
            return rec

        out: JobRecord = self._write(tx)
        return out

    @staticmethod
    def _rec(row: Any) -> JobRecord:
        rec = JobRecord.from_json(json.loads(row[0]))
        rec.cancel_requested = bool(row[1])
        return rec

    def get_job(self, job_id: int) -> JobRecord | None:
        rows = self._read("SELECT record, cancel_requested FROM jobs WHERE id = ?", (job_id,))
        return self._rec(rows[0]) if rows else None

    def find_job(self, name: str) -> JobRecord | None:
        rows = self._read("SELECT record, cancel_requested FROM jobs WHERE name = ?", (name,))
        return self._rec(rows[0]) if rows else None

    def jobs(self) -> list[JobRecord]:
        return [self._rec(r) for r in self._read("SELECT record, cancel_requested FROM jobs ORDER BY id")]

    def update_job(self, job_id: int, **changes: Any) -> None:
        self.check_changes(changes)

        def tx(db: sqlite3.Connection) -> None:
            row = db.execute("SELECT record FROM jobs WHERE id = ?", (job_id,)).fetchone()
            if row is None:
                raise StoreError(f"no job {job_id}")
            d = json.loads(row[0])
            d.update(changes)
            db.execute("UPDATE jobs SET record = ? WHERE id = ?", (dumps(d), job_id))

        self._write(tx)

    def request_cancel(self, job_id: int) -> None:
        def tx(db: sqlite3.Connection) -> None:
            if db.execute("UPDATE jobs SET cancel_requested = 1 WHERE id = ?", (job_id,)).rowcount != 1:
                raise StoreError(f"no job {job_id}")

        self._write(tx)

    # ------------------------------------------------------------------ events

    def append_event(self, kind: str, body: dict[str, Any], *, at: float) -> int:
        def tx(db: sqlite3.Connection) -> int:
            row = db.execute("SELECT COALESCE(MAX(seq), 0) FROM events").fetchone()
            seq = int(row[0]) + 1
            db.execute("INSERT INTO events VALUES (?, ?, ?, ?)", (seq, at, kind, dumps(body)))
            return seq

        out: int = self._write(tx)
        return out

    def events(self, since: int = 0, limit: int | None = None) -> list[LoggedEvent]:
        rows = self._read(
            "SELECT seq, at, kind, body FROM events WHERE seq > ? ORDER BY seq LIMIT ?",
            (since, -1 if limit is None else limit),
        )
        return [LoggedEvent(seq=r[0], at=r[1], kind=r[2], body=json.loads(r[3])) for r in rows]

    # ------------------------------------------------------------------ hosts

    def heartbeat(self, host: str, url: str, *, now: float, ttl_s: float) -> None:
        self._write(
            lambda db: db.execute(
                "INSERT INTO hosts VALUES (?, ?, ?, ?) ON CONFLICT(name) DO UPDATE SET "
                "url = excluded.url, last_seen = excluded.last_seen, ttl_s = excluded.ttl_s",
                (host, url, now, ttl_s),
            )
        )

    def live_hosts(self, *, now: float) -> dict[str, HostRecord]:
        rows = self._read("SELECT name, url, last_seen, ttl_s FROM hosts ORDER BY name")
        return {
            r[0]: HostRecord(name=r[0], url=r[1], last_seen=r[2]) for r in rows if now - r[2] <= r[3]
        }

    def close(self) -> None:
        with self._lock:
            if self._db is not None:
                self._db.close()
                self._db = None
