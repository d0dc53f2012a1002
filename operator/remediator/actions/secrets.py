"""Secrets a KeyRotation reads and writes: the staging Secret, the live Secret's promotion, rollback and
revocation, and the reads that validation and consumer discovery need.

Each write checks the world first (the rotation id and key version it leaves on the Secret) and is
conditional on the resourceVersion it was judged on, so repeating one after a crash changes nothing
more. Values are made here (the `secrets` module) and go from Secret to Secret: no value is ever
returned, logged or put into a message; failures say which Secret and key, and the API status only.
"""

from __future__ import annotations

import base64
import secrets
import string
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

import kubernetes.client
from kubernetes.client.exceptions import ApiException

from remediator import GROUP, VERSION
from remediator.actions import retries
from remediator.api.keyrotations import MANAGED_SECRET_LABEL, KeyEncoding
from remediator.engine import intents
from remediator.engine.key_rotations import consumers, moves

_ALPHANUMERIC = string.ascii_letters + string.digits
_LISTERS = {
    "Deployment": "list_namespaced_deployment",
    "StatefulSet": "list_namespaced_stateful_set",
    "DaemonSet": "list_namespaced_daemon_set",
}


def new_value(length: int, encoding: KeyEncoding) -> str:
    """A new random value: `length` random bytes as base64 or hex, or `length` alphanumeric characters."""
    if encoding == KeyEncoding.HEX:
        return secrets.token_hex(length)
    if encoding == KeyEncoding.ALPHANUMERIC:
        return "".join(secrets.choice(_ALPHANUMERIC) for _ in range(length))
    return base64.b64encode(secrets.token_bytes(length)).decode()


def _encoded(text: str) -> str:
    return base64.b64encode(text.encode()).decode()


def _failure(error: ApiException, what: str) -> intents.Result:
    """An API error as an outcome naming the Secret, never a body (a Secret's body holds values)."""
    if error.status == 409:
        return intents.failed("Conflict", f"{what} changed while it was being written")
    if error.status == 404:
        return intents.failed("SecretNotFound", f"{what} does not exist")
    if error.status == 403:
        return intents.failed("Forbidden", f"not allowed to write {what}")
    return intents.failed("ApiError", f"API error {error.status} on {what}")


async def _read(core: kubernetes.client.CoreV1Api, namespace: str, name: str) -> dict[str, Any] | None:
    try:
        return await retries.call_json(core.read_namespaced_secret, name, namespace)
    except ApiException as e:
        if e.status == 404:
            return None
        raise


def _seen(secret: Mapping[str, Any]) -> moves.SecretSeen:
    meta = secret["metadata"]
    return moves.SecretSeen(name=meta["name"], resource_version=str(meta["resourceVersion"]),
                            keys=frozenset((secret.get("data") or {}).keys()),
                            annotations=tuple(sorted((meta.get("annotations") or {}).items())),
                            type=str(secret.get("type") or "Opaque"), immutable=bool(secret.get("immutable")))


def _marked(secret: Mapping[str, Any], rotation_id: str, version: int) -> bool:
    """Whether the Secret carries this rotation's mark (id and key version)."""
    annotations = secret["metadata"].get("annotations") or {}
    return (annotations.get(moves.ROTATION_ID_ANNOTATION) == rotation_id
            and annotations.get(moves.KEY_VERSION_ANNOTATION) == str(version))


async def read_secrets(api: kubernetes.client.ApiClient, namespace: str, intent: moves.ReadSecrets) -> intents.Result:
    """Each named Secret's version, key names and annotations (None when missing)."""
    core = kubernetes.client.CoreV1Api(api)
    found: dict[str, moves.SecretSeen | None] = {}
    for name in intent.names:
        secret = await _read(core, namespace, name)
        found[name] = None if secret is None else _seen(secret)
    return intents.done(found)


async def list_key_rotations(api: kubernetes.client.ApiClient, namespace: str) -> intents.Result:
    """The namespace's KeyRotations as [{name, uid, createdAt, spec}]."""
    custom = kubernetes.client.CustomObjectsApi(api)
    listed: Any = await retries.call(custom.list_namespaced_custom_object, GROUP, VERSION, namespace, "keyrotations")
    return intents.done([{"name": item["metadata"]["name"], "uid": item["metadata"].get("uid"),
                          "createdAt": item["metadata"].get("creationTimestamp"), "spec": item.get("spec") or {}}
                         for item in listed.get("items") or []])


async def list_workloads(api: kubernetes.client.ApiClient, namespace: str) -> intents.Result:
    """The namespace's Deployments, StatefulSets and DaemonSets, each with its `kind`."""
    apps = kubernetes.client.AppsV1Api(api)
    workloads: list[dict[str, Any]] = []
    for kind in consumers.WORKLOAD_KINDS:
        listed = await retries.call_json(getattr(apps, _LISTERS[kind]), namespace)
        workloads.extend({**item, "kind": kind} for item in listed.get("items") or [])
    return intents.done(workloads)


async def stage_values(api: kubernetes.client.ApiClient, namespace: str, intent: moves.StageValues) -> intents.Result:
    """Create (or replace a leftover of another rotation) the staging Secret with new values.

    A staging Secret already marked with this rotation keeps its values: they are never made twice.
    """
    core = kubernetes.client.CoreV1Api(api)
    what = f"secret {intent.staging}"
    try:
        existing = await _read(core, namespace, intent.staging)
        wanted = {value.key for value in intent.values}
        if existing is not None and _marked(existing, intent.rotation_id, intent.version) \
                and wanted <= set((existing.get("data") or {}).keys()):
            return intents.done()
        data: dict[str, str] = {}
        for value in intent.values:
            if value.source is None:
                data[value.key] = _encoded(new_value(value.length, value.encoding))
                continue
            source_name, source_key = value.source
            source = await _read(core, namespace, source_name)
            encoded = None if source is None else (source.get("data") or {}).get(source_key)
            if encoded is None:
                return intents.failed("SourceSecretNotFound",
                                      f"secret {source_name} or its key {source_key!r} does not exist")
            data[value.key] = encoded
        owner = intent.owner
        body: dict[str, Any] = {
            "apiVersion": "v1", "kind": "Secret", "type": "Opaque", "data": data,
            "metadata": {
                "name": intent.staging, "namespace": namespace,
                "labels": {MANAGED_SECRET_LABEL: owner.name},
                "annotations": {moves.ROTATION_ID_ANNOTATION: intent.rotation_id,
                                moves.KEY_VERSION_ANNOTATION: str(intent.version)},
                "ownerReferences": [{"apiVersion": owner.api_version, "kind": owner.kind, "name": owner.name,
                                     "uid": owner.uid, "controller": True, "blockOwnerDeletion": True}]},
        }
        if existing is None:
            await retries.call(core.create_namespaced_secret, namespace, body, _preload_content=False)
        else:
            body["metadata"]["resourceVersion"] = existing["metadata"]["resourceVersion"]
            await retries.call(core.replace_namespaced_secret, intent.staging, namespace, body,
                               _preload_content=False)
    except ApiException as e:
        return _failure(e, what)
    return intents.done()


async def read_value(api: kubernetes.client.ApiClient, namespace: str, name: str, key: str,
                     mark: tuple[str, int] | None = None) -> str | intents.Result:
    """One key's value (for a database password), or failed(...) naming the Secret and key; with `mark`,
    only from a Secret that carries that rotation id and version (the staging Secret of that rotation)."""
    core = kubernetes.client.CoreV1Api(api)
    try:
        secret = await _read(core, namespace, name)
    except ApiException as e:
        return _failure(e, f"secret {name}")
    encoded = None if secret is None else (secret.get("data") or {}).get(key)
    if secret is None or encoded is None or (mark is not None and not _marked(secret, *mark)):
        return intents.failed("StagedValuesLost" if mark else "SecretNotFound",
                              f"secret {name} has no key {key!r}" + (" for this rotation" if mark else ""))
    return base64.b64decode(encoded).decode()


async def _replace(core: kubernetes.client.CoreV1Api, namespace: str, secret: dict[str, Any]) -> None:
    """Write the Secret as given, on condition that it is still at the resourceVersion it carries."""
    secret["metadata"].pop("managedFields", None)  # the server's record, not ours to send back
    await retries.call(core.replace_namespaced_secret, secret["metadata"]["name"], namespace, secret,
                       _preload_content=False)


async def _rewrite(core: kubernetes.client.CoreV1Api, namespace: str, name: str,
                   change: Callable[[dict[str, Any]], Awaitable[intents.Result | None]]) -> intents.Result:
    """Read the Secret, let `change` edit it in place (or answer instead: done already, or refused), and
    write it back on condition that it is still at the version read."""
    try:
        live = await _read(core, namespace, name)
        if live is None:
            return intents.failed("SecretNotFound", f"secret {name} does not exist")
        answer = await change(live)
        if answer is not None:
            return answer
        await _replace(core, namespace, live)
    except ApiException as e:
        return _failure(e, f"secret {name}")
    return intents.done()


async def promote(api: kubernetes.client.ApiClient, namespace: str, intent: moves.PromoteSecret) -> intents.Result:
    """The live Secret's one update: staged values in, the old ones under key+suffix, the rotation's mark."""
    core = kubernetes.client.CoreV1Api(api)

    async def change(live: dict[str, Any]) -> intents.Result | None:
        if _marked(live, intent.rotation_id, intent.version):
            return intents.done()  # promoted before a crash
        if str(live["metadata"]["resourceVersion"]) != intent.resource_version:
            return intents.failed("Conflict", f"secret {intent.secret} changed since it was read")
        staging = await _read(core, namespace, intent.staging)
        staged = (staging or {}).get("data") or {}
        if staging is None or not _marked(staging, intent.rotation_id, intent.version) \
                or not set(intent.keys) <= set(staged):
            return intents.failed("StagedValuesLost", f"secret {intent.staging} no longer holds this rotation's "
                                  "values")
        data = dict(live.get("data") or {})
        for key in intent.keys:
            if key in data:
                data[key + intent.suffix] = data[key]
            data[key] = staged[key]
        if intent.username is not None:
            key, user = intent.username
            if key in data:
                data[key + intent.suffix] = data[key]
            data[key] = _encoded(user)
        meta = live["metadata"]
        meta["annotations"] = {**(meta.get("annotations") or {}),
                               moves.ROTATION_ID_ANNOTATION: intent.rotation_id,
                               moves.KEY_VERSION_ANNOTATION: str(intent.version),
                               moves.ROTATED_AT_ANNOTATION: intent.rotated_at}
        meta["annotations"].pop(moves.ROLLED_BACK_ANNOTATION, None)
        meta["labels"] = {**(meta.get("labels") or {}), MANAGED_SECRET_LABEL: intent.managed_by}
        live["data"] = data
        return None

    return await _rewrite(core, namespace, intent.secret, change)


async def restore(api: kubernetes.client.ApiClient, namespace: str, intent: moves.RestoreSecret) -> intents.Result:
    """The rollback's one conditional write: previous values back under each key, the failed ones under
    key+suffix (until the consumers are restarted), the key version back to version - 1."""
    core = kubernetes.client.CoreV1Api(api)
    what = f"secret {intent.secret}"
    mark = f"{intent.rotation_id}/{intent.version}"

    async def change(live: dict[str, Any]) -> intents.Result | None:
        annotations = dict(live["metadata"].get("annotations") or {})
        if annotations.get(moves.ROLLED_BACK_ANNOTATION) == mark:
            return intents.done()  # rolled back before a crash
        if not _marked(live, intent.rotation_id, intent.version):
            return intents.failed("SecretChanged", f"{what} no longer holds rotation {intent.rotation_id}'s values")
        data = dict(live.get("data") or {})
        missing = [key + intent.suffix for key in intent.keys if key + intent.suffix not in data]
        if missing:
            return intents.failed("PreviousValueMissing", f"{what} has no {', '.join(missing)} to restore")
        for key in intent.keys:
            data[key], data[key + intent.suffix] = data[key + intent.suffix], data[key]
        if intent.username is not None:
            key, user = intent.username
            if key in data:
                data[key + intent.suffix] = data[key]
            data[key] = _encoded(user)
        annotations[moves.KEY_VERSION_ANNOTATION] = str(intent.version - 1)
        annotations[moves.ROLLED_BACK_ANNOTATION] = mark
        live["metadata"]["annotations"] = annotations
        live["data"] = data
        return None

    return await _rewrite(core, namespace, intent.secret, change)


async def revoke(api: kubernetes.client.ApiClient, namespace: str, intent: moves.RevokePrevious) -> intents.Result:
    """Remove key+suffix from the live Secret (conditional on the version read) and delete the staging Secret;
    what is already gone is fine."""
    core = kubernetes.client.CoreV1Api(api)
    what = f"secret {intent.secret}"
    try:
        live = await _read(core, namespace, intent.secret)
        data = dict((live or {}).get("data") or {})
        previous = [key + intent.suffix for key in (*intent.keys, *intent.extra_keys) if key + intent.suffix in data]
        if live is not None and previous:
            for name in previous:
                del data[name]
            live["data"] = data
            await _replace(core, namespace, live)
        try:
            await retries.call(core.delete_namespaced_secret, intent.staging, namespace, _preload_content=False)
        except ApiException as e:
            if e.status != 404:
                raise
    except ApiException as e:
        return _failure(e, what)
    return intents.done()
