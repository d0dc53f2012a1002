"""The runbook's "rollback deployment" end to end: a bad revision 3 that serves 500s is rolled back.

The app's health endpoint is a local server that answers 500 while the Deployment runs revision 3's
image (shop:1.2) and 200 otherwise, so the Incident's httpCheck verifies what the rollback did.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import aiohttp.web
import httpx
import pytest

from remediator import manifests
from remediator.sandbox import runner

from .support import IMAGES, deploy_three_revisions, image_of, migration_job, wait_for, web

API = "remediator.dev/v1alpha1"
WEB = {"kind": "Deployment", "name": "web"}


@pytest.fixture()
async def health_url(sandbox: runner.RunningSandbox) -> AsyncIterator[str]:
    deployments = sandbox.store.resource_type("apps", "v1", "deployments")

    async def health(request: aiohttp.web.Request) -> aiohttp.web.Response:
        found = sandbox.store.find(deployments, "default", "web")
        bad = found is not None and image_of(found) == IMAGES[-1]
        return aiohttp.web.Response(status=500 if bad else 200, text="error" if bad else "ok")

    app = aiohttp.web.Application()
    app.router.add_get("/healthz", health)
    app_runner = aiohttp.web.AppRunner(app)
    await app_runner.setup()
    site = aiohttp.web.TCPSite(app_runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    yield f"http://127.0.0.1:{port}/healthz"
    await app_runner.cleanup()


def bad_deploy_incident(name: str, health: str, **spec: Any) -> dict[str, Any]:
    return {"apiVersion": API, "kind": "Incident", "metadata": {"name": name, "namespace": "default"},
            "spec": {"severity": "P1", "summary": "checkout answers 500 since the 1.2 deploy", **spec, "steps": [
                {"name": "rollback", "rollback": {"target": WEB}},
                {"name": "rolled-out", "waitForRollout": {"target": WEB}},
                {"name": "verify", "httpCheck": {"url": health, "successThreshold": 2, "interval": "1s"}}]}}


async def incident_status(client: manifests.Client, name: str) -> dict[str, Any]:
    return ((await client.get(API, "Incident", "default", name)) or {}).get("status") or {}


async def phase_is(client: manifests.Client, name: str, phase: str) -> bool:
    return (await incident_status(client, name)).get("phase") == phase


async def approve(sandbox: runner.RunningSandbox, name: str, steps: str) -> None:
    async with httpx.AsyncClient(base_url=sandbox.url) as http:
        response = await http.patch(f"/apis/{API}/namespaces/default/incidents/{name}",
                                    json={"metadata": {"annotations": {"remediator.dev/approve": steps,
                                                                       "remediator.dev/approved-by": "sre-on-call"}}},
                                    headers={"Content-Type": "application/merge-patch+json"})
        response.raise_for_status()


async def test_a_bad_deploy_is_rolled_back_after_approval_and_verified(
        sandbox: runner.RunningSandbox, client: manifests.Client, start_operator: Any, health_url: str) -> None:
    await deploy_three_revisions(client)
    revision_2_template = None
    replica_sets = sandbox.store.resource_type("apps", "v1", "replicasets")
    for replica_set in sandbox.store.list(replica_sets, "default"):
        if replica_set["metadata"]["annotations"]["deployment.kubernetes.io/revision"] == "2":
            revision_2_template = replica_set["spec"]["template"]["spec"]
    await start_operator()
    await client.apply(bad_deploy_incident("checkout-500", health_url))

    # (e) A rollback is destructive: it waits until a person approves it.
    await wait_for(lambda: phase_is(client, "checkout-500", "AwaitingApproval"))
    assert image_of(await web(client)) == IMAGES[-1]
    await approve(sandbox, "checkout-500", "rollback")

    await wait_for(lambda: phase_is(client, "checkout-500", "Resolved"), timeout=40)

    rolled_back = await web(client)
    assert image_of(rolled_back) == IMAGES[1]
    assert rolled_back["spec"]["template"]["spec"] == revision_2_template
    assert "pod-template-hash" not in rolled_back["spec"]["template"]["metadata"]["labels"]
    status = await incident_status(client, "checkout-500")
    steps = {s["name"]: s for s in status["steps"]}
    assert [steps[n]["state"] for n in ("rollback", "rolled-out", "verify")] == ["Succeeded"] * 3
    assert (steps["rollback"]["result"]["fromRevision"], steps["rollback"]["result"]["toRevision"]) == (3, 2)
    assert steps["rollback"]["approvedBy"] == "sre-on-call"
    timeline = [(e.get("step"), e["reason"]) for e in status["timeline"]]
    assert timeline == [(None, "Acknowledged"), ("rollback", "AwaitingApproval"), ("rollback", "Approved"),
                        ("rollback", "StepSucceeded"), ("rolled-out", "StepSucceeded"), ("verify", "StepSucceeded"),
                        (None, "Resolved")]
    assert all(entry["time"] for entry in status["timeline"])
    request = await client.get(API, "RollbackRequest", "default", "checkout-500-rollback")
    assert request is not None and request["metadata"]["ownerReferences"][0]["name"] == "checkout-500"


async def test_a_dry_run_of_the_bad_deploy_records_the_plan_and_changes_nothing(
        client: manifests.Client, start_operator: Any, health_url: str) -> None:
    await deploy_three_revisions(client)
    before = await web(client)
    await start_operator()
    await client.apply(bad_deploy_incident("rehearsal", health_url, dryRun=True))

    await wait_for(lambda: phase_is(client, "rehearsal", "Planned"))

    status = await incident_status(client, "rehearsal")
    messages = [s["message"] for s in status["steps"]]
    assert messages == ["dry run: would roll back deployment/web to the previous revision",
                        "dry run: would wait for deployment/web to roll out",
                        f"dry run: would check GET {health_url} for 200"]
    after = await web(client)
    assert after["metadata"]["generation"] == before["metadata"]["generation"] and image_of(after) == IMAGES[-1]
    assert await client.get(API, "RollbackRequest", "default", "rehearsal-rollback") is None


async def test_a_failing_migration_rollback_leaves_the_app_stopped_and_escalates(
        sandbox: runner.RunningSandbox, client: manifests.Client, start_operator: Any) -> None:
    await deploy_three_revisions(client)
    await client.apply({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "shop-db", "namespace": "default"},
                        "stringData": {"uri": "postgresql://shop@db/shop"}})
    await start_operator()
    undo = {"target": WEB, "stopApplication": True, "migrationJob": migration_job("db", "rollback", "--fail")}
    await client.apply({"apiVersion": API, "kind": "Incident",
                        "metadata": {"name": "bad-migration", "namespace": "default"},
                        "spec": {"severity": "P0", "summary": "orders table migration broke checkout",
                                 "steps": [{"name": "undo", "rollback": undo}]}})
    await approve(sandbox, "bad-migration", "all")

    await wait_for(lambda: phase_is(client, "bad-migration", "Failed"), timeout=40)

    status = await incident_status(client, "bad-migration")
    conditions = {c["type"]: (c["status"], c["reason"]) for c in status["conditions"]}
    assert conditions["Escalated"] == ("True", "MigrationRollbackFailed")
    assert status["steps"][0]["state"] == "Failed"
    stopped = await web(client)
    assert stopped["spec"]["replicas"] == 0, "the app stays stopped"
    assert image_of(stopped) == IMAGES[-1], "and is never pointed at a half-rolled-back schema"
