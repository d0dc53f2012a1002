"""Crash safety: the operator killed (SIGKILL) at any step boundary resumes without repeating an effect.

The runbook: scale web out by 2, then restart it. Whatever moment the operator dies at, a fresh
operator finishes the incident with web scaled by exactly 2 and restarted exactly once.
"""

from __future__ import annotations

import asyncio
import pathlib
from typing import Any

import pytest

from remediator import manifests

from .support import deploy_three_revisions, image_of, wait_for

pytestmark = pytest.mark.sandbox_only("crash points in the operator (REMEDIATOR_CRASH_AT, faults.crash_point)")

REPO = pathlib.Path(__file__).resolve().parents[2]
API = "remediator.dev/v1alpha1"
WEB = {"kind": "Deployment", "name": "web"}
REVISION = "deployment.kubernetes.io/revision"

# "point@n": the n-th time the point is reached. The incident acts 5 times: claim web, scale, claim web
# (the restart's cooldown), restart, release. It writes its status 3 times: before the scale and before
# the restart (their intents), and at the end; claims and releases need no status write before them.
INCIDENT_CRASH_POINTS = [
    *(f"{point}@{n}" for point in ("before-status-write", "after-status-write") for n in range(1, 4)),
    *(f"{point}@{n}" for point in ("before-action", "after-action") for n in range(1, 6)),
]


def crash_env(point: str, tmp_path: pathlib.Path) -> dict[str, str]:
    return {"REMEDIATOR_CRASH_AT": point, "REMEDIATOR_CRASH_ONCE": str(tmp_path / "crashed")}


async def killed_at_the_crash_point(operator: Any, tmp_path: pathlib.Path) -> None:
    async with asyncio.timeout(20):
        returncode = await operator.process.wait()
    assert returncode == -9, f"the operator exited with {returncode}:\n{operator.log}"
    assert (tmp_path / "crashed").exists()


async def web(client: manifests.Client) -> dict[str, Any]:
    found = await client.get("apps/v1", "Deployment", "default", "web")
    assert found is not None
    return found


async def incident_status(client: manifests.Client, name: str) -> dict[str, Any]:
    return dict(((await client.get(API, "Incident", "default", name)) or {}).get("status") or {})


async def rollback_status(client: manifests.Client, name: str) -> dict[str, Any]:
    return dict(((await client.get(API, "RollbackRequest", "default", name)) or {}).get("status") or {})


async def resolved(client: manifests.Client, name: str) -> bool:
    return (await incident_status(client, name)).get("phase") == "Resolved"


async def rollback_complete(client: manifests.Client, name: str) -> bool:
    return (await rollback_status(client, name)).get("phase") == "Complete"


@pytest.mark.parametrize("point", INCIDENT_CRASH_POINTS)
async def test_a_crash_at_any_step_boundary_neither_repeats_nor_loses_a_step(
        client: manifests.Client, start_operator: Any, tmp_path: pathlib.Path, point: str) -> None:
    await client.apply_file(REPO / "examples" / "01-workload.yaml")
    before = await web(client)
    crashing = await start_operator("--cooldown", "0s", env=crash_env(point, tmp_path))
    await client.apply({"apiVersion": API, "kind": "Incident", "metadata": {"name": "busy", "namespace": "default"},
                        "spec": {"severity": "P2", "summary": "web is overloaded", "steps": [
                            {"name": "scale-out", "scale": {"target": WEB, "by": 2}},
                            {"name": "restart", "restart": {"target": WEB}}]}})

    await killed_at_the_crash_point(crashing, tmp_path)
    await start_operator("--cooldown", "0s")
    await wait_for(lambda: resolved(client, "busy"), timeout=30)

    after = await web(client)
    assert after["spec"]["replicas"] == before["spec"]["replicas"] + 2
    assert int(after["metadata"]["annotations"][REVISION]) == int(before["metadata"]["annotations"][REVISION]) + 1
    assert "remediator.dev/lock" not in after["metadata"]["annotations"], "the lock is released"
    timeline = (await incident_status(client, "busy"))["timeline"]
    succeeded = [e["step"] for e in timeline if e["reason"] == "StepSucceeded"]
    assert succeeded == ["scale-out", "restart"], timeline


@pytest.mark.parametrize("point", ["rollback-after-status-write", "rollback-before-action", "rollback-after-action"])
async def test_a_crash_around_the_rollback_rolls_back_once(
        client: manifests.Client, start_operator: Any, tmp_path: pathlib.Path, point: str) -> None:
    """Rolling back from 3 to 2 makes revision 2 current as revision 4; a second rollback would make 5."""
    await deploy_three_revisions(client)
    crashing = await start_operator(env=crash_env(point, tmp_path))
    await client.apply({"apiVersion": API, "kind": "RollbackRequest",
                        "metadata": {"name": "undo-bad-deploy", "namespace": "default"},
                        "spec": {"target": {"kind": "Deployment", "name": "web"}}})

    await killed_at_the_crash_point(crashing, tmp_path)
    await start_operator()
    await wait_for(lambda: rollback_complete(client, "undo-bad-deploy"), timeout=30)

    rolled_back = await web(client)
    assert image_of(rolled_back) == "shop:1.1"
    assert rolled_back["metadata"]["annotations"][REVISION] == "4"
    status = await rollback_status(client, "undo-bad-deploy")
    assert (status["fromRevision"], status["toRevision"]) == (3, 2)
    assert [e["reason"] for e in status["timeline"]].count("RolledBack") == 1
