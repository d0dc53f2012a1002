"""remediator's own objects that a step creates (owned by its Incident) and then reads back."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

import kubernetes.client
from kubernetes.client.exceptions import ApiException

from remediator import API_VERSION, GROUP, VERSION
from remediator.actions import retries
from remediator.engine import intents


async def create(api: kubernetes.client.ApiClient, owner: Mapping[str, Any], kind: str, plural: str, name: str,
                 spec: Mapping[str, Any], annotations: Mapping[str, str] | None = None) -> intents.Result:
    """Create `kind/name` owned (and labelled) by the Incident `owner`; an existing one is kept as it is.

    The API server's refusal of an invalid spec (422) is reported as Invalid<kind> with its message.
    """
    meta = owner["metadata"]
    metadata: dict[str, Any] = {
        "name": name, "namespace": meta["namespace"], "labels": {f"{GROUP}/incident": meta["name"]},
        "ownerReferences": [{"apiVersion": API_VERSION, "kind": "Incident", "name": meta["name"],
                             "uid": meta["uid"], "controller": True, "blockOwnerDeletion": True}]}
    if annotations:
        metadata["annotations"] = dict(annotations)
    body = {"apiVersion": API_VERSION, "kind": kind, "metadata": metadata, "spec": dict(spec)}
    custom = kubernetes.client.CustomObjectsApi(api)
    try:
        await retries.call(custom.create_namespaced_custom_object, GROUP, VERSION, meta["namespace"], plural, body)
    except ApiException as e:
        if e.status == 422:
            return intents.failed(f"Invalid{kind}", f"{kind} {name} was refused: {_message(e)}")
        if e.status != 409:
            return intents.failed("ApiError", f"could not create {kind} {name}: API error {e.status}")
    return intents.done()


async def read(api: kubernetes.client.ApiClient, namespace: str, kind: str, plural: str, name: str,
               missing: tuple[str, str]) -> intents.Result:
    """The object as stored, or the `missing` (reason, message) failure when it does not exist."""
    custom = kubernetes.client.CustomObjectsApi(api)
    try:
        found = await retries.call(custom.get_namespaced_custom_object, GROUP, VERSION, namespace, plural, name)
    except ApiException as e:
        if e.status == 404:
            return intents.failed(*missing)
        return intents.failed("ApiError", f"could not read {kind} {name}: API error {e.status}")
    return intents.done(found)


def _message(error: ApiException) -> str:
    try:
        return str(json.loads(error.body or "{}").get("message") or f"API error {error.status}")
    except ValueError:
        return f"API error {error.status}"
