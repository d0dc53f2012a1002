"""Crash safety of a rotation: the operator killed (SIGKILL) at every stage boundary, and inside Promote and
Restart, never leaves a consumer with a value that is in neither the current nor the previous keys, never
makes values twice, and rotates once.

The runbook: rotate the payment API key read by two Deployments. A watcher samples the live and the staging
Secret all along; a fresh operator finishes the rotation.
"""

from __future__ import annotations

import asyncio
import contextlib
import pathlib
from collections.abc import AsyncIterator
from typing import Any

import pytest

from remediator import manifests

from .key_rotation_support import NO_COALESCE, ORIGINAL, consumer, key_rotation, secret, stage, status_of, values_of
from .support import wait_for
from .test_crash_safety import crash_env, killed_at_the_crash_point

pytestmark = pytest.mark.sandbox_only("crash points in the operator (REMEDIATOR_CRASH_AT, faults.crash_point)")

# A rotation with two consumers acts 5 times (stage the values, promote, restart each consumer, revoke)
# and records its status before each action.
CRASH_POINTS = [
    *(f"keyrotation-{point}@{n}" for point in ("before-action", "after-action") for n in range(1, 6)),
    *(f"keyrotation-after-status-write@{n}" for n in range(1, 5)),
]
REVISION = "deployment.kubernetes.io/revision"


@contextlib.asynccontextmanager
async def watching(client: manifests.Client) -> AsyncIterator[list[tuple[dict[str, str], dict[str, str]]]]:
    """Samples of (live values, staging values) every few milliseconds while the block runs."""
    samples: list[tuple[dict[str, str], dict[str, str]]] = []

    async def sample() -> None:
        while True:
            samples.append((await values_of(client), await values_of(client, "payments-keys-pending")))
            await asyncio.sleep(0.05)

    task = asyncio.create_task(sample())
    try:
        yield samples
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


async def rotated_once(client: manifests.Client) -> bool:
    status = await status_of(client)
    return stage(status) == "Done" and status.get("rotations") == 1


@pytest.mark.parametrize("point", CRASH_POINTS)
async def test_a_crash_anywhere_in_a_rotation_rotates_once_and_every_consumer_keeps_a_valid_value(
        client: manifests.Client, start_operator: Any, tmp_path: pathlib.Path, point: str) -> None:
    await client.apply(secret())
    for name in ("payments", "ledger"):
        await client.apply(consumer(name))
    await client.apply(key_rotation(gracePeriod="0s"))
    async with watching(client) as samples:
        crashing = await start_operator(*NO_COALESCE, env=crash_env(point, tmp_path))
        await client.apply({**key_rotation(), "metadata": {
            "name": "payments-keys", "namespace": "default", "annotations": {"remediator.dev/rotate": "r1"}}})
        await killed_at_the_crash_point(crashing, tmp_path)
        await start_operator(*NO_COALESCE)
        await wait_for(lambda: rotated_once(client), timeout=40)

    final = await values_of(client)
    assert set(final) == {"apiKey", "signingKey"} and final["apiKey"] != ORIGINAL["apiKey"]
    staged = {values["apiKey"] for _, values in samples if "apiKey" in values}
    assert staged <= {final["apiKey"]}, "the new values were made once, whatever the crash"
    for live, _ in samples:
        assert live["apiKey"] in (ORIGINAL["apiKey"], final["apiKey"]), "no third value ever"
        valid = {live["apiKey"], live.get("apiKey_previous")}
        if live["apiKey"] == final["apiKey"] and ORIGINAL["apiKey"] not in valid:
            assert "apiKey_previous" not in live  # revoked: both consumers already run the new value
    for name in ("payments", "ledger"):
        deployment = await client.get("apps/v1", "Deployment", "default", name)
        assert deployment is not None
        assert deployment["metadata"]["annotations"][REVISION] == "2", f"{name} restarted exactly once"
    status = await status_of(client)
    assert status["currentVersion"] == 1 and status["lastRequest"] == "r1"
    assert [e["reason"] for e in status["timeline"]].count("Promoted") == 1
