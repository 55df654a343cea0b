"""The ``singularity-scheduler`` command.

    singularity-scheduler simulate --trace ../shared/traces/philly.csv --gpus 512 --policy all \\
        --load-factors 1,2 --report out/
    singularity-scheduler simulate --synthetic-gpus 100000 --synthetic-jobs 1000000 --report out-scale/
    singularity-scheduler params [--params FILE]      # print the figures in use
    singularity-scheduler serve --fleet fleet.toml --data-dir DIR --listen 127.0.0.1:8600 \\
        --token-file TOKEN [--db FILE | --etcd URL --replica-id ID]   # the daemon (docs/control-plane.md)
"""

from __future__ import annotations

import argparse
import resource
import sys
import time
from dataclasses import fields
from pathlib import Path
from typing import Any

import numpy as np

from .errors import SchedulerError
from .metrics import summarize
from .params import CostModel, Params
from .report import Run, write_report
from .simulator import POLICIES, Simulator, make_policy
from .topology import Topology
from .trace import Trace, find_philly, load_philly, synthetic


def _parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(
        prog="singularity-scheduler",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    sub = ap.add_subparsers(dest="cmd", required=True)
    sim = sub.add_parser("simulate", help="replay a trace through one or more policies and write a report")
    sim.add_argument(
        "--trace", help="Philly-format CSV (default: ../shared/traces/philly.csv, searched upwards)"
    )
    sim.add_argument("--gpus", type=int, default=512, help="fleet size for a trace run (default 512)")
    sim.add_argument("--policy", default="all", help=f"'all' or a comma list of {', '.join(POLICIES)}")
    sim.add_argument("--report", required=True, help="directory for report.json, report.md and plots")
    sim.add_argument(
        "--load-factors",
        default="1,2",
        help="comma list: each compresses the trace's arrivals by that factor (default 1,2)",
    )
    sim.add_argument("--regions", type=int, default=1)
    sim.add_argument("--clusters-per-region", type=int, default=2)
    sim.add_argument("--devices-per-host", type=int, default=8)
    sim.add_argument("--params", help="parameter file (default: the packaged params.toml)")
    sim.add_argument("--limit", type=int, help="only the first N jobs of the trace")
    sim.add_argument("--synthetic-gpus", type=int, help="scale run: fleet of this many GPUs")
    sim.add_argument("--synthetic-jobs", type=int, help="scale run: this many jobs drawn from the trace")
    sim.add_argument(
        "--synthetic-load", type=float, default=0.8, help="scale run: offered load (default 0.8)"
    )
    sim.add_argument("--seed", type=int, default=1)
    sim.add_argument(
        "--check-every", type=int, default=0, help="verify the whole state every N events (slow)"
    )
    sim.add_argument("--host-failures-per-day", type=float, default=0.0)
    sim.add_argument("--no-plots", action="store_true")
    par = sub.add_parser("params", help="print the parameter figures and derived mechanism costs")
    par.add_argument("--params")
    _serve_parser(sub)
    return ap


def _serve_parser(sub: Any) -> None:
    sv = sub.add_parser("serve", help="run the scheduler daemon (docs/control-plane.md)")
    sv.add_argument("--fleet", required=True, help="fleet.toml: the hosts (scheduler/daemon/fleet.py)")
    sv.add_argument("--data-dir", required=True, help="the shared storage every host daemon is given")
    sv.add_argument("--listen", default="127.0.0.1:8600", help="HOST:PORT of the REST API")
    sv.add_argument("--token-file", help="bearer token (default: $SINGULARITY_TOKEN); also sent to hosts")
    sv.add_argument("--db", help="SQLite state file (default DATA_DIR/scheduler.db)")
    sv.add_argument("--etcd", help="etcd client URL: replicated state and leader election")
    sv.add_argument("--etcd-prefix", default="/singularity")
    sv.add_argument("--replica-id", help="this replica's name in the election (default HOST-PID)")
    sv.add_argument("--advertise", help="URL followers send clients to (default http://LISTEN)")
    sv.add_argument("--leader-ttl", type=int, default=5, help="leader lease TTL, seconds (default 5)")
    sv.add_argument("--policy", default="singularity-elastic", help=f"one of {', '.join(POLICIES)}")
    sv.add_argument("--params", help="policy parameter file (default: the packaged params.toml)")
    sv.add_argument("--quantum", type=float, default=60.0, help="policy.min_quantum_s (default 60)")
    sv.add_argument("--min-resize-interval", type=float, default=120.0)
    sv.add_argument("--state-gib", type=float, default=1.0, help="assumed device state per rank, GiB")
    sv.add_argument("--poll-interval", type=float, default=1.0)
    sv.add_argument("--heartbeat-ttl", type=float, default=10.0)
    sv.add_argument("--checkpoint-interval", type=float, default=0.0, help="periodic checkpoints, s (0: off)")
    sv.add_argument("--log-level", default="INFO")


def _serve(args: argparse.Namespace) -> int:
    import asyncio
    import logging
    import os

    from .daemon.config import DaemonConfig
    from .daemon.service import ServeOptions, Service

    logging.basicConfig(
        level=getattr(logging, str(args.log_level).upper(), logging.INFO),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    if args.policy not in POLICIES:
        raise SchedulerError(f"unknown policy {args.policy!r}; choose from {', '.join(POLICIES)}")
    if args.db and args.etcd:
        raise SchedulerError("--db and --etcd exclude each other")
    if args.token_file:
        try:
            token = Path(args.token_file).read_text(encoding="utf-8").strip()
        except OSError as e:
            raise SchedulerError(f"cannot read --token-file: {e}") from e
    else:
        token = os.environ.get("SINGULARITY_TOKEN", "").strip()
    if not token:
        raise SchedulerError("no token: give --token-file or set SINGULARITY_TOKEN (every request needs it)")
    data_dir = Path(args.data_dir).resolve()
    data_dir.mkdir(parents=True, exist_ok=True)
    cfg = DaemonConfig(
        data_dir=data_dir,
        policy=args.policy,
        params_file=args.params,
        quantum_s=args.quantum,
        min_resize_interval_s=args.min_resize_interval,
        state_gib_per_rank=args.state_gib,
        poll_interval_s=args.poll_interval,
        heartbeat_ttl_s=args.heartbeat_ttl,
        checkpoint_interval_s=args.checkpoint_interval,
    )
    cfg.params()  # a bad parameter file fails here, not at the first event
    opts = ServeOptions(
        fleet=Path(args.fleet),
        listen=args.listen,
        token=token,
        config=cfg,
        db=Path(args.db) if args.db else None,
        etcd=args.etcd,
        etcd_prefix=args.etcd_prefix,
        replica_id=args.replica_id,
        advertise=args.advertise,
        leader_ttl_s=args.leader_ttl,
    )
    return asyncio.run(Service(opts).run())


def _cpu_s() -> float:
    """CPU time of this process so far (user + system): the wall time on an idle machine."""
    ru = resource.getrusage(resource.RUSAGE_SELF)
    return ru.ru_utime + ru.ru_stime


def _peak_rss_gib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / (1024.0**2)  # Linux: KiB


def _costs_table(params: Params) -> dict[str, float]:
    c = CostModel(params=params)
    g = params.device_state_default_gib_per_rank
    return {
        "checkpoint_1rank_s": round(c.checkpoint_s(gib_per_rank=g, ranks_on_host=1), 2),
        "checkpoint_8ranks_per_host_s": round(c.checkpoint_s(gib_per_rank=g, ranks_on_host=8), 2),
        "restore_1rank_s": round(c.restore_s(gib_per_rank=g, ranks_on_host=1), 2),
        "restore_8ranks_per_host_s": round(c.restore_s(gib_per_rank=g, ranks_on_host=8), 2),
        "framework_checkpoint_8ranks_per_host_s": round(
            c.checkpoint_s(gib_per_rank=g, ranks_on_host=8, framework=True), 2
        ),
        "framework_restart_1rank_s": round(
            c.restore_s(gib_per_rank=g, ranks_on_host=1, framework_restart=True), 2
        ),
        "framework_restart_8ranks_per_host_s": round(
            c.restore_s(gib_per_rank=g, ranks_on_host=8, framework_restart=True), 2
        ),
        "migrate_1rank_s": round(c.migrate_out_s(gib_per_rank=g, ranks_on_host=1) + c.migrate_in_s(), 2),
        "resize_8_to_4_in_host_s": round(c.resize_s(gib_per_rank=g, moved_ranks=4, new_hosts=0), 2),
        "rate_2_ranks_per_device_proxied": round(c.rate(2, True), 4),
        "rate_proxied_full_size": round(c.rate(1, True), 4),
    }


def _policies(arg: str) -> list[str]:
    names = list(POLICIES) if arg == "all" else [x.strip() for x in arg.split(",") if x.strip()]
    for n in names:
        if n not in POLICIES:
            raise SchedulerError(f"unknown policy {n!r}; choose from {', '.join(POLICIES)}")
    return names


def _run_all(
    trace: Trace,
    topo: Topology,
    params: Params,
    names: list[str],
    args: argparse.Namespace,
    label: str,
    factor: float,
) -> Run:
    run = Run(label=label, load_factor=factor, trace=trace.describe(topo.n_devices))
    for name in names:
        t0 = time.perf_counter()
        sim = Simulator(
            topology=topo,
            policy=make_policy(name, params=params),
            params=params,
            trace=trace,
            check_every=args.check_every,
            host_failures_per_day=args.host_failures_per_day,
            seed=args.seed,
        )
        res = sim.run()
        run.results[name] = res
        run.summaries[name] = summarize(res, params)
        s = run.summaries[name]
        print(
            f"[{label}] {name:20s} avg JCT {s['avg_jct_h']:.3f} h  p99 {s['p99_jct_h']:.1f} h  "
            f"util {s['utilization']:.3f}  lost {s['lost_gpu_hours']:.0f} GPU-h  "
            f"SLA {s['sla_attainment']}  ({time.perf_counter() - t0:.0f} s)",
            file=sys.stderr,
            flush=True,
        )
    return run


def _simulate(args: argparse.Namespace) -> int:
    params = Params.load(args.params)
    names = _policies(args.policy)
    trace_path = Path(args.trace) if args.trace else find_philly()
    if trace_path is None:
        raise SchedulerError("no --trace given and ../shared/traces/philly.csv not found")
    t_start = time.perf_counter()
    source = load_philly(
        trace_path,
        max_ranks_per_device=params.timeslice_max_ranks_per_device,
        state_gib_per_rank=params.device_state_default_gib_per_rank,
        limit=args.limit,
    )
    setup: dict[str, Any] = {
        "trace_file": str(trace_path),
        "trace_citation": "Jeon et al., Analysis of Large-Scale Multi-Tenant GPU Clusters "
        "for DNN Training Workloads, USENIX ATC 2019 (CC-BY-4.0)",
        "params": args.params or "packaged params.toml",
        "mechanism_costs": _costs_table(params),
    }
    scale: dict[str, Any] | None = None
    runs: list[Run] = []
    if args.synthetic_gpus or args.synthetic_jobs:
        if not (args.synthetic_gpus and args.synthetic_jobs):
            raise SchedulerError("--synthetic-gpus and --synthetic-jobs go together")
        gpus = args.synthetic_gpus
        # Regions of 25,000 GPUs, clusters of at most 5,000 (one network domain each).
        regions = max(1, gpus // 25000)
        per_region = max(1, -(-gpus // regions // 5000))
        topo = Topology.build(
            gpus=gpus, devices_per_host=args.devices_per_host, regions=regions, clusters_per_region=per_region
        )
        largest = min(c.hosts * c.devices_per_host for c in topo.clusters)
        trace = synthetic(
            source,
            jobs=args.synthetic_jobs,
            gpus=gpus,
            load=args.synthetic_load,
            seed=args.seed,
            max_gpus_per_job=largest,
            max_ranks_per_device=params.timeslice_max_ranks_per_device,
        )
        if args.policy == "all":
            names = ["singularity-elastic"]
        setup["fleet"] = topo.describe()
        run = _run_all(trace, topo, params, names, args, "synthetic", 1.0)
        runs.append(run)
        res = run.results[names[-1]]
        lat = np.frombuffer(res.decision_ms, dtype=np.float64)
        lat_cpu = np.frombuffer(res.decision_cpu_ms, dtype=np.float64)
        scale = {
            "gpus": gpus,
            "jobs": args.synthetic_jobs,
            "policy": names[-1],
            "wall_s": round(res.wall_s, 1),
            "total_wall_s": round(time.perf_counter() - t_start, 1),
            "cpu_s": round(_cpu_s(), 1),
            "peak_rss_gib": round(_peak_rss_gib(), 3),
            "decisions": res.events,
            "decisions_per_s": round(res.events / res.wall_s, 1) if res.wall_s else None,
            "decision_p50_ms": round(float(np.percentile(lat, 50)), 4),
            "decision_p99_ms": round(float(np.percentile(lat, 99)), 4),
            "decision_max_ms": round(float(lat.max()), 3),
            "decision_cpu_p50_ms": round(float(np.percentile(lat_cpu, 50)), 4),
            "decision_cpu_p99_ms": round(float(np.percentile(lat_cpu, 99)), 4),
            "decision_cpu_s": round(float(lat_cpu.sum()) / 1e3, 1),
            "simulated_days": round((res.end_time - float(res.arrival[0])) / 86400.0, 2),
        }
    else:
        topo = Topology.build(
            gpus=args.gpus,
            devices_per_host=args.devices_per_host,
            regions=args.regions,
            clusters_per_region=args.clusters_per_region,
        )
        setup["fleet"] = topo.describe()
        for f in [float(x) for x in args.load_factors.split(",") if x.strip()]:
            trace = source if f == 1 else source.compressed(f)
            runs.append(_run_all(trace, topo, params, names, args, f"load_{f:g}x", f))
    setup["tier_rule"] = (
        "virtual clusters ranked by GPU-hours (desc); rank r -> (standard, basic, premium)[r % 3]"
    )
    setup["elastic_rule"] = "multi-GPU jobs are data-parallel, elastic down to ceil(n / max_ranks_per_device)"
    d = write_report(args.report, runs=runs, setup=setup, scale=scale, plots=not args.no_plots)
    print(f"report written to {d}/report.md and {d}/report.json", file=sys.stderr)
    return 0


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        if args.cmd == "simulate":
            return _simulate(args)
        if args.cmd == "serve":
            return _serve(args)
        if args.cmd == "params":
            params = Params.load(args.params)
            for f in fields(params):
                print(f"{f.name} = {getattr(params, f.name)}")
            for k, v in _costs_table(params).items():
                print(f"{k} = {v}")
            return 0
    except SchedulerError as e:
        print(f"singularity-scheduler: {e}", file=sys.stderr)
        return 1
    return 2


if __name__ == "__main__":
    sys.exit(main())
