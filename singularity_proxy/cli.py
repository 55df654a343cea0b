"""The `singularity` command."""
from __future__ import annotations

import argparse
import json
import os
import sys

from singularity_proxy.artifacts import native_paths, proxied_env, simulated_gpu_env
from singularity_proxy.errors import SingularityError


def _command(args: argparse.Namespace) -> list[str]:
    cmd = list(args.cmd)
    if cmd and cmd[0] == "--":
        cmd = cmd[1:]
    if not cmd:
        raise SingularityError("no command given: put it after --")
    return cmd


def _exec(cmd: list[str], env: dict[str, str]) -> int:
    try:
        os.execvpe(cmd[0], cmd, env)
    except FileNotFoundError:
        raise SingularityError(f"command not found: {cmd[0]}") from None
    except PermissionError:
        raise SingularityError(f"command not executable: {cmd[0]}") from None
    return 127  # not reached


def cmd_paths(args: argparse.Namespace) -> int:
    print(json.dumps(native_paths(), indent=2))
    return 0


def cmd_sim(args: argparse.Namespace) -> int:
    return _exec(_command(args), simulated_gpu_env(devices=args.devices))


def cmd_run(args: argparse.Namespace) -> int:
    return _exec(_command(args), proxied_env(device=args.device, job=args.job))


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="singularity", description=__doc__)
    sub = p.add_subparsers(dest="command", required=True)

    sp = sub.add_parser("paths", help="print the absolute paths of the native artifacts as JSON")
    sp.set_defaults(func=cmd_paths)

    sp = sub.add_parser("sim", help="run a command directly on the simulated GPU (no proxy)")
    sp.add_argument("--devices", type=int, default=1, help="number of simulated devices (default 1)")
    sp.add_argument("cmd", nargs=argparse.REMAINDER, help="-- CMD [ARGS...]")
    sp.set_defaults(func=cmd_sim)

    sp = sub.add_parser("run", help="run a command with every CUDA call going through a proxy")
    sp.add_argument("--device", default="sim", help="sim, sim:N, cuda or cuda:N (default sim)")
    sp.add_argument("--job", default=None, help="job name (for checkpoints and `singularity ps`)")
    sp.add_argument("cmd", nargs=argparse.REMAINDER, help="-- CMD [ARGS...]")
    sp.set_defaults(func=cmd_run)
    return p


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except SingularityError as e:
        print(f"singularity: {e}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
