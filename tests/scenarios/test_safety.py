"""What a hostile user found (issue: safety first), tried again with the operator process in the sandbox.

Each test applies what a person (or an attacker with the right to create Incidents) could type, and
checks the cluster afterwards: what changed, what did not, and what the timeline says.
"""

from __future__ import annotations

import base64
import datetime
import pathlib
from typing import Any

import httpx
import pytest

from remediator import manifests
from remediator.sandbox import runner

from .conftest import FakeService
from .support import wait_for

REPO = pathlib.Path(__file__).resolve().parents[2]
API = "remediator.dev/v1alpha1"
WEB = {"kind": "Deployment", "name": "web"}


def incident(name: str, *steps: dict[str, Any], annotations: dict[str, str] | None = None,
             **spec: Any) -> dict[str, Any]:
    metadata: dict[str, Any] = {"name": name, "namespace": "default"}
    if annotations:
        metadata["annotations"] = annotations
    return {"apiVersion": API, "kind": "Incident", "metadata": metadata,
            "spec": {"severity": spec.pop("severity", "P2"), "summary": f"{name} needs help", "steps": list(steps),
                     **spec}}


async def status_of(client: manifests.Client, name: str) -> dict[str, Any]:
    return dict(((await client.get(API, "Incident", "default", name)) or {}).get("status") or {})


async def step_of(client: manifests.Client, name: str, step: str) -> dict[str, Any]:
    steps = (await status_of(client, name)).get("steps") or []
    return next((s for s in steps if s["name"] == step), {})


async def phase_is(client: manifests.Client, name: str, *phases: str) -> bool:
    return (await status_of(client, name)).get("phase") in phases


async def web(client: manifests.Client) -> dict[str, Any]:
    found = await client.get("apps/v1", "Deployment", "default", "web")
    assert found is not None
    return found


async def test_a_scale_slower_than_its_timeout_with_retries_adds_one_replica(
        client: manifests.Client, start_operator: Any) -> None:
    """by: 1, timeout: 1ms, retries: 5 took a Deployment from 2 to 8 and said "timed out"."""
    await client.apply_file(REPO / "examples" / "01-workload.yaml")
    before = (await web(client))["spec"]["replicas"]
    await start_operator("--cooldown", "0s")
    await client.apply(incident("slow", {"name": "up", "timeout": "1ms", "retries": 5, "retryBackoff": "1s",
                                         "scale": {"target": WEB, "by": 1}}))
    await wait_for(lambda: phase_is(client, "slow", "Resolved", "Failed"), timeout=60)
    assert (await web(client))["spec"]["replicas"] == before + 1
    up = await step_of(client, "slow", "up")
    assert up["result"]["to"] == before + 1
    assert up["state"] == "Succeeded" or "nothing was changed" not in up["message"]


@pytest.mark.parametrize("change", [{"by": -100}, {"factor": 0.5, "maxReplicas": 0}], ids=["by", "factor"])
async def test_a_scale_to_zero_however_spelled_waits_for_approval(
        client: manifests.Client, start_operator: Any, change: dict[str, Any]) -> None:
    await client.apply_file(REPO / "examples" / "01-workload.yaml")
    before = (await web(client))["spec"]["replicas"]
    await start_operator()
    await client.apply(incident("stop", {"name": "down", "scale": {"target": WEB, **change}}, severity="P0"))
    await wait_for(lambda: phase_is(client, "stop", "AwaitingApproval"))
    assert f"scale deployment/web from {before} to 0" in (await step_of(client, "stop", "down"))["message"]
    assert (await web(client))["spec"]["replicas"] == before


async def test_an_incident_created_already_approved_waits_for_a_real_approval(
        client: manifests.Client, start_operator: Any) -> None:
    """approve: all and approved-by: the-cto at creation ran a P0 replicas: 0 at once."""
    await client.apply_file(REPO / "examples" / "01-workload.yaml")
    before = (await web(client))["spec"]["replicas"]
    await start_operator()
    await client.apply(incident("forged", {"name": "down", "scale": {"target": WEB, "replicas": 0}}, severity="P0",
                                annotations={"remediator.dev/approve": "all",
                                             "remediator.dev/approved-by": "the-cto"}))
    await wait_for(lambda: phase_is(client, "forged", "AwaitingApproval"))
    status = await status_of(client, "forged")
    assert "ApprovalIgnored" in [e["reason"] for e in status["timeline"]] and "the-cto" not in str(status)
    assert (await web(client))["spec"]["replicas"] == before


async def test_a_job_and_a_database_kill_wait_for_approval_under_the_default_policy(
        client: manifests.Client, start_operator: Any, sandbox: runner.RunningSandbox) -> None:
    await start_operator()
    database = {"connectionSecretRef": {"name": "orders-db", "key": "uri"}}
    await client.apply(incident("risky",
                                {"name": "backup", "job": {"template": {"image": "postgres:16",
                                                                        "command": ["pg_dump"]}}},
                                {"name": "kill", "database": {**database, "terminateLongRunning": {
                                    "olderThan": "1m"}}}))
    await wait_for(lambda: phase_is(client, "risky", "AwaitingApproval"))
    assert (await step_of(client, "risky", "backup"))["state"] == "AwaitingApproval"
    assert await client.get("batch/v1", "Job", "default", "risky-backup") is None
    await client.apply(incident("risky-db", {"name": "kill", "database": {**database, "terminateLongRunning": {
        "olderThan": "1m"}}}))
    await wait_for(lambda: phase_is(client, "risky-db", "AwaitingApproval"))
    assert "destructive" in (await step_of(client, "risky-db", "kill"))["message"]


async def test_the_namespace_allow_list_holds_for_every_step_kind(
        client: manifests.Client, start_operator: Any, service: FakeService, scenario_namespace: str) -> None:
    """With --allow-namespace other, an Incident in default created a Job and sent notify and httpCheck requests."""
    await client.apply({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "chat", "namespace": "default"},
                        "data": {"url": base64.b64encode(f"{service.url}/hooks/incidents".encode()).decode()}})
    await start_operator("--allow-namespace", "other", "--approval-severities", "none")
    steps = [
        {"name": "backup", "onFailure": "continue", "job": {"template": {"image": "postgres:16"}}},
        {"name": "tell", "onFailure": "continue", "notify": {"webhookSecretRef": {"name": "chat", "key": "url"},
                                                             "message": "hi", "failOnError": True}},
        {"name": "verify", "onFailure": "continue", "httpCheck": {"url": f"{service.url}/healthz"}},
        {"name": "idle", "onFailure": "continue", "database": {
            "connectionSecretRef": {"name": "orders-db", "key": "uri"}, "terminateIdle": {"idleFor": "1m"}}},
    ]
    await client.apply(incident("elsewhere", *steps))
    await wait_for(lambda: phase_is(client, "elsewhere", "Failed"))
    for step in ("backup", "tell", "verify", "idle"):
        state = await step_of(client, "elsewhere", step)
        assert (state["state"], state["message"]) == (
            "Failed", f"namespace {scenario_namespace} is not on the operator's namespace allow-list"), step
    assert await client.get("batch/v1", "Job", "default", "elsewhere-backup") is None
    assert service.requests == [], "no request left the operator"


async def test_http_steps_reach_only_allowed_hosts_and_never_a_metadata_address(
        client: manifests.Client, start_operator: Any, service: FakeService) -> None:
    await client.apply({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "chat", "namespace": "default"},
                        "data": {"url": base64.b64encode(f"{service.url}/hooks/incidents".encode()).decode()}})
    await start_operator("--allow-http-host", "*.example.com")
    await client.apply(incident("egress",
                                {"name": "verify", "onFailure": "continue",
                                 "httpCheck": {"url": f"{service.url}/healthz"}},
                                {"name": "metadata", "onFailure": "continue",
                                 "httpCheck": {"url": "http://169.254.169.254/latest/meta-data/"}},
                                {"name": "tell", "onFailure": "continue", "notify": {
                                    "webhookSecretRef": {"name": "chat", "key": "url"}, "message": "hi",
                                    "failOnError": True}}))
    await wait_for(lambda: phase_is(client, "egress", "Failed"))
    verify = await step_of(client, "egress", "verify")
    assert verify["state"] == "Failed" and "host 127.0.0.1 is not on the operator's egress allow-list" in verify[
        "message"]
    assert (await step_of(client, "egress", "metadata"))["state"] == "Failed"
    tell = await step_of(client, "egress", "tell")
    assert tell["state"] == "Failed" and "egress allow-list" in tell["message"] and service.url not in tell["message"]
    assert service.requests == []


async def test_jobs_run_only_allowed_images_and_service_accounts_with_a_restricted_security_context(
        client: manifests.Client, start_operator: Any) -> None:
    await start_operator("--approval-severities", "none", "--allow-job-image", "ghcr.io/acme/*")
    await client.apply(incident("jobs",
                                {"name": "foreign", "onFailure": "continue",
                                 "job": {"template": {"image": "docker.io/evil/miner:latest"}}},
                                {"name": "as-admin", "onFailure": "continue",
                                 "job": {"template": {"image": "ghcr.io/acme/migrate:1", "serviceAccountName":
                                                      "cluster-admin-sa"}}},
                                {"name": "root", "onFailure": "continue",
                                 "job": {"template": {"image": "ghcr.io/acme/migrate:1", "unrestricted": True}}},
                                {"name": "migrate", "job": {"template": {"image": "ghcr.io/acme/migrate:1"}}}))
    await wait_for(lambda: phase_is(client, "jobs", "Failed"), timeout=30)
    reasons = {}
    for step in ("foreign", "as-admin", "root"):
        state = await step_of(client, "jobs", step)
        assert state["state"] == "Failed"
        assert await client.get("batch/v1", "Job", "default", f"jobs-{step}") is None
        reasons[step] = next(e["reason"] for e in (await status_of(client, "jobs"))["timeline"]
                             if e.get("step") == step)
    assert reasons == {"foreign": "ImageNotAllowed", "as-admin": "ServiceAccountNotAllowed",
                       "root": "UnrestrictedJobNotAllowed"}
    assert (await step_of(client, "jobs", "migrate"))["state"] == "Succeeded"
    job = await client.get("batch/v1", "Job", "default", "jobs-migrate")
    assert job is not None
    pod = job["spec"]["template"]["spec"]
    assert pod["securityContext"] == {"runAsNonRoot": True, "seccompProfile": {"type": "RuntimeDefault"}}
    assert pod["containers"][0]["securityContext"]["allowPrivilegeEscalation"] is False
    assert pod["containers"][0]["securityContext"]["capabilities"] == {"drop": ["ALL"]}


async def test_a_runbook_ref_runs_the_runbooks_steps_and_a_missing_one_acts_on_nothing(
        client: manifests.Client, start_operator: Any) -> None:
    """runbookRef was ignored: steps: [] with a runbookRef resolved without acting, even to a missing Runbook."""
    await client.apply_file(REPO / "examples" / "01-workload.yaml")
    before = (await web(client))["spec"]["replicas"]
    await start_operator("--cooldown", "0s")
    await client.apply(incident("no-runbook", runbookRef={"name": "nowhere"}))
    await client.apply({"apiVersion": API, "kind": "Runbook", "metadata": {"name": "scale-web", "namespace": "default"},
                        "spec": {"steps": [{"name": "scale-out", "scale": {"target": WEB, "by": 1}}]}})
    await client.apply(incident("with-runbook", runbookRef={"name": "scale-web"}))
    await wait_for(lambda: phase_is(client, "with-runbook", "Resolved"))
    assert (await web(client))["spec"]["replicas"] == before + 1
    ready = next(c for c in (await status_of(client, "no-runbook"))["conditions"] if c["type"] == "Ready")
    assert (ready["status"], ready["reason"]) == ("False", "RunbookNotFound")


async def test_the_rate_limit_holds_an_alert_storm_to_n_actions_per_window(
        client: manifests.Client, start_operator: Any) -> None:
    """30 Incidents at once with --rate-limit 10/4s: at most 10 workload actions in any 4 s; the rest wait."""
    for n in range(30):
        await client.apply({"apiVersion": "apps/v1", "kind": "Deployment",
                            "metadata": {"name": f"web-{n:02d}", "namespace": "default"},
                            "spec": {"replicas": 1, "selector": {"matchLabels": {"app": f"web-{n:02d}"}},
                                     "template": {"metadata": {"labels": {"app": f"web-{n:02d}"}},
                                                  "spec": {"containers": [{"name": "web", "image": "shop:1.0"}]}}}})
    # All 30 exist when the operator starts, so the storm is at once however slowly a loaded machine creates it.
    for n in range(30):
        await client.apply(incident(f"storm-{n:02d}", {"name": "up", "scale": {
            "target": {"kind": "Deployment", "name": f"web-{n:02d}"}, "by": 1}}))
    await start_operator("--rate-limit", "10/4s")
    for n in range(30):
        await wait_for(lambda n=n: phase_is(client, f"storm-{n:02d}", "Resolved"), timeout=60)
        assert (await client.get("apps/v1", "Deployment", "default", f"web-{n:02d}") or {})["spec"]["replicas"] == 2
    # Each scale's intent is recorded (attemptStartedAt) just before the scale is sent.
    acted = sorted([datetime.datetime.fromisoformat((await step_of(client, f"storm-{n:02d}", "up"))[
        "attemptStartedAt"].replace("Z", "+00:00")) for n in range(30)])
    # Actions come in bursts a window apart. (A slot is taken at the claim, and under load the recorded time
    # may come a moment later: bursts, not exact windows, are what can be measured from the outside.)
    bursts: list[list[datetime.datetime]] = [[acted[0]]]
    for moment in acted[1:]:
        if moment - bursts[-1][-1] > datetime.timedelta(seconds=1.5):
            bursts.append([])
        bursts[-1].append(moment)
    assert all(len(burst) <= 10 for burst in bursts), [[str(t - acted[0]) for t in burst] for burst in bursts]
    assert len(bursts) >= 3 and acted[-1] - acted[0] >= datetime.timedelta(seconds=8), \
        "30 actions at 10 per 4 s take at least two more windows"
    limited = [n for n in range(30) if "RateLimited" in [
        e["reason"] for e in (await status_of(client, f"storm-{n:02d}"))["timeline"]]]
    assert len(limited) >= 20, "the others waited, saying why"


async def test_the_api_server_refuses_a_change_of_the_steps_or_runbook_ref_of_an_incident(
        client: manifests.Client) -> None:
    """Editing the steps mid-run was accepted; the CRD's transition rule refuses it (CEL, evaluated by the
    sandbox as kube-apiserver does), and the same manifest applied again (GitOps) still passes."""
    original = incident("frozen", {"name": "up", "scale": {"target": WEB, "by": 1}})
    await client.apply(original)
    await client.apply(original)  # a re-apply of the same steps is no change
    for change in ({"steps": [{"name": "up", "scale": {"target": WEB, "by": 50}}]},
                   {"runbookRef": {"name": "other"}},
                   {"steps": []},
                   {"dryRun": True}):
        edited = {**original, "spec": {**original["spec"], **change}}
        with pytest.raises(httpx.HTTPStatusError) as refused:
            await client.apply(edited)
        assert refused.value.response.status_code == 422
        assert "steps, runbookRef and dryRun cannot change once the Incident exists" in refused.value.response.text
    stored = await client.get(API, "Incident", "default", "frozen")
    assert stored is not None and [s["scale"] for s in stored["spec"]["steps"]] == [{"target": WEB, "by": 1}]


async def test_an_incident_of_more_than_50_steps_is_refused_by_the_api_server(client: manifests.Client) -> None:
    """A 500-step Incident made a 322 KB object and 502 Events; the CRD now allows at most 50 steps."""
    steps = [{"name": f"s{n:03d}", "scale": {"target": WEB, "by": 1}} for n in range(500)]
    with pytest.raises(httpx.HTTPStatusError) as refused:
        await client.apply(incident("huge", *steps))
    assert refused.value.response.status_code == 422 and "spec.steps" in refused.value.response.text
    assert await client.get(API, "Incident", "default", "huge") is None
    await client.apply(incident("largest", *steps[:50]))
