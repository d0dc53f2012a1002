"""The target lock when the operator misses a deletion: the next incident on the target takes it over.

Incidents carry no finalizer (deletion is never blocked), so an Incident deleted while the operator
is down leaves its lock on the Deployment. The next incident on that Deployment finds the holder
gone, says so in its timeline, and proceeds; the lock is released when it finishes.
"""

from __future__ import annotations

import pathlib
from typing import Any

import httpx

from remediator import manifests
from remediator.sandbox import runner

from .support import wait_for, web

REPO = pathlib.Path(__file__).resolve().parents[2]
API = "remediator.dev/v1alpha1"
WEB = {"kind": "Deployment", "name": "web"}
LOCK = "remediator.dev/lock"


def incident(name: str, *steps: dict[str, Any]) -> dict[str, Any]:
    return {"apiVersion": API, "kind": "Incident", "metadata": {"name": name, "namespace": "default"},
            "spec": {"severity": "P2", "summary": "web is overloaded", "steps": list(steps)}}


async def status_of(client: manifests.Client, name: str) -> dict[str, Any]:
    return dict(((await client.get(API, "Incident", "default", name)) or {}).get("status") or {})


async def test_a_lock_left_by_an_incident_deleted_while_the_operator_was_down_is_taken_over(
        client: manifests.Client, start_operator: Any, sandbox: runner.RunningSandbox) -> None:
    await client.apply_file(REPO / "examples" / "01-workload.yaml")
    first_operator = await start_operator("--cooldown", "0s")
    # Holds web's lock while its health check keeps failing (nothing listens on port 9).
    await client.apply(incident("first", {"name": "scale-out", "scale": {"target": WEB, "replicas": 3}},
                                {"name": "verify", "httpCheck": {"url": "http://127.0.0.1:9/healthz",
                                                                 "interval": "1s", "timeout": "1s"}}))

    async def first_verifying() -> bool:
        steps = {s["name"]: s["state"] for s in (await status_of(client, "first")).get("steps") or []}
        return steps.get("verify") == "Running"

    await wait_for(first_verifying)
    first_operator.process.terminate()
    await first_operator.process.wait()
    async with httpx.AsyncClient(base_url=sandbox.url) as http:
        (await http.delete(f"/apis/{API}/namespaces/default/incidents/first")).raise_for_status()
    assert await client.get(API, "Incident", "default", "first") is None, "deletion is not blocked"
    assert (await web(client))["metadata"]["annotations"][LOCK] == "default/first", "nobody released it"

    await start_operator("--cooldown", "0s")
    await client.apply(incident("second", {"name": "scale-out", "scale": {"target": WEB, "replicas": 4}}))

    async def second_resolved() -> bool:
        return (await status_of(client, "second")).get("phase") == "Resolved"

    await wait_for(second_resolved)
    deployment = await web(client)
    assert deployment["spec"]["replicas"] == 4
    assert LOCK not in deployment["metadata"]["annotations"]
    taken = [e for e in (await status_of(client, "second"))["timeline"] if e["reason"] == "StaleLockTakenOver"]
    assert len(taken) == 1 and "default/first" in taken[0]["message"], taken
