"""KeyRotation end to end in the sandbox, with the real operator process.

The runbook (002, "rotate keys"): generate new keys, update the Secret, restart what reads it, verify,
and revoke the old keys after the grace period; on a compromise, do all of it at once.
"""

from __future__ import annotations

import base64
import json
from typing import Any

from remediator import manifests
from remediator.sandbox import runner

from .conftest import FakeService
from .key_rotation_support import (
    NO_COALESCE,
    ORIGINAL,
    conditions,
    consumer,
    key_rotation,
    restart_stamp,
    secret,
    stage,
    status_of,
    values_of,
)
from .support import MADE_UP_IMAGES, events_of, wait_for


async def done(client: manifests.Client, name: str = "payments-keys", rotations: int = 1) -> bool:
    status = await status_of(client, name)
    return stage(status) == "Done" and status.get("rotations") == rotations


async def test_a_trigger_change_rotates_once_restarts_the_consumers_verifies_and_revokes(
        sandbox: runner.RunningSandbox, client: manifests.Client, start_operator: Any, service: FakeService) -> None:
    await client.apply(secret())
    for name, reads in (("payments", "env"), ("ledger", "envFrom"), ("reports", "volume")):
        await client.apply(consumer(name, reads))
    await client.apply(consumer("unrelated", reads="none"))
    operator = await start_operator(*NO_COALESCE)
    await client.apply(key_rotation(trigger="2026-q3", gracePeriod="1s",
                                    verify=[{"url": f"{service.url}/healthz", "interval": "100ms"}]))
    await wait_for(lambda: _ready(client))
    assert await values_of(client) == ORIGINAL, "creating a KeyRotation rotates nothing"
    assert await restart_stamp(client, "payments") is None

    await client.apply(key_rotation(trigger="2026-q4"))
    await wait_for(lambda: done(client), timeout=30)

    rotated = await values_of(client)
    assert set(rotated) == {"apiKey", "signingKey"}, "the previous keys are revoked after the grace period"
    assert rotated["apiKey"] != ORIGINAL["apiKey"] and rotated["signingKey"] != ORIGINAL["signingKey"]
    assert len(rotated["apiKey"]) == 44, "32 random bytes, base64"
    live = await client.get("v1", "Secret", "default", "payments-api")
    assert live is not None
    assert live["metadata"]["labels"]["remediator.dev/key-rotation"] == "payments-keys"
    assert live["metadata"]["annotations"]["remediator.dev/rotation-id"] == "2026-q4"
    assert live["metadata"]["annotations"]["remediator.dev/key-version"] == "1"
    assert await client.get("v1", "Secret", "default", "payments-keys-pending") is None
    for name in ("payments", "ledger", "reports"):
        assert await restart_stamp(client, name) is not None, name
    assert await restart_stamp(client, "unrelated") is None
    status = await status_of(client)
    assert status["lastTrigger"] == "2026-q4" and status["currentVersion"] == 1
    assert {(c["kind"], c["name"], c["state"]) for c in status["rotation"]["consumers"]} == {
        ("Deployment", "ledger", "Restarted"), ("Deployment", "payments", "Restarted"),
        ("Deployment", "reports", "Restarted")}
    assert conditions(status) == {
        "Ready": ("True", "Idle"), "Failed": ("False", "Rotating"), "Rotated": ("True", "Promoted"),
        "ConsumersRestarted": ("True", "Restarted"), "Verified": ("True", "Verified"),
        "PreviousKeyRevoked": ("True", "Revoked")}
    assert [e["reason"] for e in status["timeline"]] == [
        "RotationStarted", "Promoted", "ConsumersRestarted", "Verified", "PreviousKeyRevoked"]
    posted = await events_of(sandbox, "payments-keys")
    assert {"Promoted", "PreviousKeyRevoked"} <= {e["reason"] for e in posted}
    assert "/healthz" in service.requests
    # No value, new or old, in the status, the Events or the operator's log.
    told = json.dumps(status) + json.dumps(posted) + operator.log
    for value in (*ORIGINAL.values(), *rotated.values()):
        assert value not in told and base64.b64encode(value.encode()).decode() not in told


async def _ready(client: manifests.Client, name: str = "payments-keys") -> bool:
    return conditions(await status_of(client, name)).get("Ready") == ("True", "Idle")


async def test_a_verification_failure_puts_the_previous_values_back_and_restarts_the_consumers_again(
        sandbox: runner.RunningSandbox, client: manifests.Client, start_operator: Any, service: FakeService) -> None:
    await client.apply(secret())
    await client.apply(consumer("payments"))
    service.health_statuses = [503] * 10_000  # the new key is refused by the payment provider
    await start_operator(*NO_COALESCE)
    await client.apply(key_rotation(trigger="t1", verifyTimeout="2s", emergency=True,
                                    verify=[{"url": f"{service.url}/healthz", "interval": "100ms"}]))
    await wait_for(lambda: _ready(client))

    await client.apply(key_rotation(trigger="t2"))
    await wait_for(lambda: _stage_is(client, "RollingBack"), timeout=30)
    service.health_statuses.clear()  # the previous key works again
    await wait_for(lambda: _stage_is(client, "RolledBack"), timeout=30)

    assert await values_of(client) == ORIGINAL, "the previous values are back and the failed ones are gone"
    assert await client.get("v1", "Secret", "default", "payments-keys-pending") is None
    deployment = await client.get("apps/v1", "Deployment", "default", "payments")
    assert deployment is not None
    assert deployment["metadata"]["annotations"]["deployment.kubernetes.io/revision"] == "3", \
        "restarted with the new values, then again with the previous ones"
    status = await status_of(client)
    assert conditions(status)["Failed"] == ("True", "VerificationFailed")
    assert conditions(status)["Ready"] == ("True", "Idle")
    assert status["currentVersion"] == 0
    warnings = [e["reason"] for e in await events_of(sandbox, "payments-keys") if e["type"] == "Warning"]
    assert "VerificationFailed" in warnings and "RolledBack" in warnings


async def _stage_is(client: manifests.Client, wanted: str) -> bool:
    return stage(await status_of(client)) == wanted


@MADE_UP_IMAGES
async def test_two_rotations_promoted_within_the_coalescing_window_restart_a_shared_consumer_once(
        client: manifests.Client, start_operator: Any) -> None:
    """Reloader restarts a workload once per changed Secret; here the second rotation shares the first's restart."""
    await client.apply(secret())
    await client.apply(secret("ledger-api", {"apiKey": "original-ledger-key"}))
    both = consumer("checkout")
    both["spec"]["template"]["spec"]["containers"][0]["envFrom"] = [{"secretRef": {"name": "ledger-api"}}]
    await client.apply(both)
    await start_operator("--restart-coalesce", "3s")
    payments = key_rotation(gracePeriod="0s", trigger="1")
    ledger = key_rotation("ledger-keys", gracePeriod="0s", trigger="1", secretRef={"name": "ledger-api"},
                          keys=[{"key": "apiKey"}])
    for rotation in (payments, ledger):
        await client.apply(rotation)
    await wait_for(lambda: _ready(client))
    await wait_for(lambda: _ready(client, "ledger-keys"))

    for rotation in (payments, ledger):
        rotation["spec"]["trigger"] = "2"
        await client.apply(rotation)
    await wait_for(lambda: done(client), timeout=30)
    await wait_for(lambda: done(client, "ledger-keys"), timeout=30)

    checkout = await client.get("apps/v1", "Deployment", "default", "checkout")
    assert checkout is not None
    assert checkout["metadata"]["annotations"]["deployment.kubernetes.io/revision"] == "2", "one restart for both"
    messages = [(await status_of(client, name))["rotation"]["consumers"][0]["message"]
                for name in ("payments-keys", "ledger-keys")]
    assert sum(message.startswith("shared the restart of deployment/checkout") for message in messages) == 1, messages
