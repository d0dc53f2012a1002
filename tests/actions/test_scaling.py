"""One scale action, two error contracts, against the sandbox: an Incident step records a failure,
a RollbackRequest raises a server error so that Kopf retries the reconcile (which re-issues the
recorded scale). kmock injects the server errors; everything else is the sandbox's own answer."""

from __future__ import annotations

import pathlib
from typing import Any

import aiohttp
import kubernetes.client
import pytest

from remediator import kube, manifests
from remediator.actions import retries, rollouts, workloads
from remediator.engine import intents
from remediator.sandbox import runner

REPO = pathlib.Path(__file__).resolve().parents[2]
SCALE = "patch /apis/apps/v1/namespaces/default/deployments/web/scale"


@pytest.fixture()
def sandbox(kmock_sandbox: runner.RunningSandbox) -> runner.RunningSandbox:
    return kmock_sandbox


@pytest.fixture(autouse=True)
def no_backoff(monkeypatch: pytest.MonkeyPatch) -> None:
    async def sleep(seconds: float) -> None:
        return None

    monkeypatch.setattr(retries.asyncio, "sleep", sleep)


async def web_replicas(client: manifests.Client) -> int:
    found = await client.get("apps/v1", "Deployment", "default", "web")
    assert found is not None
    return int(found["spec"]["replicas"])


async def test_the_scale_sets_the_absolute_number_and_repeating_it_changes_nothing(
        client: manifests.Client, kubernetes_client: kubernetes.client.ApiClient) -> None:
    await client.apply_file(REPO / "examples" / "01-workload.yaml")
    for _ in range(2):
        scale = intents.ScaleTo("s", "Deployment", "web", 5)
        assert await workloads.scale_to(kubernetes_client, "default", scale) == intents.done()
        assert await web_replicas(client) == 5


async def test_a_server_error_fails_an_incident_scale_but_is_raised_for_a_rollback_request(
        sandbox: runner.RunningSandbox, client: manifests.Client,
        kubernetes_client: kubernetes.client.ApiClient) -> None:
    await client.apply_file(REPO / "examples" / "01-workload.yaml")
    mock: Any = sandbox.handler  # type: ignore[attr-defined]
    mock[SCALE] << 503 << {"kind": "Status", "apiVersion": "v1", "status": "Failure", "code": 503,
                           "reason": "ServiceUnavailable", "message": "injected"}
    stop = intents.ScaleTo("stop-application", "Deployment", "web", 0)
    assert await workloads.scale_to(kubernetes_client, "default", stop) == intents.failed(
        "ApiError", "API error 503 Service Unavailable on deployment/web")
    with pytest.raises(rollouts.TransientApiError):
        await workloads.scale_to(kubernetes_client, "default", stop, on_error=rollouts.failure)
    assert await web_replicas(client) == 2, "nothing changed"


@pytest.mark.parametrize(("name", "replicas", "reason", "message"), [
    ("gone", 0, "TargetNotFound", "deployment/gone not found in namespace default"),
    ("web", -1, "Invalid", "the API server refused the change to deployment/web: Scale.autoscaling \"web\" is "
                           "invalid: spec.replicas: Invalid value: -1: must be greater than or equal to 0"),
])
async def test_a_refused_rollback_request_scale_is_a_failed_result(
        client: manifests.Client, kubernetes_client: kubernetes.client.ApiClient, name: str, replicas: int, reason: str,
        message: str) -> None:
    await client.apply_file(REPO / "examples" / "01-workload.yaml")
    result = await workloads.scale_to(kubernetes_client, "default", intents.ScaleTo("s", "Deployment", name, replicas),
                                      on_error=rollouts.failure)
    assert result == intents.failed(reason, message)
    assert await web_replicas(client) == 2


async def test_patches_whose_answer_is_not_needed_reuse_the_connection(
        sandbox: runner.RunningSandbox, client: manifests.Client) -> None:
    """The requests share a kept-alive connection: a connection per request (a response left unread, a
    pool closing them) would cost both sides a TCP handshake per request through a storm."""
    await client.apply_file(REPO / "examples" / "01-workload.yaml")
    opened: list[object] = []

    async def count(session: object, context: object, params: object) -> None:
        opened.append(params)

    trace = aiohttp.TraceConfig()
    trace.on_connection_create_end.append(count)
    with kubernetes.client.ApiClient(kubernetes.client.Configuration(host=sandbox.url)) as api:
        kube.hot_path_client(api).configuration.trace_configs = [trace]  # read when its pool opens
        for replicas in range(1, 11):
            scale = intents.ScaleTo("s", "Deployment", "web", replicas)
            assert await workloads.scale_to(api, "default", scale) == intents.done()
            restart = intents.RolloutRestart("r", "Deployment", "web", f"2026-11-30T04:{replicas:02d}:00Z")
            assert await workloads.rollout_restart(api, "default", restart) == intents.done()
        assert len(opened) == 1
    assert await web_replicas(client) == 10
