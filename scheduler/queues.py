"""Priority structures of the policies: lazy-deletion heaps, so every update is O(log n).

An entry is ``(key, job_id, version)``; changing a job's key pushes a new entry with a new
version, and stale entries are dropped when they reach the top.  Keys are tuples ending with the
job id, so ties are broken deterministically.
"""

from __future__ import annotations

import heapq
from collections.abc import Callable, Hashable, Iterator

from sortedcontainers import SortedList

from .jobs import Job, Phase

Key = tuple[float, ...]
Entry = tuple[Key, int, int]


class WaitQueue:
    """Waiting jobs, one heap per *shape* (size, smallest start size, device type).

    A scheduling pass takes the best head over all shapes; when a head cannot be placed, no other
    job of its shape can be either, so the pass drops the whole shape.  A blocked large job thus
    never hides a small one behind it, and a pass costs O(shapes), not O(queue).
    """

    __slots__ = ("_compact_at", "_entries", "_size", "heaps", "jobs")

    def __init__(self, jobs: dict[int, Job]) -> None:
        self.heaps: dict[Hashable, list[Entry]] = {}
        self.jobs = jobs
        self._size = 0
        self._entries = 0
        self._compact_at = 1024

    def __len__(self) -> int:
        return self._size

    def push(self, job: Job, key: Key, shape: Hashable) -> None:
        if job.wtag & 1:
            job.wtag += 2  # re-keyed while queued: still odd, new version
        else:
            job.wtag += 1  # odd: queued
            self._size += 1
        job.pkey = key
        h = self.heaps.get(shape)
        if h is None:
            h = self.heaps[shape] = []
        heapq.heappush(h, (key, job.id, job.wtag))
        self._entries += 1
        if self._entries > self._compact_at:
            self._compact()

    def _compact(self) -> None:
        """Drop stale entries (re-keyed or departed jobs) so the heaps stay O(waiting jobs)."""
        total = 0
        for shape in list(self.heaps):
            h = [e for e in self.heaps[shape] if self._valid(e) is not None]
            if h:
                heapq.heapify(h)
                self.heaps[shape] = h
                total += len(h)
            else:
                del self.heaps[shape]
        self._entries = total
        self._compact_at = max(1024, 2 * total)

    def discard(self, job: Job) -> None:
        if job.wtag & 1:
            job.wtag += 1  # even: not queued; old entries are stale
            self._size -= 1

    def _valid(self, e: Entry) -> Job | None:
        j = self.jobs.get(e[1])
        if j is not None and j.wtag == e[2] and (j.phase == Phase.QUEUED or j.phase == Phase.SUSPENDED):
            return j
        return None

    def head(self, shape: Hashable) -> Job | None:
        h = self.heaps.get(shape)
        while h:
            j = self._valid(h[0])
            if j is not None:
                return j
            heapq.heappop(h)
            self._entries -= 1
        if h is not None:
            del self.heaps[shape]
        return None

    def heads(self) -> list[tuple[Key, Hashable]]:
        out = []
        for shape in list(self.heaps):
            j = self.head(shape)
            if j is not None:
                out.append((j.pkey, shape))
        return out

    def pop(self, shape: Hashable) -> Job:
        j = self.head(shape)
        assert j is not None
        heapq.heappop(self.heaps[shape])
        self._entries -= 1
        self.discard(j)
        return j


class RankedJobs:
    """Jobs ordered by key (smaller first), with O(log n) insert/remove and O(k) look at the k
    best without removing them.  Entries of jobs that stopped qualifying (``valid`` false) are
    dropped when met."""

    __slots__ = ("jobs", "keys", "sl", "valid")

    def __init__(self, jobs: dict[int, Job], *, valid: Callable[[Job], bool]) -> None:
        self.sl: SortedList = SortedList()
        self.keys: dict[int, Key] = {}
        self.jobs = jobs
        self.valid = valid

    def __len__(self) -> int:
        return len(self.keys)

    def put(self, job: Job, key: Key) -> None:
        old = self.keys.get(job.id)
        if old is not None:
            if old == key:
                return
            self.sl.remove((old, job.id))
        self.keys[job.id] = key
        self.sl.add((key, job.id))

    def discard(self, job_id: int) -> None:
        old = self.keys.pop(job_id, None)
        if old is not None:
            self.sl.remove((old, job_id))

    def best(self) -> Job | None:
        """The first qualifying job, O(log n)."""
        sl = self.sl
        jobs = self.jobs
        while sl:
            jid = sl[0][1]
            j = jobs.get(jid)
            if j is not None and self.valid(j):
                return j
            self.discard(jid)
        return None

    def first(self, limit: int) -> list[Job]:
        out: list[Job] = []
        stale: list[int] = []
        jobs = self.jobs
        for _, jid in self.sl.islice(0, limit + 64):
            j = jobs.get(jid)
            if j is None or not self.valid(j):
                stale.append(jid)
                continue
            out.append(j)
            if len(out) >= limit:
                break
        for jid in stale:
            self.discard(jid)
        if len(out) < limit and stale:
            return self.first(limit)
        return out

    def __iter__(self) -> Iterator[Job]:  # O(n): tests and rebuilds only
        for _, jid in list(self.sl):
            j = self.jobs.get(jid)
            if j is not None and self.valid(j):
                yield j
