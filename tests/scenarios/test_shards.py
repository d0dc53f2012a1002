"""Scale-out past one process: M operators, each acting only in its shard's namespaces (`--shard N/M`).

Each Incident scales its namespace's Deployment `web` out by one. The request log (the sandbox's audit
log) says who wrote what: a sharded operator names its shard in its User-Agent. Every Incident is
resolved (none missed), written to by its namespace's shard alone, and each scale happens once: a
namespace's `web` ends at 1 + its Incidents' count, with exactly that many scale writes.
"""

from __future__ import annotations

import collections
import os
from typing import Any

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


async def raise_incidents(client: manifests.Client, names: list[str]) -> list[tuple[str, str]]:
    """PER_NAMESPACE Incidents in each namespace; returns their (namespace, name)s."""
    raised = []
    for namespace in names:
        for number in range(PER_NAMESPACE):
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
    await wait_for(lambda: _none_left(client, raised), timeout=120, interval=0.5)
    written = writers(sandbox)
    for namespace, name in raised:
        owner = str(shards.Shard(shards.shard_of(namespace, SHARDS), SHARDS))
        assert written[("incidents/status", namespace, name)] == {owner}, (namespace, name)
    for namespace in names:
        owner = str(shards.Shard(shards.shard_of(namespace, SHARDS), SHARDS))
        assert written[("deployments/scale", namespace, "web")] == {owner}, namespace
        scales = [r for r in list(sandbox.sandbox.access.log) if r.verb in WRITE_VERBS and r.namespace == namespace
                  and (r.resource, r.subresource) == ("deployments", "scale")]
        assert len(scales) == PER_NAMESPACE, f"{namespace}: one scale per Incident"
        web = await client.get("apps/v1", "Deployment", namespace, "web")
        assert web is not None and web["spec"]["replicas"] == 1 + PER_NAMESPACE, namespace
    # No shard wrote anything (not even Kopf's bookkeeping) to another shard's namespace.
    for (resource, namespace, _), by in written.items():
        if namespace:
            assert by == {str(shards.Shard(shards.shard_of(namespace, SHARDS), SHARDS))}, (resource, namespace, by)


async def _none_left(client: manifests.Client, raised: list[tuple[str, str]]) -> bool:
    return not await all_resolved(client, raised)


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
