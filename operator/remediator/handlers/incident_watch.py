"""The leader's list and watch of Incidents, as an informer runs them, feeding the incident queue.

Kopf watched Incidents before: for every event it built its own structures (body, patch, per-object
memory, a worker task) that only its cyclic collector freed, and in a storm of 1,000 Incidents those
were most of the operator's memory peak and a quarter of its CPU (docs/benchmarks.md). Here each event
is one parsed dict, handed to `deliver` and dropped; `metadata.managedFields` is dropped at once (nothing
in the operator reads it, and it is the bulk of an Incident's metadata).

As client-go's reflector: list, then watch from the listing's resourceVersion with bookmarks; a stream
the server ends is watched again from the last version seen; a version too old to resume (410 Gone,
as a status or as an ERROR event) lists again, and an Incident known before but missing from the new
listing was deleted while the watch could not see it: `vanished` is called for it. Other failures are
retried after a growing pause, never with the body or credentials in the log.
"""

from __future__ import annotations

import asyncio
import fnmatch
import json
import logging
from collections.abc import AsyncIterator, Callable
from typing import Any

from kubernetes.aio import client

from remediator import GROUP, VERSION

logger = logging.getLogger("remediator.incidents")

PLURAL = "incidents"
# The server ends each stream after this long; it is opened again from the last version seen.
WATCH_SECONDS = 300
READ_MARGIN_SECONDS = 30.0
# Pauses after a failure: doubling from the first to the last, back to the first once a stream opens.
RETRY_FIRST_SECONDS = 1.0
RETRY_LAST_SECONDS = 30.0

Deliver = Callable[[str, dict[str, Any]], None]  # (ADDED | MODIFIED | DELETED, the Incident)
Vanished = Callable[[str, str], None]  # (uid, namespace) of an Incident deleted while unwatched


class Gone(Exception):
    """The version to watch from is no longer in the server's history (410): list again."""


def served(namespace: str, patterns: tuple[str, ...]) -> bool:
    """Whether `--namespace` patterns (none: every namespace) serve `namespace`, in Kopf's syntax, so that
    Incidents are served where Kopf serves RollbackRequests and KeyRotations (`kopf run --namespace`)."""
    return not patterns or any(_matches(namespace, pattern) for pattern in patterns)


def _matches(namespace: str, pattern: str) -> bool:
    """Kopf's namespace pattern: comma-separated globs, read left to right. The first inclusive glob decides
    the first match (one starting with `!` implies a `*` before it); a `!glob` then excludes, and a later
    inclusive glob takes back an exclusion, only for a namespace the first one matched."""
    globs = [part.strip() for part in pattern.split(",")]
    if globs[0].startswith("!"):
        globs.insert(0, "*")
    first = fnmatch.fnmatchcase(namespace, globs[0])
    matched = first
    for glob in globs[1:]:
        if glob.startswith("!"):
            matched = matched and not fnmatch.fnmatchcase(namespace, glob.lstrip("!"))
        else:
            matched = matched or (first and fnmatch.fnmatchcase(namespace, glob))
    return matched


def watched_namespaces(patterns: tuple[str, ...]) -> list[str | None]:
    """What to list and watch: each namespace named exactly (a Role in each is enough), or the whole cluster
    (None) when every namespace is served or a pattern is a glob (its events filtered by `served`)."""
    if not patterns or any(not _plain(pattern) for pattern in patterns):
        return [None]
    return list(dict.fromkeys(patterns))


def _plain(pattern: str) -> bool:
    return not any(mark in pattern for mark in "*?[!, ")


class IncidentWatch:
    """One list and watch (a namespace's, or the cluster's with None), run until cancelled."""

    def __init__(self, api: client.ApiClient, namespace: str | None, patterns: tuple[str, ...],
                 deliver: Deliver, vanished: Vanished) -> None:
        self.api = api
        self.namespace = namespace
        self.patterns = patterns
        self.deliver = deliver
        self.vanished = vanished
        self._known: dict[str, str] = {}  # uid -> namespace of the Incidents seen and not deleted

    async def run(self) -> None:
        version: str | None = None
        pause = RETRY_FIRST_SECONDS
        while True:
            try:
                if version is None:
                    version = await self._relist()
                async for seen in self._stream(version):
                    version, pause = seen, RETRY_FIRST_SECONDS
                pause = RETRY_FIRST_SECONDS  # the server ended the stream: watch on from the last version
            except Gone:
                version = None
            except Exception as e:  # whatever it was (an API error, a dropped stream, a line too long to read),
                # the watch must not end: the operator would stop handling every Incident, silently
                logger.warning(f"watching incidents in {self._where()} failed ({_describe(e)}); "
                               f"trying again in {pause:.0f} s")
                await asyncio.sleep(pause)
                pause = min(pause * 2, RETRY_LAST_SECONDS)

    def _where(self) -> str:
        return "every namespace" if self.namespace is None else f"namespace {self.namespace}"

    async def _relist(self) -> str:
        """List every Incident: each is delivered as ADDED, those known but missing as vanished."""
        listed = await self._list(stream=False)
        before, self._known = self._known, {}
        for item in listed.get("items") or []:
            item.setdefault("apiVersion", f"{GROUP}/{VERSION}")
            item.setdefault("kind", "Incident")
            self._take("ADDED", item)
        for uid, namespace in before.items():
            if uid not in self._known:
                self.vanished(uid, namespace)
        return str(listed["metadata"]["resourceVersion"])

    async def _stream(self, version: str) -> AsyncIterator[str]:
        """Watch from `version`; yields the newest version after each line. Raises Gone (410)."""
        response = await self._list(stream=True, watch=True, resource_version=version, allow_watch_bookmarks=True,
                                    timeout_seconds=WATCH_SECONDS,
                                    _request_timeout=WATCH_SECONDS + READ_MARGIN_SECONDS)
        async with response:
            if response.status == 410:
                raise Gone()
            if response.status != 200:
                raise client.ApiException(status=response.status, reason=response.reason)
            async for line in response.content:  # the client reads lines up to 4 MiB
                event = json.loads(line)
                kind, obj = event.get("type"), event.get("object") or {}
                if kind == "ERROR":
                    if obj.get("code") == 410:
                        raise Gone()
                    raise client.ApiException(status=obj.get("code"), reason=obj.get("reason"))
                version = str(obj["metadata"]["resourceVersion"])
                if kind in ("ADDED", "MODIFIED", "DELETED"):
                    self._take(kind, obj)
                yield version

    async def _list(self, *, stream: bool, **options: Any) -> Any:
        """The namespace's (or the cluster's) Incidents: the listing, or with `stream` the unread response."""
        custom = client.CustomObjectsApi(self.api)
        if self.namespace is None:
            cluster = custom.list_cluster_custom_object_without_preload_content if stream \
                else custom.list_cluster_custom_object
            return await cluster(GROUP, VERSION, PLURAL, **options)
        namespaced = custom.list_namespaced_custom_object_without_preload_content if stream \
            else custom.list_namespaced_custom_object
        return await namespaced(GROUP, VERSION, self.namespace, PLURAL, **options)

    def _take(self, kind: str, obj: dict[str, Any]) -> None:
        meta = obj["metadata"]
        namespace = meta["namespace"]
        if not served(namespace, self.patterns):
            return
        meta.pop("managedFields", None)
        if kind == "DELETED":
            self._known.pop(meta["uid"], None)
        else:
            self._known[meta["uid"]] = namespace
        try:
            self.deliver(kind, obj)
        except Exception as e:  # one Incident's failure must not end the watch for every other one
            # Its type only, as handle_incident logs a failed reconciliation: a message or traceback may
            # quote the Incident's spec, and a step's URL can be a credential.
            logger.error(f"incident {namespace}/{meta.get('name')}: handling its {kind} event failed "
                         f"({type(e).__name__})")


def _describe(error: Exception) -> str:
    if isinstance(error, client.ApiException):
        return f"{error.status} {error.reason}"
    return type(error).__name__
