"""Scheduled rotations with the operator process, on a compressed clock: a schedule of `@every 4s` stands
for the quarterly one (the same code path: ticks anchored at creation, each rotated for once), and an
absolute maintenance window a few seconds ahead holds a due tick back until it opens."""

from __future__ import annotations

import asyncio
import datetime
from typing import Any

import pytest

from remediator import manifests

from .key_rotation_support import NO_COALESCE, conditions, consumer, key_rotation, secret, status_of, values_of
from .support import wait_for

pytestmark = pytest.mark.sandbox_only("time stepping: schedules on a compressed clock")

TICK = 4.0


async def test_each_tick_of_the_schedule_rotates_exactly_once(client: manifests.Client, start_operator: Any) -> None:
    await client.apply(secret())
    await client.apply(consumer("payments"))
    await start_operator(*NO_COALESCE)
    await client.apply(key_rotation(schedule=f"@every {int(TICK)}s", gracePeriod="0s", emergencyGracePeriod="0s"))
    created = datetime.datetime.now(datetime.UTC)

    seen: list[tuple[int, str]] = []  # (currentVersion, rotation id) as they change

    async def watch() -> None:
        while True:
            status = await status_of(client)
            entry = (int(status.get("currentVersion") or 0), str((status.get("rotation") or {}).get("id")))
            if not seen or seen[-1] != entry:
                seen.append(entry)
            await asyncio.sleep(0.1)

    watcher = asyncio.create_task(watch())
    await asyncio.sleep(3 * TICK + TICK / 2)
    watcher.cancel()
    elapsed = (datetime.datetime.now(datetime.UTC) - created).total_seconds()
    status = await status_of(client)
    ticks = int(elapsed // TICK)
    # At most one rotation per tick that has passed, never two for one tick; on a loaded machine the last
    # one or two may still be on their way (a tick missed meanwhile collapses into the next).
    assert max(1, ticks - 2) <= status["currentVersion"] <= ticks, (elapsed, seen)
    ids = [rotation_id for version, rotation_id in seen if version]
    assert len(set(ids)) == len({version for version, _ in seen if version}), seen
    assert all(rotation_id.startswith("1-") for rotation_id in ids), "<generation>-<tick>"
    assert status["lastScheduleTime"] and status["nextRotationTime"]


async def test_a_tick_outside_the_maintenance_window_waits_for_the_window(
        client: manifests.Client, start_operator: Any) -> None:
    await client.apply(secret())
    await start_operator(*NO_COALESCE)
    now = datetime.datetime.now(datetime.UTC)
    opens = (now + datetime.timedelta(seconds=8)).replace(microsecond=0)
    window = {"start": opens.strftime("%Y-%m-%dT%H:%M:%SZ"),
              "end": (opens + datetime.timedelta(hours=1)).strftime("%Y-%m-%dT%H:%M:%SZ")}
    await client.apply(key_rotation(schedule="@every 2s", gracePeriod="0s", maintenanceWindows=[window]))

    await wait_for(lambda: _next_rotation_is(client, opens), timeout=6)
    assert (await status_of(client)).get("currentVersion", 0) == 0, "the due tick waits"
    before = await values_of(client)
    assert datetime.datetime.now(datetime.UTC) < opens

    await wait_for(lambda: _rotated(client), timeout=20)
    assert datetime.datetime.now(datetime.UTC) >= opens
    assert await values_of(client) != before
    assert conditions(await status_of(client))["Rotated"][0] == "True"


async def _next_rotation_is(client: manifests.Client, when: datetime.datetime) -> bool:
    text = (await status_of(client)).get("nextRotationTime")
    return bool(text) and datetime.datetime.fromisoformat(str(text).replace("Z", "+00:00")) == when


async def _rotated(client: manifests.Client) -> bool:
    return int((await status_of(client)).get("currentVersion") or 0) >= 1
