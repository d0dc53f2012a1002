"""Every replica's health and metrics server: GET /metrics, /readyz and /healthz (`--metrics-address`,
and the older `--liveness URL`).

- /readyz: this replica can serve the receiver, i.e. the Kubernetes API answers (GET /version, at most
  once every READY_CACHE_SECONDS, whatever the probe's rate).
- /healthz: 500 until the operator has started; then a follower is alive while its event loop
  answers (it must not be restarted for waiting its turn); the leader is alive while its watch of the
  API is up, or has been down for less than the grace period (Kopf retries a broken watch silently for
  ever and exposes no state of it, so the leader keeps a watch of its own on the same resource: see
  watch_sentinel.py).
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
import time
import urllib.parse
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence

import aiohttp
import aiohttp.web
import prometheus_client

from remediator.metrics import OperatorMetrics

logger = logging.getLogger("remediator.health")

READY_CACHE_SECONDS = 2.0
READY_TIMEOUT_SECONDS = 2.0
LIVENESS_PATH = "/healthz"
READINESS_PATH = "/readyz"


@dataclasses.dataclass(frozen=True)
class Address:
    """Where to listen, and the path liveness answers at (besides /healthz)."""

    host: str
    port: int
    liveness_path: str = LIVENESS_PATH


def liveness_address(url: str) -> Address:
    """The address of a `--liveness` URL (http://HOST:PORT/PATH); ValueError when it is not one."""
    parts = urllib.parse.urlsplit(url)
    if parts.scheme != "http" or parts.port is None:
        raise ValueError(f"expected a liveness URL such as http://0.0.0.0:8080/healthz, got {url!r}")
    return Address(parts.hostname or "localhost", parts.port, parts.path or "/")


class Readiness:
    """Whether the Kubernetes API answers, asked at most once every READY_CACHE_SECONDS."""

    def __init__(self, ask: Callable[[], Awaitable[object]], clock: Callable[[], float] = time.monotonic) -> None:
        self.ask = ask
        self.clock = clock
        self._checked_at = -float("inf")
        self._ready = False
        self._why = "not checked yet"
        self._lock = asyncio.Lock()

    async def check(self) -> tuple[bool, str]:
        """(ready, why not); a cached answer when the last one is younger than READY_CACHE_SECONDS."""
        async with self._lock:
            if self.clock() - self._checked_at >= READY_CACHE_SECONDS:
                try:
                    async with asyncio.timeout(READY_TIMEOUT_SECONDS):
                        await self.ask()
                    self._ready, self._why = True, ""
                except Exception as e:  # any failure to get an answer means: not ready
                    self._ready, self._why = False, f"the Kubernetes API did not answer ({type(e).__name__})"
                self._checked_at = self.clock()
            return self._ready, self._why


class Health:
    """What the probes answer from: the metrics, the readiness check, and the leader's liveness check."""

    def __init__(self, metrics: OperatorMetrics, readiness: Readiness | None = None) -> None:
        self.metrics = metrics
        self.readiness = readiness
        # Installed by the leader once it runs the handlers: why it is not alive, or "" when it is.
        self.liveness_problem: Callable[[], str] = lambda: ""
        # Set once the operator runs (Kopf started, or a follower waits for the Lease): a probe that
        # answers earlier would tell a test, or a rollout, that a replica works before it does.
        self.started = False

    async def serve_metrics(self, _: aiohttp.web.Request) -> aiohttp.web.Response:
        return aiohttp.web.Response(body=self.metrics.exposition(),
                                    headers={"Content-Type": prometheus_client.CONTENT_TYPE_LATEST})

    async def alive(self, _: aiohttp.web.Request) -> aiohttp.web.Response:
        problem = self.liveness_problem() if self.started else "starting"
        if problem:
            return aiohttp.web.json_response({"alive": False, "reason": problem}, status=500)
        return aiohttp.web.json_response({"alive": True})

    async def ready(self, _: aiohttp.web.Request) -> aiohttp.web.Response:
        if self.readiness is None:
            return aiohttp.web.json_response({"ready": True})
        ready, why = await self.readiness.check()
        return aiohttp.web.json_response({"ready": ready, **({"reason": why} if why else {})},
                                         status=200 if ready else 503)

    def app(self, liveness_paths: Sequence[str]) -> aiohttp.web.Application:
        """GET /metrics, /readyz, and liveness at /healthz and each given path."""
        app = aiohttp.web.Application()
        app.router.add_get("/metrics", self.serve_metrics)
        app.router.add_get(READINESS_PATH, self.ready)
        for path in dict.fromkeys((LIVENESS_PATH, *liveness_paths)):
            if path not in ("/metrics", READINESS_PATH):
                app.router.add_get(path, self.alive)
        return app


@contextlib.asynccontextmanager
async def serving(health: Health, addresses: Sequence[Address]) -> AsyncIterator[None]:
    """Serve the health app on every address while inside (nothing without addresses)."""
    if not addresses:
        yield
        return
    runner = aiohttp.web.AppRunner(health.app([a.liveness_path for a in addresses]), handle_signals=False,
                                   shutdown_timeout=1.0, access_log=None)
    await runner.setup()
    try:
        for address in dict.fromkeys((a.host, a.port) for a in addresses):
            await aiohttp.web.TCPSite(runner, *address).start()
            logger.info(f"serving /metrics, {READINESS_PATH} and {LIVENESS_PATH} on {address[0]}:{address[1]}")
        yield
    finally:
        await runner.cleanup()
