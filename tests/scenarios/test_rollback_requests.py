"""RollbackRequests end to end in the sandbox, with the real operator process.

The runbook: a bad deploy is rolled back to the previous (or a named) revision; a bad migration
(examples/bad-migration/) is rolled back with the application stopped first, and a failed
migration Job leaves it stopped.
"""

from __future__ import annotations

from typing import Any

import httpx

from remediator import manifests
from remediator.actions import jobs
from remediator.api.jobs import JobTemplate
from remediator.engine import intents
from remediator.sandbox import runner

from .support import (
    IMAGES,
    MADE_UP_IMAGES,
    ORDERS_EARLIER,
    apply_example,
    current,
    deploy_history,
    deploy_three_revisions,
    deployment,
    events_of,
    example_object,
    image_of,
    migration_job,
    wait_for,
    web,
)

API = "remediator.dev/v1alpha1"


def rollback_request(name: str, **spec: Any) -> dict[str, Any]:
    return {"apiVersion": API, "kind": "RollbackRequest", "metadata": {"name": name, "namespace": "default"},
            "spec": {"target": {"kind": "Deployment", "name": "web"}, **spec}}


async def status_of(client: manifests.Client, name: str) -> dict[str, Any]:
    found = await client.get(API, "RollbackRequest", "default", name)
    return dict((found or {}).get("status") or {})


async def phase_is(client: manifests.Client, name: str, *phases: str) -> bool:
    return (await status_of(client, name)).get("phase") in phases


def conditions(status: dict[str, Any]) -> dict[str, tuple[str, str]]:
    return {c["type"]: (c["status"], c["reason"]) for c in status.get("conditions", [])}


async def test_a_bad_deploy_is_rolled_back_to_the_previous_revision(
        sandbox: runner.RunningSandbox, client: manifests.Client, start_operator: Any) -> None:
    await deploy_three_revisions(client)
    await start_operator()

    await client.apply(rollback_request("undo-bad-deploy"))
    await wait_for(lambda: phase_is(client, "undo-bad-deploy", "Complete"))

    rolled_back = await web(client)
    assert image_of(rolled_back) == "shop:1.1"
    assert "pod-template-hash" not in rolled_back["spec"]["template"]["metadata"]["labels"]
    assert rolled_back["spec"]["replicas"] == 3
    status = await status_of(client, "undo-bad-deploy")
    assert (status["fromRevision"], status["toRevision"]) == (3, 2)
    assert conditions(status) == {
        "Accepted": ("True", "Accepted"),
        "RolledBack": ("True", "TemplateRestored"),
        "RolloutComplete": ("True", "RolloutComplete"),
        "Ready": ("True", "RolledBack"),
    }
    assert [e["reason"] for e in status["timeline"]] == ["Accepted", "RolledBack", "RollbackComplete"]
    assert status["timeline"][1]["message"] == "rolled back deployment/web from revision 3 to 2"
    # Kubernetes made revision 2's ReplicaSet current again, as revision 4: no new ReplicaSet.
    assert rolled_back["metadata"]["annotations"]["deployment.kubernetes.io/revision"] == "4"
    timeline_reasons = sorted(e["reason"] for e in status["timeline"])

    async def events_mirror_the_timeline() -> bool:
        return sorted(e["reason"] for e in await events_of(sandbox, "undo-bad-deploy")) == timeline_reasons

    await wait_for(events_mirror_the_timeline, timeout=5)


@MADE_UP_IMAGES
async def test_a_deploy_is_rolled_back_to_a_named_revision(client: manifests.Client, start_operator: Any) -> None:
    await deploy_three_revisions(client)
    await start_operator()

    await client.apply(rollback_request("back-to-one", toRevision=1))
    await wait_for(lambda: phase_is(client, "back-to-one", "Complete"))

    assert image_of(await web(client)) == "shop:1.0"
    status = await status_of(client, "back-to-one")
    assert (status["fromRevision"], status["toRevision"]) == (3, 1)


@MADE_UP_IMAGES
async def test_a_rollback_to_a_revision_that_does_not_exist_is_refused_and_changes_nothing(
        client: manifests.Client, start_operator: Any) -> None:
    await deploy_three_revisions(client)
    await start_operator()
    before = await web(client)

    await client.apply(rollback_request("no-such-revision", toRevision=7))
    await wait_for(lambda: phase_is(client, "no-such-revision", "Refused"))

    status = await status_of(client, "no-such-revision")
    accepted = next(c for c in status["conditions"] if c["type"] == "Accepted")
    assert (accepted["status"], accepted["reason"]) == ("False", "RevisionNotFound")
    assert accepted["message"] == "deployment/web has no revision 7 (revisions: 1, 2, 3)"
    assert conditions(status)["Ready"] == ("False", "RevisionNotFound")
    after = await web(client)
    assert after["metadata"]["generation"] == before["metadata"]["generation"]
    assert image_of(after) == "shop:1.2"


async def test_a_rollback_of_a_missing_deployment_is_refused(client: manifests.Client, start_operator: Any) -> None:
    await start_operator()
    await client.apply(rollback_request("ghost"))
    await wait_for(lambda: phase_is(client, "ghost", "Refused"))
    assert conditions(await status_of(client, "ghost"))["Accepted"] == ("False", "TargetNotFound")


async def test_a_bad_migration_is_rolled_back_with_the_app_stopped(
        sandbox: runner.RunningSandbox, client: manifests.Client, start_operator: Any) -> None:
    """examples/bad-migration/rollbackrequest.yaml, after orders' bad 1.4 deploy."""
    orders = await deploy_history(client, "bad-migration/deployment.yaml", *ORDERS_EARLIER)
    await apply_example(client, "bad-migration/database-secret.yaml")
    await start_operator()

    await apply_example(client, "bad-migration/rollbackrequest.yaml")
    await wait_for(lambda: phase_is(client, "orders-migration", "Complete", "Failed"), timeout=30)

    status = await status_of(client, "orders-migration")
    assert status["phase"] == "Complete", status
    rolled_back = await current(client, orders)
    assert image_of(rolled_back) == ORDERS_EARLIER[1]
    assert rolled_back["spec"]["replicas"] == 3
    assert (rolled_back["status"]["availableReplicas"], rolled_back["status"]["updatedReplicas"]) == (3, 3)
    assert status["originalReplicas"] == 3
    assert status["migrationJobName"] == "orders-migration-migration"
    assert conditions(status)["MigrationRolledBack"] == ("True", "MigrationSucceeded")
    assert conditions(status)["ApplicationStopped"] == ("False", "ReplicasRestored")
    # In the runbook's order: stop, migrate back, roll back, restore, then the rollout.
    assert [(e["reason"], e.get("step")) for e in status["timeline"]] == [
        ("Accepted", None),
        ("ApplicationStopped", "stop-application"),
        ("MigrationJobCreated", "migration"),
        ("MigrationRolledBack", "migration"),
        ("RolledBack", "roll-back"),
        ("ReplicasRestored", "restore-replicas"),
        ("RollbackComplete", "rollout"),
    ]
    job = await client.get("batch/v1", "Job", "default", "orders-migration-migration")
    assert job is not None
    owner = job["metadata"]["ownerReferences"][0]
    assert (owner["kind"], owner["name"], owner["controller"]) == ("RollbackRequest", "orders-migration", True)
    assert (job["spec"]["backoffLimit"], job["spec"]["activeDeadlineSeconds"]) == (0, 600)
    container = job["spec"]["template"]["spec"]["containers"][0]
    assert (container["image"], container["command"]) == ("registry.example.com/orders-migrate:1.4",
                                                          ["alembic", "downgrade", "-1"])
    assert container["env"] == [{"name": "DATABASE_URL",
                                 "valueFrom": {"secretKeyRef": {"name": "orders-db", "key": "uri"}}}]
    # The app was at zero replicas while the Job ran: the Job started after the scale-down.
    scaled = [e for e in await events_of(sandbox, "orders") if e["reason"] == "ScalingReplicaSet"]
    assert any("to 0" in e["message"] for e in scaled)


@MADE_UP_IMAGES
async def test_a_failing_migration_job_leaves_the_app_stopped(client: manifests.Client, start_operator: Any) -> None:
    orders = await deploy_history(client, "bad-migration/deployment.yaml", *ORDERS_EARLIER)
    await apply_example(client, "bad-migration/database-secret.yaml")
    await start_operator()

    request = example_object("bad-migration/rollbackrequest.yaml", "RollbackRequest")
    request["spec"]["migrationJob"]["args"] = ["fail"]  # the sandbox's switch: the Job exits 1
    await client.apply(request)
    await wait_for(lambda: phase_is(client, "orders-migration", "Failed", "Complete"), timeout=30)

    status = await status_of(client, "orders-migration")
    assert status["phase"] == "Failed"
    ready = next(c for c in status["conditions"] if c["type"] == "Ready")
    assert (ready["status"], ready["reason"]) == ("False", "MigrationRollbackFailed")
    assert ready["message"].startswith("job/orders-migration-migration failed (BackoffLimitExceeded): exit status 1")
    assert "stays stopped at 0 replicas" in ready["message"]
    assert "RolledBack" not in conditions(status)
    assert status["timeline"][-1]["type"] == "Warning"
    stopped = await current(client, orders)
    assert stopped["spec"]["replicas"] == 0
    assert image_of(stopped) == image_of(orders), "never rolled back after a failed migration"


@MADE_UP_IMAGES
async def test_operator_dry_run_records_the_rollback_plan_and_changes_nothing(
        client: manifests.Client, start_operator: Any) -> None:
    await deploy_three_revisions(client)
    await start_operator("--dry-run")

    await client.apply(rollback_request("rehearsal"))
    await wait_for(lambda: phase_is(client, "rehearsal", "Planned"))

    status = await status_of(client, "rehearsal")
    ready = next(c for c in status["conditions"] if c["type"] == "Ready")
    assert ready["message"] == "dry run: would roll back deployment/web from revision 3 to 2; nothing was changed"
    assert image_of(await web(client)) == "shop:1.2"


@MADE_UP_IMAGES
async def test_an_operator_that_died_after_creating_the_migration_job_finds_it_instead_of_starting_another(
        api: httpx.AsyncClient, client: manifests.Client, start_operator: Any) -> None:
    """The crash: web scaled to 0 and the Job created, but the status still says "creating the Job"."""
    await deploy_three_revisions(client)
    await client.apply({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "shop-db", "namespace": "default"},
                        "stringData": {"uri": "postgresql://shop@db/shop"}})
    spec = {"stopApplication": True, "migrationJob": migration_job("db", "rollback")}
    await client.apply(rollback_request("crashed", **spec))
    uid = (await client.get(API, "RollbackRequest", "default", "crashed") or {})["metadata"]["uid"]
    await client.apply({**deployment(IMAGES[-1]), "spec": {"replicas": 0}})
    owner = intents.Owner(API, "RollbackRequest", "crashed", uid)
    await client.apply(jobs.job_manifest("crashed-migration", "default", JobTemplate.model_validate(
        spec["migrationJob"]), owner, container="migration"))
    job_uid = (await client.get("batch/v1", "Job", "default", "crashed-migration") or {})["metadata"]["uid"]
    replica_sets = (await api.get("/apis/apps/v1/namespaces/default/replicasets")).json()["items"]
    revision_2 = next(rs for rs in replica_sets
                      if rs["metadata"]["annotations"]["deployment.kubernetes.io/revision"] == "2")
    at = "2026-11-22T03:00:00Z"

    def condition(kind: str, status: str, reason: str) -> dict[str, Any]:
        return {"type": kind, "status": status, "reason": reason, "message": "", "lastTransitionTime": at,
                "observedGeneration": 1}

    written = await api.patch(
        "/apis/remediator.dev/v1alpha1/namespaces/default/rollbackrequests/crashed/status",
        headers={"Content-Type": "application/merge-patch+json"},
        json={"status": {
            "phase": "RollingBack", "observedGeneration": 1, "fromRevision": 3, "toRevision": 2,
            "toTemplateHash": revision_2["metadata"]["labels"]["pod-template-hash"], "originalReplicas": 3,
            "migrationJobName": "crashed-migration",
            "conditions": [condition("Accepted", "True", "Accepted"),
                           condition("ApplicationStopped", "True", "ScaledToZero"),
                           condition("MigrationRolledBack", "False", "CreatingJob"),
                           condition("Ready", "False", "RollingBack")],
            "timeline": [{"time": at, "type": "Normal", "reason": "Accepted"},
                         {"time": at, "type": "Normal", "reason": "ApplicationStopped"}]}})
    assert written.status_code == 200, written.text

    await start_operator()
    await wait_for(lambda: phase_is(client, "crashed", "Complete", "Failed"), timeout=30)

    status = await status_of(client, "crashed")
    assert status["phase"] == "Complete", status
    listed = (await api.get("/apis/batch/v1/namespaces/default/jobs")).json()["items"]
    assert [(j["metadata"]["name"], j["metadata"]["uid"]) for j in listed] == [("crashed-migration", job_uid)]
    rolled_back = await web(client)
    assert (image_of(rolled_back), rolled_back["spec"]["replicas"]) == ("shop:1.1", 3)
    assert [e["reason"] for e in status["timeline"]].count("ApplicationStopped") == 1
