"""Shared fixtures: the sandbox API server (optionally behind kmock) and its kubeconfig."""

from __future__ import annotations

import pathlib
from collections.abc import AsyncIterator

import httpx
import pytest

from remediator.sandbox import controllers, runner, server, store

REPO = pathlib.Path(__file__).resolve().parents[1]
CRDS = sorted((REPO / "crds").glob("*.yaml"))


@pytest.fixture()
def simulations() -> controllers.Simulations:
    """Which controller simulations run; override in a test module to switch some off."""
    return controllers.Simulations()


@pytest.fixture()
async def sandbox(simulations: controllers.Simulations) -> AsyncIterator[runner.RunningSandbox]:
    """A sandbox API server on a free port with the project's CRDs registered."""
    async with runner.running(crd_paths=CRDS, simulations=simulations) as running:
        yield running


@pytest.fixture()
async def kmock_sandbox(simulations: controllers.Simulations) -> AsyncIterator[runner.RunningSandbox]:
    """The sandbox behind kmock: `running.handler` takes kmock reactions (faults) and logs requests."""
    from remediator.sandbox import kmocked

    sandbox_app = server.Sandbox(store.ObjectStore())
    async with kmocked.SandboxMock(sandbox=sandbox_app) as mock:
        async with runner.running(sandbox=sandbox_app, handler=mock, crd_paths=CRDS,
                                  simulations=simulations) as running:
            running.handler = mock  # type: ignore[attr-defined]
            yield running


@pytest.fixture()
def kubeconfig(sandbox: runner.RunningSandbox, tmp_path: pathlib.Path) -> pathlib.Path:
    return sandbox.write_kubeconfig(tmp_path / "kubeconfig")


@pytest.fixture()
async def api(sandbox: runner.RunningSandbox) -> AsyncIterator[httpx.AsyncClient]:
    """A raw HTTP client for the sandbox: what a Kubernetes client sends on the wire."""
    async with httpx.AsyncClient(base_url=sandbox.url, timeout=10) as client:
        yield client
