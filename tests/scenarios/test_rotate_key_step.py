"""The "API key compromise" runbook as an Incident (examples/key-compromise/), with the operator process: one
emergency rotation, approved by a person, that rotates, restarts, verifies and revokes the old keys at once,
recorded stage by stage in the Incident's timeline."""

from __future__ import annotations

import base64
from typing import Any

import httpx

from remediator import manifests
from remediator.sandbox import runner

from .conftest import FakeService
from .key_rotation_support import NO_COALESCE, restart_stamp
from .support import apply_example, current, example_object, step_of, wait_for

API = "remediator.dev/v1alpha1"


async def incident_status(client: manifests.Client) -> dict[str, Any]:
    return dict(((await client.get(API, "Incident", "default", "api-key-leak")) or {}).get("status") or {})


async def keys(client: manifests.Client) -> dict[str, str]:
    found = await client.get("v1", "Secret", "default", "shop-keys")
    return {k: base64.b64decode(v).decode() for k, v in ((found or {}).get("data") or {}).items()}


async def test_a_compromised_key_is_rotated_restarted_verified_and_revoked_at_once_after_approval(
        sandbox: runner.RunningSandbox, client: manifests.Client, start_operator: Any, service: FakeService) -> None:
    await apply_example(client, "key-compromise/shop.yaml")
    leaked = await keys(client)
    rotation = example_object("key-compromise/keyrotation.yaml", "KeyRotation")
    rotation["spec"]["verify"][0].update(url=f"{service.url}/healthz", interval="100ms")
    await client.apply(rotation)
    await start_operator(*NO_COALESCE)
    incident = example_object("key-compromise/incident.yaml", "Incident")
    step_of(incident, "verify")["httpCheck"].update(url=f"{service.url}/healthz", interval="100ms")
    await client.apply(incident)

    # Revoking at once logs every user out: a person approves it first, and nothing changes before.
    await wait_for(lambda: _step_state(client, "rotate", "AwaitingApproval"))
    assert await keys(client) == leaked
    async with httpx.AsyncClient(base_url=sandbox.url) as http:
        (await http.patch(f"/apis/{API}/namespaces/default/incidents/api-key-leak",
                          json={"metadata": {"annotations": {"remediator.dev/approve": "rotate",
                                                             "remediator.dev/approved-by": "oncall@example.com"}}},
                          headers={"Content-Type": "application/merge-patch+json"})).raise_for_status()

    await wait_for(lambda: _phase(client, "Resolved"), timeout=40)

    rotated = await keys(client)
    assert set(rotated) == {"JWT_SECRET", "ENCRYPTION_KEY"}, "no previous keys: revoked at once"
    assert all(rotated[k] != leaked[k] for k in rotated)
    assert await restart_stamp(client, "shop-api") is not None
    stored = await current(client, rotation)
    uid = (await client.get(API, "Incident", "default", "api-key-leak") or {})["metadata"]["uid"]
    assert stored["status"]["rotation"]["id"] == f"incident/api-key-leak/rotate/{uid[:8]}"
    assert stored["status"]["rotation"]["emergency"] is True
    assert "remediator.dev/rotate" in stored["metadata"]["annotations"]
    assert stored["metadata"]["generation"] == 1, "the request is an annotation: the spec is never written"

    status = await incident_status(client)
    stages = [e["message"].rsplit(": ", 1)[-1].split(" at ")[0] for e in status["timeline"]
              if e["reason"] == "RotationStage"]
    # Every stage the rotation went through, in order, however quickly it passed them.
    entered = stored["status"]["rotation"]["stageTimes"]
    assert stages == sorted(entered, key=lambda name: entered[name]), stages
    assert {"Pending", "Promote", "Restart", "Verify", "Revoke", "Done"} <= set(stages), stages
    step = next(s for s in status["steps"] if s["name"] == "rotate")
    assert step["approvedBy"] == "oncall@example.com" and "verified" in step["message"]


async def _step_state(client: manifests.Client, name: str, state: str) -> bool:
    steps = (await incident_status(client)).get("steps") or []
    return any(s["name"] == name and s["state"] == state for s in steps)


async def _phase(client: manifests.Client, phase: str) -> bool:
    return (await incident_status(client)).get("phase") == phase
