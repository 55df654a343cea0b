"""The `singularity` command."""
from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

from singularity_proxy.artifacts import native_paths, parse_device, proxied_env, simulated_gpu_env
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
    cmd = _command(args)
    parse_device(args.device)
    if not args.job:
        # No name, nothing to manage: the app with a private proxy, nothing in between.
        return _exec(cmd, proxied_env(device=args.device))
    from singularity_proxy.supervisor import Supervisor

    # The host daemon (singularity_proxy/hostd) passes the app's own variables this way, so that
    # they reach the app but not this supervisor (nor the command line, which anyone can read).
    app_env = json.loads(os.environ.pop("SINGULARITY_APP_ENV", "") or "{}")
    return Supervisor(name=args.job, device=args.device, command=cmd, app_env=app_env).run()


def _print(result: dict, as_json: bool, text: str) -> None:
    # One write: a restored app shares this stdout and may write meanwhile; print() writes the text
    # and its newline apart when stdout is unbuffered, and a line of the app's could land between.
    sys.stdout.write((json.dumps(result, indent=2) if as_json else text) + "\n")
    sys.stdout.flush()


def _with_progress(job: str, message: dict, title: str) -> dict:
    """A request to a job's supervisor, its phases shown as they finish."""
    from singularity_proxy.jobs import stream_request

    from tqdm import tqdm

    phases = {"device": "device state", "cpu": "process (CRIU)"}
    bar = tqdm(total=2 * (2 if message["op"] == "migrate" else 1), desc=title, unit="phase", leave=False,
               disable=not sys.stderr.isatty())
    def on_event(event: dict) -> None:
        if event.get("state") == "done":
            bar.update(1)
            bar.set_postfix_str(phases.get(event.get("phase"), ""))
    try:
        return stream_request(job, message, on_event)
    finally:
        bar.close()


def cmd_checkpoint(args: argparse.Namespace) -> int:
    r = _with_progress(args.name, {"op": "checkpoint", "dir": str(Path(args.dir).resolve()),
                                   "leave_running": args.leave_running}, f"checkpoint {args.name}")
    _print(r, args.json, f"checkpointed {args.name} to {r['image']} in {r['seconds']:.2f} s "
           f"(device state {r['device_bytes'] / 2**20:.1f} MiB, {r['device_bytes_written'] / 2**20:.1f} MiB "
           f"written; {'still running' if r['left_running'] else 'stopped'})")
    return 0


def cmd_restore(args: argparse.Namespace) -> int:
    from singularity_proxy import image_dir
    from singularity_proxy.jobs import JobRecord, JobNotFound

    image = Path(args.dir).resolve()
    manifest = image_dir.verify(image)
    job = manifest["job"]
    device = args.device or manifest.get("device", "sim")
    parse_device(device)
    try:
        alive = JobRecord.load(job).alive()
    except JobNotFound:
        alive = False
    if not alive:
        _spawn_supervisor(job, device, image)
        r = {"job": job, "image": str(image), "device": device}
    else:
        r = _with_progress(job, {"op": "restore", "dir": str(image), "device": device}, f"restore {job}")
    _print(r, args.json, f"restored {job} from {image} on {device}")
    return 0


def _spawn_supervisor(job: str, device: str, image: Path) -> None:
    """No supervisor is left for the job (its host restarted, say): a new one,
    in the background, restores it and stays with it; this command returns
    once the job runs.  Its output goes where this command's goes."""
    import subprocess
    import time

    from singularity_proxy.jobs import JobRecord, JobNotFound

    # -P: the supervisor imports this installed package, not whatever the current directory holds.
    proc = subprocess.Popen([sys.executable, "-P", "-m", "singularity_proxy.cli", "_supervise", "--job", job,
                             "--device", device, "--restore", str(image)], start_new_session=True)
    deadline = time.monotonic() + 600
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SingularityError(f"restoring {job} failed (exit {proc.returncode})")
        try:
            if JobRecord.load(job).state == "running":
                return
        except JobNotFound:
            pass
        time.sleep(0.1)
    raise SingularityError(f"restoring {job} did not finish in 10 minutes")


def cmd_supervise(args: argparse.Namespace) -> int:
    from singularity_proxy import image_dir
    from singularity_proxy.supervisor import Supervisor

    manifest = image_dir.read_manifest(Path(args.restore))
    app_env = json.loads(os.environ.pop("SINGULARITY_APP_ENV", "") or "{}")  # for a new proxy (see cmd_run)
    sup = Supervisor(name=args.job, device=args.device, command=manifest.get("command", []), app_env=app_env)
    return sup.run(restore_from=Path(args.restore))


def cmd_migrate(args: argparse.Namespace) -> int:
    parse_device(args.device)
    message = {"op": "migrate", "device": args.device}
    if args.dir:
        message["dir"] = str(Path(args.dir).resolve())
    r = _with_progress(args.name, message, f"migrate {args.name}")
    _print(r, args.json, f"migrated {args.name} to {args.device} in {r['seconds']:.2f} s "
           f"(checkpoint {r['checkpoint']['seconds']:.2f} s, restore {r['restore']['seconds']:.2f} s)")
    return 0


def cmd_ps(args: argparse.Namespace) -> int:
    from singularity_proxy.jobs import all_jobs

    rows = []
    for rec in all_jobs():
        d = dict(rec.__dict__)
        d["alive"] = rec.alive()
        rows.append(d)
    if args.json:
        print(json.dumps(rows, indent=2))
        return 0
    print(f"{'JOB':20} {'STATE':13} {'DEVICE':8} {'PID':>8}  COMMAND")
    for d in rows:
        state = d["state"] if d["alive"] or d["state"] == "exited" else d["state"] + "?"
        print(f"{d['name']:20} {state:13} {d['device']:8} {d['app_pid'] or '-':>8}  {' '.join(d['command'])[:60]}")
    return 0


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
    sp.add_argument("--job", default=None,
                    help="job name: the job can then be checkpointed, restored and migrated")
    sp.add_argument("cmd", nargs=argparse.REMAINDER, help="-- CMD [ARGS...]")
    sp.set_defaults(func=cmd_run)

    sp = sub.add_parser("checkpoint", help="checkpoint a job (it stops, unless --leave-running)")
    sp.add_argument("name")
    sp.add_argument("dir", help="image directory (a later checkpoint there writes only what changed)")
    sp.add_argument("--leave-running", action="store_true")
    sp.add_argument("--json", action="store_true")
    sp.set_defaults(func=cmd_checkpoint)

    sp = sub.add_parser("restore", help="restore a job from an image; returns once it runs again")
    sp.add_argument("dir")
    sp.add_argument("--device", default=None, help="device to restore on (default: the one it left)")
    sp.add_argument("--json", action="store_true")
    sp.set_defaults(func=cmd_restore)

    sp = sub.add_parser("migrate", help="move a running job to another device")
    sp.add_argument("name")
    sp.add_argument("--device", required=True)
    sp.add_argument("--dir", default=None, help="image directory to go through (default: a private one)")
    sp.add_argument("--json", action="store_true")
    sp.set_defaults(func=cmd_migrate)

    sp = sub.add_parser("ps", help="jobs on this host")
    sp.add_argument("--json", action="store_true")
    sp.set_defaults(func=cmd_ps)

    from singularity_proxy.client_cli import add_parsers

    add_parsers(sub)  # submit, jobs, cancel, logs: the scheduler daemon's client

    sp = sub.add_parser("_supervise", help=argparse.SUPPRESS)
    sp.add_argument("--job", required=True)
    sp.add_argument("--device", required=True)
    sp.add_argument("--restore", required=True)
    sp.set_defaults(func=cmd_supervise)
    return p


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    from singularity_proxy.client_cli import ClientError

    try:
        return args.func(args)
    except ClientError as e:
        print(f"singularity: {e}", file=sys.stderr)
        return e.code
    except SingularityError as e:
        print(f"singularity: {e}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
