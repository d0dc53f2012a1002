"""The hot path's requests (retries.request_json) over the asyncio client: what the server sees and what the
caller gets. The sandbox sits behind kmock, which injects the faults and logs what arrives."""

from __future__ import annotations

import asyncio
import gc
import pathlib
import time
import types
from collections.abc import Iterator
from typing import Any

import kmock
import kubernetes.client
import pytest
from kubernetes.client.exceptions import ApiException

from remediator import api_requests, kube, manifests
from remediator.actions import fences, retries
from remediator.sandbox import runner

REPO = pathlib.Path(__file__).resolve().parents[2]
DEPLOYMENT = "/apis/apps/v1/namespaces/default/deployments/web"
SCALE = {"spec": {"replicas": 7}}
pytestmark = pytest.mark.sandbox_only("fault injection and the request log (kmock)")


@pytest.fixture()
def sandbox(kmock_sandbox: runner.RunningSandbox) -> runner.RunningSandbox:
    return kmock_sandbox


@pytest.fixture()
def mock(sandbox: runner.RunningSandbox) -> Any:
    return sandbox.handler  # type: ignore[attr-defined]


@pytest.fixture()
async def web(client: manifests.Client) -> None:
    await client.apply_file(REPO / "examples" / "01-workload.yaml")


@pytest.fixture()
def renewed_tokens(sandbox: runner.RunningSandbox, monkeypatch: pytest.MonkeyPatch) -> Iterator[list[str]]:
    """The process's client (`kube.api_client()`) for the sandbox, with a credentials hook (as the kubeconfig
    and in-cluster loaders set one) that hands out a new token each time it runs; yields the tokens."""
    tokens: list[str] = []

    def renew(configuration: kubernetes.client.Configuration) -> None:
        tokens.append(f"token-{len(tokens) + 1}")
        configuration.api_key["BearerToken"] = tokens[-1]
        configuration.refresh_api_key_hook = renew

    configuration = kubernetes.client.Configuration(host=sandbox.url)
    configuration.api_key["BearerToken"] = "token-0"  # as loaded, before the hook first runs
    configuration.api_key_prefix["BearerToken"] = "Bearer"
    configuration.refresh_api_key_hook = renew
    monkeypatch.setattr(kubernetes.client.Configuration, "_default", configuration)
    monkeypatch.setattr(kube, "TOKEN_CHECK_SECONDS", 0.3)
    monkeypatch.setattr(kube, "USER_AGENT", "remediator/test (replica-a)")
    kube.api_client.cache_clear()
    yield tokens
    kube.api_client.cache_clear()


def status(code: int, reason: str) -> dict[str, Any]:
    return {"kind": "Status", "apiVersion": "v1", "status": "Failure", "reason": reason, "code": code,
            "message": "injected"}


async def replicas(client: manifests.Client) -> int:
    found = await client.get("apps/v1", "Deployment", "default", "web")
    assert found is not None
    return int(found["spec"]["replicas"])


async def test_a_transient_503_is_sent_again_and_the_second_answer_returned(
        web: None, mock: Any, kubernetes_client: kubernetes.client.ApiClient) -> None:
    request = f"get {DEPLOYMENT}"
    seen = len(mock[request])  # the test's own earlier requests: the fault goes to the next one
    fault = mock[request][seen:seen + 1] << 503 << status(503, "ServiceUnavailable")
    found = await retries.request_json(kubernetes_client, "GET", DEPLOYMENT)
    assert found["metadata"]["name"] == "web"
    assert len(fault) == 1 and len(mock[request]) == seen + 2


async def test_retry_after_on_a_429_is_honoured(
        web: None, mock: Any, kubernetes_client: kubernetes.client.ApiClient) -> None:
    request = f"patch {DEPLOYMENT}"
    seen = len(mock[request])
    mock[request][seen:seen + 1] << 429 << kmock.headers({"Retry-After": "1"}) << status(429, "TooManyRequests")
    started = time.monotonic()
    await retries.request_json(kubernetes_client, "PATCH", DEPLOYMENT, SCALE,
                               content_type=api_requests.STRATEGIC_MERGE_PATCH)
    assert time.monotonic() - started >= 0.9
    assert len(mock[request]) == seen + 2


async def test_an_error_answer_is_the_synchronous_clients_api_exception_with_the_servers_status(
        web: None, kubernetes_client: kubernetes.client.ApiClient) -> None:
    with pytest.raises(ApiException) as raised:
        await retries.request_json(kubernetes_client, "GET", api_requests.path(
            "/apis/apps/v1/namespaces", "default", "deployments", "gone"))
    assert (raised.value.status, raised.value.reason) == (404, "Not Found")
    assert '"reason":"NotFound"' in (raised.value.body or "").replace(" ", "")
    assert raised.value.headers is not None and raised.value.headers.get("content-type") == "application/json"


async def test_a_failed_request_leaves_nothing_for_the_cyclic_collector(
        web: None, kubernetes_client: kubernetes.client.ApiClient) -> None:
    """A storm's deletions answer 422 by the thousand (their lock already released): each error, its
    response and the frames it passed must go when the caller lets go of it, not at a full collection."""
    gone = api_requests.path("/apis/apps/v1/namespaces", "default", "deployments", "gone")
    gc.collect()
    gc.set_debug(gc.DEBUG_SAVEALL)  # what a collection finds unreachable is kept in gc.garbage to look at
    try:
        for _ in range(5):
            with pytest.raises(ApiException):
                await retries.request_json(kubernetes_client, "GET", gone)
        gc.collect()
        left = [type(o).__name__ for o in gc.garbage if isinstance(o, (BaseException, types.FrameType))]
    finally:
        gc.set_debug(0)
        gc.garbage.clear()
    assert left == []


async def test_an_answer_comes_without_the_servers_record_of_field_owners(
        web: None, client: manifests.Client, kubernetes_client: kubernetes.client.ApiClient) -> None:
    found = await retries.request_json(kubernetes_client, "GET", DEPLOYMENT)
    scaled = await retries.request_json(kubernetes_client, "PATCH", DEPLOYMENT, SCALE,
                                        content_type=api_requests.STRATEGIC_MERGE_PATCH)
    assert "managedFields" not in found["metadata"] and "managedFields" not in scaled["metadata"]
    assert scaled["spec"]["replicas"] == 7 and found["metadata"]["name"] == "web"
    # Sent back without it (a read-modify-write), the server keeps its own record.
    for _ in range(10):  # the sandbox's Deployment controller writes the status meanwhile: read again
        current = await retries.request_json(kubernetes_client, "GET", DEPLOYMENT)
        current["metadata"]["labels"] = {**current["metadata"].get("labels", {}), "touched": "yes"}
        try:
            await retries.request_json(kubernetes_client, "PUT", DEPLOYMENT, current)
            break
        except ApiException as e:
            assert e.status == 409
            await asyncio.sleep(0.1)
    stored = await client.get("apps/v1", "Deployment", "default", "web")
    assert stored is not None and stored["metadata"]["labels"]["touched"] == "yes"
    assert stored["metadata"].get("managedFields"), "the server's record of field owners was lost"


async def test_no_answer_within_the_read_timeout_fails_the_request_at_once_without_sending_it_again(
        web: None, mock: Any, kubernetes_client: kubernetes.client.ApiClient,
        monkeypatch: pytest.MonkeyPatch) -> None:
    async def hung(request: kmock.Request) -> object:
        await asyncio.sleep(3600)
        return NotImplemented

    request = f"patch {DEPLOYMENT}"
    seen = len(mock[request])
    mock[request][seen:seen + 1] << hung
    monkeypatch.setattr(retries, "REQUEST_TIMEOUT", (0.5, 0.5))
    started = time.monotonic()
    with pytest.raises(retries.API_ERRORS) as raised:
        await retries.request_json(kubernetes_client, "PATCH", DEPLOYMENT, SCALE,
                                   content_type=api_requests.STRATEGIC_MERGE_PATCH)
    assert 0.4 <= time.monotonic() - started < 2.0
    assert retries.describe(raised.value) == "SocketTimeoutError"
    assert len(mock[request]) == seen + 1, "the server may have carried it out: not sent again"


async def test_a_deposed_leader_does_not_send_a_request_that_waited_for_a_place(
        web: None, client: manifests.Client, mock: Any, kubernetes_client: kubernetes.client.ApiClient,
        monkeypatch: pytest.MonkeyPatch) -> None:
    """With every place taken (one, here), a write waits; the replica loses its lease meanwhile: the fence,
    checked when the write's turn comes, stops it before it leaves."""
    async def slow(request: kmock.Request) -> object:
        await asyncio.sleep(0.5)
        return NotImplemented

    def deposed() -> None:
        raise fences.LeadershipLost("another replica leads")

    monkeypatch.setattr(retries, "API_CONCURRENCY", 1)
    reads, writes = len(mock[f"get {DEPLOYMENT}"]), len(mock[f"patch {DEPLOYMENT}"])
    mock[f"get {DEPLOYMENT}"][reads:reads + 1] << slow
    read = asyncio.create_task(retries.request_json(kubernetes_client, "GET", DEPLOYMENT))
    await asyncio.sleep(0.1)  # the read has the only place
    write = asyncio.create_task(retries.request_json(kubernetes_client, "PATCH", DEPLOYMENT, SCALE,
                                                     content_type=api_requests.STRATEGIC_MERGE_PATCH))
    await asyncio.sleep(0.1)
    monkeypatch.setattr(fences, "_current", fences.Fence(check=deposed))
    with pytest.raises(fences.LeadershipLost):
        await write
    assert (await read)["metadata"]["name"] == "web"
    assert len(mock[f"patch {DEPLOYMENT}"]) == writes
    assert await replicas(client) == 2


async def test_requests_carry_the_processs_user_agent_and_a_renewed_token_soon_after_it_is_renewed(
        web: None, mock: Any, renewed_tokens: list[str]) -> None:
    api = kube.api_client()
    for _ in range(3):
        await retries.request_json(api, "GET", DEPLOYMENT)
    await asyncio.sleep(kube.TOKEN_CHECK_SECONDS)
    await retries.request_json(api, "GET", DEPLOYMENT)
    sent = [(request.headers.get("Authorization"), request.headers.get("User-Agent"))
            for request in mock[f"get {DEPLOYMENT}"]][-4:]
    assert sent == [("Bearer token-1", "remediator/test (replica-a)")] * 3 + [
        ("Bearer token-2", "remediator/test (replica-a)")]
