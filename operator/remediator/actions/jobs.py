"""Jobs the operator runs (migration rollbacks): create once under a deterministic name, then observe.

`job_manifest` only builds the Job (tested without a cluster); `run_job` checks the world
first, so repeating it after a crash finds the Job it created instead of starting a second one.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

import kubernetes.client
from kubernetes.client.exceptions import ApiException

from remediator.actions import retries
from remediator.actions.rollouts import TransientApiError
from remediator.api.jobs import JobTemplate
from remediator.engine import intents

MANAGED_BY = {"app.kubernetes.io/managed-by": "remediator"}
# The Pod Security Standards' "restricted" profile: what every Job the operator creates runs with by default.
RESTRICTED_POD = {"runAsNonRoot": True, "seccompProfile": {"type": "RuntimeDefault"}}
RESTRICTED_CONTAINER = {"allowPrivilegeEscalation": False, "capabilities": {"drop": ["ALL"]},
                        "runAsNonRoot": True, "seccompProfile": {"type": "RuntimeDefault"}}


def job_manifest(name: str, namespace: str, template: JobTemplate, owner: intents.Owner,
                 container: str = "job") -> dict[str, Any]:
    """A batch/v1 Job running `template` once, owned (and garbage-collected) with `owner`.

    One container; pods never restart (restartPolicy Never, backoffLimit from the template, 0 by
    default); the termination message falls back to the log tail so a failure explains itself.
    """
    main: dict[str, Any] = {"name": container, "image": template.image,
                            "terminationMessagePolicy": "FallbackToLogsOnError"}
    if template.command:
        main["command"] = list(template.command)
    if template.args:
        main["args"] = list(template.args)
    if template.env:
        main["env"] = [e.model_dump(by_alias=True, mode="json", exclude_none=True) for e in template.env]
    if template.env_from_secrets:
        main["envFrom"] = [{"secretRef": {"name": secret}} for secret in template.env_from_secrets]
    if template.resources is not None:
        resources = {key: value for key, value in template.resources.model_dump(mode="json").items() if value}
        if resources:
            main["resources"] = resources
    pod_spec: dict[str, Any] = {"restartPolicy": "Never", "containers": [main]}
    if not template.unrestricted:
        main["securityContext"] = json.loads(json.dumps(RESTRICTED_CONTAINER))
        pod_spec["securityContext"] = json.loads(json.dumps(RESTRICTED_POD))
    if template.service_account_name:
        pod_spec["serviceAccountName"] = template.service_account_name
    spec: dict[str, Any] = {"backoffLimit": template.backoff_limit,
                            "template": {"metadata": {"labels": dict(MANAGED_BY)}, "spec": pod_spec}}
    if template.active_deadline_seconds is not None:
        spec["activeDeadlineSeconds"] = template.active_deadline_seconds
    if template.ttl_seconds_after_finished is not None:
        spec["ttlSecondsAfterFinished"] = template.ttl_seconds_after_finished
    return {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": {
            "name": name,
            "namespace": namespace,
            "labels": dict(MANAGED_BY),
            "ownerReferences": [{"apiVersion": owner.api_version, "kind": owner.kind, "name": owner.name,
                                 "uid": owner.uid, "controller": True}],
        },
        "spec": spec,
    }


def secrets_needed(template: JobTemplate) -> dict[str, set[str]]:
    """The Secrets the Job's environment reads: name → keys it needs (empty: every key, via envFrom)."""
    needed: dict[str, set[str]] = {name: set() for name in template.env_from_secrets}
    for variable in template.env:
        if variable.value_from is not None:
            ref = variable.value_from.secret_key_ref
            needed.setdefault(ref.name, set()).add(ref.key)
    return needed


async def run_job(api: kubernetes.client.ApiClient, namespace: str, name: str, template: JobTemplate,
                  owner: intents.Owner, container: str = "job") -> intents.Result:
    """Create the Job unless a Job of that name exists; an existing one must belong to the same owner.

    Before creating, checks that the Secrets (and keys) its environment reads exist, since a pod
    missing them would wait forever instead of failing. Failure reasons: JobNameTaken,
    SecretNotFound, Forbidden, Invalid. Raises TransientApiError when the server is unavailable.
    """
    batch = kubernetes.client.BatchV1Api(api)
    existing = await _owned_job(batch, namespace, name, owner)
    if existing is not None:
        return existing
    missing = await _missing_secrets(api, namespace, secrets_needed(template))
    if missing:
        return intents.failed("SecretNotFound", f"the Job's environment needs {missing}, which does not exist")
    body: Any = job_manifest(name, namespace, template, owner, container)
    try:
        await retries.call(batch.create_namespaced_job, namespace, body, _preload_content=False)
    except ApiException as e:
        if e.status == 409:
            # Created meanwhile (another worker, or a retried request): the same checks apply.
            return await _owned_job(batch, namespace, name, owner) or intents.done()
        return _failed(e, f"job/{name}")
    return intents.done()


async def read_job(api: kubernetes.client.ApiClient, namespace: str, name: str) -> intents.JobObserved:
    """Running, Succeeded, Failed (with the Job's reason and the failed pod's termination message), or Missing."""
    batch = kubernetes.client.BatchV1Api(api)
    try:
        job = await retries.call_json(batch.read_namespaced_job, name, namespace)
    except ApiException as e:
        if e.status == 404:
            return intents.JobObserved(intents.JobPhase.MISSING, message=f"job/{name} not found")
        raise TransientApiError(f"reading job/{name}: API error {e.status} {e.reason}") from e
    conditions = {c.get("type"): c for c in (job.get("status") or {}).get("conditions") or ()
                  if c.get("status") == "True"}
    if "Complete" in conditions:
        return intents.JobObserved(intents.JobPhase.SUCCEEDED)
    failed = conditions.get("Failed")
    if failed is None:
        return intents.JobObserved(intents.JobPhase.RUNNING)
    message = await _termination_message(api, namespace, job) or str(failed.get("message") or "")
    return intents.JobObserved(intents.JobPhase.FAILED, reason=str(failed.get("reason") or ""), message=message)


def termination_message(pod: Mapping[str, Any]) -> str:
    """The message of the pod's failed container (its current or last termination), or ""."""
    for status in (pod.get("status") or {}).get("containerStatuses") or ():
        for state in (status.get("state") or {}, status.get("lastState") or {}):
            terminated = state.get("terminated") or {}
            if terminated and terminated.get("exitCode", 0) != 0:
                return str(terminated.get("message") or terminated.get("reason") or
                           f"exit code {terminated.get('exitCode')}").strip()
    return ""


async def _termination_message(api: kubernetes.client.ApiClient, namespace: str, job: Mapping[str, Any]) -> str:
    core = kubernetes.client.CoreV1Api(api)
    uid, name = job["metadata"]["uid"], job["metadata"]["name"]
    try:
        listed = await retries.call_json(core.list_namespaced_pod, namespace, label_selector=f"job-name={name}")
    except ApiException:
        return ""
    failed = [pod for pod in listed.get("items") or ()
              if (pod.get("status") or {}).get("phase") == "Failed"
              and any(ref.get("uid") == uid for ref in pod["metadata"].get("ownerReferences") or ())]
    failed.sort(key=lambda pod: pod["metadata"].get("creationTimestamp", ""), reverse=True)
    return next((message for message in map(termination_message, failed) if message), "")


async def _owned_job(batch: kubernetes.client.BatchV1Api, namespace: str, name: str,
                     owner: intents.Owner) -> intents.Result | None:
    """Succeeded when the Job exists and is ours, JobNameTaken when it is someone else's, None when absent."""
    try:
        job = await retries.call_json(batch.read_namespaced_job, name, namespace)
    except ApiException as e:
        if e.status == 404:
            return None
        return _failed(e, f"job/{name}")
    owners = [ref.get("uid") for ref in job["metadata"].get("ownerReferences") or ()]
    if owner.uid in owners:
        return intents.done()
    return intents.failed("JobNameTaken",
                          f"job/{name} already exists and does not belong to {owner.kind.lower()}/{owner.name}")


async def _missing_secrets(api: kubernetes.client.ApiClient, namespace: str, needed: dict[str, set[str]]) -> str:
    """The first thing missing ("secret/x" or "key k of secret/x"), or an empty string."""
    core = kubernetes.client.CoreV1Api(api)
    for name, keys in sorted(needed.items()):
        try:
            secret = await retries.call_json(core.read_namespaced_secret, name, namespace)
        except ApiException as e:
            if e.status == 404:
                return f"secret/{name}"
            if e.status == 403:
                continue  # Not allowed to look: let the pod find out.
            raise TransientApiError(f"reading secret/{name}: API error {e.status} {e.reason}") from e
        present = set(secret.get("data") or {}) | set(secret.get("stringData") or {})
        for key in sorted(keys - present):
            return f"key {key} of secret/{name}"
    return ""


def _failed(error: ApiException, subject: str) -> intents.Result:
    if error.status is not None and (error.status >= 500 or error.status == 429):
        raise TransientApiError(f"{subject}: API error {error.status} {error.reason}") from error
    if error.status == 403:
        return intents.failed("Forbidden", f"not allowed to create {subject}")
    try:
        detail = str(json.loads(error.body or "{}").get("message") or error.reason)
    except ValueError:
        detail = str(error.reason)
    return intents.failed("Invalid", f"the API server refused {subject}: {detail}")
