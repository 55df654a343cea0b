"""The scheduler's exceptions: one root class, one subclass per kind of failure."""

from __future__ import annotations


class SchedulerError(Exception):
    """Root of every error the scheduler raises on purpose."""


class ConfigError(SchedulerError):
    """A parameter file or command-line value is missing, malformed or out of range."""


class TraceError(SchedulerError):
    """A job trace cannot be read or holds a record the simulator cannot use."""


class StateError(SchedulerError):
    """An action or event does not fit the cluster state (a policy or driver bug).

    Examples: placing a job on a device another job holds, checkpointing a job that is not
    running, a completion for a job the state does not know.  The state is left unchanged.
    """
