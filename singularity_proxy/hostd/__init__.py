"""The per-host daemon `singproxy serve` (docs/control-plane.md).

    devices.py   what devices this host offers (probed in a child process)
    ranks.py     the ranks (job supervisors) the daemon runs: start, checkpoint, restore, kill
    models.py    request bodies (pydantic, unknown fields refused) and rank names
    auth.py      who may talk to the daemon: peer uid on the unix socket, bearer token on TCP
    server.py    the HTTP API (aiohttp), one app served on both
    metrics.py   Prometheus metrics
    heartbeat.py telling the scheduler this host is alive (HTTP heartbeats or an etcd lease)
    daemon.py    the daemon: sockets, state directory, the loop, signals, drain
    cli.py       `singproxy serve | status`
"""
