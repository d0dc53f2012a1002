"""The API fails during a POST (500, 429, a hung call, a dropped connection): the receiver answers 503,
Alertmanager's retry is answered 200, and the end state is exactly one Incident holding the alert once."""

from __future__ import annotations

import asyncio
from typing import Any

import kmock
import pytest
from kubernetes.aio import client as aio
from tests.local_servers import serving

from remediator.receiver import incident_writes, server, tokens
from remediator.sandbox import runner

from .alerts import alert, notification, runbook_manifest
from .conftest import RunningReceiver

API = "/apis/remediator.dev/v1alpha1"
INCIDENTS = f"{API}/namespaces/default/incidents"


@pytest.fixture()
def receiver_sandbox(kmock_sandbox: runner.RunningSandbox) -> runner.RunningSandbox:
    return kmock_sandbox


def api_status(code: int, reason: str) -> dict[str, Any]:
    return {"kind": "Status", "apiVersion": "v1", "status": "Failure", "reason": reason, "code": code,
            "message": "injected"}


async def hung(request: kmock.Request) -> object:
    await asyncio.sleep(3600)
    return NotImplemented


def dropped(request: kmock.Request) -> object:
    assert request._raw_request is not None and request._raw_request.transport is not None
    request._raw_request.transport.abort()
    return b""


FAULTS: dict[str, tuple[str, tuple[Any, ...]]] = {
    "a server error listing the runbooks": (f"get {API}/runbooks", (500, api_status(500, "InternalError"))),
    "throttling on the create": (f"post {INCIDENTS}", (429, api_status(429, "TooManyRequests"))),
    "a server error on the create": (f"post {INCIDENTS}", (500, api_status(500, "InternalError"))),
    "a hung create": (f"post {INCIDENTS}", (hung,)),
    "a dropped connection on the create": (f"post {INCIDENTS}", (dropped,)),
    "a server error on the alerts' status write": (f"patch {INCIDENTS}/{{name}}/status",
                                                   (500, api_status(500, "InternalError"))),
}


@pytest.mark.parametrize("fault", list(FAULTS))
async def test_a_fault_is_answered_503_and_the_retry_leaves_exactly_one_incident(
        receiver: RunningReceiver, receiver_sandbox: runner.RunningSandbox, fault: str) -> None:
    mock: Any = receiver_sandbox.handler  # type: ignore[attr-defined]
    await receiver.apply_runbook(runbook_manifest())
    body = notification(alert())
    request, payloads = FAULTS[fault]
    if "{name}" in request:
        # The Incident's name is known once the plan is made: take it from a dry plan of the same body.
        from remediator.api.runbooks import RunbookSpec
        from remediator.receiver import plans
        from remediator.receiver.payloads import Notification
        spec = RunbookSpec.model_validate(runbook_manifest()["spec"])
        [episode] = plans.plan(Notification.model_validate(body), [plans.Runbook("default", "crash-loop", spec)],
                               None).episodes
        request = request.format(name=episode.name)
    seen = len(mock[request])
    reaction = mock[request][seen:seen + 1]
    for payload in payloads:
        reaction = reaction << payload

    first = await receiver.post(body)
    assert first.status_code == 503, first.text
    assert len(reaction) == 1, "the fault was injected"
    retried = await receiver.post(body)
    assert retried.status_code == 200, retried.text

    [incident] = await receiver.incidents()
    assert [a["fingerprint"] for a in incident["status"]["alerts"]] == ["f1"]


async def test_an_incident_the_api_server_refuses_is_a_rejection_not_a_retry(
        receiver: RunningReceiver, receiver_sandbox: runner.RunningSandbox) -> None:
    """A 422 will not change on a retry: answered 200 with the reason, so Alertmanager does not loop."""
    mock: Any = receiver_sandbox.handler  # type: ignore[attr-defined]
    await receiver.apply_runbook(runbook_manifest())
    request = f"post {INCIDENTS}"
    refusal = mock[request][len(mock[request]):] << 422 << api_status(422, "Invalid")
    response = await receiver.post(notification(alert()))
    assert response.status_code == 200, response.text
    assert [r["reason"] for r in response.json()["rejected"]] == ["RefusedByApiServer"]
    assert len(refusal) == 1
    assert await receiver.incidents() == []


async def test_a_token_secret_the_api_cannot_serve_now_is_a_503_not_a_401(
        receiver: RunningReceiver, receiver_sandbox: runner.RunningSandbox) -> None:
    """Alertmanager does not retry a 401: an API blip while the token is read must not lose the notification."""
    mock: Any = receiver_sandbox.handler  # type: ignore[attr-defined]
    secret = {"metadata": {"name": "alertmanager-webhook", "namespace": "default"}, "stringData": {"token": "s3cret"}}
    assert (await receiver.sandbox.post("/api/v1/namespaces/default/secrets", json=secret)).status_code == 201
    await receiver.apply_runbook(runbook_manifest())
    request = "get /api/v1/namespaces/default/secrets/alertmanager-webhook"
    reaction = mock[request][len(mock[request]):len(mock[request]) + 1] << 500 << api_status(500, "InternalError")
    async with aio.ApiClient(aio.Configuration(host=str(receiver.sandbox.base_url).rstrip("/"))) as api:
        handler = server.Receiver(incident_writes.IncidentWrites(api),
                                  tokens.SecretToken(api, "default", "alertmanager-webhook"), None)
        async with serving(server.build_app(handler)) as url:
            other = RunningReceiver(url, receiver.http, receiver.sandbox)
            first = await other.post(notification(alert()), token="s3cret")
            assert first.status_code == 503, first.text
            assert len(reaction) == 1, "the fault was injected"
            assert await receiver.incidents() == []
            assert (await other.post(notification(alert()), token="s3cret")).status_code == 200
            assert (await other.post(notification(alert()), token="wrong")).status_code == 401
    assert len(await receiver.incidents()) == 1
