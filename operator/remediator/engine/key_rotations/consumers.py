"""Which workloads read a Secret, and whether a consumer's restart is done (pure: plain dicts in)."""

from __future__ import annotations

import datetime
from collections.abc import Iterator, Mapping, Sequence
from typing import Any

from remediator.api.keyrotations import Consumers
from remediator.engine import intents, rollouts

WORKLOAD_KINDS = ("Deployment", "StatefulSet", "DaemonSet")
_CONTAINER_LISTS = ("initContainers", "containers", "ephemeralContainers")


def _secret_names(pod_spec: Mapping[str, Any]) -> Iterator[str]:
    """Every Secret name the pod spec reads: env, envFrom, secret volumes and projected volumes."""
    for list_name in _CONTAINER_LISTS:
        for container in pod_spec.get(list_name) or []:
            for env in container.get("env") or []:
                ref = ((env.get("valueFrom") or {}).get("secretKeyRef")) or {}
                if ref.get("name"):
                    yield str(ref["name"])
            for source in container.get("envFrom") or []:
                ref = source.get("secretRef") or {}
                if ref.get("name"):
                    yield str(ref["name"])
    for volume in pod_spec.get("volumes") or []:
        secret = volume.get("secret") or {}
        if secret.get("secretName"):
            yield str(secret["secretName"])
        for projected in (volume.get("projected") or {}).get("sources") or []:
            ref = projected.get("secret") or {}
            if ref.get("name"):
                yield str(ref["name"])


def references(workload: Mapping[str, Any], secret: str) -> bool:
    """Whether the workload's pod template reads the Secret."""
    pod_spec = ((workload.get("spec") or {}).get("template") or {}).get("spec") or {}
    return secret in set(_secret_names(pod_spec))


def select(consumers: Consumers, secret: str, workloads: Sequence[Mapping[str, Any]]
           ) -> tuple[list[tuple[str, str]], list[tuple[str, str]]]:
    """(found, missing): the consumers as (kind, name), in a stable order; `missing` are listed ones that do
    not exist. With `auto`, every workload whose pod template references the Secret."""
    present = {(str(w.get("kind")), str(w["metadata"]["name"])): w for w in workloads}
    if consumers.auto:
        found = sorted(key for key, workload in present.items() if references(workload, secret))
        return found, []
    listed = [(str(target.kind), target.name) for target in consumers.workloads]
    return [key for key in listed if key in present], [key for key in listed if key not in present]


def find(workloads: Sequence[Mapping[str, Any]], kind: str, name: str) -> Mapping[str, Any] | None:
    for workload in workloads:
        if workload.get("kind") == kind and workload["metadata"]["name"] == name:
            return workload
    return None


def restarted_at(workload: Mapping[str, Any]) -> datetime.datetime | None:
    """When remediator last restarted the workload (its pod template's precise restart annotation)."""
    template_meta = ((workload.get("spec") or {}).get("template") or {}).get("metadata") or {}
    text = (template_meta.get("annotations") or {}).get(intents.PRECISE_RESTART_ANNOTATION)
    if not text:
        return None
    try:
        moment = datetime.datetime.fromisoformat(str(text).replace("Z", "+00:00"))
    except ValueError:
        return None
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=datetime.UTC)


def rolled_out(workload: Mapping[str, Any]) -> tuple[bool, str]:
    """(complete, message), as `kubectl rollout status` decides."""
    return rollouts.rollout_status(workload)


def format_restart_time(moment: datetime.datetime) -> str:
    """A restart stamp to the microsecond (kubectl's own stamp has seconds only)."""
    return moment.astimezone(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
