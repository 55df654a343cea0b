"""The scheduler package type-checks with mypy --strict (the daemon will build on its interfaces)."""

from __future__ import annotations

import importlib.util
import subprocess
import sys
from pathlib import Path

import pytest

import scheduler


@pytest.mark.skipif(importlib.util.find_spec("mypy") is None, reason="mypy not installed")
def test_mypy_strict(tmp_path: Path) -> None:
    # -p: the installed package (the one the other tests import), not the source tree.
    r = subprocess.run(
        [
            sys.executable,
            "-m",
            "mypy",
            "--strict",
            "--ignore-missing-imports",
            "--cache-dir",
            str(tmp_path / "cache"),
            "-p",
            "scheduler",
        ],
        capture_output=True,
        text=True,
        check=False,
        cwd=tmp_path,
    )
    assert Path(scheduler.__file__).is_file()
    assert r.returncode == 0, r.stdout + r.stderr
