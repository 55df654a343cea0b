"""The scheduler daemon, ``singularity-scheduler serve`` (docs/control-plane.md).

One concern per module: `fleet` (fleet.toml → topology and device names), `store` (the persistent
state interface; `store_sqlite`, `store_etcd`), `leader` (who may act), `driver` (the controller:
events → the policy → commands to host daemons, level-triggered), `hosts` (the host daemons' HTTP
API as the driver uses it), `server` (the REST API), `service` (wiring and the main loop).
"""
