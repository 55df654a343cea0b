"""fleet.toml: the hosts the scheduler may use, turned into the policy's `Topology`.

    [[hosts]]
    name = "node1"          # the host daemon's --name
    cluster = "c0"          # one network domain: a multi-host gang stays inside one cluster
    region = "r0"           # optional, default "r0"
    device_type = "h100"    # optional, default the device kind ("sim" or "cuda")
    devices = "sim:4"       # KIND:COUNT, as the host daemon's --devices (cuda:8: eight GPUs)

`Topology` numbers hosts cluster by cluster and requires every host of a cluster to have the same
device count and type, so the file is grouped the same way (clusters in order of first
appearance, hosts in file order within a cluster) and a mixed cluster is refused.
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..errors import ConfigError
from ..topology import ClusterSpec, Topology

DEVICE_KINDS = ("sim", "cuda")


@dataclass(frozen=True, slots=True)
class FleetHost:
    name: str
    cluster: str
    region: str
    device_type: str
    kind: str  # "sim" or "cuda": how the host daemon names its devices
    devices: int


class Fleet:
    """The fleet's topology plus the names on both sides of it."""

    __slots__ = ("host_index", "hosts", "topology")

    def __init__(self, hosts: list[FleetHost]) -> None:
        if not hosts:
            raise ConfigError("fleet: no hosts")
        seen: set[str] = set()
        order: list[str] = []
        by_cluster: dict[str, list[FleetHost]] = {}
        for h in hosts:
            if h.name in seen:
                raise ConfigError(f"fleet: host {h.name!r} declared twice")
            seen.add(h.name)
            if h.cluster not in by_cluster:
                order.append(h.cluster)
                by_cluster[h.cluster] = []
            by_cluster[h.cluster].append(h)
        specs = []
        ordered: list[FleetHost] = []
        for c in order:
            members = by_cluster[c]
            first = members[0]
            for h in members[1:]:
                if (h.devices, h.device_type, h.region) != (first.devices, first.device_type, first.region):
                    raise ConfigError(
                        f"fleet: cluster {c!r} mixes hosts ({first.name}: {first.devices} x "
                        f"{first.device_type} in {first.region}; {h.name}: {h.devices} x {h.device_type} "
                        f"in {h.region}); a cluster's hosts must be alike"
                    )
            specs.append(
                ClusterSpec(
                    name=c,
                    region=first.region,
                    device_type=first.device_type,
                    hosts=len(members),
                    devices_per_host=first.devices,
                )
            )
            ordered.extend(members)
        self.topology = Topology(clusters=specs)
        self.hosts: tuple[FleetHost, ...] = tuple(ordered)
        self.host_index: dict[str, int] = {h.name: i for i, h in enumerate(self.hosts)}

    @classmethod
    def load(cls, path: str | Path) -> Fleet:
        try:
            data = tomllib.loads(Path(path).read_text(encoding="utf-8"))
        except (OSError, tomllib.TOMLDecodeError) as e:
            raise ConfigError(f"fleet: cannot read {path}: {e}") from e
        return cls.from_mapping(data, where=str(path))

    @classmethod
    def from_mapping(cls, data: dict[str, Any], *, where: str = "fleet") -> Fleet:
        unknown = set(data) - {"hosts"}
        if unknown:
            raise ConfigError(f"{where}: unknown top-level keys {sorted(unknown)}")
        raw = data.get("hosts")
        if not isinstance(raw, list) or not raw:
            raise ConfigError(f"{where}: needs at least one [[hosts]] table")
        return cls([_host(h, where) for h in raw])

    # ------------------------------------------------------------------ names

    def host_of_device(self, device: int) -> int:
        return self.topology.dev_host[device]

    def local_device(self, device: int) -> str:
        """The host-local name of a fleet device index, as ``singularity run --device`` takes it."""
        h = self.topology.dev_host[device]
        return f"{self.hosts[h].kind}:{device - self.topology.host_base[h]}"

    def place(self, device: int) -> tuple[str, str]:
        """(host name, local device name) of a fleet device index."""
        h = self.topology.dev_host[device]
        return self.hosts[h].name, f"{self.hosts[h].kind}:{device - self.topology.host_base[h]}"

    def largest_gang(self) -> int:
        """Most devices one job can get (a gang stays inside one cluster)."""
        return max(c.hosts * c.devices_per_host for c in self.topology.clusters)


_KEYS = {"name", "cluster", "region", "device_type", "devices"}


def _host(raw: Any, where: str) -> FleetHost:
    if not isinstance(raw, dict):
        raise ConfigError(f"{where}: each [[hosts]] entry must be a table")
    unknown = set(raw) - _KEYS
    if unknown:
        raise ConfigError(f"{where}: host {raw.get('name', '?')!r}: unknown keys {sorted(unknown)}")
    name = raw.get("name")
    if not isinstance(name, str) or not name or not all(c.isalnum() or c in "-_." for c in name):
        raise ConfigError(f"{where}: host name {name!r}: use letters, digits, '-', '_' or '.'")
    cluster = raw.get("cluster")
    if not isinstance(cluster, str) or not cluster:
        raise ConfigError(f"{where}: host {name}: 'cluster' (a name) is required")
    region = raw.get("region", "r0")
    devices = raw.get("devices")
    kind, _, count = str(devices).partition(":") if isinstance(devices, str) else ("", "", "")
    if kind not in DEVICE_KINDS or not count.isdigit() or not 1 <= int(count) <= 62:
        raise ConfigError(
            f"{where}: host {name}: devices must be 'sim:N' or 'cuda:N' with 1 <= N <= 62, got {devices!r}"
        )
    dtype = raw.get("device_type", kind)
    if not isinstance(region, str) or not isinstance(dtype, str) or not region or not dtype:
        raise ConfigError(f"{where}: host {name}: region and device_type must be non-empty strings")
    return FleetHost(
        name=name, cluster=cluster, region=region, device_type=dtype, kind=kind, devices=int(count)
    )
