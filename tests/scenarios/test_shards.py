"""Scale-out past one process: M operators, each acting only in its shard's namespaces (`--shard N/M`).

Each Incident scales its namespace's Deployment `web` out by one. The request log (the sandbox's audit
log) says who wrote what: a sharded operator names its shard in its User-Agent. Every Incident is
resolved (none missed), written to by its namespace's shard alone, and each scale happens once: a
namespace's `web` ends at 1 + its Incidents' count, with exactly that many scale writes.
"""

from __future__ import annotations

import asyncio
import collections
import os
import pathlib
from typing import Any

import pytest

from remediator import manifests
from remediator.engine import shards
from remediator.sandbox import runner

from .support import wait_for

API = "remediator.dev/v1alpha1"
WRITE_VERBS = frozenset({"create", "update", "patch", "delete", "deletecollection"})
PER_NAMESPACE = 5
# The figure (300 Incidents across 60 namespaces) runs with REMEDIATOR_SHARD_INCIDENTS=300.
INCIDENTS = int(os.environ.get("REMEDIATOR_SHARD_INCIDENTS", "90"))
SHARDS = 3
# The whole test, sandbox start and stop included: about a second per Incident on a loaded machine.
TIMEOUT = 120 + 1.5 * INCIDENTS


def namespaces(incidents: int = INCIDENTS) -> list[str]:
    return [f"team-{i:02d}" for i in range(max(1, incidents // PER_NAMESPACE))]


def deployment(namespace: str) -> dict[str, Any]:
    labels = {"app": "web"}
    return {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "web", "namespace": namespace},
            "spec": {"replicas": 1, "selector": {"matchLabels": labels},
                     "template": {"metadata": {"labels": labels},
                                  "spec": {"containers": [{"name": "app", "image": "shop:1.0"}]}}}}


def incident(namespace: str, number: int) -> dict[str, Any]:
    return {"apiVersion": API, "kind": "Incident", "metadata": {"name": f"busy-{number}", "namespace": namespace},
            "spec": {"severity": "P3", "summary": "web is busy", "steps": [
                {"name": "scale-out", "scale": {"target": {"kind": "Deployment", "name": "web"}, "by": 1}}]}}


async def prepare(client: manifests.Client, names: list[str]) -> None:
    for namespace in names:
        await client.apply({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": namespace}})
        await client.apply(deployment(namespace))


async def raise_incidents(client: manifests.Client, names: list[str], first: int = 0) -> list[tuple[str, str]]:
    """PER_NAMESPACE Incidents in each namespace (numbered from `first`); returns their (namespace, name)s."""
    raised = []
    for namespace in names:
        for number in range(first, first + PER_NAMESPACE):
            await client.apply(incident(namespace, number))
            raised.append((namespace, f"busy-{number}"))
    return raised


async def all_resolved(client: manifests.Client, raised: list[tuple[str, str]]) -> list[str]:
    """The Incidents not resolved yet (empty when all are)."""
    left = []
    for namespace, name in raised:
        found = await client.get(API, "Incident", namespace, name) or {}
        if (found.get("status") or {}).get("phase") != "Resolved":
            left.append(f"{namespace}/{name}")
    return left


def writers(sandbox: runner.RunningSandbox) -> dict[tuple[str, str, str], set[str]]:
    """(resource, namespace, name) -> the shards ('0/3', ...) that wrote to it, from the request log."""
    found: dict[tuple[str, str, str], set[str]] = collections.defaultdict(set)
    for record in list(sandbox.sandbox.access.log):
        if record.verb in WRITE_VERBS and "shard " in record.user_agent:
            shard = record.user_agent.split("shard ", 1)[1].split(")", 1)[0].split(";", 1)[0]
            found[(f"{record.resource}/{record.subresource}".rstrip("/"), record.namespace, record.name)].add(shard)
    return found


async def handled_once_each_by_its_own_shard(sandbox: runner.RunningSandbox, client: manifests.Client,
                                             names: list[str], raised: list[tuple[str, str]]) -> None:
    """Every Incident raised is resolved, written to by its namespace's shard alone, and scaled `web` once."""
    per_namespace = len(raised) // len(names)
    await wait_for(lambda: _none_left(client, raised), timeout=TIMEOUT - 60, interval=0.5)
    written = writers(sandbox)
    for namespace, name in raised:
        owner = str(shards.Shard(shards.shard_of(namespace, SHARDS), SHARDS))
        assert written[("incidents/status", namespace, name)] == {owner}, (namespace, name)
    for namespace in names:
        owner = str(shards.Shard(shards.shard_of(namespace, SHARDS), SHARDS))
        assert written[("deployments/scale", namespace, "web")] == {owner}, namespace
        scales = [r for r in list(sandbox.sandbox.access.log) if r.verb in WRITE_VERBS and r.namespace == namespace
                  and (r.resource, r.subresource) == ("deployments", "scale")]
        assert len(scales) == per_namespace, f"{namespace}: one scale per Incident"
        web = await client.get("apps/v1", "Deployment", namespace, "web")
        assert web is not None and web["spec"]["replicas"] == 1 + per_namespace, namespace
    # No shard wrote anything (not even Kopf's bookkeeping) to another shard's namespace.
    for (resource, namespace, _), by in written.items():
        if namespace in names:
            assert by == {str(shards.Shard(shards.shard_of(namespace, SHARDS), SHARDS))}, (resource, namespace, by)


async def _none_left(client: manifests.Client, raised: list[tuple[str, str]]) -> bool:
    return not await all_resolved(client, raised)


@pytest.mark.timeout(TIMEOUT)
async def test_three_shards_handle_every_incident_once_each_in_its_own_namespaces(
        sandbox: runner.RunningSandbox, client: manifests.Client, start_operator: Any) -> None:
    names = namespaces()
    assert len({shards.shard_of(n, SHARDS) for n in names}) == SHARDS, "every shard owns some namespaces"
    await prepare(client, names)
    operators = [await start_operator("--all-namespaces", "--shard", f"{i}/{SHARDS}", "--cooldown", "0s")
                 for i in range(SHARDS)]
    raised = await raise_incidents(client, names)

    await handled_once_each_by_its_own_shard(sandbox, client, names, raised)
    assert all(operator.process.returncode is None for operator in operators)


# Shorter than the production timings (15s, 10s, 2s), but with a renew deadline a loaded machine keeps: a
# leader whose event loop is starved for 2s (starting Kopf right after taking the Lease) would lose it.
ELECTED = ("--leader-elect", "--leader-elect-namespace", "default", "--leader-elect-lease-duration", "8s",
           "--leader-elect-renew-deadline", "6s", "--leader-elect-retry-period", "1s")


async def holder(client: manifests.Client, lease: str) -> str:
    found = await client.get("coordination.k8s.io/v1", "Lease", "default", lease)
    return str(((found or {}).get("spec") or {}).get("holderIdentity") or "")


@pytest.mark.timeout(300)
async def test_each_shard_elects_its_own_leader_and_a_killed_one_is_replaced_within_its_shard(
        sandbox: runner.RunningSandbox, client: manifests.Client, start_operator: Any) -> None:
    """Shard 0 runs two replicas, shards 1 and 2 one each, all with --leader-elect: three Leases. Shard 0's
    leader is killed between two rounds of Incidents; its follower takes remediator-shard-0 over and handles
    the second round of shard 0's namespaces, each Incident still once, by its own shard."""
    names = namespaces(45)
    assert len({shards.shard_of(n, SHARDS) for n in names}) == SHARDS
    await prepare(client, names)
    flags = ("--all-namespaces", "--cooldown", "0s", *ELECTED)
    leader = await start_operator(*flags, "--shard", f"0/{SHARDS}")
    first_holder = str(await wait_for(lambda: holder(client, "remediator-shard-0"), timeout=30))
    follower = await start_operator(*flags, "--shard", f"0/{SHARDS}")
    await wait_for(lambda: asyncio.sleep(0, f"following: {first_holder} holds the lease default/remediator-shard-0"
                                         in follower.log), timeout=30)
    others = [await start_operator(*flags, "--shard", f"{i}/{SHARDS}") for i in range(1, SHARDS)]
    for i in range(1, SHARDS):
        await wait_for(lambda i=i: holder(client, f"remediator-shard-{i}"), timeout=30)
    assert await client.get("coordination.k8s.io/v1", "Lease", "default", "remediator") is None, "no shared Lease"
    raised = await raise_incidents(client, names)
    await wait_for(lambda: _none_left(client, raised), timeout=120, interval=0.5)

    leader.process.kill()
    raised += await raise_incidents(client, names, first=PER_NAMESPACE)
    await handled_once_each_by_its_own_shard(sandbox, client, names, raised)

    assert await holder(client, "remediator-shard-0") not in ("", first_holder), "the follower took shard 0 over"
    for namespace in names:
        status = ((await client.get(API, "Incident", namespace, f"busy-{PER_NAMESPACE}")) or {})["status"]
        owner = shards.shard_of(namespace, SHARDS)
        assert status["leaseName"] == f"remediator-shard-{owner}", namespace
        assert status["leaseEpoch"] == (1 if owner == 0 else 0), f"{namespace}: the epoch of its own shard's Lease"
    assert follower.process.returncode is None and all(o.process.returncode is None for o in others)


REVISION = "deployment.kubernetes.io/revision"


async def rolled_out_web(client: manifests.Client, namespace: str) -> dict[str, Any]:
    async def revised() -> dict[str, Any] | None:
        found = await client.get("apps/v1", "Deployment", namespace, "web")
        return found if found and REVISION in found["metadata"].get("annotations", {}) else None

    found = await wait_for(revised, timeout=30)
    assert isinstance(found, dict)
    return found


@pytest.mark.timeout(240)
async def test_after_a_reshard_the_new_owner_reissues_the_recorded_intent_under_its_own_lease(
        client: manifests.Client, start_operator: Any, tmp_path: pathlib.Path) -> None:
    """M goes from 2 to 3 while an Incident in team-01 is mid-step: its owner under 2 shards (shard 0, whose
    Lease has seen 5 takeovers) dies right after the scale reached web, before recording it. Its owner under 3
    shards (shard 1, a fresh Lease at epoch 0) finishes it: web scaled by exactly 2 (the recorded intent,
    not planned again from the scaled count) and restarted once; the older Lease's higher epoch in the
    status does not stop it."""
    namespace = "team-01"
    assert (shards.shard_of(namespace, 2), shards.shard_of(namespace, 3)) == (0, 1)
    await prepare(client, [namespace])
    before = await rolled_out_web(client, namespace)
    long_ago = "2026-01-01T00:00:00.000000Z"
    await client.apply({"apiVersion": "coordination.k8s.io/v1", "kind": "Lease",
                        "metadata": {"name": "remediator-shard-0", "namespace": "default"},
                        "spec": {"holderIdentity": "gone_0", "leaseDurationSeconds": 3, "leaseTransitions": 4,
                                 "acquireTime": long_ago, "renewTime": long_ago}})
    crash = {"REMEDIATOR_CRASH_AT": "after-action@2", "REMEDIATOR_CRASH_ONCE": str(tmp_path / "crashed")}
    flags = ("--all-namespaces", "--cooldown", "0s", *ELECTED)
    old_owner = await start_operator(*flags, "--shard", "0/2", env=crash)
    await client.apply({"apiVersion": API, "kind": "Incident", "metadata": {"name": "busy", "namespace": namespace},
                        "spec": {"severity": "P2", "summary": "web is overloaded", "steps": [
                            {"name": "scale-out", "scale": {"target": {"kind": "Deployment", "name": "web"}, "by": 2}},
                            {"name": "restart", "restart": {"target": {"kind": "Deployment", "name": "web"}}}]}})
    async with asyncio.timeout(60):
        assert await old_owner.process.wait() == -9, old_owner.log
    status = ((await client.get(API, "Incident", namespace, "busy")) or {})["status"]
    assert (status["leaseName"], status["leaseEpoch"]) == ("remediator-shard-0", 5)

    new_owner = await start_operator(*flags, "--shard", "1/3")
    await wait_for(lambda: _none_left(client, [(namespace, "busy")]), timeout=60)

    after = await client.get("apps/v1", "Deployment", namespace, "web")
    assert after is not None and after["spec"]["replicas"] == before["spec"]["replicas"] + 2
    assert int(after["metadata"]["annotations"][REVISION]) == int(before["metadata"]["annotations"][REVISION]) + 1
    status = ((await client.get(API, "Incident", namespace, "busy")) or {})["status"]
    assert (status["leaseName"], status["leaseEpoch"]) == ("remediator-shard-1", 0)
    assert [e["step"] for e in status["timeline"] if e["reason"] == "StepSucceeded"] == ["scale-out", "restart"]
    assert new_owner.process.returncode is None, new_owner.log
