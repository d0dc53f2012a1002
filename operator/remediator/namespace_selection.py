"""`--namespace-selector`: which namespaces' labels match, and noticing when that set changes.

The API server evaluates the selector (a list and a watch of Namespaces with labelSelector): a
namespace that starts matching arrives as ADDED, one that stops matching (or is deleted) as DELETED,
as kube-apiserver's watch filtering sends them. The operator acts on the set read when its run of Kopf
started; a change ends that run and starts another with the new set (operator_main), so the objects
of a namespace it gains are listed afresh, and those of one it loses are let go of.
"""

from __future__ import annotations

import dataclasses
import json
import logging
from typing import Any

from kubernetes.aio import client

logger = logging.getLogger("remediator.namespaces")
# A watch ends server-side after this long and is opened again from the last version seen.
WATCH_SECONDS = 300


class SelectorRefused(Exception):
    """The API server refused the selector (400: it does not parse)."""


@dataclasses.dataclass(frozen=True)
class Selection:
    """The namespaces matching the selector, as listed at `resource_version`."""

    names: frozenset[str]
    resource_version: str


async def select(api: client.ApiClient, selector: str, timeout: float) -> Selection:
    """List the namespaces matching `selector`. Raises SelectorRefused when the API server refuses it;
    other API failures as client.ApiException or connection errors."""
    core = client.CoreV1Api(api)
    try:
        listed: Any = await core.list_namespace(label_selector=selector, _request_timeout=timeout)
    except client.ApiException as e:
        if e.status == 400:
            raise SelectorRefused(_message(e)) from None
        raise
    return Selection(frozenset(item.metadata.name for item in listed.items), str(listed.metadata.resource_version))


async def changed(api: client.ApiClient, selector: str, selection: Selection, timeout: float) -> str:
    """Watch from the listing until a namespace starts or stops matching; return which, in words.

    A watch too old to resume (410 Gone) lists again: a different set is a change, the same set watches on.
    """
    core = client.CoreV1Api(api)
    version = selection.resource_version
    while True:
        response = await core.list_namespace_without_preload_content(
            label_selector=selector, watch=True, resource_version=version, timeout_seconds=WATCH_SECONDS,
            _request_timeout=WATCH_SECONDS + timeout)
        if response.status == 410:  # too old to resume: list again
            response.release()
            version, change = await _relisted(api, selector, selection, timeout)
            if change:
                return change
            continue
        if response.status != 200:
            response.release()
            raise client.ApiException(status=response.status, reason=response.reason)
        async with response:
            async for line in response.content:
                event = json.loads(line)
                kind, obj = event.get("type"), event.get("object") or {}
                if kind == "ERROR":
                    if obj.get("code") != 410:
                        raise client.ApiException(status=obj.get("code"), reason=obj.get("message"))
                    version, change = await _relisted(api, selector, selection, timeout)
                    if change:
                        return change
                    break
                name = (obj.get("metadata") or {}).get("name", "")
                version = (obj.get("metadata") or {}).get("resourceVersion", version)
                if kind == "ADDED" and name not in selection.names:
                    return f"namespace {name} now matches"
                if kind == "DELETED" and name in selection.names:
                    return f"namespace {name} no longer matches (or is gone)"


async def _relisted(api: client.ApiClient, selector: str, selection: Selection, timeout: float) -> tuple[str, str]:
    now = await select(api, selector, timeout)
    gained, lost = sorted(now.names - selection.names), sorted(selection.names - now.names)
    if gained or lost:
        return now.resource_version, f"namespaces gained {gained}, lost {lost}"
    return now.resource_version, ""


def _message(error: client.ApiException) -> str:
    try:
        return str(json.loads(error.body or "{}").get("message") or error.reason)
    except ValueError:
        return str(error.reason)
