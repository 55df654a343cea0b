"""Request bodies of the host daemon's API, and rank names.

Strict models: an unknown field, a string where a number belongs or a negative interval is
refused (422) before anything changes, so a client with a typo learns about it instead of
getting a default it did not ask for.
"""
from __future__ import annotations

import math
import re
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, field_validator

from singularity_proxy.errors import SingularityError
from singularity_proxy.hostd.errors import BadRequest
from singularity_proxy.jobs import valid_name
from singularity_proxy.launch_spec import Command, Cwd, Env

# Rank r of job NAME is the host-local job (supervisor) NAME.r<r> (docs/control-plane.md, Names).
_RANK_NAME = re.compile(r"^(?P<job>.+)\.r(?P<rank>0|[1-9][0-9]{0,5})$")
MAX_RANK = 999_999


def rank_name(job: str, rank: int) -> str:
    return f"{job}.r{rank}"


def parse_rank_name(name: str) -> tuple[str, int]:
    """'NAME.rR' -> (NAME, R); BadRequest for anything else."""
    m = _RANK_NAME.match(name)
    if not m:
        raise BadRequest(f"bad rank name {name!r}: expected JOB.rN (rank N of job JOB)")
    try:
        valid_name(name)
        valid_name(m["job"])
    except SingularityError as e:
        raise BadRequest(str(e)) from None
    return m["job"], int(m["rank"])


Interval = Annotated[float, Field(ge=0, le=365 * 86400)]


class _Body(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)


class RankCreate(_Body):
    """POST /v1/ranks"""

    job: str
    rank: Annotated[int, Field(ge=0, le=MAX_RANK)]
    command: Command
    env: Env = {}
    cwd: Cwd = None
    device: str
    # None: the daemon's --checkpoint-interval; 0: no periodic checkpoints.
    checkpoint_interval: Interval | None = None

    @field_validator("job")
    @classmethod
    def _job(cls, v: str) -> str:
        try:
            return valid_name(v)
        except SingularityError as e:
            raise ValueError(str(e)) from None




    @field_validator("checkpoint_interval")
    @classmethod
    def _finite(cls, v: float | None) -> float | None:
        if v is not None and not math.isfinite(v):
            raise ValueError("checkpoint_interval must be a finite number of seconds")
        return v

    @property
    def name(self) -> str:
        return rank_name(self.job, self.rank)


class CheckpointBody(_Body):
    """POST /v1/ranks/NAME/checkpoint"""

    leave_running: bool = False


class RestoreBody(_Body):
    """POST /v1/ranks/NAME/restore"""

    device: str
    # Default: the rank's image directory DATA_DIR/images/<job>/rank<r>.
    image: str | None = None
    # Periodic checkpoints of the restored rank (None: the daemon's default).
    checkpoint_interval: Interval | None = None

    @field_validator("image")
    @classmethod
    def _image(cls, v: str | None) -> str | None:
        if v is not None and not v.startswith("/"):
            raise ValueError(f"image must be an absolute path, not {v!r}")
        return v
