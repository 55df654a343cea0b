"""Transparency (issue 3): the whole simulated-GPU program suite runs twice,
directly on libsimgpu.so and through shim -> proxy -> libsimgpu.so, and every
program ends with the same RESULT line both ways."""
from __future__ import annotations

import json
import sys

import pytest

from helpers import PROGRAMS as PROGRAM_DIR
from helpers import run_program, run_proxied
from test_sim_driver import C_PROGRAMS, PROGRAMS, SKIP


def result_of(r) -> dict:
    assert r.returncode == 0, f"exit {r.returncode}\nstdout:\n{r.stdout}\nstderr:\n{r.stderr}"
    last = r.stdout.strip().splitlines()[-1]
    assert last.startswith("RESULT "), r.stdout
    return json.loads(last[len("RESULT "):])


# Programs that use what the proxy does not do yet (docs/proxy.md, "Known limits").  Strict: one
# that starts passing fails the suite, so this list cannot go stale.
NOT_THROUGH_THE_PROXY: dict[str, str] = {}


def _params():
    for name, devices, env in PROGRAMS:
        marks = []
        if name in NOT_THROUGH_THE_PROXY:
            marks.append(pytest.mark.xfail(reason=NOT_THROUGH_THE_PROXY[name], strict=True))
        yield pytest.param(name, devices, env, id=name, marks=marks)


@pytest.mark.parametrize("name,devices,env", list(_params()))
def test_same_result_through_the_proxy(name, devices, env):
    direct = run_program(name, devices=devices, env=env, timeout=240)
    if direct.returncode == SKIP:
        pytest.skip("skipped on the simulated GPU itself")
    proxied = run_proxied([sys.executable, str(PROGRAM_DIR / name)], devices=devices, env=env, timeout=240)
    assert result_of(proxied) == result_of(direct)


@pytest.mark.parametrize("source", C_PROGRAMS)
def test_c_program_linked_with_lcuda_through_the_proxy(cc, source):
    from helpers import run_on_sim

    exe = cc(PROGRAM_DIR / source)
    direct = run_on_sim([str(exe)], timeout=120)
    if direct.returncode == SKIP:
        pytest.skip("skipped on the simulated GPU itself")
    assert result_of(run_proxied([str(exe)], timeout=120)) == result_of(direct)


def test_two_apps_share_one_proxy_with_the_same_results(tmp_path):
    """Two copies of a kernel program at once on one daemon-mode proxy."""
    import subprocess

    from helpers import ProxyServer, proxied_program_env

    direct = result_of(run_program("kernels.py"))
    proxy = ProxyServer(tmp_path)
    try:
        env = proxied_program_env(socket=proxy.socket)
        procs = [subprocess.Popen([sys.executable, str(PROGRAM_DIR / "kernels.py")], env=env, cwd=PROGRAM_DIR,
                                  stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for _ in range(2)]
        for p in procs:
            out, err = p.communicate(timeout=300)
            assert result_of(subprocess.CompletedProcess(p.args, p.returncode, out, err)) == direct
    finally:
        proxy.stop()
