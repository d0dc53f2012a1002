"""The receiver's Kubernetes calls, through the asynchronous client (kubernetes.aio): list the Runbooks,
create an episode's Incident, merge its alerts into the status, and record rejections as Events.

Every write is safe to repeat. Create is by a deterministic name (AlreadyExists is success), and the
alerts are merged by a status write conditional on the resourceVersion that was read (a 409 reads again
and merges again), so two replicas, an HA pair or a retry after a crash never record an alert twice.
"""

from __future__ import annotations

import asyncio
import dataclasses
import datetime
import fnmatch
import hashlib
import logging
from collections.abc import AsyncIterator, Mapping, Sequence
from contextlib import asynccontextmanager
from typing import Any

import aiohttp
import kubernetes.client
import pydantic
from kubernetes.aio import client as aio
from kubernetes.aio.client.exceptions import ApiException

from remediator import GROUP, VERSION, api_requests, faults
from remediator.actions import events
from remediator.api.errors import validation_messages
from remediator.api.runbooks import RunbookSpec
from remediator.api.timelines import TimelineEntry
from remediator.engine import guards, windows
from remediator.receiver import alert_lists, keys, loop_guards, plans

logger = logging.getLogger(__name__)

REQUESTED_BY = guards.REQUESTED_BY_ANNOTATION
MAX_CONFLICTS = 5
RECEIVER_COMPONENT = "remediator-receiver"
# What Alertmanager should retry: the API server answered 429/5xx, or not at all.
UNAVAILABLE_STATUSES = frozenset({403, 429, 500, 502, 503, 504})


class ApiUnavailable(Exception):
    """The Kubernetes API could not be reached or did not do what was asked: Alertmanager should retry."""


@dataclasses.dataclass
class Stored:
    """What became of one episode: the Incident that holds it (None: nothing needed), and whether it is new."""

    name: str | None
    created: bool = False
    severity: str | None = None
    """The created Incident's severity."""
    refused: str | None = None
    """Why the API server refused the Incident (its validation), when it did: no retry would help."""
    held_for: str | None = None
    """Why the loop guard held the created Incident (its reason), if it did."""


@asynccontextmanager
async def api_client() -> AsyncIterator[aio.ApiClient]:
    """An asynchronous client with the credentials kube.configure loaded into the synchronous client."""
    loaded = kubernetes.client.Configuration.get_default_copy()
    configuration = aio.Configuration(host=loaded.host, api_key=dict(loaded.api_key),
                                      api_key_prefix=dict(loaded.api_key_prefix), ssl_ca_cert=loaded.ssl_ca_cert,
                                      cert_file=loaded.cert_file, key_file=loaded.key_file,
                                      verify_ssl=loaded.verify_ssl)
    async with aio.ApiClient(configuration) as client:
        yield client


class IncidentWrites:
    """The receiver's calls to the Kubernetes API, each bounded by `timeout` seconds."""

    def __init__(self, api: aio.ApiClient, timeout: float = 10.0) -> None:
        self.custom = aio.CustomObjectsApi(api)
        self.api = api
        self.authentication = aio.AuthenticationV1Api(api)
        self.timeout = timeout
        self._identity: str | None = None

    async def identity(self) -> str | None:
        """Who the API server knows the receiver as (a SelfSubjectReview, asked once): the requester of the
        Incidents it creates, as the chart's admission policy requires of every creator. None where the API
        server has no SelfSubjectReview (before Kubernetes 1.28)."""
        if self._identity is None:
            body = {"apiVersion": "authentication.k8s.io/v1", "kind": "SelfSubjectReview"}
            try:
                review = await self._call(self.authentication.create_self_subject_review, body)
            except ApiException as e:
                logger.warning(f"could not ask the API server who the receiver is (API error {e.status}); "
                               f"its Incidents carry no {REQUESTED_BY}")
                return None
            self._identity = str(review.status.user_info.username)
        return self._identity

    async def _create_event(self, namespace: str, event: Mapping[str, Any]) -> dict[str, Any]:
        events = api_requests.path("/api/v1/namespaces", namespace, "events")
        return await api_requests.send_json(self.api, "POST", events, event)

    async def _call(self, method: Any, *args: Any, **kwargs: Any) -> Any:
        """One API call; raises ApiUnavailable for what a retry may fix, ApiException for the rest."""
        try:
            async with asyncio.timeout(self.timeout):
                return await method(*args, **kwargs)
        except ApiException as e:
            if e.status in UNAVAILABLE_STATUSES:
                raise ApiUnavailable(f"API error {e.status} {e.reason}") from None
            raise
        except (aiohttp.ClientError, OSError, TimeoutError) as e:
            raise ApiUnavailable(type(e).__name__) from None

    async def runbooks(self, namespaces: Sequence[str] = ()) -> list[plans.Runbook]:
        """Every valid Runbook with triggers in the served namespaces (none given: all; globs allowed, as
        for `remediator run --namespace`); an invalid one is logged and skipped."""
        if namespaces and not any(glob in n for n in namespaces for glob in "*?["):
            items = []  # only the served namespaces: the operator may have no right to list cluster-wide
            for namespace in namespaces:
                listed = await self._call(self.custom.list_namespaced_custom_object, GROUP, VERSION, namespace,
                                          "runbooks")
                items.extend(listed.get("items", []))
        else:
            listed = await self._call(self.custom.list_cluster_custom_object, GROUP, VERSION, "runbooks")
            items = [i for i in listed.get("items", []) if not namespaces or any(
                fnmatch.fnmatchcase((i.get("metadata") or {}).get("namespace", ""), n) for n in namespaces)]
        found = []
        for item in items:
            meta = item.get("metadata") or {}
            try:
                spec = RunbookSpec.model_validate(item.get("spec") or {})
            except pydantic.ValidationError as e:
                logger.warning(f"Runbook {meta.get('namespace')}/{meta.get('name')} is invalid and matches no "
                               f"alert: {'; '.join(validation_messages(e))}")
                continue
            if spec.triggers:
                found.append(plans.Runbook(meta["namespace"], meta["name"], spec))
        return found

    async def store(self, episode: plans.Episode, now: datetime.datetime,
                    guard: loop_guards.LoopGuard | None = None,
                    maintenance_windows: Sequence[windows.Window] = ()) -> Stored:
        """The episode's Incident (see plans.place: the open one of its key, a new one for a new firing,
        or the last closed one), created when needed, with the episode's alerts merged into its status."""
        listed = await self._call(self.custom.list_namespaced_custom_object, GROUP, VERSION, episode.namespace,
                                  "incidents", label_selector=f"{keys.KEY_LABEL}={episode.key_hash}")
        placement = plans.place(episode, listed.get("items", []), now, guard, maintenance_windows)
        incident = placement.existing
        created = False
        if incident is None:
            if placement.create is None:
                return Stored(None)
            try:
                incident, created = await self._create(episode.namespace, placement.create)
            except ApiException as e:
                if e.status not in (400, 422):
                    raise
                return Stored(None, refused=f"the API server refused the Incident ({e.status} {e.reason})")
            faults.crash_point("receiver-after-create")
        await self._merge(incident, episode, now)
        severity = placement.create["spec"]["severity"] if created and placement.create else None
        hold = ((placement.create or {})["spec"].get("source") or {}).get("hold") if created else None
        return Stored(incident["metadata"]["name"], created, severity, held_for=(hold or {}).get("reason"))

    async def _create(self, namespace: str, manifest: dict[str, Any]) -> tuple[dict[str, Any], bool]:
        requester = await self.identity()
        if requester is not None:
            manifest = {**manifest, "metadata": {**manifest["metadata"], "annotations": {REQUESTED_BY: requester}}}
        try:
            created = await self._call(self.custom.create_namespaced_custom_object, GROUP, VERSION,
                                       namespace, "incidents", manifest)
            return dict(created), True
        except ApiException as e:
            if e.status != 409:
                raise
        # AlreadyExists: another replica, an HA peer or an earlier attempt created it.
        return await self._read(namespace, manifest["metadata"]["name"]), False

    async def _read(self, namespace: str, name: str) -> dict[str, Any]:
        found: dict[str, Any] = await self._call(self.custom.get_namespaced_custom_object, GROUP, VERSION,
                                                 namespace, "incidents", name)
        return found

    async def _merge(self, incident: Mapping[str, Any], episode: plans.Episode, now: datetime.datetime) -> None:
        for _ in range(MAX_CONFLICTS):
            merged = alert_lists.merge(incident.get("status") or {}, episode.alerts, episode.truncated_alerts, now)
            if merged is None:
                return
            meta = incident["metadata"]
            patch = {"metadata": {"resourceVersion": meta["resourceVersion"]}, "status": merged.status}
            try:
                written = await self._call(self.custom.patch_namespaced_custom_object_status, GROUP, VERSION,
                                           meta["namespace"], "incidents", meta["name"], patch,
                                           _content_type=api_requests.MERGE_PATCH)
                await self._post_events(written, merged.entries)
                return
            except ApiException as e:
                if e.status == 404:
                    return  # deleted meanwhile: nothing left to record the alerts on
                if e.status != 409:
                    raise
            incident = await self._read(meta["namespace"], meta["name"])
        raise ApiUnavailable(f"the Incident kept changing ({MAX_CONFLICTS} conflicts in a row)")

    async def _post_events(self, incident: Mapping[str, Any], entries: Sequence[TimelineEntry]) -> None:
        """Mirror the merge's timeline entries as Events on the Incident, once its status is written (at most
        one per kind of entry and write: see alert_lists). A failure is logged: the timeline is the record."""
        for entry in entries:
            event = events.event_for(incident, entry)
            event["source"], event["reportingComponent"] = {"component": RECEIVER_COMPONENT}, RECEIVER_COMPONENT
            try:
                await self._call(self._create_event, incident["metadata"]["namespace"], event)
            except (ApiException, ApiUnavailable) as e:
                logger.warning(f"could not post event {entry.reason} ({getattr(e, 'status', e)})")

    async def record_rejection(self, rejection: plans.Rejection, now: datetime.datetime) -> None:
        """A Warning Event on the Runbook saying why an alert made no Incident (one per alert and reason)."""
        namespace, name = rejection.runbook.split("/", 1)
        identity = f"{rejection.runbook}/{rejection.fingerprint}/{rejection.alertname}/{rejection.reason}"
        event = {
            "apiVersion": "v1", "kind": "Event",
            # Cut where the name may end in '-' or '.', which no part of a DNS subdomain may.
            "metadata": {"name": f"{name[:200].rstrip('-.')}.{hashlib.sha256(identity.encode()).hexdigest()[:16]}",
                         "namespace": namespace},
            "involvedObject": {"apiVersion": f"{GROUP}/{VERSION}", "kind": "Runbook", "name": name,
                               "namespace": namespace},
            "reason": "AlertRejected", "type": "Warning",
            "message": f"alert {rejection.alertname} ({rejection.fingerprint or 'no fingerprint'}): "
                       f"{rejection.reason}: {rejection.message}"[:1024],
            "firstTimestamp": now.isoformat(), "lastTimestamp": now.isoformat(), "count": 1,
            "source": {"component": RECEIVER_COMPONENT},
        }
        try:
            await self._call(self._create_event, namespace, event)
        except ApiException as e:
            if e.status != 409:  # already recorded
                logger.warning(f"could not record the rejection as an Event (API error {e.status})")
        except ApiUnavailable as e:
            logger.warning(f"could not record the rejection as an Event ({e})")
