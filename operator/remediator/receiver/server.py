"""The Alertmanager webhook: `POST /alertmanager` on --receiver-address.

Answers, in the order they are checked: 401 without the right bearer token (503 when the token's Secret
cannot be read now: a 401 would not be retried and the notification would be lost); 413 over 1 MiB; 400 with
the reason for invalid JSON or an invalid payload (nothing is created on any of these, and Alertmanager
does not retry them); 503 when the Kubernetes API cannot be reached (Alertmanager retries); 200 only
after every Incident the payload needs is stored or found to exist already, with what was done.
"""

from __future__ import annotations

import contextlib
import dataclasses
import datetime
import json
import logging
import pathlib
import ssl
import time
from collections.abc import AsyncIterator, Collection, Sequence
from typing import Any

import aiohttp.web
import prometheus_client
import pydantic
from kubernetes.aio.client.exceptions import ApiException

from remediator.api.errors import validation_messages
from remediator.engine import windows
from remediator.receiver import alertmanager_api, incident_writes, loop_guards, metrics, payloads, plans, tokens
from remediator.receiver.payloads import Notification

logger = logging.getLogger("remediator.receiver")

MAX_BODY = 1024 * 1024
PATH = "/alertmanager"


@dataclasses.dataclass(frozen=True)
class ReceiverOptions:
    """What `remediator run --receiver-*` asked for."""

    host: str
    port: int
    token_file: pathlib.Path | None = None
    token_secret: tuple[str, str, str] | None = None  # namespace, name, key
    anonymous: bool = False
    tls_cert: pathlib.Path | None = None
    tls_key: pathlib.Path | None = None
    alertmanager_url: str | None = None


def _answer(status: int, **body: Any) -> aiohttp.web.Response:
    return aiohttp.web.json_response(body, status=status)


class Receiver:
    """The request handler: checks, plans, stores, answers."""

    def __init__(self, writes: incident_writes.IncidentWrites, token: tokens.TokenSource | None,
                 allowed_namespaces: Collection[str] | None, served_namespaces: Sequence[str] = (),
                 loop_guard: loop_guards.LoopGuard | None = None, alertmanager_url: str | None = None,
                 maintenance_windows: Sequence[windows.Window] = (),
                 counters: metrics.ReceiverMetrics | None = None) -> None:
        self.writes = writes
        self.maintenance_windows = maintenance_windows
        self.alertmanager_url = alertmanager_url
        self.loop_guard = loop_guard or loop_guards.LoopGuard()
        self.token = token
        self.allowed_namespaces = allowed_namespaces
        self.served_namespaces = served_namespaces
        self.metrics = counters or metrics.ReceiverMetrics()

    async def handle(self, request: aiohttp.web.Request) -> aiohttp.web.Response:
        """Answer one webhook POST (see the module docstring), timing it by answer code."""
        started = time.perf_counter()
        response = await self._answer(request)
        self.metrics.requests.labels(str(response.status)).observe(time.perf_counter() - started)
        return response

    async def serve_metrics(self, request: aiohttp.web.Request) -> aiohttp.web.Response:
        return aiohttp.web.Response(body=self.metrics.exposition(),
                                    headers={"Content-Type": prometheus_client.CONTENT_TYPE_LATEST})

    async def _answer(self, request: aiohttp.web.Request) -> aiohttp.web.Response:
        if self.token is not None:
            try:
                token = await self.token.read()
            except tokens.TokenUnavailable as e:
                logger.warning(f"the receiver's bearer token cannot be read now ({e}); answering 503")
                return _answer(503, error="the bearer token cannot be read now; retry")
            if not tokens.authorised(request.headers.get("Authorization"), token):
                return _answer(401, error="missing or wrong bearer token")
        if (request.content_length or 0) > MAX_BODY:
            return _answer(413, error=f"the body is larger than {MAX_BODY} bytes")
        try:
            body = await request.read()
        except aiohttp.web.HTTPRequestEntityTooLarge:
            return _answer(413, error=f"the body is larger than {MAX_BODY} bytes")
        try:
            notification = Notification.model_validate(json.loads(body))
        except (ValueError, RecursionError) as e:
            if isinstance(e, pydantic.ValidationError):
                return _answer(400, error="invalid payload", reasons=validation_messages(e, prefix="body"))
            return _answer(400, error=f"invalid JSON: {type(e).__name__}")
        try:
            return await self._process(notification)
        except incident_writes.ApiUnavailable as e:
            logger.warning(f"the Kubernetes API is unavailable ({e}); answering 503 so Alertmanager retries")
            return _answer(503, error="the Kubernetes API is unavailable; retry")
        except ApiException as e:
            # Unexpected (a missing CRD, a namespace gone): nothing was lost, Alertmanager may retry later.
            logger.error(f"the Kubernetes API answered {e.status} {e.reason}; answering 503")
            return _answer(503, error=f"the Kubernetes API answered {e.status}; retry")

    async def _process(self, notification: Notification) -> aiohttp.web.Response:
        now = datetime.datetime.now(datetime.UTC)
        if notification.truncated_alerts and self.alertmanager_url:
            listed = await alertmanager_api.group_alerts(self.alertmanager_url, notification.group_labels,
                                                         notification.receiver)
            notification = payloads.with_missing_alerts(notification, listed)
        plan = plans.plan(notification, await self.writes.runbooks(self.served_namespaces),
                          self.allowed_namespaces)
        incidents = []
        counted = self.metrics
        counted.alerts_received.inc(len(notification.alerts))
        counted.alerts_matched.inc(plan.matched_alerts)
        counted.alerts_unmatched.inc(len(notification.alerts) - plan.matched_alerts)
        for episode in plan.episodes:
            stored = await self.writes.store(episode, now, self.loop_guard, self.maintenance_windows)
            if stored.name is not None and not stored.created:
                counted.alerts_deduplicated.inc(len(episode.alerts))
            if stored.created:
                counted.incidents_created.labels(episode.runbook.name, stored.severity or "").inc()
            if stored.held_for is not None:
                window = self.loop_guard.for_runbook(episode.runbook.spec.defaults).window
                counted.held(f"{episode.namespace}/{episode.key_hash}", stored.held_for, window)
            if stored.refused is not None:
                plan.rejections.append(plans.refused(episode, stored.refused))
            if stored.name is not None:
                incidents.append({"namespace": episode.namespace, "name": stored.name, "created": stored.created})
                if stored.created:
                    logger.info(f"created incident {episode.namespace}/{stored.name} from Runbook "
                                f"{episode.runbook.namespace}/{episode.runbook.name}")
        for rejection in plan.rejections:
            logger.warning(f"alert {rejection.alertname} rejected by Runbook {rejection.runbook}: "
                           f"{rejection.reason}: {rejection.message}")
            await self.writes.record_rejection(rejection, now)
            counted.alerts_rejected.labels(rejection.reason).inc()
        rejected = [dataclasses.asdict(r) for r in plan.rejections]
        if plan.matched_alerts == 0:
            return _answer(200, result="no runbook matched", alerts=len(notification.alerts))
        return _answer(200, result="stored", alerts=len(notification.alerts), matched=plan.matched_alerts,
                       incidents=incidents, rejected=rejected)


def build_app(receiver: Receiver) -> aiohttp.web.Application:
    """The aiohttp application serving POST /alertmanager and GET /metrics."""
    app = aiohttp.web.Application(client_max_size=MAX_BODY)
    app.router.add_post(PATH, receiver.handle)
    app.router.add_get("/metrics", receiver.serve_metrics)
    return app


def _tls(options: ReceiverOptions) -> ssl.SSLContext | None:
    if options.tls_cert is None:
        return None
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(options.tls_cert, options.tls_key)
    return context


@contextlib.asynccontextmanager
async def serving(options: ReceiverOptions, allowed_namespaces: Collection[str] | None,
                  api_timeout: float, served_namespaces: Sequence[str] = (),
                  loop_guard: loop_guards.LoopGuard | None = None,
                  maintenance_windows: Sequence[windows.Window] = (),
                  counters: metrics.ReceiverMetrics | None = None) -> AsyncIterator[None]:
    """Serve the receiver while the block runs (the Kubernetes credentials must be loaded already).

    `counters`: the operator-wide registry's receiver metrics (else a registry of the receiver's own)."""
    async with incident_writes.api_client() as api:
        token: tokens.TokenSource | None = None
        if options.token_file is not None:
            token = tokens.FileToken(options.token_file)
        elif options.token_secret is not None:
            token = tokens.SecretToken(api, *options.token_secret)
        receiver = Receiver(incident_writes.IncidentWrites(api, timeout=min(api_timeout, 10.0)), token,
                            allowed_namespaces, served_namespaces, loop_guard, options.alertmanager_url,
                            maintenance_windows, counters)
        runner = aiohttp.web.AppRunner(build_app(receiver), access_log=None)
        await runner.setup()
        site = aiohttp.web.TCPSite(runner, options.host, options.port, ssl_context=_tls(options))
        await site.start()
        logger.info(f"Alertmanager receiver listening on {options.host}:{options.port}{PATH}")
        try:
            yield
        finally:
            await runner.cleanup()
