"""The `singularity-scheduler` command (placeholder until the simulator lands)."""
import sys


def main(argv: list[str] | None = None) -> int:
    print("singularity-scheduler: not implemented yet", file=sys.stderr)
    return 2
