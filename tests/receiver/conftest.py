"""The receiver served in the test's process against the sandbox, as `remediator run --receiver-address`
serves it, with a bearer token read from a file."""

from __future__ import annotations

import dataclasses
import pathlib
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from kubernetes.aio import client as aio
from tests.local_servers import serving

from remediator.receiver import incident_writes, server, tokens
from remediator.sandbox import runner

TOKEN = "s3cret-webhook-token"
API = "/apis/remediator.dev/v1alpha1"


@dataclasses.dataclass
class RunningReceiver:
    url: str
    http: httpx.AsyncClient
    sandbox: httpx.AsyncClient

    async def post(self, body: Any, token: str | None = TOKEN, headers: dict[str, str] | None = None,
                   **kwargs: Any) -> httpx.Response:
        headers = {**({"Authorization": f"Bearer {token}"} if token is not None else {}), **(headers or {})}
        if isinstance(body, (bytes, str)):
            return await self.http.post(f"{self.url}/alertmanager", content=body, headers=headers, **kwargs)
        return await self.http.post(f"{self.url}/alertmanager", json=body, headers=headers, **kwargs)

    async def incidents(self, namespace: str = "default") -> list[dict[str, Any]]:
        response = await self.sandbox.get(f"{API}/namespaces/{namespace}/incidents")
        response.raise_for_status()
        items: list[dict[str, Any]] = response.json()["items"]
        return items

    async def apply_runbook(self, manifest: dict[str, Any]) -> None:
        namespace = manifest["metadata"]["namespace"]
        response = await self.sandbox.post(f"{API}/namespaces/{namespace}/runbooks", json=manifest)
        assert response.status_code == 201, response.text


@pytest.fixture()
def receiver_sandbox(sandbox: runner.RunningSandbox) -> runner.RunningSandbox:
    """The sandbox the receiver talks to (a module may put kmock in front of it)."""
    return sandbox


@pytest.fixture()
def served_namespaces() -> tuple[str, ...]:
    """The namespaces the operator serves (`--namespace`); none: all."""
    return ()


@pytest.fixture()
async def receiver(receiver_sandbox: runner.RunningSandbox, tmp_path: pathlib.Path,
                   served_namespaces: tuple[str, ...]) -> AsyncIterator[RunningReceiver]:
    token_file = tmp_path / "token"
    token_file.write_text(TOKEN + "\n")
    async with aio.ApiClient(aio.Configuration(host=receiver_sandbox.url)) as api:
        handler = server.Receiver(incident_writes.IncidentWrites(api, timeout=2.0), tokens.FileToken(token_file),
                                  None, served_namespaces)
        async with serving(server.build_app(handler)) as url, \
                httpx.AsyncClient(timeout=30) as http, \
                httpx.AsyncClient(base_url=receiver_sandbox.url, timeout=10) as sandbox_http:
            yield RunningReceiver(url, http, sandbox_http)
