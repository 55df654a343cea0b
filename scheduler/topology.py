"""Fleet topology: regions → clusters → hosts → devices, each cluster of one device type.

Immutable.  Devices and hosts are numbered densely (device ids ``host_base[h] ..
host_base[h] + host_ndev[h] - 1``) so the state can keep per-device and per-host arrays.
A cluster is one network domain: a multi-host gang is placed inside one cluster.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from .errors import ConfigError


@dataclass(frozen=True, slots=True, kw_only=True)
class ClusterSpec:
    name: str
    region: str
    device_type: str
    hosts: int
    devices_per_host: int = 8

    def __post_init__(self) -> None:
        if self.hosts < 1 or not 1 <= self.devices_per_host <= 62:
            raise ConfigError(f"cluster {self.name}: need hosts >= 1 and 1 <= devices_per_host <= 62")


class Topology:
    __slots__ = (
        "cluster_hosts",
        "clusters",
        "dev_host",
        "device_types",
        "host_base",
        "host_cluster",
        "host_ndev",
        "max_host_devices",
        "n_devices",
        "n_hosts",
        "type_clusters",
    )

    def __init__(self, *, clusters: Sequence[ClusterSpec]) -> None:
        if not clusters:
            raise ConfigError("topology: at least one cluster")
        names = [c.name for c in clusters]
        if len(set(names)) != len(names):
            raise ConfigError("topology: cluster names must be unique")
        self.clusters = tuple(clusters)
        self.host_cluster: list[int] = []
        self.host_base: list[int] = []
        self.host_ndev: list[int] = []
        self.dev_host: list[int] = []
        self.cluster_hosts: list[range] = []
        types: list[str] = []
        self.type_clusters: dict[str, list[int]] = {}
        for ci, c in enumerate(self.clusters):
            first = len(self.host_cluster)
            for _ in range(c.hosts):
                h = len(self.host_cluster)
                self.host_cluster.append(ci)
                self.host_base.append(len(self.dev_host))
                self.host_ndev.append(c.devices_per_host)
                self.dev_host.extend([h] * c.devices_per_host)
            self.cluster_hosts.append(range(first, len(self.host_cluster)))
            if c.device_type not in self.type_clusters:
                types.append(c.device_type)
                self.type_clusters[c.device_type] = []
            self.type_clusters[c.device_type].append(ci)
        self.device_types = tuple(types)
        self.n_devices = len(self.dev_host)
        self.n_hosts = len(self.host_cluster)
        self.max_host_devices = max(self.host_ndev)

    @classmethod
    def build(
        cls,
        *,
        gpus: int,
        devices_per_host: int = 8,
        regions: int = 1,
        clusters_per_region: int = 1,
        device_types: Sequence[str] = ("gpu",),
    ) -> Topology:
        """A fleet of ``gpus`` devices split as evenly as possible into regions × clusters.

        Device types are given to regions round-robin (every cluster of a region has its type).
        """
        if gpus < devices_per_host or gpus % devices_per_host:
            raise ConfigError(
                f"topology: gpus ({gpus}) must be a positive multiple of devices_per_host "
                f"({devices_per_host})"
            )
        n_clusters = regions * clusters_per_region
        hosts = gpus // devices_per_host
        if hosts < n_clusters:
            raise ConfigError("topology: fewer hosts than clusters")
        specs = []
        for r in range(regions):
            for c in range(clusters_per_region):
                i = r * clusters_per_region + c
                share = hosts // n_clusters + (1 if i < hosts % n_clusters else 0)
                specs.append(
                    ClusterSpec(
                        name=f"r{r}c{c}",
                        region=f"r{r}",
                        device_type=device_types[r % len(device_types)],
                        hosts=share,
                        devices_per_host=devices_per_host,
                    )
                )
        return cls(clusters=specs)

    def cluster_of_device(self, d: int) -> int:
        return self.host_cluster[self.dev_host[d]]

    def type_of_device(self, d: int) -> str:
        return self.clusters[self.cluster_of_device(d)].device_type

    def describe(self) -> str:
        regions = sorted({c.region for c in self.clusters})
        return (
            f"{self.n_devices} devices on {self.n_hosts} hosts in {len(self.clusters)} clusters, "
            f"{len(regions)} regions, device types {', '.join(self.device_types)}"
        )
