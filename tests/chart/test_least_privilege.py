"""The chart's RBAC is all the operator needs and no more, proven against an RBAC-enforcing API server.

The chart is rendered by Helm and applied to the sandbox with authentication and RBAC on (its own
Deployment runs there too, as simulated pods). The operator runs with the args of the chart's
Deployment and the token of the chart's ServiceAccount, through an incident of every kind of workload
step (scale, restart, delete pods, job, rollback), a RollbackRequest, a KeyRotation, an Incident that
rotates a key inline, and an alert through the receiver, all while holding the leader Lease. Then the
sandbox's request log says: no request was forbidden, and every verb the chart grants on every
resource was used. In three settings: rbac.scope cluster, rbac.scope namespaces, and a namespaceSelector
(the only setting that grants watching Namespaces' labels).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import pathlib
import sys
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from tests.receiver.alerts import alert, notification, runbook_manifest
from tests.scenarios.key_rotation_support import conditions, consumer, key_rotation, secret, stage
from tests.scenarios.support import deployment, roll_out, wait_for, with_image

from remediator import manifests, processes
from remediator.sandbox import images, runner

from .rendering import manifests as rendered
from .rendering import values

REPO = pathlib.Path(__file__).resolve().parents[2]
RELEASE = "remediator"
RELEASE_NAMESPACE = "ops"
OPERATOR = f"system:serviceaccount:{RELEASE_NAMESPACE}:{RELEASE}"
API = "remediator.dev/v1alpha1"
RECEIVER_TOKEN = "alertmanager-bearer-token"
# Flags the test adds to the chart's: no coalescing window or approvals to wait out.
TEST_FLAGS = ("--restart-coalesce", "0s", "--approval-severities", "none")
# Granted, needed, and not used by these scenarios, with the reason.
NOT_EXERCISED = {
    ("patch", "", "events"): "the same Event again (object, reason, message) is a patch of its count "
                             "(actions/events.py); nothing here posts one Event twice",
}
INCIDENTS = ("scale", "restart", "pods", "job", "rollback", "rotate")
DONE = {**dict.fromkeys(INCIDENTS, "Resolved"), "undo-cart": "Complete", "payments-keys": "Done"}
SCOPES = {
    "cluster": {"namespaces": [], "rbac": {"create": True, "scope": "cluster"}},
    "namespaces": {"namespaces": ["default"], "rbac": {"create": True, "scope": "namespaces"}},
    # --namespace-selector: the one scope whose rights include watching Namespaces' labels.
    "selector": {"namespaces": [], "rbac": {"create": True, "scope": "cluster"},
                 "namespaceSelector": "remediator.dev/team=shop"},
}


@pytest.fixture()
async def sandbox() -> AsyncIterator[runner.RunningSandbox]:
    async with runner.running(crd_paths=sorted((REPO / "crds").glob("*.yaml")), auth=True, time_scale=0.01,
                              image_registry=images.load(REPO / "tests" / "images.yaml")) as running:
        yield running


@pytest.fixture()
async def admin(sandbox: runner.RunningSandbox) -> AsyncIterator[manifests.Client]:
    async with manifests.Client(sandbox.url, token=sandbox.admin_token, verify=sandbox.client_ssl()) as client:
        yield client


def operator_args(chart: list[dict[str, Any]], ports: dict[str, int], token_file: pathlib.Path) -> list[str]:
    """The chart's container args, with the pod's addresses and mounted file moved onto this machine."""
    (pod,) = [d["spec"]["template"]["spec"] for d in chart if d["kind"] == "Deployment"]
    args: list[str] = pod["containers"][0]["args"]
    moved = []
    for arg in args:
        if arg.startswith("--metrics-address="):
            arg = f"--metrics-address=127.0.0.1:{ports['metrics']}"
        elif arg.startswith("--receiver-address="):
            arg = f"--receiver-address=127.0.0.1:{ports['receiver']}"
        elif arg.startswith("--receiver-token-file="):
            arg = f"--receiver-token-file={token_file}"
        moved.append(arg)
    return moved


@contextlib.asynccontextmanager
async def operator(sandbox: runner.RunningSandbox, admin: manifests.Client, chart: list[dict[str, Any]],
                   tmp_path: pathlib.Path) -> AsyncIterator[dict[str, int]]:
    """`remediator run` as the chart's Deployment runs it, with its ServiceAccount's token; yields its ports."""
    async with httpx.AsyncClient(base_url=sandbox.url, verify=sandbox.client_ssl(), timeout=10,
                                 headers={"Authorization": f"Bearer {sandbox.admin_token}"}) as http:
        response = await http.post(f"/api/v1/namespaces/{RELEASE_NAMESPACE}/serviceaccounts/{RELEASE}/token",
                                   json={})
        response.raise_for_status()
    kubeconfig = sandbox.write_kubeconfig(tmp_path / "kubeconfig", token=response.json()["status"]["token"])
    token_file = tmp_path / "receiver-token"
    token_file.write_text(RECEIVER_TOKEN)
    ports = {"metrics": runner.free_port(), "receiver": runner.free_port()}
    log_path = tmp_path / "operator.log"
    with log_path.open("wb") as log:
        process = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "remediator", *operator_args(chart, ports, token_file), "--kubeconfig",
            str(kubeconfig), *TEST_FLAGS, stdout=log, stderr=asyncio.subprocess.STDOUT,
            env={**os.environ, "POD_NAMESPACE": RELEASE_NAMESPACE, "POD_NAME": "remediator-0"})
    try:
        async with httpx.AsyncClient() as probe:
            async def live() -> bool:
                assert process.returncode is None, log_path.read_text()
                with contextlib.suppress(httpx.HTTPError):
                    return (await probe.get(f"http://127.0.0.1:{ports['metrics']}/healthz")).status_code == 200
                return False
            await wait_for(live, timeout=30)
        yield ports
    finally:
        await processes.stop(process)
        print(log_path.read_text()[-5000:])


Right = tuple[str, str, str, str]  # (namespace, or "*" for a ClusterRole; verb; API group; resource[/sub])


def granted(chart: list[dict[str, Any]]) -> set[Right]:
    """Every right the chart's roles grant."""
    return {(role["metadata"].get("namespace", "*") if role["kind"] == "Role" else "*", verb, group, resource)
            for role in chart if role["kind"] in ("ClusterRole", "Role")
            for rule in role["rules"]
            for group in rule["apiGroups"] for resource in rule["resources"] for verb in rule["verbs"]}


def used(sandbox: runner.RunningSandbox, rights: set[Right]) -> set[Right]:
    """The rights the operator's requests used (discovery left out): a namespace's Role where it grants the
    request, else the ClusterRole, so a cluster-wide grant only namespaced requests used shows as unused."""
    found = set()
    for r in sandbox.sandbox.access.log:
        if r.user == OPERATOR and r.resource:
            request = (r.verb, r.api_group, f"{r.resource}/{r.subresource}" if r.subresource else r.resource)
            found.add((r.namespace, *request) if (r.namespace, *request) in rights else ("*", *request))
    return found


def forbidden(sandbox: runner.RunningSandbox) -> list[tuple[str, str, str, str, str]]:
    """The operator's requests answered 403: (verb, group, resource[/subresource], namespace, name)."""
    return [(r.verb, r.api_group, f"{r.resource}/{r.subresource}" if r.subresource else r.resource, r.namespace,
             r.name) for r in sandbox.sandbox.access.log if r.user == OPERATOR and r.code == 403]


def incident(name: str, *steps: dict[str, Any]) -> dict[str, Any]:
    # The chart's admission policy: an Incident is created in its requester's own name.
    return {"apiVersion": API, "kind": "Incident", "metadata": {
                "name": name, "namespace": "default", "annotations": {"remediator.dev/requested-by": "sandbox-admin"}},
            "spec": {"severity": "P2", "summary": f"{name} for the least-privilege test", "steps": list(steps)}}


def target(name: str) -> dict[str, str]:
    return {"kind": "Deployment", "name": name}


def named(manifest: dict[str, Any], name: str) -> dict[str, Any]:
    labels = {"app": name}
    spec = {**manifest["spec"], "selector": {"matchLabels": labels},
            "template": {**manifest["spec"]["template"], "metadata": {"labels": labels}}}
    return {**manifest, "metadata": {**manifest["metadata"], "name": name}, "spec": spec}


async def two_revisions(admin: manifests.Client, name: str) -> None:
    for image in ("shop:1.0", "shop:1.1"):
        await roll_out(admin, named(with_image(deployment(image, replicas=2), image), name))


async def phase(admin: manifests.Client, kind: str, name: str) -> str:
    found = await admin.get(API, kind, "default", name) or {}
    return str((found.get("status") or {}).get("phase", ""))


async def rotation_ready(admin: manifests.Client) -> bool:
    found = await admin.get(API, "KeyRotation", "default", "payments-keys") or {}
    return conditions(found.get("status") or {}).get("Ready") == ("True", "Idle")


@pytest.mark.parametrize("scope", sorted(SCOPES))
async def test_the_operator_works_with_exactly_the_rights_the_chart_grants(
        sandbox: runner.RunningSandbox, admin: manifests.Client, tmp_path: pathlib.Path, scope: str) -> None:
    chart = rendered(RELEASE, RELEASE_NAMESPACE, values(**SCOPES[scope]))
    for name in (RELEASE_NAMESPACE, "elsewhere"):
        await admin.apply({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name}})
    await admin.apply({"apiVersion": "v1", "kind": "Namespace", "metadata": {
        "name": "default", "labels": {"remediator.dev/team": "shop"}}})
    await admin.apply({"apiVersion": "v1", "kind": "Secret", "metadata": {
        "name": f"{RELEASE}-receiver-token", "namespace": RELEASE_NAMESPACE}, "stringData": {"token": RECEIVER_TOKEN}})
    for document in chart:  # all of it, as helm install would: the API server validates each object
        await admin.apply(document)
    await admin.apply({**secret("not-yours"), "metadata": {"name": "not-yours", "namespace": "elsewhere"}})
    await asyncio.gather(*(roll_out(admin, named(deployment("shop:1.0", replicas=2), name))
                           for name in ("web", "api", "workers", "crashing")),
                         two_revisions(admin, "orders"), two_revisions(admin, "cart"))
    await admin.apply(secret())
    await admin.apply(secret("inline-keys", {"token": "inline-token-0001"}))
    for kind in ("Deployment", "StatefulSet", "DaemonSet"):
        await admin.apply(consumer(f"payments-{kind.lower()}", kind=kind))
        # Incidents act on others: one that restarts a consumer would hold off the rotation's restart of it
        # (the restart cooldown).
        await admin.apply(consumer(f"other-{kind.lower()}", reads="none", kind=kind))
    await admin.apply(runbook_manifest())
    await admin.apply(key_rotation(trigger="t1"))
    # The operator's own pod ($POD_NAME), which it labels when it leads.
    await admin.apply({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "remediator-0",
                       "namespace": RELEASE_NAMESPACE},
                       "spec": {"containers": [{"name": "operator", "image": "postgres:16"}]}})

    async with operator(sandbox, admin, chart, tmp_path) as ports:
        async def labelled_leader() -> bool:
            pod = await admin.get("v1", "Pod", RELEASE_NAMESPACE, "remediator-0") or {}
            return bool((pod["metadata"].get("labels") or {}).get("remediator.dev/leader") == "true")
        await wait_for(labelled_leader, timeout=15)
        await admin.apply(incident("scale", {"name": "out", "scale": {"target": target("web"), "by": 1}},
                                   {"name": "db", "scale": {"target": {"kind": "StatefulSet",
                                                                       "name": "other-statefulset"}, "by": 1}}))
        await admin.apply(incident("restart", {"name": "restart", "restart": {"target": target("api")}},
                                   {"name": "agents", "restart": {"target": {"kind": "DaemonSet",
                                                                             "name": "other-daemonset"}}}))
        await admin.apply(incident("pods", {"name": "delete", "restart": {
            "target": target("workers"), "mode": "deletePods", "selector": {"matchLabels": {"app": "workers"}}}}))
        await admin.apply(incident("job", {"name": "migrate", "job": {"template": {
            "image": "postgres:16", "command": ["sh", "-c"], "args": ["true"]}}}))
        await admin.apply(incident("rollback", {"name": "undo", "rollback": {"target": target("orders")}}))
        await admin.apply(incident("rotate", {"name": "rotate", "rotateKey": {"spec": {
            "secretRef": {"name": "inline-keys"}, "keys": [{"key": "token"}]}}}))
        await admin.apply({"apiVersion": API, "kind": "RollbackRequest", "metadata": {"name": "undo-cart",
                           "namespace": "default"}, "spec": {"target": target("cart")}})
        await wait_for(lambda: rotation_ready(admin))  # t1 seen as the current trigger: t2 is a change
        await admin.apply(key_rotation(trigger="t2", gracePeriod="1s"))
        async with httpx.AsyncClient(timeout=10) as http:
            answer = await http.post(f"http://127.0.0.1:{ports['receiver']}/alertmanager",
                                     json=notification(alert(deployment="crashing")),
                                     headers={"Authorization": f"Bearer {RECEIVER_TOKEN}"})
            assert answer.status_code == 200, answer.text
            scraped = await http.get(f"http://127.0.0.1:{ports['metrics']}/metrics")  # the ServiceMonitor's
            assert "remediator_alerts_received_total 1.0" in scraped.text
            assert "remediator_leader 1.0" in scraped.text

        async def states() -> dict[str, str]:
            found = {name: await phase(admin, "Incident", name) for name in INCIDENTS}
            found["undo-cart"] = await phase(admin, "RollbackRequest", "undo-cart")
            rotation = await admin.get(API, "KeyRotation", "default", "payments-keys") or {}
            found["payments-keys"] = stage(rotation.get("status") or {}) or ""
            return found

        async def all_done() -> bool:
            assert not forbidden(sandbox), forbidden(sandbox)
            return await states() == DONE
        try:
            await wait_for(all_done, timeout=45)
        except AssertionError as e:
            raise AssertionError(f"{e}; {await states()}") from None

    assert forbidden(sandbox) == []
    rights = granted(chart)
    unused = {right for right in rights - used(sandbox, rights) if right[1:] not in NOT_EXERCISED}
    assert unused == set(), "granted rights the operator never used"
    async with manifests.Client(sandbox.url, token=sandbox.token_for(OPERATOR, ("system:serviceaccounts",)),
                                verify=sandbox.client_ssl()) as as_operator:
        if scope == "namespaces":
            with pytest.raises(httpx.HTTPStatusError) as refused:
                await as_operator.get("v1", "Secret", "elsewhere", "not-yours")
            assert refused.value.response.status_code == 403
