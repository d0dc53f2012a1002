"""The leader's own watch of Incidents, whose only news is whether watching the API works.

Kopf reconnects a failing watch stream for ever, logging, and exposes no state of it. So the leader
keeps one more watch on the same resource (selecting no object, so the API server sends it nothing):
connected while the stream is open, or ends as the server ends it (timeoutSeconds); down from the
first failure until a stream opens again. The liveness probe fails once it has been down longer than
the grace period, and the Deployment restarts the replica.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import Callable
from typing import Any

from kubernetes.aio import client

from remediator import GROUP, VERSION
from remediator.metrics import OperatorMetrics

logger = logging.getLogger("remediator.watch")

# The server ends each stream after this long; a hung connection is noticed within it plus the margin.
STREAM_SECONDS = 30
READ_MARGIN_SECONDS = 5.0
RECONNECT_SECONDS = 1.0
# No Incident can have this name (it is not a DNS label), so the stream carries no events.
NOBODY = "-remediator-watch-sentinel-"


class WatchSentinel:
    """Keeps one watch open; `problem()` says why the leader is not alive, or ""."""

    def __init__(self, api: client.ApiClient, namespace: str | None, grace_seconds: float,
                 metrics: OperatorMetrics, clock: Callable[[], float] = time.monotonic) -> None:
        self.api = api
        self.namespace = namespace
        self.grace_seconds = grace_seconds
        self.metrics = metrics
        self.clock = clock
        self.down_since: float | None = None
        self._why = ""

    def problem(self) -> str:
        """Why the watch counts as down for good (longer than the grace period), or "" while it is fine."""
        if self.down_since is None or self.clock() - self.down_since < self.grace_seconds:
            return ""
        return f"the watch of the Kubernetes API has been down for {self.clock() - self.down_since:.0f}s ({self._why})"

    async def run(self) -> None:
        """Watch until cancelled, noting each stream's opening and failure."""
        while True:
            try:
                await self._stream()
            except asyncio.CancelledError:
                raise
            except Exception as e:  # whatever broke the stream, it is down until one opens again
                self._down(type(e).__name__ if not isinstance(e, client.ApiException) else f"API error {e.status}")
                await asyncio.sleep(RECONNECT_SECONDS)

    async def _stream(self) -> None:
        custom = client.CustomObjectsApi(self.api)
        options: dict[str, Any] = {
            "watch": True, "field_selector": f"metadata.name={NOBODY}", "timeout_seconds": STREAM_SECONDS,
            "_request_timeout": STREAM_SECONDS + READ_MARGIN_SECONDS}
        response: Any
        if self.namespace is None:
            response = await custom.list_cluster_custom_object_without_preload_content(
                GROUP, VERSION, "incidents", **options)
        else:
            response = await custom.list_namespaced_custom_object_without_preload_content(
                GROUP, VERSION, self.namespace, "incidents", **options)
        try:
            if response.status != 200:
                raise RuntimeError(f"the watch was answered {response.status}")
            self._up()
            async for line in response.content:
                event = json.loads(line) if line.strip() else {}
                if event.get("type") == "ERROR":
                    raise RuntimeError(f"the watch answered an error ({(event.get('object') or {}).get('code')})")
        finally:
            response.release()

    def _up(self) -> None:
        if self.down_since is not None:
            logger.info("the watch of the Kubernetes API is up again")
        self.down_since, self._why = None, ""
        self.metrics.watch_up.set(1)

    def _down(self, why: str) -> None:
        if self.down_since is None:
            logger.warning(f"the watch of the Kubernetes API failed ({why}); retrying")
            self.down_since = self.clock()
        self._why = why
        self.metrics.watch_up.set(0)
