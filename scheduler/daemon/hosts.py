"""The host daemons' HTTP API (docs/control-plane.md, `singproxy serve`) as the driver uses it.

Blocking httpx calls: the driver runs them on worker threads.  Every request carries the bearer
token.  A command that the host refuses or that cannot be sent raises `HostError`; the driver is
level-triggered, so it simply looks again at the host's status and re-issues what is still missing.
"""

from __future__ import annotations

import time
from typing import Any

import httpx

from ..errors import SchedulerError


class HostError(SchedulerError):
    """A host daemon could not be reached or refused a request."""

    def __init__(self, message: str, *, status: int = 0) -> None:
        super().__init__(message)
        self.status = status


class HostApi:
    def __init__(self, *, token: str | None, timeout_s: float = 600.0, status_timeout_s: float = 3.0) -> None:
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        # Two clients: status polls must fail fast, commands (a checkpoint) may take minutes.
        self._cmd = httpx.Client(headers=headers, timeout=timeout_s)
        self._poll = httpx.Client(headers=headers, timeout=status_timeout_s)

    def _req(self, client: httpx.Client, method: str, url: str, **kw: Any) -> httpx.Response:
        try:
            r = client.request(method, url, **kw)
        except httpx.HTTPError as e:
            raise HostError(f"{method} {url}: {type(e).__name__}: {e}") from e
        if r.status_code >= 400:
            try:
                msg = str(r.json().get("error", r.text))
            except ValueError:
                msg = r.text
            raise HostError(f"{method} {url}: {r.status_code} {msg}", status=r.status_code)
        return r

    def _json(self, client: httpx.Client, method: str, url: str, **kw: Any) -> dict[str, Any]:
        r = self._req(client, method, url, **kw)
        try:
            d = r.json()
        except ValueError as e:
            raise HostError(f"{method} {url}: not JSON: {r.text[:200]!r}") from e
        if not isinstance(d, dict):
            raise HostError(f"{method} {url}: expected an object, got {type(d).__name__}")
        return d

    def status(self, base: str) -> dict[str, Any]:
        d = self._json(self._poll, "GET", f"{base}/v1/status")
        if not isinstance(d.get("ranks"), dict):
            raise HostError(f"GET {base}/v1/status: no 'ranks' object")
        return d

    def start(self, base: str, body: dict[str, Any]) -> dict[str, Any]:
        return self._json(self._cmd, "POST", f"{base}/v1/ranks", json=body)

    def checkpoint(self, base: str, name: str, *, leave_running: bool) -> dict[str, Any]:
        t0 = time.monotonic()
        out = self._json(
            self._cmd, "POST", f"{base}/v1/ranks/{name}/checkpoint", json={"leave_running": leave_running}
        )
        # The host answers once the checkpoint is committed: the call's duration is the
        # checkpoint's, as this scheduler saw it (unless the host reports its own figure).
        out.setdefault("checkpoint_seconds", time.monotonic() - t0)
        return out

    def restore(
        self, base: str, name: str, *, device: str, image: str, checkpoint_interval: float
    ) -> dict[str, Any]:
        body = {"device": device, "image": image, "checkpoint_interval": checkpoint_interval}
        return self._json(self._cmd, "POST", f"{base}/v1/ranks/{name}/restore", json=body)

    def delete(self, base: str, name: str) -> dict[str, Any]:
        return self._json(self._cmd, "DELETE", f"{base}/v1/ranks/{name}")

    def log(self, base: str, name: str, offset: int) -> bytes:
        return self._req(self._poll, "GET", f"{base}/v1/ranks/{name}/log", params={"offset": offset}).content

    def close(self) -> None:
        self._cmd.close()
        self._poll.close()
