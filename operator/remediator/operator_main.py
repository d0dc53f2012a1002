"""Starting the Kopf operator with remediator's settings."""

from __future__ import annotations

import contextlib
import dataclasses
import logging
import pathlib

import kopf

from remediator import GROUP, config, kube
from remediator.actions import retries
from remediator.engine import guards
from remediator.handlers import incident_queue
from remediator.receiver import server

FINALIZER = f"{GROUP}/finalizer"


@dataclasses.dataclass(frozen=True)
class OperatorOptions:
    """What `remediator run` was asked for on the command line."""

    namespaces: tuple[str, ...] = ()
    all_namespaces: bool = True
    kubeconfig: pathlib.Path | None = None
    liveness: str | None = None
    peering: str | None = None
    config: config.OperatorConfig = dataclasses.field(default_factory=config.OperatorConfig)
    receiver: server.ReceiverOptions | None = None


def operator_settings(api_timeout_seconds: float = 30.0) -> kopf.OperatorSettings:
    """Kopf settings: all bookkeeping under the remediator.dev/ prefix, in annotations.

    Kopf's progress and diff-base live in annotations (not in an undeclared status field,
    which the API server would prune); Kopf's own per-handler events are off because the
    operator posts its timeline as events itself.
    """
    settings = kopf.OperatorSettings()
    settings.persistence.finalizer = FINALIZER
    settings.persistence.progress_storage = kopf.AnnotationsProgressStorage(prefix=GROUP)
    settings.persistence.diffbase_storage = kopf.AnnotationsDiffBaseStorage(
        prefix=GROUP, key="last-handled-configuration")
    settings.posting.enabled = False
    settings.watching.server_timeout = 300
    settings.watching.client_timeout = 330
    # Every call has connect and read timeouts; a watch is ended by the server (timeoutSeconds) first.
    settings.networking.connect_timeout = min(5.0, api_timeout_seconds)
    settings.networking.request_timeout = api_timeout_seconds
    settings.queueing.error_delays = (1, 2, 5, 10, 30)
    return settings


def _quiet_watch_handler(record: logging.LogRecord) -> bool:
    """Kopf logs each run of the Incident and KeyRotation watch handlers at INFO: one line per watch event,
    noise (what the operator does to them is logged as their timeline entries)."""
    message = record.getMessage()
    return not message.startswith(("Handler 'incident-watch' succeeded", "Handler 'keyrotation-watch' succeeded"))


async def run(options: OperatorOptions) -> None:
    """Run the operator until cancelled."""
    # Importing registers the handlers with Kopf's default registry.
    from remediator import handlers  # noqa: F401

    operator_config = dataclasses.replace(options.config, kubeconfig=options.kubeconfig)
    # httpx logs every request's URL at INFO, and a webhook URL is a credential: never log them.
    for client_logger in ("httpx", "httpcore"):
        logging.getLogger(client_logger).setLevel(logging.WARNING)
    objects = logging.getLogger("kopf.objects")
    objects.setLevel(logging.INFO)
    objects.addFilter(_quiet_watch_handler)
    retries.set_request_timeout(operator_config.api_timeout_seconds)
    async with contextlib.AsyncExitStack() as stack:
        if options.receiver is not None:
            # Every replica serves the receiver, leader or not: creating an Incident is idempotent.
            kube.configure(operator_config.kubeconfig)
            await stack.enter_async_context(server.serving(
                options.receiver, operator_config.allowed_namespaces, operator_config.api_timeout_seconds))
        await _operate(options, operator_config)


async def _operate(options: OperatorOptions, operator_config: config.OperatorConfig) -> None:
    await kopf.operator(
        settings=operator_settings(operator_config.api_timeout_seconds),
        clusterwide=options.all_namespaces,
        namespaces=options.namespaces,
        standalone=options.peering is None,
        peering_name=options.peering,
        liveness_endpoint=options.liveness,
        memo=kopf.Memo(config=operator_config, action_log=guards.ActionLog(), incidents=incident_queue.IncidentQueue()),
    )
