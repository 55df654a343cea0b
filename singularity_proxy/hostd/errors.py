"""Errors the API answers with: each carries its HTTP status."""
from __future__ import annotations

from singularity_proxy.errors import SingularityError


class ApiError(SingularityError):
    """A request the daemon refuses or could not carry out; `status` is the HTTP answer."""

    status = 500

    def __init__(self, message: str, *, status: int | None = None):
        super().__init__(message)
        if status is not None:
            self.status = status


class BadRequest(ApiError):
    status = 400


class NotFound(ApiError):
    status = 404


class Conflict(ApiError):
    """The rank's state does not allow the request (it may later: retry)."""

    status = 409


class Unavailable(ApiError):
    """The daemon is shutting down (draining) and takes no new work."""

    status = 503
