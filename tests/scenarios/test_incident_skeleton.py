"""The operator end to end in the sandbox: an Incident's scale step (from examples/), invalid specs, dry run."""

from __future__ import annotations

import pathlib
from typing import Any

import httpx
import pytest

from remediator import manifests
from remediator.sandbox import runner

from .support import apply_example, current, events_of, example_object, wait_for

REPO = pathlib.Path(__file__).resolve().parents[2]
INCIDENT_API = "remediator.dev/v1alpha1"


def incident(name: str, steps: list[dict[str, Any]], **spec: Any) -> dict[str, Any]:
    return {"apiVersion": INCIDENT_API, "kind": "Incident", "metadata": {"name": name, "namespace": "default"},
            "spec": {"severity": "P1", "summary": "web is slow", "steps": steps, **spec}}


def scale_step(name: str = "scale-out", **change: Any) -> dict[str, Any]:
    return {"name": name, "scale": {"target": {"kind": "Deployment", "name": "web"}, **change}}


async def replicas(client: manifests.Client) -> int:
    deployment = await client.get("apps/v1", "Deployment", "default", "web")
    assert deployment is not None
    return int(deployment["spec"]["replicas"])


async def phase_of(client: manifests.Client, name: str) -> str | None:
    obj = await client.get(INCIDENT_API, "Incident", "default", name)
    return ((obj or {}).get("status") or {}).get("phase")


async def test_the_capacity_example_doubles_the_deployment_and_resolves_with_a_timeline(
        sandbox: runner.RunningSandbox, client: manifests.Client, start_operator: Any) -> None:
    """examples/: web has 2 replicas; the incident scales by factor 2 (cap 5) → 4, then Resolved."""
    operator = await start_operator()
    for path in sorted((REPO / "examples").glob("*.yaml")):
        await client.apply_file(path)

    await wait_for(lambda: _phase_is(client, "web-capacity", "Resolved"))

    assert await replicas(client) == 4
    status = (await client.get(INCIDENT_API, "Incident", "default", "web-capacity") or {})["status"]
    conditions = {c["type"]: (c["status"], c["reason"]) for c in status["conditions"]}
    assert conditions["Ready"] == ("True", "Resolved")
    assert conditions["Acknowledged"][0] == conditions["Mitigated"][0] == conditions["Resolved"][0] == "True"
    assert [e["reason"] for e in status["timeline"]] == ["Acknowledged", "StepSucceeded", "Resolved"]
    assert status["timeline"][1]["message"] == "scaled deployment/web from 2 to 4"
    assert status["steps"] == [{**status["steps"][0], "name": "scale-out", "state": "Succeeded", "attempts": 1}]
    assert status["steps"][0]["result"]["from"] == 2 and status["steps"][0]["result"]["to"] == 4
    for stamp in ("detectedAt", "acknowledgedAt", "mitigatedAt", "resolvedAt"):
        assert stamp in status
    # Every timeline entry is mirrored as an Event on the Incident (posted right after the status write).
    timeline_reasons = sorted(e["reason"] for e in status["timeline"])

    async def events_mirror_the_timeline() -> bool:
        return sorted(e["reason"] for e in await events_of(sandbox, "web-capacity")) == timeline_reasons

    await wait_for(events_mirror_the_timeline, timeout=5)
    # ... and the operator's log tells the same story, one line per entry.
    assert "incident default/web-capacity: [scale-out] scaled deployment/web from 2 to 4" in operator.log
    assert operator.log.count("incident default/web-capacity: ") == 3


async def _phase_is(client: manifests.Client, name: str, phase: str) -> bool:
    return await phase_of(client, name) == phase


async def test_a_scale_by_a_factor_is_clamped_at_max_replicas(client: manifests.Client, start_operator: Any) -> None:
    """examples/capacity/: search has 3 replicas; doubling asks for 6, maxReplicas 5 stops it at 5."""
    search = example_object("capacity/deployment.yaml", "Deployment")
    await apply_example(client, "capacity/deployment.yaml")
    await start_operator()
    await apply_example(client, "capacity/incident.yaml")
    await wait_for(lambda: _phase_is(client, "search-capacity", "Resolved"))
    assert (await current(client, search))["spec"]["replicas"] == 5
    step = (await client.get(INCIDENT_API, "Incident", "default", "search-capacity") or {})["status"]["steps"][0]
    assert step["result"] == {"from": 3, "to": 5, "requested": 6, "limitedBy": "maxReplicas",
                              "target": {"kind": "Deployment", "name": "search"}, "claimed": False}


async def test_an_incident_that_breaks_a_model_rule_is_marked_invalid_and_nothing_acts(
        client: manifests.Client, start_operator: Any) -> None:
    """minReplicas > maxReplicas passes the CRD schema, but the model refuses it: Ready=False InvalidSpec."""
    await client.apply_file(REPO / "examples" / "01-workload.yaml")
    await start_operator()
    await client.apply(incident("contradiction", [scale_step(by=1, minReplicas=5, maxReplicas=3)]))

    await wait_for(lambda: _phase_is(client, "contradiction", "Invalid"))

    status = (await client.get(INCIDENT_API, "Incident", "default", "contradiction") or {})["status"]
    ready = next(c for c in status["conditions"] if c["type"] == "Ready")
    assert (ready["status"], ready["reason"]) == ("False", "InvalidSpec")
    assert "spec.steps[0].scale.minReplicas" in ready["message"]
    assert await replicas(client) == 2
    assert not any(s.get("state") == "Running" for s in status.get("steps", []))


@pytest.mark.parametrize(("step", "field"), [
    ({"name": "two-kinds", "scale": {"target": {"kind": "Deployment", "name": "web"}, "replicas": 3},
      "restart": {"target": {"kind": "Deployment", "name": "web"}}}, "spec.steps[0]"),
    (scale_step(replicas=-1), "spec.steps[0].scale.replicas"),
])
async def test_the_api_refuses_an_invalid_incident_with_422_and_the_field_path(
        client: manifests.Client, step: dict[str, Any], field: str) -> None:
    with pytest.raises(httpx.HTTPStatusError) as refused:
        await client.apply(incident("refused", [step]))
    assert refused.value.response.status_code == 422
    assert field in refused.value.response.json()["message"]
    assert await client.get(INCIDENT_API, "Incident", "default", "refused") is None


async def test_operator_dry_run_records_the_plan_and_changes_nothing(
        client: manifests.Client, start_operator: Any) -> None:
    await client.apply_file(REPO / "examples" / "01-workload.yaml")
    await start_operator("--dry-run")
    await client.apply(incident("rehearsal", [scale_step(factor=3)]))

    await wait_for(lambda: _phase_is(client, "rehearsal", "Planned"))

    status = (await client.get(INCIDENT_API, "Incident", "default", "rehearsal") or {})["status"]
    assert status["steps"][0]["state"] == "Skipped"
    assert status["steps"][0]["message"] == "dry run: would scale deployment/web from 2 to 6"
    assert await replicas(client) == 2


async def test_a_relative_scale_runs_once_per_change_even_when_the_operator_restarts(
        client: manifests.Client, start_operator: Any) -> None:
    """`by: 1` applied twice would show: the step runs once, and a restart does not repeat it."""
    await client.apply_file(REPO / "examples" / "01-workload.yaml")
    first = await start_operator("--cooldown", "0s")
    await client.apply(incident("plus-one", [scale_step(by=1)]))
    await wait_for(lambda: _phase_is(client, "plus-one", "Resolved"))
    assert await replicas(client) == 3
    resolved = await client.get(INCIDENT_API, "Incident", "default", "plus-one")

    first.process.terminate()
    await first.process.wait()
    await start_operator("--cooldown", "0s")
    await client.apply(incident("plus-two", [scale_step(by=2)]))
    await wait_for(lambda: _phase_is(client, "plus-two", "Resolved"))

    assert await replicas(client) == 5
    again = await client.get(INCIDENT_API, "Incident", "default", "plus-one")
    assert resolved is not None and again is not None
    assert again["metadata"]["resourceVersion"] == resolved["metadata"]["resourceVersion"], \
        "the restarted operator left the resolved incident alone"
