"""Runbook scenarios with the operator process in the sandbox: restart, verify, approve, lock, notify."""

from __future__ import annotations

import base64
import pathlib
from collections.abc import AsyncIterator
from typing import Any

import aiohttp.web
import httpx
import pytest

from remediator import manifests
from remediator.sandbox import runner

from .support import wait_for

REPO = pathlib.Path(__file__).resolve().parents[2]
API = "remediator.dev/v1alpha1"
WEB = {"kind": "Deployment", "name": "web"}


class FakeService:
    """A local HTTP server standing in for the app's health endpoint and a chat webhook."""

    def __init__(self) -> None:
        self.health_statuses: list[int] = []
        self.messages: list[dict[str, Any]] = []
        self.url = ""

    async def health(self, request: aiohttp.web.Request) -> aiohttp.web.Response:
        status = self.health_statuses.pop(0) if self.health_statuses else 200
        return aiohttp.web.Response(status=status, text="ok" if status == 200 else "broken")

    async def webhook(self, request: aiohttp.web.Request) -> aiohttp.web.Response:
        self.messages.append(await request.json())
        return aiohttp.web.Response(text="ok")


@pytest.fixture()
async def service() -> AsyncIterator[FakeService]:
    fake = FakeService()
    app = aiohttp.web.Application()
    app.router.add_get("/healthz", fake.health)
    app.router.add_post("/hooks/incidents", fake.webhook)
    app_runner = aiohttp.web.AppRunner(app)
    await app_runner.setup()
    site = aiohttp.web.TCPSite(app_runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    fake.url = f"http://127.0.0.1:{port}"
    yield fake
    await app_runner.cleanup()


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


async def test_stuck_pods_are_restarted_and_the_rollout_is_awaited_then_verified(
        client: manifests.Client, start_operator: Any, service: FakeService) -> None:
    """The runbook's "restart service" then "verify the fix": rollout restart, rollout status, health check."""
    await client.apply_file(REPO / "examples" / "01-workload.yaml")
    await start_operator()
    before = (await deployment(client))["metadata"]["annotations"]["deployment.kubernetes.io/revision"]
    service.health_statuses = [503]
    await client.apply(incident(
        "stuck", {"name": "restart", "restart": {"target": WEB}},
        {"name": "rolled-out", "waitForRollout": {"target": WEB}},
        {"name": "verify", "httpCheck": {"url": f"{service.url}/healthz", "successThreshold": 2, "interval": "1s"}}))

    await wait_for(lambda: phase_is(client, "stuck", "Resolved"), timeout=30)

    web = await deployment(client)
    assert int(web["metadata"]["annotations"]["deployment.kubernetes.io/revision"]) == int(before) + 1
    assert "kubectl.kubernetes.io/restartedAt" in web["spec"]["template"]["metadata"]["annotations"]
    assert "remediator.dev/lock" not in web["metadata"]["annotations"], "the lock is released"
    status = await status_of(client, "stuck")
    verify = next(s for s in status["steps"] if s["name"] == "verify")
    assert verify["result"]["probes"] == 3 and verify["result"]["consecutivePasses"] == 2
    assert {c["type"]: c["status"] for c in status["conditions"]}["Verified"] == "True"
    reasons = [(e.get("step"), e["reason"]) for e in status["timeline"]]
    assert reasons[:4] == [(None, "Acknowledged"), ("restart", "StepSucceeded"), ("rolled-out", "StepSucceeded"),
                           ("verify", "StepSucceeded")]


async def test_a_step_that_requires_approval_waits_until_the_incident_is_annotated(
        sandbox: runner.RunningSandbox, client: manifests.Client, start_operator: Any) -> None:
    await client.apply_file(REPO / "examples" / "01-workload.yaml")
    await start_operator()
    await client.apply(incident("careful", {"name": "scale-down", "requiresApproval": True,
                                            "scale": {"target": WEB, "replicas": 1}}))
    await wait_for(lambda: phase_is(client, "careful", "AwaitingApproval"))
    assert (await deployment(client))["spec"]["replicas"] == 2

    await annotate(sandbox, "careful", {"remediator.dev/approve": "scale-down",
                                        "remediator.dev/approved-by": "oncall@example.com"})
    await wait_for(lambda: phase_is(client, "careful", "Resolved"))

    assert (await deployment(client))["spec"]["replicas"] == 1
    messages = [e["message"] for e in (await status_of(client, "careful"))["timeline"]]
    assert "approved by oncall@example.com" in messages


async def test_a_second_incident_on_the_same_deployment_waits_for_the_first_to_finish(
        client: manifests.Client, start_operator: Any, service: FakeService) -> None:
    await client.apply_file(REPO / "examples" / "01-workload.yaml")
    await start_operator("--cooldown", "0s")
    service.health_statuses = [500] * 4
    await client.apply(incident(
        "first", {"name": "scale-out", "scale": {"target": WEB, "replicas": 4}},
        {"name": "verify", "httpCheck": {"url": f"{service.url}/healthz", "interval": "1s"}}))
    await wait_for(lambda: _step_state(client, "first", "verify", "Running"))
    await client.apply(incident("second", {"name": "scale-in", "scale": {"target": WEB, "replicas": 3}}))

    async def second_waits_for_the_lock() -> bool:
        timeline = (await status_of(client, "second")).get("timeline") or []
        return any(e["reason"] == "TargetLocked" and "default/first" in e["message"] for e in timeline)

    await wait_for(second_waits_for_the_lock)
    assert (await deployment(client))["spec"]["replicas"] == 4

    await wait_for(lambda: phase_is(client, "first", "Resolved"), timeout=30)
    await wait_for(lambda: phase_is(client, "second", "Resolved"), timeout=30)
    assert (await deployment(client))["spec"]["replicas"] == 3


async def _step_state(client: manifests.Client, incident_name: str, step: str, state: str) -> bool:
    steps = (await status_of(client, incident_name)).get("steps") or []
    return any(s["name"] == step and s["state"] == state for s in steps)


async def test_a_notification_is_posted_to_the_webhook_held_in_a_secret(
        client: manifests.Client, start_operator: Any, service: FakeService) -> None:
    url = f"{service.url}/hooks/incidents"
    await client.apply({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "chat", "namespace": "default"},
                        "data": {"url": base64.b64encode(url.encode()).decode()}})
    await start_operator()
    await client.apply(incident("page", {"name": "tell", "notify": {
        "webhookSecretRef": {"name": "chat", "key": "url"}, "message": "rolling back checkout"}}))
    await wait_for(lambda: phase_is(client, "page", "Resolved"))
    assert service.messages == [{"text": "[P2] default/page: page needs help\nrolling back checkout"}]
    status = await status_of(client, "page")
    assert url not in str(status), "the webhook URL is a secret and never reaches the status"


async def test_a_failed_notification_is_recorded_but_does_not_fail_the_incident(
        client: manifests.Client, start_operator: Any) -> None:
    await start_operator()
    await client.apply(incident("quiet", {"name": "tell", "notify": {
        "webhookSecretRef": {"name": "missing", "key": "url"}, "message": "hello"}}))
    await wait_for(lambda: phase_is(client, "quiet", "Resolved"))
    tell = (await status_of(client, "quiet"))["steps"][0]
    assert tell["state"] == "Failed" and "secret missing" in tell["message"]


@pytest.mark.parametrize(("flags", "target", "message"), [
    (("--allow-kind", "Deployment"), {"kind": "StatefulSet", "name": "db"},
     "kind StatefulSet is not on the operator's kind allow-list"),
    (("--allow-namespace", "payments"), WEB, "namespace default is not on the operator's namespace allow-list"),
])
async def test_targets_outside_the_allow_lists_fail_the_step_and_change_nothing(
        client: manifests.Client, start_operator: Any, flags: tuple[str, ...], target: dict[str, str],
        message: str) -> None:
    await client.apply_file(REPO / "examples" / "01-workload.yaml")
    await start_operator(*flags)
    await client.apply(incident("outside", {"name": "up", "scale": {"target": target, "replicas": 5}}))
    await wait_for(lambda: phase_is(client, "outside", "Failed"))
    step = (await status_of(client, "outside"))["steps"][0]
    assert (step["state"], step["message"]) == ("Failed", message)
    web = await deployment(client)
    assert web["spec"]["replicas"] == 2 and "remediator.dev/lock" not in (web["metadata"].get("annotations") or {})


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


async def test_stuck_pods_are_deleted_a_few_at_a_time_through_the_eviction_api(
        client: manifests.Client, start_operator: Any, sandbox: runner.RunningSandbox) -> None:
    """restart mode deletePods: at most maxUnavailable pods down, evictions where a PDB covers the pods."""
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
