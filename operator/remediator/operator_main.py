"""Starting the Kopf operator with remediator's settings."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import datetime
import logging
import pathlib
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

import kopf
from kubernetes.aio import client as aio_client

from remediator import GROUP, config, health, kube, leader_label, leadership, namespace_selection, watch_sentinel
from remediator.actions import fences, retries
from remediator.engine import guards, windows
from remediator.handlers import incident_queue
from remediator.handlers.incident_figures import IncidentFigures
from remediator.metrics import OperatorMetrics

if TYPE_CHECKING:
    from remediator.receiver.server import ReceiverOptions

FINALIZER = f"{GROUP}/finalizer"
# A --namespace-selector the API server refuses ends the process as a usage error would.
EXIT_USAGE = 2
# After the namespace watch failed (the API unreachable): wait this long before listing them again.
RELIST_DELAY = 1.0
logger = logging.getLogger("remediator.operator")


@dataclasses.dataclass(frozen=True)
class OperatorOptions:
    """What `remediator run` was asked for on the command line."""

    namespaces: tuple[str, ...] = ()
    all_namespaces: bool = True
    kubeconfig: pathlib.Path | None = None
    liveness: str | None = None
    metrics_address: health.Address | None = None
    watch_down_grace: datetime.timedelta = datetime.timedelta(seconds=30)
    peering: str | None = None
    leader_election: leadership.Election | None = None
    config: config.OperatorConfig = dataclasses.field(default_factory=config.OperatorConfig)
    receiver: ReceiverOptions | None = None
    namespace_selector: str | None = None


# The kinds with Kopf change handlers (on.create/update/resume), for which Kopf needs its diff-base.
CHANGE_HANDLED_KINDS = frozenset({"RollbackRequest"})


class ChangeHandledDiffBase(kopf.AnnotationsDiffBaseStorage):
    """Kopf's diff-base in annotations, built only for the kinds with change handlers.

    Kopf builds (a deep copy of the body) and reads the diff-base on every watch event of every kind;
    Incidents and KeyRotations are handled from the raw watch and never use it. In a storm of 1,000
    Incidents that was a sixth of the operator's event-loop CPU (docs/benchmarks.md).
    """

    def __init__(self, kinds: frozenset[str], *, prefix: str, key: str) -> None:
        super().__init__(prefix=prefix, key=key)
        self.kinds = kinds

    def build(self, *, body: kopf.Body, extra_fields: Iterable[Any] | None = None) -> kopf.BodyEssence:
        if body.get("kind") not in self.kinds:
            return kopf.BodyEssence()
        return super().build(body=body, extra_fields=extra_fields)

    def fetch(self, *, body: kopf.Body) -> kopf.BodyEssence | None:
        if body.get("kind") not in self.kinds:
            return None
        return super().fetch(body=body)


# How long Kopf keeps an object's worker (a task waiting on the object's event queue, holding the last
# event's body) after its last watch event; the next event starts a new one. Kopf's default, 5 s, kept a
# worker for every Incident of a storm at once: 1,000 in a burst, 2,000 when one batch's deletions overlap
# the next batch's creations, about 30 MB of the operator's peak, which CPython's allocator keeps after the
# storm. Nothing the operator needs lives in the worker (Incidents go to its own queue, handlers/
# incident_queue.py), and starting one per event costs no measurable CPU (docs/benchmarks.md).
WORKER_IDLE_SECONDS = 0.2


def operator_settings(api_timeout_seconds: float = 30.0, *,
                      diff_base_kinds: frozenset[str] = CHANGE_HANDLED_KINDS) -> kopf.OperatorSettings:
    """Kopf settings: all bookkeeping under the remediator.dev/ prefix, in annotations.

    Kopf's progress and diff-base live in annotations (not in an undeclared status field,
    which the API server would prune), and the diff-base only for `diff_base_kinds` (the kinds with
    change handlers); Kopf's own per-handler events are off because the operator posts its timeline
    as events itself.
    """
    settings = kopf.OperatorSettings()
    settings.persistence.finalizer = FINALIZER
    settings.persistence.progress_storage = kopf.AnnotationsProgressStorage(prefix=GROUP)
    settings.persistence.diffbase_storage = ChangeHandledDiffBase(diff_base_kinds, prefix=GROUP,
                                                                  key="last-handled-configuration")
    settings.posting.enabled = False
    settings.watching.server_timeout = 300
    settings.watching.client_timeout = 330
    # Every call has connect and read timeouts; a watch is ended by the server (timeoutSeconds) first.
    settings.networking.connect_timeout = min(5.0, api_timeout_seconds)
    settings.networking.request_timeout = api_timeout_seconds
    settings.queueing.error_delays = (1, 2, 5, 10, 30)
    settings.queueing.idle_timeout = WORKER_IDLE_SECONDS
    return settings


def _quiet_watch_handler(record: logging.LogRecord) -> bool:
    """Kopf logs each run of the KeyRotation (and, with --peering, Incident) watch handlers at INFO: one line
    per watch event, noise (what the operator does to them is logged as their timeline entries)."""
    message = record.getMessage()
    return not message.startswith(("Handler 'incident-watch' succeeded", "Handler 'keyrotation-watch' succeeded"))


# After losing the lease: how long Kopf gets to cancel its handlers before the process ends anyway.
LOST_GRACE_SECONDS = 2.0
# On shutdown: how long Kopf gets to stop before the lease is released (else it is left to expire).
STOP_GRACE_SECONDS = 5.0


async def run(options: OperatorOptions) -> None:
    """Run the operator until cancelled; with leader election, act only while this replica holds the Lease.

    Every replica serves the receiver and the health server (/metrics, /readyz, /healthz). A follower
    waits for the Lease; the leader runs Kopf (every handler that acts on Incidents, RollbackRequests
    and KeyRotations) and renews the Lease; on losing it, it cancels Kopf and ends the process
    non-zero. On shutdown the leader releases the Lease.
    """
    # Importing registers the handlers with Kopf's default registry.
    from remediator import handlers
    if options.peering is not None:
        handlers.incidents.watch_through_kopf(kopf.get_default_registry())

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
    metrics = OperatorMetrics()
    liveness = None if options.liveness is None else health.liveness_address(options.liveness)
    addresses = [address for address in (options.metrics_address, liveness) if address is not None]
    async with contextlib.AsyncExitStack() as stack:
        stack.push_async_callback(kube.close_hot_path_clients)  # the actions' connections, at the very end
        api = await stack.enter_async_context(await kube.async_client(options.kubeconfig))
        probes = health.Health(metrics, health.Readiness(
            lambda: aio_client.VersionApi(api).get_code(_request_timeout=health.READY_TIMEOUT_SECONDS)))
        await stack.enter_async_context(health.serving(probes, addresses))
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
                windows.compile_windows(operator_config.maintenance_windows, field="--maintenance-window"),
                counters=metrics.receiver))
        running = Running(options, operator_config, api, probes)
        if election is None:
            metrics.leader.set(1)  # the only replica; its pod is labelled only under leader election
            await _operate(running)
        else:
            await _lead(running, election)


@dataclasses.dataclass(frozen=True)
class Running:
    """What one operator process shares between its parts."""

    options: OperatorOptions
    config: config.OperatorConfig
    api: aio_client.ApiClient
    health: health.Health


async def _lead(running: Running, election: leadership.Election) -> None:
    """Take the Lease, then operate while holding it; end the process when it is lost."""
    api, metrics = running.api, running.health.metrics
    await leader_label.show(api, election.namespace, metrics, leading=False)
    running.health.started = True  # a follower is alive while it waits its turn
    candidate = leadership.Leadership(api, election)
    await candidate.acquire()
    fences.install(leadership.fence_of(candidate))
    labelled = asyncio.create_task(leader_label.show(api, election.namespace, metrics, leading=True))
    operating = asyncio.create_task(_operate(running))
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
        labelled.cancel()
    operating.result()  # the operator's own failure, if it failed


async def _operate(running: Running) -> None:
    """Run Kopf; with --namespace-selector, once per set of selected namespaces (a change starts it again)."""
    selector = running.options.namespace_selector
    if selector is None:
        await _run_kopf(running, running.config)
        return
    timeout = running.config.api_timeout_seconds
    while True:
        try:
            selection = await namespace_selection.select(running.api, selector, timeout)
        except namespace_selection.SelectorRefused as e:
            logger.critical(f"--namespace-selector {selector!r}: the API server refused it: {e}")
            raise SystemExit(EXIT_USAGE) from None
        logger.info(f"acting in the {len(selection.names)} namespaces matching {selector!r}")
        scope = dataclasses.replace(running.config.scope, selected=selection.names)
        stop = asyncio.Event()
        kopf_run = asyncio.create_task(_run_kopf(running, dataclasses.replace(running.config, scope=scope), stop))
        watching = asyncio.create_task(namespace_selection.changed(running.api, selector, selection, timeout))
        try:
            done, _ = await asyncio.wait({kopf_run, watching}, return_when=asyncio.FIRST_COMPLETED)
        except asyncio.CancelledError:
            watching.cancel()
            kopf_run.cancel()
            raise
        watching.cancel()
        if watching not in done:
            kopf_run.result()  # Kopf ended on its own: its failure, if it failed
            return
        stop.set()  # Kopf stops its handlers and returns; the next run lists every object again
        await kopf_run
        if watching.exception() is None:
            logger.info(f"{watching.result()}: starting over with the new set of namespaces")
        else:
            logger.warning(f"watching namespaces failed ({type(watching.exception()).__name__}); "
                           "listing them again")
            await asyncio.sleep(RELIST_DELAY)


async def _run_kopf(running: Running, operator_config: config.OperatorConfig,
                    stop: asyncio.Event | None = None) -> None:
    """Run Kopf with the handlers, the watch sentinel behind the liveness probe, and the Incident figures."""
    options, probes = running.options, running.health
    sentinel = watch_sentinel.WatchSentinel(
        running.api, None if options.all_namespaces or not options.namespaces else options.namespaces[0],
        options.watch_down_grace.total_seconds(), probes.metrics)
    watching = asyncio.create_task(sentinel.run())
    probes.liveness_problem = sentinel.problem
    ready = asyncio.Event()
    started = asyncio.create_task(_note_started(ready, probes))
    figures = IncidentFigures(probes.metrics, datetime.datetime.now(datetime.UTC))
    try:
        await kopf.operator(
            stop_flag=stop,
            settings=operator_settings(operator_config.api_timeout_seconds),
            clusterwide=options.all_namespaces,
            namespaces=options.namespaces,
            standalone=options.peering is None,
            peering_name=options.peering,
            ready_flag=ready,
            memo=kopf.Memo(config=operator_config, action_log=guards.ActionLog(), figures=figures,
                           incidents=incident_queue.IncidentQueue(operator_config.max_concurrent_reconciles),
                           served_namespaces=() if options.all_namespaces else options.namespaces,
                           incidents_by_kopf=options.peering is not None),
        )
    finally:
        watching.cancel()
        started.cancel()


async def _note_started(ready: asyncio.Event, probes: health.Health) -> None:
    await ready.wait()
    probes.started = True
