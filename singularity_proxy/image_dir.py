"""A job's checkpoint image directory (docs/checkpoint.md):

    DIR/manifest.json        the commit point: names the checkpoint and the checksum of each file
    DIR/chunks/              device memory, content-addressed (shared by the job's checkpoints)
    DIR/ckpt-<id>/device.json, DIR/ckpt-<id>/criu/...

A checkpoint is written into a new ckpt-<id> directory and becomes the image
only when manifest.json is replaced (rename); whatever a crash leaves behind
is collected by the next checkpoint.  Loading verifies every file before
anything is restored.
"""
from __future__ import annotations

import hashlib
import json
import os
import secrets
import shutil
import time
from pathlib import Path
from typing import Any

from singularity_proxy.errors import SingularityError

MANIFEST = "manifest.json"
FORMAT = 1


class ImageError(SingularityError):
    """A checkpoint image is missing, corrupt, truncated or incompatible."""


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def read_manifest(image: Path) -> dict[str, Any]:
    path = image / MANIFEST
    try:
        m = json.loads(path.read_text())
    except FileNotFoundError:
        raise ImageError(f"{image} is not a checkpoint image (no {MANIFEST})") from None
    except (OSError, ValueError) as e:
        raise ImageError(f"{path} is corrupt: {e}") from None
    if not isinstance(m, dict) or m.get("format") != FORMAT:
        raise ImageError(f"{path}: image format {m.get('format') if isinstance(m, dict) else '?'} is not supported "
                         f"(this version reads format {FORMAT})")
    return m


def verify(image: Path, *, checksums: bool = True) -> dict[str, Any]:
    """The manifest, once every file it names is present and intact.

    `checksums=False` checks presence and sizes only: for a migration's private image in RAM,
    read back by the process that committed it a moment earlier (its device chunks are still
    verified by the proxy)."""
    m = read_manifest(image)
    for rel, want in sorted(m.get("files", {}).items()):
        p = image / rel
        if not p.is_file():
            raise ImageError(f"{image}: {rel} is missing")
        if p.stat().st_size != want["size"]:
            raise ImageError(f"{image}: {rel} is truncated ({p.stat().st_size} of {want['size']} bytes)")
        if checksums and _sha256(p) != want["sha256"]:
            raise ImageError(f"{image}: {rel} is corrupt (checksum mismatch)")
    return m


def begin(image: Path) -> tuple[str, Path]:
    """A fresh checkpoint directory in the image (leftovers of failed attempts go first)."""
    image.mkdir(parents=True, exist_ok=True)
    (image / "chunks").mkdir(exist_ok=True)
    keep = None
    if (image / MANIFEST).exists():
        try:
            keep = read_manifest(image).get("checkpoint")
        except ImageError:
            keep = None
    collect(image, keep)
    ckpt = f"ckpt-{time.strftime('%Y%m%dT%H%M%S')}-{secrets.token_hex(3)}"
    (image / ckpt).mkdir()
    return ckpt, image / ckpt


def commit(image: Path, ckpt: str, fields: dict[str, Any]) -> dict[str, Any]:
    """Makes ckpt-<id> the image: checksums, then the atomic manifest swap."""
    files = {}
    for p in sorted((image / ckpt).rglob("*")):
        if p.is_file() and not p.name.endswith(".log"):
            files[str(p.relative_to(image))] = {"size": p.stat().st_size, "sha256": _sha256(p)}
    manifest = {"format": FORMAT, "checkpoint": ckpt, "created": time.time(), "files": files, **fields}
    tmp = image / (MANIFEST + ".tmp")
    with open(tmp, "w") as f:
        json.dump(manifest, f, indent=1)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, image / MANIFEST)
    _fsync_dir(image)
    collect(image, ckpt)
    return manifest


def _chunks_of(device_json: Path) -> set[str]:
    try:
        d = json.loads(device_json.read_text())
    except (OSError, ValueError):
        return set()
    names: set[str] = set()
    for section in ("memory", "images", "globals"):
        for entry in d.get(section, []):
            names.update(entry.get("chunks", []))
    return names


def collect(image: Path, keep: str | None) -> None:
    """Removes every checkpoint directory but `keep`, and every chunk it does not use."""
    for d in image.glob("ckpt-*"):
        if d.is_dir() and d.name != keep:
            shutil.rmtree(d, ignore_errors=True)
    used = _chunks_of(image / keep / "device.json") if keep else set()
    chunks = image / "chunks"
    if not chunks.is_dir():
        return
    for sub in chunks.iterdir():
        if not sub.is_dir():
            continue
        for c in sub.iterdir():
            if c.name not in used:
                c.unlink(missing_ok=True)


def stdio_keys(pid: int) -> dict[int, str]:
    """How CRIU names the resources behind a process's fds 0-2 (pipe:[ino],
    socket:[ino], or a file's path); terminals belong to the shell job."""
    keys = {}
    for fd in (0, 1, 2):
        try:
            target = os.readlink(f"/proc/{pid}/fd/{fd}")
        except OSError:
            continue
        if target.startswith(("pipe:", "socket:")):
            keys[fd] = target
        elif target.startswith("/") and not target.startswith(("/dev/pts", "/dev/tty")):
            keys[fd] = target.lstrip("/")
    return keys
