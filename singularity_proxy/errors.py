"""The one root of every error this package raises on purpose."""


class SingularityError(Exception):
    """Base class: callers can catch everything Singularity reports as a failure."""
