"""The daemon's own knobs, and how they change the policy's parameters.

params.toml describes a fleet in hours: its mechanism costs are modelled for 8 GiB ranks on a
2 GB/s store, and its quantum (`policy.min_quantum_s`, 300 s) and resize interval (600 s) suit jobs
that run for hours.  The daemon runs the same policy on real mechanisms, whose durations it
observes instead of modelling: the cost model only feeds the policy's own estimates (a job's
quantum is at least `quantum_cost_factor` × its modelled checkpoint + restore time).  So the
daemon keeps every figure of the file (or of ``--params FILE``) except:

* ``policy.min_quantum_s``            ← ``--quantum`` (default 60 s): the shortest time a job runs
  before a job of the same class may preempt or shrink it;
* ``policy.min_resize_interval_s``    ← ``--min-resize-interval`` (default 120 s);
* ``device_state.default_gib_per_rank`` ← ``--state-gib`` (default 1 GiB), the per-rank state size
  the policy assumes for a job's mechanism costs (the daemon cannot know it before a checkpoint).

Its own timing: status poll every ``--poll-interval`` (1 s); a host is down when its heartbeat is
older than ``--heartbeat-ttl`` (10 s) or its status could not be read for that long; running jobs
are checkpointed by their host every ``--checkpoint-interval`` s (0: never; bounds the work a host
failure loses).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from ..errors import ConfigError
from ..params import Params


@dataclass(frozen=True, kw_only=True)
class DaemonConfig:
    data_dir: Path
    policy: str = "singularity-elastic"
    params_file: str | None = None
    quantum_s: float = 60.0
    min_resize_interval_s: float = 120.0
    state_gib_per_rank: float = 1.0
    poll_interval_s: float = 1.0
    heartbeat_ttl_s: float = 10.0
    checkpoint_interval_s: float = 0.0
    command_timeout_s: float = 600.0
    status_timeout_s: float = 3.0

    def __post_init__(self) -> None:
        for name in ("quantum_s", "min_resize_interval_s", "checkpoint_interval_s"):
            if getattr(self, name) < 0:
                raise ConfigError(f"{name} must be >= 0")
        for name in ("state_gib_per_rank", "poll_interval_s", "heartbeat_ttl_s", "command_timeout_s",
                     "status_timeout_s"):
            if not getattr(self, name) > 0:
                raise ConfigError(f"{name} must be > 0")

    def params(self) -> Params:
        return Params.load(self.params_file).replace(
            policy_min_quantum_s=self.quantum_s,
            policy_min_resize_interval_s=self.min_resize_interval_s,
            device_state_default_gib_per_rank=self.state_gib_per_rank,
        )
