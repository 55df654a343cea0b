"""Fleet scheduler: SLA tiers, preemption, migration, elastic resize (policy, simulator, daemon).

The public interface: a `Policy` turns (`ClusterState`, event) into actions; `Simulator` replays a
`Trace` through a policy with mechanism costs from `Params`.  See docs/scheduler.md.
"""

from .actions import Action, Kill, Migrate, Place, Preempt, Reserve, Resize, Resume, SetTimer
from .baselines import FifoPolicy, KillRequeuePolicy, LasPolicy
from .errors import ConfigError, SchedulerError, StateError, TraceError
from .events import (
    CheckpointDone,
    Event,
    HostFailed,
    HostRecovered,
    JobArrived,
    JobFinished,
    RestoreDone,
    Timer,
)
from .jobs import Job, JobSpec, Phase, Tier
from .params import CostModel, Params
from .policy import Policy
from .simulator import POLICIES, SimResult, SimulationError, Simulator, make_policy
from .singularity import ElasticSingularityPolicy, SingularityPolicy
from .state import ClusterState
from .topology import ClusterSpec, Topology
from .trace import Trace, load_philly, synthetic

__all__ = [
    "POLICIES",
    "Action",
    "CheckpointDone",
    "ClusterSpec",
    "ClusterState",
    "ConfigError",
    "CostModel",
    "ElasticSingularityPolicy",
    "Event",
    "FifoPolicy",
    "HostFailed",
    "HostRecovered",
    "Job",
    "JobArrived",
    "JobFinished",
    "JobSpec",
    "Kill",
    "KillRequeuePolicy",
    "LasPolicy",
    "Migrate",
    "Params",
    "Phase",
    "Place",
    "Policy",
    "Preempt",
    "Reserve",
    "Resize",
    "RestoreDone",
    "Resume",
    "SchedulerError",
    "SetTimer",
    "SimResult",
    "SimulationError",
    "Simulator",
    "SingularityPolicy",
    "StateError",
    "Tier",
    "Timer",
    "Topology",
    "Trace",
    "TraceError",
    "load_philly",
    "make_policy",
    "synthetic",
]
