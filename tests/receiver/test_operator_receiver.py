"""`remediator run --receiver-address`: an alert reaches the operator's receiver, its Incident restarts the
Deployment the alert names, and the resolve reaches the Incident."""

from __future__ import annotations

import asyncio
import datetime
import pathlib
from typing import Any

import httpx
import pytest
from tests.local_servers import free_port
from tests.scenarios.support import EXAMPLES, wait_for

from remediator import cli, manifests
from remediator.sandbox import runner

from .alerts import alert, notification, runbook_manifest

INCIDENTS = "/apis/remediator.dev/v1alpha1/namespaces/default/incidents"


async def incidents(sandbox: runner.RunningSandbox) -> list[dict[str, Any]]:
    async with httpx.AsyncClient(base_url=sandbox.url) as http:
        items: list[dict[str, Any]] = (await http.get(INCIDENTS)).json()["items"]
        return items



async def start_with_receiver(start_operator: Any, tmp_path: pathlib.Path, *flags: str,
                              env: dict[str, str] | None = None) -> str:
    """Start the operator serving the receiver; returns its URL."""
    token = tmp_path / "receiver-token"
    token.write_text("t0ken\n")
    port = free_port()
    await start_operator("--receiver-address", f"127.0.0.1:{port}", "--receiver-token-file", str(token), *flags,
                         env=env)
    return f"http://127.0.0.1:{port}/alertmanager"


async def test_an_alert_to_the_operator_restarts_the_deployment_and_its_resolve_is_recorded(
        client: manifests.Client, sandbox: runner.RunningSandbox, start_operator: Any,
        tmp_path: pathlib.Path) -> None:
    await client.apply_file(EXAMPLES / "01-workload.yaml")
    await client.apply(runbook_manifest())
    url = await start_with_receiver(start_operator, tmp_path)
    async with httpx.AsyncClient(timeout=30, headers={"Authorization": "Bearer t0ken"}) as http:
        assert (await http.post(url, json=notification(alert()))).status_code == 200

        async def resolved() -> dict[str, Any] | None:
            done = [i for i in await incidents(sandbox) if (i.get("status") or {}).get("phase") == "Resolved"]
            return done[0] if done else None

        incident = await wait_for(resolved, timeout=30)
        assert isinstance(incident, dict)
        assert [s["state"] for s in incident["status"]["steps"]] == ["Succeeded"]
        assert (await http.post(url, json=notification(alert(status="resolved")))).status_code == 200

    [incident] = await incidents(sandbox)
    assert [c["status"] for c in incident["status"]["conditions"] if c["type"] == "AlertResolved"] == ["True"]
    assert [a["status"] for a in incident["status"]["alerts"]] == ["resolved"]


async def test_a_step_awaiting_approval_is_skipped_when_the_alert_resolves(
        client: manifests.Client, sandbox: runner.RunningSandbox, start_operator: Any,
        tmp_path: pathlib.Path) -> None:
    """onResolve keepRunning (the default): nobody approved the restart before the alert resolved, so it
    never runs, and the Incident resolves saying so."""
    await client.apply_file(EXAMPLES / "01-workload.yaml")
    await client.apply(runbook_manifest(defaults={"requiresApproval": True}))
    url = await start_with_receiver(start_operator, tmp_path)
    async with httpx.AsyncClient(timeout=30, headers={"Authorization": "Bearer t0ken"}) as http:
        assert (await http.post(url, json=notification(alert()))).status_code == 200

        async def restart_in(state: str) -> dict[str, Any] | None:
            found = [i for i in await incidents(sandbox)
                     if [s["state"] for s in (i.get("status") or {}).get("steps", [])] == [state]]
            return found[0] if found else None

        await wait_for(lambda: restart_in("AwaitingApproval"), timeout=30)
        assert (await http.post(url, json=notification(alert(status="resolved")))).status_code == 200
        incident = await wait_for(lambda: restart_in("Skipped"), timeout=30)
    assert isinstance(incident, dict)
    [restart] = incident["status"]["steps"]
    assert (restart["state"], restart["message"]) == ("Skipped", "not run: the alert resolved (onResolve: keepRunning)")
    [resolved] = [c for c in incident["status"]["conditions"] if c["type"] == "Resolved"]
    assert (resolved["status"], resolved["reason"]) == ("True", "AlertResolved")
    web = await client.get("apps/v1", "Deployment", "default", "web")
    assert web is not None
    assert "kubectl.kubernetes.io/restartedAt" not in (web["spec"]["template"]["metadata"].get("annotations") or {})


@pytest.mark.parametrize("point", ["receiver-after-create", "before-status-write"])
async def test_an_operator_killed_mid_post_loses_nothing_after_alertmanagers_retry(
        client: manifests.Client, sandbox: runner.RunningSandbox, start_operator: Any, tmp_path: pathlib.Path,
        point: str) -> None:
    """Killed after the Incident is created but before its alerts are recorded (or before the operator's first
    status write): the retried POST finds the Incident, records the alert once, and it is remediated once."""
    await client.apply_file(EXAMPLES / "01-workload.yaml")
    await client.apply(runbook_manifest())
    crashing = await start_with_receiver(start_operator, tmp_path, env={
        "REMEDIATOR_CRASH_AT": point, "REMEDIATOR_CRASH_ONCE": str(tmp_path / "crashed")})
    async with httpx.AsyncClient(timeout=30, headers={"Authorization": "Bearer t0ken"}) as http:
        try:
            first: httpx.Response | None = await http.post(crashing, json=notification(alert()))
        except httpx.HTTPError:
            first = None
        if point == "receiver-after-create":
            assert first is None, f"answered {first.status_code} though killed before answering"
        else:
            # Killed at the engine's first status write, which may come before or after the answer left:
            # an answer that did leave says the Incident is stored.
            assert first is None or first.status_code == 200, first.text
        await wait_for(lambda: _exists(tmp_path / "crashed"), timeout=10)
        url = await start_with_receiver(start_operator, tmp_path)
        assert (await http.post(url, json=notification(alert()))).status_code == 200

    async def resolved() -> dict[str, Any] | None:
        done = [i for i in await incidents(sandbox) if (i.get("status") or {}).get("phase") == "Resolved"]
        return done[0] if done else None

    await wait_for(resolved, timeout=30)
    [incident] = await incidents(sandbox)
    assert [a["fingerprint"] for a in incident["status"]["alerts"]] == ["f1"]
    assert [e["reason"] for e in incident["status"]["timeline"]].count("AlertReceived") == 1
    assert [s["attempts"] for s in incident["status"]["steps"]] == [1]


async def test_an_incident_held_as_a_remediation_loop_is_escalated_though_its_creator_died_right_after_the_create(
        client: manifests.Client, sandbox: runner.RunningSandbox, start_operator: Any, tmp_path: pathlib.Path) -> None:
    """The second firing within the window (maxRemediations 1) is created held; the operator is killed right
    after that create and no retry comes: the next operator, reconciling it, records Escalated=True
    (RemediationLoop) from what the create stored, and the restart waits for approval."""
    await client.apply_file(EXAMPLES / "01-workload.yaml")
    await client.apply(runbook_manifest(defaults={"maxRemediations": 1}))
    crashing = await start_with_receiver(start_operator, tmp_path, env={
        "REMEDIATOR_CRASH_AT": "receiver-after-create@2", "REMEDIATOR_CRASH_ONCE": str(tmp_path / "crashed")})
    async with httpx.AsyncClient(timeout=30, headers={"Authorization": "Bearer t0ken"}) as http:
        assert (await http.post(crashing, json=notification(alert()))).status_code == 200
        await wait_for(lambda: _phase_of(sandbox, "f1", "Resolved"), timeout=30)
        with pytest.raises(httpx.HTTPError):
            again = datetime.datetime.now(datetime.UTC).isoformat()  # a new firing, after the first closed
            await http.post(crashing, json=notification(alert(starts_at=again, fingerprint="f2")))
    await start_with_receiver(start_operator, tmp_path)

    async def escalated() -> dict[str, Any] | None:
        held = [i for i in await incidents(sandbox) if i["spec"]["source"]["fingerprint"] == "f2"
                and any(c["type"] == "Escalated" for c in (i.get("status") or {}).get("conditions", []))]
        return held[0] if held else None

    incident = await wait_for(escalated, timeout=30)
    assert isinstance(incident, dict)
    [condition] = [c for c in incident["status"]["conditions"] if c["type"] == "Escalated"]
    assert (condition["status"], condition["reason"]) == ("True", "RemediationLoop")
    assert [e["reason"] for e in incident["status"]["timeline"]].count("RemediationLoop") == 1
    assert not incident["status"].get("alerts")  # nobody merged its alert: the creator died first
    await wait_for(lambda: _steps_in(sandbox, "f2", "AwaitingApproval"), timeout=30)


async def _phase_of(sandbox: runner.RunningSandbox, fingerprint: str, phase: str) -> bool:
    return any((i.get("status") or {}).get("phase") == phase
               for i in await incidents(sandbox) if i["spec"]["source"]["fingerprint"] == fingerprint)


async def _steps_in(sandbox: runner.RunningSandbox, fingerprint: str, state: str) -> bool:
    return any([s["state"] for s in (i.get("status") or {}).get("steps", [])] == [state]
               for i in await incidents(sandbox) if i["spec"]["source"]["fingerprint"] == fingerprint)


async def _exists(path: pathlib.Path) -> bool:
    return await asyncio.to_thread(path.exists)


def test_the_receiver_is_not_served_without_a_token_unless_asked() -> None:
    with pytest.raises(SystemExit) as exited:
        cli.main(["run", "--receiver-address", "127.0.0.1:9095"])
    assert exited.value.code == 2
