"""What the KeyRotation scenarios share: the Secret, its consumers, the KeyRotation, and reading them back."""

from __future__ import annotations

import base64
from typing import Any

from remediator import manifests

API = "remediator.dev/v1alpha1"
SECRET = "payments-api"
ORIGINAL = {"apiKey": "original-api-key-0001", "signingKey": "original-signing-0001"}
# The operator's flags in these scenarios: consumers are restarted at once (no coalescing window to wait out).
NO_COALESCE = ("--restart-coalesce", "0s")


def secret(name: str = SECRET, values: dict[str, str] | None = None) -> dict[str, Any]:
    data = {key: base64.b64encode(value.encode()).decode() for key, value in (values or ORIGINAL).items()}
    return {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": name, "namespace": "default"},
            "type": "Opaque", "data": data}


def consumer(name: str, reads: str = "env", secret_name: str = SECRET, kind: str = "Deployment") -> dict[str, Any]:
    """A workload that reads the Secret through env, envFrom, a volume or a projected volume (or not at all)."""
    container: dict[str, Any] = {"name": "app", "image": "payments:1.0"}
    pod: dict[str, Any] = {"containers": [container]}
    if reads == "env":
        container["env"] = [{"name": "API_KEY", "valueFrom": {"secretKeyRef": {"name": secret_name, "key": "apiKey"}}}]
    elif reads == "envFrom":
        container["envFrom"] = [{"secretRef": {"name": secret_name}}]
    elif reads == "volume":
        pod["volumes"] = [{"name": "keys", "secret": {"secretName": secret_name}}]
    elif reads == "projected":
        pod["volumes"] = [{"name": "keys", "projected": {"sources": [{"secret": {"name": secret_name}}]}}]
    spec: dict[str, Any] = {"selector": {"matchLabels": {"app": name}},
                            "template": {"metadata": {"labels": {"app": name}}, "spec": pod}}
    if kind != "DaemonSet":
        spec["replicas"] = 2
    if kind == "StatefulSet":
        spec["serviceName"] = name
    return {"apiVersion": "apps/v1", "kind": kind, "metadata": {"name": name, "namespace": "default"}, "spec": spec}


def key_rotation(name: str = "payments-keys", **spec: Any) -> dict[str, Any]:
    return {"apiVersion": API, "kind": "KeyRotation", "metadata": {"name": name, "namespace": "default"},
            "spec": {"secretRef": {"name": SECRET}, "keys": [{"key": "apiKey"}, {"key": "signingKey"}],
                     "consumers": {"auto": True}, **spec}}


async def values_of(client: manifests.Client, name: str = SECRET) -> dict[str, str]:
    """The Secret's decoded values ({} when it does not exist)."""
    found = await client.get("v1", "Secret", "default", name)
    return {key: base64.b64decode(value).decode() for key, value in ((found or {}).get("data") or {}).items()}


async def status_of(client: manifests.Client, name: str = "payments-keys") -> dict[str, Any]:
    found = await client.get(API, "KeyRotation", "default", name)
    return dict((found or {}).get("status") or {})


def conditions(status: dict[str, Any]) -> dict[str, tuple[str, str]]:
    return {c["type"]: (c["status"], c["reason"]) for c in status.get("conditions", [])}


def stage(status: dict[str, Any]) -> str | None:
    return (status.get("rotation") or {}).get("stage")


async def restart_stamp(client: manifests.Client, name: str, kind: str = "Deployment") -> str | None:
    """The consumer's pod template restart stamp (kubectl's restartedAt), None before any restart."""
    found = await client.get("apps/v1", kind, "default", name)
    template_meta = ((found or {}).get("spec") or {}).get("template", {}).get("metadata") or {}
    stamp = (template_meta.get("annotations") or {}).get("kubectl.kubernetes.io/restartedAt")
    return None if stamp is None else str(stamp)
