"""Gang placement on the free-capacity index of `ClusterState`.

Shape rules (the same for every policy, so comparisons are about scheduling, not placement):

* a job on at most one host's worth of devices runs on **one host** (best fit: the host with the
  fewest free devices that still fit it, in the fullest cluster — packing keeps whole hosts and
  whole clusters free for large jobs);
* a larger job takes **whole free hosts** plus, for the remainder, one best-fit host, all in **one
  cluster** (one network domain; the fullest cluster that fits).

Every search walks free counts (≤ devices per host) and clusters, never hosts, so its cost does not
grow with the size of the fleet.
"""

from __future__ import annotations

from collections.abc import Collection

from .state import ClusterState

_NO_EXCLUDE: frozenset[int] = frozenset()


def _pick(lst: list[int], exclude: Collection[int], need: int) -> list[int]:
    """Up to ``need`` hosts from the end of a bucket list, skipping excluded ones."""
    out: list[int] = []
    i = len(lst) - 1
    while i >= 0 and len(out) < need:
        h = lst[i]
        if h not in exclude:
            out.append(h)
        i -= 1
    return out


class Placer:
    __slots__ = ("_types", "s")

    def __init__(self, state: ClusterState) -> None:
        self.s = state
        self._types = state.topo.device_types

    def host_size(self, dtype: str | None) -> int:
        t = self.s.topo
        if dtype is None:
            return t.max_host_devices
        return max(t.clusters[c].devices_per_host for c in t.type_clusters.get(dtype, ()) or [0])

    def fits_anywhere(self, n: int, dtype: str | None) -> bool:
        """Whether an empty fleet could hold a gang of ``n`` devices (ignores current load)."""
        t = self.s.topo
        for spec in t.clusters:
            if dtype is not None and spec.device_type != dtype:
                continue
            if n <= spec.devices_per_host or n <= spec.hosts * spec.devices_per_host:
                return True
        return False

    def find(
        self, n: int, dtype: str | None, exclude: Collection[int] = _NO_EXCLUDE, pool: int | None = None
    ) -> tuple[int, ...] | None:
        """Free devices for a gang of ``n`` (not taken: apply a `Place` to take them).

        ``pool``: look among the hosts of that pool first (1: hosts running premium jobs), then
        elsewhere; None: best fit over all hosts.
        """
        s = self.s
        if n > s.free_total:
            return None
        types = self._types if dtype is None else (dtype,)
        if n <= self.host_size(dtype):
            pools: tuple[tuple[int, ...], ...] = ((0, 1),) if pool is None else ((pool,), (1 - pool,))
            for ps in pools:
                h = self._best_host(n, types, exclude, ps)
                if h is not None:
                    return tuple(s.free_devices(h)[:n])
        return self._find_multi(n, types, exclude)

    def _best_host(
        self, n: int, types: tuple[str, ...], exclude: Collection[int], pools: tuple[int, ...]
    ) -> int | None:
        """Best fit: the smallest free count k >= n that a host of ``pools`` has, then the fullest
        cluster."""
        s = self.s
        topo = s.topo
        for k in range(n, topo.max_host_devices + 1):
            found: tuple[int, int, int] | None = None
            for ty in types:
                tpn = s.type_pool_n.get(ty)
                if tpn is None:
                    continue
                for p in pools:
                    if not tpn[p][k]:
                        continue
                    for c in topo.type_clusters[ty]:
                        lst = s.bucket[c][p][k]
                        if lst and (not exclude or _pick(lst, exclude, 1)):
                            cand = (s.cluster_free[c], c, p)
                            if found is None or cand < found:
                                found = cand
            if found is not None:
                return _pick(s.bucket[found[1]][found[2]][k], exclude, 1)[0]
        return None

    def _find_multi(self, n: int, types: tuple[str, ...], exclude: Collection[int]) -> tuple[int, ...] | None:
        s = self.s
        topo = s.topo
        best: tuple[int, int] | None = None
        plan: list[int] = []
        for ty in types:
            for c in topo.type_clusters.get(ty, ()):
                hc = topo.clusters[c].devices_per_host
                if n <= hc or s.cluster_free[c] < n:
                    continue
                q, r = divmod(n, hc)
                bk = s.bucket[c]
                full = _pick(bk[0][hc], exclude, q + 1)  # a wholly free host runs no premium job
                if len(full) < q:
                    continue
                hosts = full[:q]
                if r:
                    part = None
                    for k in range(r, hc):
                        got = _pick(bk[0][k], exclude, 1) or _pick(bk[1][k], exclude, 1)
                        if got:
                            part = got[0]
                            break
                    if part is None:
                        if len(full) <= q:
                            continue
                        part = full[q]
                    hosts = hosts + [part]
                cand = (s.cluster_free[c], c)
                if best is None or cand < best:
                    best = cand
                    plan = hosts
        if best is None:
            return None
        hc = topo.clusters[best[1]].devices_per_host
        q, r = divmod(n, hc)
        out: list[int] = []
        for h in plan[:q]:
            out.extend(s.free_devices(h))
        if r:
            out.extend(s.free_devices(plan[q])[:r])
        return tuple(out)
