"""Deployment revisions and rollouts: read the history, set the pod template, scale; each safe to repeat.

Objects are read as the API server's JSON (not the client's typed models), so a template copied
from a ReplicaSet into the Deployment keeps every field, including ones this client does not know.
"""

from __future__ import annotations

import json
from typing import Any

import kubernetes.client
from kubernetes.client.exceptions import ApiException

from remediator.actions import retries
from remediator.engine import revisions, rollbacks

ATTEMPTS = 5


class TransientApiError(Exception):
    """The API server could not answer now (5xx, 429): try the whole reconcile again later."""


async def read_deployment(api: kubernetes.client.ApiClient, namespace: str,
                          name: str) -> revisions.DeploymentState | rollbacks.Unreadable:
    """The Deployment with its revision history (the ReplicaSets it controls), or why it cannot be read.

    Unreadable reasons: TargetNotFound, Forbidden. Raises TransientApiError when the server is unavailable.
    """
    apps = kubernetes.client.AppsV1Api(api)
    try:
        deployment = await retries.call_json(apps.read_namespaced_deployment, name, namespace)
        match_labels = ((deployment.get("spec") or {}).get("selector") or {}).get("matchLabels") or {}
        selector = ",".join(f"{key}={value}" for key, value in sorted(match_labels.items()))
        listed = await retries.call_json(apps.list_namespaced_replica_set, namespace, label_selector=selector)
    except ApiException as e:
        return _unreadable(e, f"deployment/{name}", namespace)
    return revisions.deployment_state(deployment, listed.get("items") or [])


async def set_template(api: kubernetes.client.ApiClient, namespace: str,
                       action: rollbacks.SetTemplate) -> rollbacks.Outcome:
    """Give the Deployment the revision's pod template (`kubectl rollout undo`).

    Checks first: when the Deployment already has that template, nothing is written. The write
    carries the read resourceVersion, so a concurrent change yields a 409 and a fresh attempt.
    """
    apps = kubernetes.client.AppsV1Api(api)
    subject = f"deployment/{action.name}"
    for _ in range(ATTEMPTS):
        try:
            deployment = await retries.call_json(apps.read_namespaced_deployment, action.name, namespace)
            if revisions.same_template(deployment["spec"].get("template") or {}, action.template):
                return rollbacks.Outcome(succeeded=True)
            deployment["spec"]["template"] = json.loads(json.dumps(action.template))
            await retries.call_json(apps.replace_namespaced_deployment, action.name, namespace, deployment)
            return rollbacks.Outcome(succeeded=True)
        except ApiException as e:
            if e.status == 409:
                continue
            return _failed(e, subject, namespace)
    return rollbacks.Outcome(succeeded=False, reason="Conflict", message=f"{subject} kept changing")


async def scale(api: kubernetes.client.ApiClient, namespace: str,
                action: rollbacks.ScaleDeployment) -> rollbacks.Outcome:
    """Set the Deployment's replicas to an absolute number through the scale subresource (no-op when equal)."""
    apps = kubernetes.client.AppsV1Api(api)
    subject = f"deployment/{action.name}"
    for _ in range(ATTEMPTS):
        try:
            current: Any = await retries.call(apps.read_namespaced_deployment_scale, action.name, namespace)
            if current.spec.replicas == action.replicas:
                return rollbacks.Outcome(succeeded=True)
            current.spec.replicas = action.replicas
            await retries.call(apps.replace_namespaced_deployment_scale, action.name, namespace, current)
            return rollbacks.Outcome(succeeded=True)
        except ApiException as e:
            if e.status == 409:
                continue
            return _failed(e, subject, namespace)
    return rollbacks.Outcome(succeeded=False, reason="Conflict", message=f"{subject} kept changing")


def _unreadable(error: ApiException, subject: str, namespace: str) -> rollbacks.Unreadable:
    if error.status == 404:
        return rollbacks.Unreadable("TargetNotFound", f"{subject} not found in namespace {namespace}")
    if error.status == 403:
        return rollbacks.Unreadable("Forbidden", f"not allowed to read {subject} and its ReplicaSets")
    raise TransientApiError(f"reading {subject}: API error {error.status} {error.reason}") from error


def _failed(error: ApiException, subject: str, namespace: str) -> rollbacks.Outcome:
    if error.status is not None and (error.status >= 500 or error.status == 429):
        raise TransientApiError(f"{subject}: API error {error.status} {error.reason}") from error
    if error.status in (404, 403):
        found = _unreadable(error, subject, namespace)
        return rollbacks.Outcome(succeeded=False, reason=found.reason, message=found.message)
    return rollbacks.Outcome(succeeded=False, reason="Invalid",
                             message=f"the API server refused the change to {subject}: {_status_message(error)}")


def _status_message(error: ApiException) -> str:
    try:
        return str(json.loads(error.body or "{}").get("message") or error.reason)
    except ValueError:
        return str(error.reason)
