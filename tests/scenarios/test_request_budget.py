"""What a one-step Incident costs the API server: exactly the requests docs/benchmarks.md lists, so a
change that adds a request (or a write) fails here before it shows up in a storm."""

from __future__ import annotations

import asyncio
import collections
import pathlib
from typing import Any

from remediator import manifests
from remediator.sandbox import runner

from .support import deployment, events_of, roll_out, wait_for

REPO = pathlib.Path(__file__).resolve().parents[2]
API = "remediator.dev/v1alpha1"
WRITE_VERBS = frozenset({"create", "update", "patch", "delete"})
# docs/benchmarks.md, "Where the 8 writes (and 1 read) of a one-step incident come from".
ONE_STEP_REQUESTS = {
    ("get", "deployments", ""): 1,  # observe the target
    ("patch", "deployments", ""): 2,  # the lock claim, its release
    ("patch", "deployments", "scale"): 1,  # the action
    ("patch", "incidents", "status"): 2,  # the intent on record, then Resolved
    ("create", "events", ""): 3,  # Acknowledged, StepSucceeded, Resolved
}
WATCHED = frozenset({"incidents", "keyrotations", "rollbackrequests"})
DOCUMENTED = "9 requests and 8 writes per one-step Incident"


def operator_requests(sandbox: runner.RunningSandbox, since: int) -> collections.Counter[tuple[str, str, str]]:
    """The operator's requests in the sandbox's request log since `since`, watches left out (opened before)."""
    return collections.Counter((r.verb, r.resource, r.subresource) for r in list(sandbox.sandbox.access.log)[since:]
                               if r.user_agent.startswith("remediator") and r.verb != "watch")


def watching(sandbox: runner.RunningSandbox) -> bool:
    """The operator watches each kind it handles (Kopf lists a kind, then watches it)."""
    watched = {r.resource for r in list(sandbox.sandbox.access.log)
               if r.user_agent.startswith("remediator") and r.verb == "watch"}
    return WATCHED <= watched


async def resolved(client: manifests.Client, name: str) -> bool:
    found = await client.get(API, "Incident", "default", name)
    return ((found or {}).get("status") or {}).get("phase") == "Resolved"


async def test_a_one_step_incident_costs_exactly_the_documented_requests(
        sandbox: runner.RunningSandbox, client: manifests.Client, start_operator: Any) -> None:
    await roll_out(client, deployment("shop:1.0", replicas=1))
    await start_operator("--cooldown", "0s")
    await wait_for(lambda: asyncio.sleep(0, watching(sandbox)))  # Kopf's initial lists are done
    since = len(sandbox.sandbox.access.log)
    await client.apply({"apiVersion": API, "kind": "Incident", "metadata": {"name": "busy", "namespace": "default"},
                        "spec": {"severity": "P2", "summary": "web is overloaded", "steps": [
                            {"name": "up", "scale": {"target": {"kind": "Deployment", "name": "web"}, "by": 1}}]}})

    await wait_for(lambda: resolved(client, "busy"))
    await wait_for(lambda: _events_posted(sandbox, 3))
    await asyncio.sleep(1.0)  # anything trailing (a late event, a re-read) would arrive by now

    assert operator_requests(sandbox, since) == ONE_STEP_REQUESTS
    assert sum(ONE_STEP_REQUESTS.values()) == 9
    assert sum(n for (verb, _, _), n in ONE_STEP_REQUESTS.items() if verb in WRITE_VERBS) == 8
    assert DOCUMENTED in (REPO / "docs" / "benchmarks.md").read_text().replace("\n", " ")


async def _events_posted(sandbox: runner.RunningSandbox, count: int) -> bool:
    return len(await events_of(sandbox, "busy")) >= count
