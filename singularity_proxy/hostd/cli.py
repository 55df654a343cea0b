"""The `singproxy` command: `serve` runs the host daemon, `status` asks it (a liveness probe).

    singproxy serve --name HOST --data-dir DIR [--devices sim:N | cuda] [--listen HOST:PORT
                    --token-file FILE] [--scheduler URL[,URL...] | --etcd URL[,URL...]]
                    [--state-dir DIR] [--checkpoint-interval S] [--drain]
    singproxy status [--state-dir DIR] [--json]     # exit 0: the daemon answers; 1: it does not
"""
from __future__ import annotations

import argparse
import asyncio
import json
import logging
import socket
import sys
from pathlib import Path

from singularity_proxy.errors import SingularityError


def _urls(spec: str | None) -> list[str]:
    return [u.strip() for u in spec.split(",") if u.strip()] if spec else []


def cmd_serve(args: argparse.Namespace) -> int:
    from singularity_proxy.artifacts import real_driver_path
    from singularity_proxy.hostd.auth import read_token
    from singularity_proxy.hostd.daemon import HostDaemon, default_state_dir
    from singularity_proxy.hostd.devices import discover
    from singularity_proxy.jobs import valid_name

    logging.basicConfig(level=logging.INFO, stream=sys.stderr,
                        format="%(asctime)s %(name)s %(levelname)s: %(message)s")
    name = valid_name(args.name or socket.gethostname().split(".")[0])
    if args.checkpoint_interval < 0:
        raise SingularityError("--checkpoint-interval must not be negative")
    spec = args.devices or ("cuda" if real_driver_path() else "sim:1")
    devices = discover(spec)
    token = read_token(Path(args.token_file)) if args.token_file else None
    daemon = HostDaemon(name=name, data_dir=Path(args.data_dir), state_dir=Path(args.state_dir or default_state_dir()),
                        devices=devices, listen=args.listen, token=token, advertise_url=args.advertise_url,
                        scheduler_urls=_urls(args.scheduler), etcd_urls=_urls(args.etcd),
                        checkpoint_interval=args.checkpoint_interval, drain_on_term=args.drain)
    return asyncio.run(daemon.loop())


def cmd_status(args: argparse.Namespace) -> int:
    import httpx

    from singularity_proxy.hostd.daemon import SOCKET, default_state_dir

    path = Path(args.state_dir or default_state_dir()) / SOCKET
    try:
        with httpx.Client(transport=httpx.HTTPTransport(uds=str(path)), base_url="http://singproxy",
                          timeout=args.timeout) as client:
            health = client.get("/v1/health")
            health.raise_for_status()
            h = health.json()
            st = client.get("/v1/status").json()
    except (httpx.HTTPError, ValueError, OSError) as e:
        if args.json:
            print(json.dumps({"ok": False, "socket": str(path), "error": str(e)}))
        else:
            print(f"singproxy: no daemon answers on {path}: {e}", file=sys.stderr)
        return 1
    if args.json:
        print(json.dumps({**h, **st}, indent=2))
    else:
        print(f"host {h.get('host')}  pid {h.get('pid')}  url {h.get('url') or '-'}"
              f"{'  DRAINING' if h.get('draining') else ''}")
        for d in st.get("devices", []):
            print(f"  device {d['id']:8} {d['type']} ({d['memory_bytes'] / 2**30:.0f} GiB)")
        for name, r in st.get("ranks", {}).items():
            print(f"  rank {name:24} {r['state']:13} {r['device']:8} checkpoints {r['checkpoints']}")
    return 0 if h.get("ok") is True else 1


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="singproxy", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="command", required=True)

    sp = sub.add_parser("serve", help="run the host daemon")
    sp.add_argument("--name", default=None, help="this host's name in the fleet (default: the hostname)")
    sp.add_argument("--data-dir", required=True,
                    help="shared by every host and the scheduler: images/ and logs/ of the ranks")
    sp.add_argument("--devices", default=None,
                    help="sim:N (N simulated devices) or cuda (every GPU); default cuda if there is a driver, "
                         "else sim:1")
    sp.add_argument("--state-dir", default=None,
                    help="the daemon's own socket and pid file (default $SINGULARITY_RUNTIME_DIR/hostd)")
    sp.add_argument("--listen", default=None, help="HOST:PORT for remote control over HTTP (needs --token-file)")
    sp.add_argument("--token-file", default=None, help="file holding the bearer token of remote requests")
    sp.add_argument("--advertise-url", default=None,
                    help="the URL the scheduler reaches this daemon at (default: from --listen)")
    sp.add_argument("--scheduler", default=None, help="URL[,URL...] of the scheduler replicas to heartbeat to")
    sp.add_argument("--etcd", default=None, help="URL[,URL...] of etcd: keep this host's key under a lease instead")
    sp.add_argument("--checkpoint-interval", type=float, default=0.0,
                    help="seconds between leave-running checkpoints of a rank that gives none itself (0: off)")
    sp.add_argument("--drain", action="store_true", help="on SIGTERM, checkpoint every running rank before exiting")
    sp.set_defaults(func=cmd_serve)

    sp = sub.add_parser("status", help="ask the daemon how it is (exit 0: it answers, 1: it does not)")
    sp.add_argument("--state-dir", default=None)
    sp.add_argument("--json", action="store_true")
    sp.add_argument("--timeout", type=float, default=5.0, help="seconds to wait for the answer")
    sp.set_defaults(func=cmd_status)
    return p


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return int(args.func(args))
    except SingularityError as e:
        print(f"singproxy: {e}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
