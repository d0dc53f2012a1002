"""Runbook scenarios with the operator process in the sandbox, most from examples/: restart, verify,
approve, lock, refuse bad input, notify, jobs."""

from __future__ import annotations

import asyncio
import base64
import pathlib
from collections.abc import Callable
from datetime import datetime
from typing import Any

import httpx
import pytest

from remediator import manifests
from remediator.sandbox import runner

from .conftest import FakeService
from .support import MADE_UP_IMAGES, apply_example, current, example, example_object, step_of, wait_for

REPO = pathlib.Path(__file__).resolve().parents[2]
API = "remediator.dev/v1alpha1"
WEB = {"kind": "Deployment", "name": "web"}


def incident(name: str, *steps: dict[str, Any], **spec: Any) -> dict[str, Any]:
    return {"apiVersion": API, "kind": "Incident", "metadata": {"name": name, "namespace": "default"},
            "spec": {"severity": "P2", "summary": f"{name} needs help", "steps": list(steps), **spec}}


async def status_of(client: manifests.Client, name: str) -> dict[str, Any]:
    return ((await client.get(API, "Incident", "default", name)) or {}).get("status") or {}


async def phase_is(client: manifests.Client, name: str, phase: str) -> bool:
    return (await status_of(client, name)).get("phase") == phase


async def deployment(client: manifests.Client) -> dict[str, Any]:
    found = await client.get("apps/v1", "Deployment", "default", "web")
    assert found is not None
    return found


async def annotate(sandbox: runner.RunningSandbox, name: str, annotations: dict[str, str]) -> None:
    async with httpx.AsyncClient(base_url=sandbox.url) as http:
        response = await http.patch(f"/apis/{API}/namespaces/default/incidents/{name}",
                                    json={"metadata": {"annotations": annotations}},
                                    headers={"Content-Type": "application/merge-patch+json"})
        response.raise_for_status()


@MADE_UP_IMAGES
async def test_stuck_pods_are_restarted_and_the_rollout_is_awaited_then_verified(
        client: manifests.Client, start_operator: Any, service: FakeService) -> None:
    """examples/stuck-pods/: the runbook's "restart service", "verify the fix", then "tell the channel"."""
    await apply_example(client, "stuck-pods/deployment.yaml")
    webhook = example_object("stuck-pods/chat-webhook.yaml", "Secret")
    webhook["stringData"]["url"] = f"{service.url}/hooks/incidents"  # the test's chat, not chat.example.com
    await client.apply(webhook)
    await start_operator()
    workers = example_object("stuck-pods/deployment.yaml", "Deployment")
    before = (await current(client, workers))["metadata"]["annotations"]["deployment.kubernetes.io/revision"]
    service.health_statuses = [503]
    incident = example_object("stuck-pods/incident.yaml", "Incident")
    # The test's health endpoint instead of the Service's, probed every second instead of every 10s.
    step_of(incident, "verify")["httpCheck"].update(url=f"{service.url}/healthz", interval="1s")
    await client.apply(incident)

    await wait_for(lambda: phase_is(client, "workers-stuck", "Resolved"), timeout=30)

    restarted = await current(client, workers)
    assert int(restarted["metadata"]["annotations"]["deployment.kubernetes.io/revision"]) == int(before) + 1
    assert "kubectl.kubernetes.io/restartedAt" in restarted["spec"]["template"]["metadata"]["annotations"]
    assert "remediator.dev/lock" not in restarted["metadata"]["annotations"], "the lock is released"
    status = await status_of(client, "workers-stuck")
    verify = next(s for s in status["steps"] if s["name"] == "verify")
    assert verify["result"]["probes"] == 3 and verify["result"]["consecutivePasses"] == 2
    assert {c["type"]: c["status"] for c in status["conditions"]}["Verified"] == "True"
    reasons = [(e.get("step"), e["reason"]) for e in status["timeline"]]
    assert reasons[:5] == [(None, "Acknowledged"), ("restart", "StepSucceeded"), ("rolled-out", "StepSucceeded"),
                           ("verify", "StepSucceeded"), ("tell", "StepSucceeded")]
    assert service.messages == [{"text": "[P2] default/workers-stuck: queue workers stopped consuming\n"
                                         "workers were restarted"}]


async def test_a_step_that_requires_approval_waits_until_the_incident_is_annotated(
        sandbox: runner.RunningSandbox, client: manifests.Client, start_operator: Any) -> None:
    """examples/approval/: storefront goes back from 5 to 2 replicas only once a person confirms."""
    storefront = example_object("approval/deployment.yaml", "Deployment")
    await apply_example(client, "approval/deployment.yaml")
    await start_operator()
    await apply_example(client, "approval/incident.yaml")
    await wait_for(lambda: phase_is(client, "storefront-scale-down", "AwaitingApproval"))
    assert (await current(client, storefront))["spec"]["replicas"] == 5

    await annotate(sandbox, "storefront-scale-down", {"remediator.dev/approve": "scale-down",
                                                      "remediator.dev/approved-by": "oncall@example.com"})
    await wait_for(lambda: phase_is(client, "storefront-scale-down", "Resolved"))

    assert (await current(client, storefront))["spec"]["replicas"] == 2
    messages = [e["message"] for e in (await status_of(client, "storefront-scale-down"))["timeline"]]
    assert "approved by oncall@example.com" in messages


async def test_a_second_incident_on_the_same_deployment_waits_for_the_first_to_finish(
        client: manifests.Client, start_operator: Any, service: FakeService, scenario_namespace: str) -> None:
    """examples/two-incidents/: cart-latency scales cart out and verifies; cart-memory-leak's restart waits."""
    cart = example_object("two-incidents/deployment.yaml", "Deployment")
    await apply_example(client, "two-incidents/deployment.yaml")
    await start_operator()
    service.health_statuses = [500] * 4
    first = example_object("two-incidents/first-incident.yaml", "Incident")
    # The test's health endpoint instead of the Service's, probed every second instead of every 10s.
    step_of(first, "verify")["httpCheck"].update(url=f"{service.url}/healthz", interval="1s")
    await client.apply(first)
    await wait_for(lambda: _step_state(client, "cart-latency", "verify", "Running"))
    await apply_example(client, "two-incidents/second-incident.yaml")

    async def second_waits_for_the_lock() -> bool:
        timeline = (await status_of(client, "cart-memory-leak")).get("timeline") or []
        lock = f"{scenario_namespace}/cart-latency"
        return any(e["reason"] == "TargetLocked" and lock in e["message"] for e in timeline)

    await wait_for(second_waits_for_the_lock)
    locked = await current(client, cart)
    assert locked["spec"]["replicas"] == 4
    assert "kubectl.kubernetes.io/restartedAt" not in (locked["spec"]["template"]["metadata"].get("annotations") or {})

    await wait_for(lambda: phase_is(client, "cart-latency", "Resolved"), timeout=30)
    await wait_for(lambda: phase_is(client, "cart-memory-leak", "Resolved"), timeout=30)
    restarted = await current(client, cart)
    assert "kubectl.kubernetes.io/restartedAt" in restarted["spec"]["template"]["metadata"]["annotations"]
    assert restarted["spec"]["replicas"] == 4
    first_resolved = datetime.fromisoformat((await status_of(client, "cart-latency"))["resolvedAt"])
    second_acted = next(datetime.fromisoformat(e["time"])
                        for e in (await status_of(client, "cart-memory-leak"))["timeline"]
                        if (e.get("step"), e["reason"]) == ("restart", "StepSucceeded"))
    assert second_acted >= first_resolved, "the restart came only after the first incident finished"


async def _step_state(client: manifests.Client, incident_name: str, step: str, state: str) -> bool:
    steps = (await status_of(client, incident_name)).get("steps") or []
    return any(s["name"] == step and s["state"] == state for s in steps)


async def test_a_notification_is_posted_to_the_webhook_held_in_a_secret(
        client: manifests.Client, start_operator: Any, service: FakeService, scenario_namespace: str) -> None:
    url = f"{service.url}/hooks/incidents"
    await client.apply({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "chat", "namespace": "default"},
                        "data": {"url": base64.b64encode(url.encode()).decode()}})
    operator = await start_operator()
    await client.apply(incident("page", {"name": "tell", "notify": {
        "webhookSecretRef": {"name": "chat", "key": "url"}, "message": "rolling back checkout"}}))
    await wait_for(lambda: phase_is(client, "page", "Resolved"))
    assert service.messages == [{"text": f"[P2] {scenario_namespace}/page: page needs help\nrolling back checkout"}]
    status = await status_of(client, "page")
    assert url not in str(status), "the webhook URL is a secret and never reaches the status"
    # The timeline's entries reach the log as they are posted as Events, just after the status write.
    await wait_for(lambda: asyncio.sleep(0, "notification sent" in operator.log))
    assert url not in operator.log, "nor the operator's log"


async def test_a_failed_notification_is_recorded_but_does_not_fail_the_incident(
        client: manifests.Client, start_operator: Any) -> None:
    await start_operator()
    await client.apply(incident("quiet", {"name": "tell", "notify": {
        "webhookSecretRef": {"name": "missing", "key": "url"}, "message": "hello"}}))
    await wait_for(lambda: phase_is(client, "quiet", "Resolved"))
    tell = (await status_of(client, "quiet"))["steps"][0]
    assert tell["state"] == "Failed" and "secret missing" in tell["message"]


@pytest.mark.parametrize(("path", "flags", "message"), [
    ("bad-input/missing-target.yaml", (), "deployment/inventory-api not found in namespace default"),
    ("bad-input/kind-not-allowed.yaml", ("--allow-kind", "Deployment"),
     "kind StatefulSet is not on the operator's kind allow-list"),
    ("bad-input/namespace-not-allowed.yaml", ("--allow-namespace", "payments"),
     "namespace default is not on the operator's namespace allow-list"),
])
async def test_bad_input_fails_the_step_with_a_clear_reason_and_changes_nothing_else(
        client: manifests.Client, start_operator: Any, path: str, flags: tuple[str, ...], message: str,
        scenario_namespace: str) -> None:
    """examples/bad-input/: a missing Deployment, a kind or a namespace outside the operator's allow-lists."""
    workloads = [d for d in example("bad-input/inventory.yaml") if d["kind"] in ("Deployment", "StatefulSet")]
    await apply_example(client, "bad-input/inventory.yaml")
    before = [await current(client, workload) for workload in workloads]
    await start_operator(*flags)
    name = example_object(path, "Incident")["metadata"]["name"]
    await apply_example(client, path)

    await wait_for(lambda: phase_is(client, name, "Failed"))

    [step] = (await status_of(client, name))["steps"]
    expected = message.replace("namespace default", f"namespace {scenario_namespace}")  # a real cluster's own
    assert (step["state"], step["message"]) == ("Failed", expected)
    for workload, was in zip(workloads, before, strict=True):
        now = await current(client, workload)
        assert (now["metadata"]["generation"], now["spec"]) == (was["metadata"]["generation"], was["spec"])
        assert "remediator.dev/lock" not in (now["metadata"].get("annotations") or {})


async def test_deleting_an_incident_in_the_middle_of_a_long_step_is_prompt_and_releases_the_lock(
        client: manifests.Client, start_operator: Any, service: FakeService, sandbox: runner.RunningSandbox) -> None:
    await client.apply_file(REPO / "examples" / "01-workload.yaml")
    await start_operator()
    service.health_statuses = [500] * 1000
    await client.apply(incident(
        "long", {"name": "scale-out", "scale": {"target": WEB, "replicas": 3}},
        {"name": "verify", "httpCheck": {"url": f"{service.url}/healthz", "interval": "1s"}}))
    await wait_for(lambda: _step_state(client, "long", "verify", "Running"))
    assert (await deployment(client))["metadata"]["annotations"]["remediator.dev/lock"] == "default/long"

    async with httpx.AsyncClient(base_url=sandbox.url) as http:
        await http.delete(f"/apis/{API}/namespaces/default/incidents/long")

    async def gone() -> bool:
        return await client.get(API, "Incident", "default", "long") is None

    await wait_for(gone, timeout=10)

    async def released() -> bool:
        return "remediator.dev/lock" not in ((await deployment(client))["metadata"].get("annotations") or {})

    await wait_for(released, timeout=5)


async def four_pods_under_a_budget_of_three(
        client: manifests.Client, sandbox: runner.RunningSandbox) -> Callable[[], list[dict[str, Any]]]:
    """web with 4 replicas and a PodDisruptionBudget of minAvailable 3; returns what lists its ready pods."""
    web = {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "web", "namespace": "default"},
           "spec": {"replicas": 4, "selector": {"matchLabels": {"app": "web"}},
                    "template": {"metadata": {"labels": {"app": "web"}},
                                 "spec": {"containers": [{"name": "web", "image": "web:1"}]}}}}
    await client.apply(web)
    await client.apply({"apiVersion": "policy/v1", "kind": "PodDisruptionBudget",
                        "metadata": {"name": "web", "namespace": "default"},
                        "spec": {"minAvailable": 3, "selector": {"matchLabels": {"app": "web"}}}})
    pods_type = sandbox.store.resource_type("", "v1", "pods")

    def ready_pods() -> list[dict[str, Any]]:
        def ready(pod: dict[str, Any]) -> bool:
            conditions = pod.get("status", {}).get("conditions", [])
            return any(c["type"] == "Ready" and c["status"] == "True" for c in conditions)

        return [p for p in sandbox.store.list(pods_type, "default")
                if not p["metadata"].get("deletionTimestamp") and ready(p)]

    return ready_pods


async def test_stuck_pods_are_deleted_a_few_at_a_time_through_the_eviction_api(
        client: manifests.Client, start_operator: Any, sandbox: runner.RunningSandbox) -> None:
    """restart mode deletePods: at most maxUnavailable pods down, evictions where a PDB covers the pods."""
    ready_pods = await four_pods_under_a_budget_of_three(client, sandbox)

    async def four_ready() -> bool:
        return len(ready_pods()) == 4

    await wait_for(four_ready)
    original = {p["metadata"]["uid"] for p in ready_pods()}
    fewest_ready = [4]
    sandbox.store.listeners.append(lambda resource, event: fewest_ready.append(len(ready_pods()))
                                   if resource.kind == "Pod" else None)
    await start_operator()
    await client.apply(incident("stuck-pods", {"name": "restart", "restart": {
        "target": WEB, "mode": "deletePods", "selector": {"matchLabels": {"app": "web"}}, "maxUnavailable": 1}}))

    await wait_for(lambda: phase_is(client, "stuck-pods", "Resolved"), timeout=30)

    now_ready = {p["metadata"]["uid"] for p in ready_pods()}
    assert len(now_ready) == 4 and not (now_ready & original), "every pod was replaced"
    assert min(fewest_ready) >= 3, "never more than maxUnavailable (and the PDB's allowance) down at once"
    step = (await status_of(client, "stuck-pods"))["steps"][0]
    assert step["message"] == "restarted 4 pod(s) of deployment/web"


async def test_a_pdb_holds_a_restart_that_may_delete_every_pod_to_one_eviction_at_a_time(
        client: manifests.Client, start_operator: Any, sandbox: runner.RunningSandbox) -> None:
    """PDB holds: restart mode deletePods with maxUnavailable 4 of 4, under a PDB that allows 1
    disruption (minAvailable 3). The Eviction API answers 429 while the budget is used up, the step
    waits and retries; the ready count, sampled on every pod write, never drops below 3.

    https://kubernetes.io/docs/concepts/workloads/pods/disruptions/#pod-disruption-budgets
    """
    ready_pods = await four_pods_under_a_budget_of_three(client, sandbox)

    async def four_ready() -> bool:
        return len(ready_pods()) == 4

    await wait_for(four_ready)
    original = {p["metadata"]["uid"] for p in ready_pods()}
    samples = [4]  # the ready count after every pod write
    sandbox.store.listeners.append(lambda resource, event: samples.append(len(ready_pods()))
                                   if resource.kind == "Pod" else None)
    await start_operator("--approval-severities", "none")
    await client.apply(incident("stuck-pods", {"name": "restart", "restart": {
        "target": WEB, "mode": "deletePods", "selector": {"matchLabels": {"app": "web"}}, "maxUnavailable": 4}}))

    await wait_for(lambda: phase_is(client, "stuck-pods", "Resolved"), timeout=60)

    assert not ({p["metadata"]["uid"] for p in ready_pods()} & original), "every pod was replaced"
    # The step alone would take all 4 down at once; the budget's 429s keep 3 ready throughout.
    assert min(samples) >= 3, "never below the PDB's minAvailable"


def job_step(name: str, *args: str, **template: Any) -> dict[str, Any]:
    return {"name": name, "job": {"template": {"image": "postgres:16", "command": ["sh", "-c"], "args": list(args),
                                               "env": [{"name": "PGPASSWORD", "valueFrom": {"secretKeyRef": {
                                                   "name": "shop-db", "key": "password"}}}], **template}}}


async def test_a_backup_job_runs_to_completion_before_the_next_step(
        sandbox: runner.RunningSandbox, client: manifests.Client, start_operator: Any) -> None:
    """The runbooks' "create a backup of the current state" before a risky step, as a Job owned by the Incident."""
    await client.apply_file(REPO / "examples" / "01-workload.yaml")
    await client.apply({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "shop-db", "namespace": "default"},
                        "stringData": {"password": "hunter2-not-logged"}})
    await start_operator("--approval-severities", "none")
    await client.apply(incident("backup-first", job_step("backup", "pg_dump -h db shop > /backup/shop.sql"),
                                {"name": "scale-in", "scale": {"target": WEB, "replicas": 1}}))

    await wait_for(lambda: phase_is(client, "backup-first", "Resolved"), timeout=30)

    job = await client.get("batch/v1", "Job", "default", "backup-first-backup")
    assert job is not None and job["metadata"]["ownerReferences"][0]["kind"] == "Incident"
    assert [c["type"] for c in job["status"]["conditions"] if c["status"] == "True"][-1] == "Complete"
    status = await status_of(client, "backup-first")
    assert [s["state"] for s in status["steps"]] == ["Succeeded", "Succeeded"]
    assert "hunter2-not-logged" not in str(status)


@MADE_UP_IMAGES
async def test_a_failed_job_fails_the_step_with_the_pods_termination_message(
        client: manifests.Client, start_operator: Any) -> None:
    await client.apply({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "shop-db", "namespace": "default"},
                        "stringData": {"password": "x"}})
    await start_operator("--approval-severities", "none")
    await client.apply(incident("restore", job_step("restore", "pg_restore --fail", backoffLimit=0)))
    await wait_for(lambda: phase_is(client, "restore", "Failed"), timeout=30)
    step = (await status_of(client, "restore"))["steps"][0]
    assert step["state"] == "Failed"
    assert step["message"].startswith("job/restore-restore failed (BackoffLimitExceeded): ")
