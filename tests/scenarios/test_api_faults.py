"""Transient API faults: the operator retries with backoff and the incident still resolves, acting once.

The sandbox sits behind kmock; each test injects one fault into the operator's traffic, on the
next matching request only (``[n:n+1]``), and reads kmock's request log to see the retry happen.
"""

from __future__ import annotations

import asyncio
import pathlib
import time
from typing import Any

import kmock
import pytest

from remediator import manifests
from remediator.sandbox import runner

from .support import deploy_three_revisions, image_of, wait_for

pytestmark = pytest.mark.sandbox_only("fault injection and the request log (kmock)")

REPO = pathlib.Path(__file__).resolve().parents[2]
API = "remediator.dev/v1alpha1"
DEPLOYMENT = "/apis/apps/v1/namespaces/default/deployments/web"
STATUS = f"/apis/{API}/namespaces/default/incidents/busy/status"


def api_status(code: int, reason: str) -> dict[str, Any]:
    return {"kind": "Status", "apiVersion": "v1", "status": "Failure", "reason": reason, "code": code,
            "message": "injected"}


async def slowly(request: kmock.Request) -> object:
    await asyncio.sleep(2)
    return NotImplemented  # Not answered here: on to the sandbox.


def dropped(request: kmock.Request) -> object:
    assert request._raw_request is not None and request._raw_request.transport is not None
    request._raw_request.transport.abort()
    return b""


# name: (the request, the fault's payloads, whether the operator must send the request again)
FAULTS = {
    "a conflict on the status write": (f"patch {STATUS}", (409, api_status(409, "Conflict")), True),
    "a server error on the scale write": (f"patch {DEPLOYMENT}/scale", (500, api_status(500, "InternalError")), True),
    "throttling on the deployment read": (f"get {DEPLOYMENT}", (429, kmock.headers({"Retry-After": "1"}),
                                                                api_status(429, "TooManyRequests")), True),
    "a dropped connection on the claim": (f"patch {DEPLOYMENT}", (dropped,), True),
    "a slow deployment read": (f"get {DEPLOYMENT}", (slowly,), False),
}


@pytest.fixture()
def sandbox(kmock_sandbox: runner.RunningSandbox) -> runner.RunningSandbox:
    """Everything in this module (the kubeconfig, the client) goes through kmock."""
    return kmock_sandbox


async def web(client: manifests.Client) -> dict[str, Any]:
    found = await client.get("apps/v1", "Deployment", "default", "web")
    assert found is not None
    return found


async def resolved(client: manifests.Client) -> bool:
    found = await client.get(API, "Incident", "default", "busy")
    return ((found or {}).get("status") or {}).get("phase") == "Resolved"


@pytest.mark.parametrize("fault", list(FAULTS))
async def test_the_incident_resolves_through_a_transient_fault_and_scales_once(
        kmock_sandbox: runner.RunningSandbox, client: manifests.Client, start_operator: Any, fault: str) -> None:
    mock: Any = kmock_sandbox.handler  # type: ignore[attr-defined]
    await client.apply_file(REPO / "examples" / "01-workload.yaml")
    before = await web(client)
    request, payloads, retried = FAULTS[fault]
    seen = len(mock[request])  # The test's own earlier requests: the fault goes to the next one.
    sent_at: list[float] = []
    reaction = mock[request][seen:seen + 1]
    if retried:  # A delay must stay the only payload: kmock streams several, and cannot pass a stream on.
        reaction = reaction >> (lambda: sent_at.append(time.monotonic()))
    for payload in payloads:
        reaction = reaction << payload
    retry = mock[request][seen + 1:seen + 2] << (lambda: sent_at.append(time.monotonic()) or NotImplemented)
    await start_operator()
    await client.apply({"apiVersion": API, "kind": "Incident", "metadata": {"name": "busy", "namespace": "default"},
                        "spec": {"severity": "P2", "summary": "web is overloaded", "steps": [
                            {"name": "scale-out", "scale": {"target": {"kind": "Deployment", "name": "web"},
                                                            "by": 2}}]}})

    await wait_for(lambda: resolved(client), timeout=30)

    after = await web(client)
    assert after["spec"]["replicas"] == before["spec"]["replicas"] + 2
    assert after["metadata"]["generation"] == before["metadata"]["generation"] + 1, "one change of the spec"
    assert len(reaction) == 1, "the fault was injected once"
    if retried:
        assert len(retry) == 1 and len(sent_at) == 2, "the request was sent again"
    if fault == "throttling on the deployment read":
        assert sent_at[1] - sent_at[0] >= 0.9, "Retry-After is honoured"


async def test_a_conflict_on_the_rollback_requests_status_after_the_rollback_rolls_back_once(
        kmock_sandbox: runner.RunningSandbox, client: manifests.Client, start_operator: Any) -> None:
    """The status write after the rollback meets a 409 (someone changed the request meanwhile): the
    operator decides again on a fresh copy, which records the rollback's intent, and does not repeat it."""
    mock: Any = kmock_sandbox.handler  # type: ignore[attr-defined]
    await deploy_three_revisions(client)
    request = f"patch /apis/{API}/namespaces/default/rollbackrequests/undo/status"
    conflict = mock[request][1:2] << 409 << api_status(409, "Conflict")
    await start_operator()
    await client.apply({"apiVersion": API, "kind": "RollbackRequest",
                        "metadata": {"name": "undo", "namespace": "default"},
                        "spec": {"target": {"kind": "Deployment", "name": "web"}}})

    async def complete() -> bool:
        found = await client.get(API, "RollbackRequest", "default", "undo")
        return ((found or {}).get("status") or {}).get("phase") == "Complete"

    await wait_for(complete, timeout=30)
    assert len(conflict) == 1, "the conflict was injected"
    rolled_back = await web(client)
    assert image_of(rolled_back) == "shop:1.1"
    assert rolled_back["metadata"]["annotations"]["deployment.kubernetes.io/revision"] == "4", "rolled back once"


async def test_a_hung_api_call_times_out_and_the_incident_still_scales_once(
        kmock_sandbox: runner.RunningSandbox, client: manifests.Client, start_operator: Any) -> None:
    """A sandbox whose connection hung made a PATCH wait for 10 minutes: every call has a read timeout."""
    mock: Any = kmock_sandbox.handler  # type: ignore[attr-defined]
    await client.apply_file(REPO / "examples" / "01-workload.yaml")
    before = await web(client)

    async def hung(request: kmock.Request) -> object:
        await asyncio.sleep(3600)
        return NotImplemented

    request = f"patch {DEPLOYMENT}/scale"
    hang = mock[request][0:1] << hung
    await start_operator("--api-timeout", "2")
    started = time.monotonic()
    await client.apply({"apiVersion": API, "kind": "Incident", "metadata": {"name": "busy", "namespace": "default"},
                        "spec": {"severity": "P2", "summary": "web is overloaded", "steps": [
                            {"name": "scale-out", "scale": {"target": {"kind": "Deployment", "name": "web"},
                                                            "by": 2}}]}})
    await wait_for(lambda: resolved(client), timeout=30)
    assert len(hang) == 1, "the scale write hung once"
    assert time.monotonic() - started < 20, "the hung call was given up after its read timeout"
    assert (await web(client))["spec"]["replicas"] == before["spec"]["replicas"] + 2
