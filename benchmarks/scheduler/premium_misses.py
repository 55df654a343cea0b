#!/usr/bin/env python3
"""Which premium jobs miss their SLA under `singularity` on the Philly trace, and why.

    .venv/bin/python benchmarks/scheduler/premium_misses.py [--trace CSV] [--gpus 512] [--load 1]

Replays the trace once (about two minutes at load 1) and prints how many premium requests were
admitted and how many were served as standard (the premium quota), then, for the admitted premium
jobs that miss their SLA and for those that meet it, the delay to first start, the sizes, and how
many devices the admitted premium jobs in the system (arrived, not finished) were asking for when
each missing job arrived.
"""

from __future__ import annotations

import argparse

import numpy as np

from scheduler.jobs import Tier
from scheduler.metrics import sla_met
from scheduler.params import Params
from scheduler.simulator import Simulator, make_policy
from scheduler.topology import Topology
from scheduler.trace import find_philly, load_philly


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--trace")
    ap.add_argument("--gpus", type=int, default=512)
    ap.add_argument("--policy", default="singularity")
    ap.add_argument("--load", type=float, default=1.0, help="time compression of the arrivals")
    args = ap.parse_args()
    p = Params.load(None)
    path = args.trace or find_philly()
    if path is None:
        raise SystemExit("no --trace given and shared/traces/philly.csv not found")
    tr = load_philly(
        path,
        max_ranks_per_device=p.timeslice_max_ranks_per_device,
        state_gib_per_rank=p.device_state_default_gib_per_rank,
    )
    if args.load != 1:
        tr = tr.compressed(args.load)
    topo = Topology.build(gpus=args.gpus, devices_per_host=8, regions=1, clusters_per_region=2)
    res = Simulator(
        topology=topo, policy=make_policy(args.policy, params=p), params=p, trace=tr, seed=1
    ).run()
    met = sla_met(res, p)
    asked = res.tier == int(Tier.PREMIUM)
    prem = res.admitted_tier == int(Tier.PREMIUM)
    miss = prem & ~met
    print(
        f"premium requests {int(asked.sum())}: admitted {int(prem.sum())}, served as standard "
        f"(quota) {int((asked & ~prem).sum())}; admitted missing their SLA {int(miss.sum())}"
    )
    if not miss.any():
        return
    first = res.first_start - res.arrival
    for name, sel in (("missed", miss), ("met", prem & met)):
        q = np.percentile(first[sel], [50, 90, 100])
        print(f"{name:6s} delay to first start s: p50 {q[0]:.0f} p90 {q[1]:.0f} max {q[2]:.0f}")
    sizes = {int(g): int(((res.num_gpus == g) & miss).sum()) for g in np.unique(res.num_gpus[miss])}
    print("missed, by job size (GPUs: jobs):", sizes)
    a, f, n = res.arrival[prem], res.finish[prem], res.num_gpus[prem]
    demand = np.array([n[(a <= t) & (f > t)].sum() for t in res.arrival[miss]])
    q = np.percentile(demand, [0, 10, 50, 90, 100])
    print(
        f"GPUs asked for by admitted premium jobs in the system when a missed one arrived "
        f"(fleet {args.gpus}): "
        f"min {q[0]:.0f} p10 {q[1]:.0f} p50 {q[2]:.0f} p90 {q[3]:.0f} max {q[4]:.0f}"
    )


if __name__ == "__main__":
    main()
