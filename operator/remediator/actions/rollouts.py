"""Deployment revisions and rollouts: read the history, set the pod template; each safe to repeat.

The RollbackRequest scales with workloads.scale_to, its API errors made Results by `failure` here.

Objects are read as the API server's JSON (not the client's typed models), so a template copied
from a ReplicaSet into the Deployment keeps every field, including ones this client does not know.
"""

from __future__ import annotations

import json

import kubernetes.client
from kubernetes.client.exceptions import ApiException

from remediator.actions import retries
from remediator.engine import intents, revisions, rollbacks

ATTEMPTS = 5


class TransientApiError(Exception):
    """The API server could not answer now (5xx, 429): try the whole reconcile again later."""


async def read_deployment(api: kubernetes.client.ApiClient, namespace: str, name: str) -> intents.Result:
    """The Deployment with its revision history (the ReplicaSets it controls), or why it cannot be read.

    The value is a revisions.DeploymentState; failure reasons: TargetNotFound, Forbidden. Raises
    TransientApiError when the server is unavailable.
    """
    apps = kubernetes.client.AppsV1Api(api)
    try:
        deployment = await retries.call_json(apps.read_namespaced_deployment, name, namespace)
        match_labels = ((deployment.get("spec") or {}).get("selector") or {}).get("matchLabels") or {}
        selector = ",".join(f"{key}={value}" for key, value in sorted(match_labels.items()))
        listed = await retries.call_json(apps.list_namespaced_replica_set, namespace, label_selector=selector)
    except ApiException as e:
        return _unreadable(e, f"deployment/{name}", namespace)
    return intents.done(revisions.deployment_state(deployment, listed.get("items") or []))


async def set_template(api: kubernetes.client.ApiClient, namespace: str,
                       action: rollbacks.SetTemplate) -> intents.Result:
    """Give the Deployment the revision's pod template (`kubectl rollout undo`).

    Checks first: when the Deployment already has that template, nothing is written. The write
    carries the read resourceVersion, so a concurrent change yields a 409 and a fresh attempt.
    """
    apps = kubernetes.client.AppsV1Api(api)
    for _ in range(ATTEMPTS):
        try:
            deployment = await retries.call_json(apps.read_namespaced_deployment, action.name, namespace)
            if revisions.same_template(deployment["spec"].get("template") or {}, action.template):
                return intents.done()
            deployment["spec"]["template"] = json.loads(json.dumps(action.template))
            deployment["metadata"].pop("managedFields", None)  # the server's record, not ours to send back
            await retries.call_json(apps.replace_namespaced_deployment, action.name, namespace, deployment)
            return intents.done()
        except ApiException as e:
            if e.status == 409:
                continue
            return failure(e, "Deployment", action.name, namespace)
    return intents.failed("Conflict", f"deployment/{action.name} kept changing")


def failure(error: ApiException, kind: str, name: str, namespace: str) -> intents.Result:
    """A failed change as the RollbackRequest's Result: TargetNotFound, Forbidden or Invalid.

    Raises TransientApiError on 5xx/429, so that Kopf retries the reconcile, which re-issues the
    recorded action, instead of the request failing for good.
    """
    subject = f"{kind.lower()}/{name}"
    if error.status is not None and (error.status >= 500 or error.status == 429):
        raise TransientApiError(f"{subject}: API error {error.status} {error.reason}") from error
    if error.status == 404:
        return _unreadable(error, subject, namespace)
    if error.status == 403:
        return intents.failed("Forbidden", f"not allowed to change {subject} in namespace {namespace}")
    return intents.failed("Invalid", f"the API server refused the change to {subject}: {_status_message(error)}")


def _unreadable(error: ApiException, subject: str, namespace: str) -> intents.Result:
    if error.status == 404:
        return intents.failed("TargetNotFound", f"{subject} not found in namespace {namespace}")
    if error.status == 403:
        return intents.failed("Forbidden", f"not allowed to read {subject} and its ReplicaSets")
    raise TransientApiError(f"reading {subject}: API error {error.status} {error.reason}") from error


def _status_message(error: ApiException) -> str:
    try:
        return str(json.loads(error.body or "{}").get("message") or error.reason)
    except ValueError:
        return str(error.reason)
