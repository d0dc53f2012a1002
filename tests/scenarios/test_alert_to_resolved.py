"""Scenario "alert to resolved": Alertmanager's KubePodCrashLooping for the web Deployment (its bad
revision 3 crashes) reaches the operator's receiver; the Runbook's Incident rolls web back, waits for the
rollout and verifies its health endpoint; then the resolve arrives and the Incident records it."""

from __future__ import annotations

import pathlib
from collections.abc import AsyncIterator
from typing import Any

import aiohttp.web
import httpx
import pytest
from tests.local_servers import free_port, serving

from remediator import manifests
from remediator.sandbox import runner

from .support import IMAGES, deploy_three_revisions, image_of, wait_for, web

API = "/apis/remediator.dev/v1alpha1/namespaces/default"
TOKEN = "am-token"
ALERT = {"status": "firing", "startsAt": "2026-11-29T10:00:00Z", "fingerprint": "4f2a9c1d",
         "labels": {"alertname": "KubePodCrashLooping", "namespace": "default", "deployment": "web",
                    "pod": "web-5d8f-x2k4q", "severity": "critical"},
         "annotations": {"description": "pod web-5d8f-x2k4q is restarting 3 times / 5 minutes"}}


def notification(*alerts: dict[str, Any]) -> dict[str, Any]:
    return {"version": "4", "status": alerts[0]["status"], "receiver": "remediator", "groupKey": "{}:{}",
            "groupLabels": {"alertname": "KubePodCrashLooping"}, "alerts": list(alerts)}


def crash_loop_runbook(health_url: str) -> dict[str, Any]:
    target = {"kind": "Deployment", "name": "{{ labels.deployment }}"}
    return {"apiVersion": "remediator.dev/v1alpha1", "kind": "Runbook",
            "metadata": {"name": "crash-looping", "namespace": "default"},
            "spec": {"triggers": [{"alertname": "KubePodCrashLooping", "matchers": [
                         {"name": "severity", "op": "=~", "value": "critical|warning"}]}],
                     "incident": {"summary": "{{ labels.deployment }} is crash-looping",
                                  "severities": {"critical": "P1"},
                                  "steps": [{"name": "roll-back", "rollback": {"target": target}},
                                            {"name": "rolled-out", "waitForRollout": {"target": target},
                                             "timeout": "2m"},
                                            {"name": "healthy", "verify": True,
                                             "httpCheck": {"url": health_url, "interval": "1s"}}]}}}


@pytest.fixture()
async def health_url(sandbox: runner.RunningSandbox) -> AsyncIterator[str]:
    """web's health endpoint: 500 while it runs the crashing revision 3, 200 otherwise."""
    deployments = sandbox.store.resource_type("apps", "v1", "deployments")

    async def health(request: aiohttp.web.Request) -> aiohttp.web.Response:
        found = sandbox.store.find(deployments, "default", "web")
        bad = found is not None and image_of(found) == IMAGES[2]
        return aiohttp.web.Response(status=500 if bad else 200)

    app = aiohttp.web.Application()
    app.router.add_get("/healthz", health)
    async with serving(app) as url:
        yield f"{url}/healthz"



async def test_an_alert_rolls_back_the_crashing_deploy_verifies_it_and_the_resolve_is_recorded(
        sandbox: runner.RunningSandbox, client: manifests.Client, start_operator: Any, health_url: str,
        tmp_path: pathlib.Path) -> None:
    await deploy_three_revisions(client)
    await client.apply(crash_loop_runbook(health_url))
    token = tmp_path / "token"
    token.write_text(TOKEN)
    port = free_port()
    # Automated remediation: no step waits for a person at any severity.
    await start_operator("--receiver-address", f"127.0.0.1:{port}", "--receiver-token-file", str(token),
                         "--approval-severities", "none")
    receiver = f"http://127.0.0.1:{port}/alertmanager"

    async def incidents() -> list[dict[str, Any]]:
        async with httpx.AsyncClient(base_url=sandbox.url) as http:
            items: list[dict[str, Any]] = (await http.get(f"{API}/incidents")).json()["items"]
            return items

    async def resolved() -> dict[str, Any] | None:
        done = [i for i in await incidents() if (i.get("status") or {}).get("phase") == "Resolved"]
        return done[0] if done else None

    async with httpx.AsyncClient(timeout=30, headers={"Authorization": f"Bearer {TOKEN}"}) as http:
        assert (await http.post(receiver, json=notification(ALERT))).status_code == 200
        assert (await http.post(receiver, json=notification(ALERT))).status_code == 200  # Alertmanager resends
        incident = await wait_for(resolved, timeout=60)
        assert isinstance(incident, dict)
        assert [(s["name"], s["state"]) for s in incident["status"]["steps"]] == [
            ("roll-back", "Succeeded"), ("rolled-out", "Succeeded"), ("healthy", "Succeeded")]
        assert image_of(await web(client)) == IMAGES[1]

        assert (await http.post(receiver, json=notification({**ALERT, "status": "resolved"}))).status_code == 200

    [incident] = await incidents()
    conditions = {c["type"]: (c["status"], c["reason"]) for c in incident["status"]["conditions"]}
    assert conditions["AlertResolved"] == ("True", "AlertResolved")
    assert conditions["Resolved"] == ("True", "StepsSucceeded")
    assert conditions["Verified"][0] == "True"
    assert [a["status"] for a in incident["status"]["alerts"]] == ["resolved"]
    reasons = [e["reason"] for e in incident["status"]["timeline"]]
    assert reasons.count("AlertReceived") == 1 and "AlertResolved" in reasons
