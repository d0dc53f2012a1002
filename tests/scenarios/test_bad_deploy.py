"""The runbook's "rollback deployment" end to end, from examples/bad-deploy/ and examples/bad-migration/.

checkout's revision 3 (the example's image, 1.2) serves 500s. Its health endpoint is a local server
that answers 500 while the Deployment runs that image and 200 otherwise, so the Incident's
httpCheck, pointed at it, verifies what the rollback did.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import aiohttp.web
import httpx
import pytest
from tests.local_servers import serving

from remediator import manifests
from remediator.sandbox import runner

from .support import (
    CHECKOUT_EARLIER,
    MADE_UP_IMAGES,
    ORDERS_EARLIER,
    apply_example,
    current,
    deploy_history,
    example_object,
    image_of,
    step_of,
    wait_for,
)

API = "remediator.dev/v1alpha1"
CHECKOUT = example_object("bad-deploy/deployment.yaml", "Deployment")


@pytest.fixture()
async def health_url(sandbox: runner.RunningSandbox) -> AsyncIterator[str]:
    deployments = sandbox.store.resource_type("apps", "v1", "deployments")

    async def health(request: aiohttp.web.Request) -> aiohttp.web.Response:
        found = sandbox.store.find(deployments, "default", "checkout")
        bad = found is not None and image_of(found) == image_of(CHECKOUT)
        return aiohttp.web.Response(status=500 if bad else 200, text="error" if bad else "ok")

    app = aiohttp.web.Application()
    app.router.add_get("/api/health", health)
    async with serving(app) as url:
        yield f"{url}/api/health"


def bad_deploy_incident(health_url: str) -> dict[str, Any]:
    """examples/bad-deploy/incident.yaml as a user applies it, adapted to the test in one place."""
    incident = example_object("bad-deploy/incident.yaml", "Incident")
    # The test's health endpoint instead of the Service's, probed every second instead of every 10s.
    step_of(incident, "verify")["httpCheck"].update(url=health_url, interval="1s")
    return incident


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
    await deploy_history(client, "bad-deploy/deployment.yaml", *CHECKOUT_EARLIER)
    revision_2_template = None
    replica_sets = sandbox.store.resource_type("apps", "v1", "replicasets")
    for replica_set in sandbox.store.list(replica_sets, "default"):
        if replica_set["metadata"]["annotations"]["deployment.kubernetes.io/revision"] == "2":
            revision_2_template = replica_set["spec"]["template"]["spec"]
    await start_operator()
    await client.apply(bad_deploy_incident(health_url))

    # (e) A rollback is destructive: it waits until a person approves it.
    await wait_for(lambda: phase_is(client, "checkout-500", "AwaitingApproval"))
    assert image_of(await current(client, CHECKOUT)) == image_of(CHECKOUT)
    await approve(sandbox, "checkout-500", "rollback")

    await wait_for(lambda: phase_is(client, "checkout-500", "Resolved"), timeout=40)

    rolled_back = await current(client, CHECKOUT)
    assert image_of(rolled_back) == CHECKOUT_EARLIER[1]
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


@MADE_UP_IMAGES
async def test_a_dry_run_of_the_bad_deploy_records_the_plan_and_changes_nothing(
        client: manifests.Client, start_operator: Any, health_url: str) -> None:
    await deploy_history(client, "bad-deploy/deployment.yaml", *CHECKOUT_EARLIER)
    before = await current(client, CHECKOUT)
    await start_operator()
    rehearsal = bad_deploy_incident(health_url)
    rehearsal["spec"]["dryRun"] = True  # what a user adds to the example to rehearse it
    await client.apply(rehearsal)

    await wait_for(lambda: phase_is(client, "checkout-500", "Planned"))

    status = await incident_status(client, "checkout-500")
    messages = [s["message"] for s in status["steps"]]
    assert messages == ["dry run: would roll back deployment/checkout to the previous revision",
                        "dry run: would wait for deployment/checkout to roll out",
                        f"dry run: would check GET {health_url} for 200"]
    after = await current(client, CHECKOUT)
    assert after["metadata"]["generation"] == before["metadata"]["generation"]
    assert image_of(after) == image_of(CHECKOUT)
    assert await client.get(API, "RollbackRequest", "default", "checkout-500-rollback") is None
    # The plan is in the timeline too, step by step.
    assert [e["reason"] for e in status["timeline"]] == ["Acknowledged", "DryRun", "DryRun", "DryRun", "DryRunComplete"]
    assert [e["message"] for e in status["timeline"] if e["reason"] == "DryRun"] == messages


async def test_a_failing_migration_rollback_leaves_the_app_stopped_and_escalates(
        sandbox: runner.RunningSandbox, client: manifests.Client, start_operator: Any) -> None:
    orders = await deploy_history(client, "bad-migration/deployment.yaml", *ORDERS_EARLIER)
    await apply_example(client, "bad-migration/database-secret.yaml")
    await start_operator()
    incident = example_object("bad-migration/incident.yaml", "Incident")
    step_of(incident, "undo")["rollback"]["migrationJob"]["args"] = ["fail"]  # the sandbox's switch: the Job exits 1
    await client.apply(incident)
    # A person approves what the operator has planned: an approval given before that counts for nothing.
    await wait_for(lambda: phase_is(client, "orders-bad-migration", "AwaitingApproval"))
    await approve(sandbox, "orders-bad-migration", "all")

    await wait_for(lambda: phase_is(client, "orders-bad-migration", "Failed"), timeout=40)

    status = await incident_status(client, "orders-bad-migration")
    conditions = {c["type"]: (c["status"], c["reason"]) for c in status["conditions"]}
    assert conditions["Escalated"] == ("True", "MigrationRollbackFailed")
    assert status["steps"][0]["state"] == "Failed"
    stopped = await current(client, orders)
    assert stopped["spec"]["replicas"] == 0, "the app stays stopped"
    assert image_of(stopped) == image_of(orders), "and is never pointed at a half-rolled-back schema"
