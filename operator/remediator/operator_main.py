"""Starting the Kopf operator with remediator's settings."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
import pathlib
from typing import TYPE_CHECKING

import kopf

from remediator import GROUP, config, kube, leadership, liveness
from remediator.actions import fences, retries
from remediator.engine import guards, windows
from remediator.handlers import incident_queue

if TYPE_CHECKING:
    from remediator.receiver.server import ReceiverOptions

FINALIZER = f"{GROUP}/finalizer"


@dataclasses.dataclass(frozen=True)
class OperatorOptions:
    """What `remediator run` was asked for on the command line."""

    namespaces: tuple[str, ...] = ()
    all_namespaces: bool = True
    kubeconfig: pathlib.Path | None = None
    liveness: str | None = None
    peering: str | None = None
    leader_election: leadership.Election | None = None
    config: config.OperatorConfig = dataclasses.field(default_factory=config.OperatorConfig)
    receiver: ReceiverOptions | None = None
    namespace_selector: str | None = None


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


# After losing the lease: how long Kopf gets to cancel its handlers before the process ends anyway.
LOST_GRACE_SECONDS = 2.0
# On shutdown: how long Kopf gets to stop before the lease is released (else it is left to expire).
STOP_GRACE_SECONDS = 5.0


async def run(options: OperatorOptions) -> None:
    """Run the operator until cancelled; with leader election, act only while this replica holds the Lease.

    Every replica serves the receiver. A follower serves its liveness endpoint and waits for the
    Lease; the leader runs Kopf (every handler that acts on Incidents, RollbackRequests and
    KeyRotations) and renews the Lease; on losing it, it cancels Kopf and ends the process
    non-zero. On shutdown the leader releases the Lease.
    """
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
    election = options.leader_election
    # The request log (the API server's audit log) tells replicas and shards apart by their User-Agent.
    identity = "; ".join(([election.identity] if election is not None else [])
                         + ([f"shard {shard}"] if (shard := operator_config.scope.shard) is not None else []))
    if identity:
        kube.set_identity(identity)
    if election is not None:
        # What blocks the event loop at startup is done before taking the Lease: a leader must renew on time.
        kube.load_api_classes()
    async with contextlib.AsyncExitStack() as stack:
        if options.receiver is not None:
            # Imported only when asked for: the asynchronous client's modules take seconds to load.
            from remediator.receiver import loop_guards, server

            # Every replica serves the receiver, leader or not: creating an Incident is idempotent.
            kube.configure(operator_config.kubeconfig)
            await stack.enter_async_context(server.serving(
                options.receiver, operator_config.allowed_namespaces, operator_config.api_timeout_seconds,
                () if options.all_namespaces else options.namespaces,
                loop_guards.LoopGuard(operator_config.max_remediations, operator_config.remediation_window,
                                      operator_config.max_consecutive_failures),
                windows.compile_windows(operator_config.maintenance_windows, field="--maintenance-window")))
        if election is None:
            await _operate(options, operator_config)
        else:
            await _lead(options, operator_config, election)


async def _lead(options: OperatorOptions, operator_config: config.OperatorConfig,
                election: leadership.Election) -> None:
    """Take the Lease, then operate while holding it; end the process when it is lost."""
    async with await kube.async_client(options.kubeconfig) as api:
        candidate = leadership.Leadership(api, election)
        async with liveness.serving(options.liveness):
            await candidate.acquire()
        fences.install(leadership.fence_of(candidate))
        operating = asyncio.create_task(_operate(options, operator_config))
        keeping = asyncio.create_task(candidate.keep())
        try:
            await asyncio.wait({operating, keeping}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            if not operating.done():
                operating.cancel()
                await asyncio.wait({operating}, timeout=LOST_GRACE_SECONDS if keeping.done() else STOP_GRACE_SECONDS)
            if keeping.done() and not keeping.cancelled():
                error = keeping.exception()
                candidate.abandon(keeping.result() if error is None else f"renewing failed ({type(error).__name__})")
            keeping.cancel()
            if operating.done():
                await candidate.release()
        operating.result()  # the operator's own failure, if it failed


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
