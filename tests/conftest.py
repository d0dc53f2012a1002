"""Shared fixtures: the sandbox API server (optionally behind kmock) and its kubeconfig."""

from __future__ import annotations

import asyncio
import contextlib
import os
import pathlib
import socket
import sys
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator

import httpx
import kubernetes.client
import pytest

from remediator import manifests, processes
from remediator.sandbox import controllers, images, runner, server, store

REPO = pathlib.Path(__file__).resolve().parents[1]
CRDS = sorted((REPO / "crds").glob("*.yaml"))
# Simulated delays in tests: a pod's 30 s termination grace period passes in 0.3 s. To run the scenarios
# under more realistic timing: REMEDIATOR_TEST_TIME_SCALE=0.2 pytest tests/scenarios (slower, same asserts).
TIME_SCALE = float(os.environ.get("REMEDIATOR_TEST_TIME_SCALE", "0.01"))
# Which images exist in the tests' sandbox and how their containers behave (see the file).
IMAGES = images.load(REPO / "tests" / "images.yaml")


@pytest.fixture()
def simulations() -> controllers.Simulations:
    """Which controller simulations run; override in a test module to switch some off."""
    return controllers.Simulations()


@pytest.fixture()
async def sandbox(simulations: controllers.Simulations) -> AsyncIterator[runner.RunningSandbox]:
    """A sandbox API server on a free port with the project's CRDs registered."""
    async with runner.running(crd_paths=CRDS, simulations=simulations, time_scale=TIME_SCALE,
                              image_registry=IMAGES) as running:
        yield running


@pytest.fixture()
async def kmock_sandbox(simulations: controllers.Simulations) -> AsyncIterator[runner.RunningSandbox]:
    """The sandbox behind kmock: `running.handler` takes kmock reactions (faults) and logs requests."""
    from remediator.sandbox import kmocked

    sandbox_app = server.Sandbox(store.ObjectStore())
    async with kmocked.SandboxMock(sandbox=sandbox_app) as mock:
        async with runner.running(sandbox=sandbox_app, handler=mock, crd_paths=CRDS,
                                  simulations=simulations, time_scale=TIME_SCALE,
                                  image_registry=IMAGES) as running:
            running.handler = mock  # type: ignore[attr-defined]
            yield running


@pytest.fixture()
def kubernetes_client(sandbox: runner.RunningSandbox) -> Iterator[kubernetes.client.ApiClient]:
    """An ApiClient for the sandbox, as the official client's users build one."""
    with kubernetes.client.ApiClient(kubernetes.client.Configuration(host=sandbox.url)) as client:
        # A kept-alive connection would hold up the server's shutdown by a second.
        client.set_default_header("Connection", "close")
        yield client


@pytest.fixture()
def kubeconfig(sandbox: runner.RunningSandbox, tmp_path: pathlib.Path) -> pathlib.Path:
    return sandbox.write_kubeconfig(tmp_path / "kubeconfig")


@pytest.fixture()
async def api(sandbox: runner.RunningSandbox) -> AsyncIterator[httpx.AsyncClient]:
    """A raw HTTP client for the sandbox: what a Kubernetes client sends on the wire."""
    async with httpx.AsyncClient(base_url=sandbox.url, timeout=10) as client:
        yield client


# -- the operator process (`remediator run`) against the sandbox --------------------------------------

OperatorFactory = Callable[..., Awaitable["OperatorProcess"]]


class OperatorProcess:
    """A running `remediator run` child process and where its log goes."""

    def __init__(self, process: asyncio.subprocess.Process, log_path: pathlib.Path) -> None:
        self.process = process
        self.log_path = log_path

    @property
    def log(self) -> str:
        return self.log_path.read_text(errors="replace")


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@pytest.fixture()
async def start_operator(kubeconfig: pathlib.Path, tmp_path: pathlib.Path) -> AsyncIterator[OperatorFactory]:
    """Start `remediator run` with extra flags (and environment); waits until its liveness probe answers."""
    started: list[OperatorProcess] = []

    async def start(*flags: str, env: dict[str, str] | None = None) -> OperatorProcess:
        port = _free_port()
        # The default namespace, unless the flags name the scope themselves.
        scope = () if "--all-namespaces" in flags else ("--namespace", "default")
        log_path = tmp_path / f"operator-{len(started)}.log"
        log = log_path.open("wb")
        process = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "remediator", "run", "--kubeconfig", str(kubeconfig), *scope,
            "--liveness", f"http://127.0.0.1:{port}/healthz", *flags, stdout=log, stderr=asyncio.subprocess.STDOUT,
            env=None if env is None else {**os.environ, **env})
        operator = OperatorProcess(process, log_path)
        started.append(operator)
        async with httpx.AsyncClient() as client:
            # 30 s: on a loaded machine loading the Kubernetes clients alone takes several seconds.
            for _ in range(600):
                if process.returncode is not None:
                    raise AssertionError(f"the operator exited early:\n{operator.log}")
                with contextlib.suppress(httpx.HTTPError):
                    if (await client.get(f"http://127.0.0.1:{port}/healthz")).status_code == 200:
                        return operator
                await asyncio.sleep(0.05)
        raise AssertionError(f"the operator did not become live:\n{operator.log}")

    yield start
    for operator in started:
        await processes.stop(operator.process)


@pytest.fixture()
async def client(sandbox: runner.RunningSandbox) -> AsyncIterator[manifests.Client]:
    """Applies manifests and reads objects through the sandbox's API, as a user's tools would."""
    async with manifests.Client(sandbox.url) as api_client:
        yield api_client
