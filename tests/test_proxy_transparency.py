"""Transparency (issue 3): the whole simulated-GPU program suite runs twice,
directly on libsimgpu.so and through shim -> proxy -> libsimgpu.so, and every
program ends with the same RESULT line both ways."""
from __future__ import annotations

import json
import sys

import pytest

from helpers import PROGRAMS as PROGRAM_DIR
from helpers import run_program, run_proxied
from test_sim_driver import PROGRAMS, SKIP


def result_of(r) -> dict:
    assert r.returncode == 0, f"exit {r.returncode}\nstdout:\n{r.stdout}\nstderr:\n{r.stderr}"
    last = r.stdout.strip().splitlines()[-1]
    assert last.startswith("RESULT "), r.stdout
    return json.loads(last[len("RESULT "):])


@pytest.mark.parametrize("name,devices,env", PROGRAMS, ids=[p[0] for p in PROGRAMS])
def test_same_result_through_the_proxy(name, devices, env):
    direct = run_program(name, devices=devices, env=env, timeout=240)
    if direct.returncode == SKIP:
        pytest.skip("skipped on the simulated GPU itself")
    proxied = run_proxied([sys.executable, str(PROGRAM_DIR / name)], devices=devices, env=env, timeout=240)
    assert result_of(proxied) == result_of(direct)
