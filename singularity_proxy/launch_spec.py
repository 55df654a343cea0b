"""What a program to launch may look like: the command, environment and working directory of a
job (scheduler REST) or of one of its ranks (host daemon REST).  Both daemons check them the same
way, before anything is stored or started."""
from __future__ import annotations

from typing import Annotated

from pydantic import AfterValidator, Field


def _command(v: list[str]) -> list[str]:
    if not v[0].strip():
        raise ValueError("the command's first word (the program) is empty")
    if any("\0" in a for a in v):
        raise ValueError("a command word contains a NUL byte")
    return v


def _env(v: dict[str, str]) -> dict[str, str]:
    for k, val in v.items():
        if not k or "=" in k or "\0" in k or "\0" in val:
            raise ValueError(f"bad environment variable {k!r}")
    return v


def _cwd(v: str | None) -> str | None:
    if v is not None and not v.startswith("/"):
        raise ValueError(f"cwd must be an absolute path, not {v!r}")
    return v


Command = Annotated[list[str], Field(min_length=1), AfterValidator(_command)]
Env = Annotated[dict[str, str], AfterValidator(_env)]
Cwd = Annotated[str | None, AfterValidator(_cwd)]
