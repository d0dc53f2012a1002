"""Shared fixtures: the sandbox API server (optionally behind kmock) and its kubeconfig; with
`--kube-config PATH`, a real cluster in its place for the scenarios that can run on one."""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import math
import os
import pathlib
import socket
import sys
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator

import httpx
import kubernetes.client
import pytest
from tests import real_cluster

from remediator import manifests, processes
from remediator.sandbox import controllers, images, runner, server, store

REPO = pathlib.Path(__file__).resolve().parents[1]
CRDS = sorted((REPO / "crds").glob("*.yaml"))
# Simulated delays in tests: a pod's 30 s termination grace period passes in 0.3 s. To run the scenarios
# under more realistic timing: REMEDIATOR_TEST_TIME_SCALE=0.2 pytest tests/scenarios (slower, same asserts).
TIME_SCALE = float(os.environ.get("REMEDIATOR_TEST_TIME_SCALE", "0.01"))


def simulated(seconds: float, margin: float = 10.0) -> float:
    """A wait's budget for `seconds` of simulated time: what they last at TIME_SCALE, plus `margin` real
    seconds for the machine (the operator's own work, a loaded CI runner)."""
    return seconds * TIME_SCALE + margin


def duration(seconds: float) -> str:
    """Seconds as an Incident step's timeout ("66s"), rounded up."""
    return f"{math.ceil(seconds)}s"


# Which images exist in the tests' sandbox and how their containers behave (see the file).
IMAGES = images.load(REPO / "tests" / "images.yaml")
# Fixtures that hand a test the sandbox itself (its store, request log, faults, clock): such a test cannot run
# on a real cluster.
SANDBOX_FIXTURES = frozenset({"sandbox", "kmock_sandbox", "api", "kubernetes_client"})


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption("--kube-config", type=pathlib.Path, default=None, metavar="PATH",
                     help="run the scenarios against the cluster of this kubeconfig (each test in a namespace it "
                          "creates and deletes) instead of the sandbox; scenarios that need the sandbox are skipped")


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "sandbox_only(reason): a scenario that needs a hook only the sandbox has "
                                       "(skipped under --kube-config)")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Under --kube-config, skip the scenarios a real cluster cannot run, saying why."""
    if config.getoption("kube_config") is None:
        return
    for item in items:
        marked = item.get_closest_marker("sandbox_only")
        if marked is not None:
            item.add_marker(pytest.mark.skip(reason=f"sandbox only: {marked.args[0]}"))
        elif users := _sandbox_users(item):
            item.add_marker(pytest.mark.skip(reason=f"sandbox only: {', '.join(users)} uses the sandbox itself"))


def _sandbox_users(item: pytest.Item) -> list[str]:
    """The test or fixtures of this item that reach into the sandbox (beyond the API every cluster serves):
    the test asking for a sandbox fixture, a module's own `sandbox`, or a module fixture built on one."""
    fixture_info = item._fixtureinfo  # type: ignore[attr-defined]  # what each test function's item has
    users = ["the test"] if SANDBOX_FIXTURES & set(fixture_info.argnames) else []
    for name, definitions in fixture_info.name2fixturedefs.items():
        active = definitions[-1]
        if pathlib.Path(inspect.getfile(active.func)) == pathlib.Path(__file__):
            continue  # this file's fixtures serve either kind of cluster
        if name in SANDBOX_FIXTURES or SANDBOX_FIXTURES & set(active.argnames):
            users.append(f"fixture {name!r}")
    return users


@pytest.fixture(scope="session")
def kube_cluster(pytestconfig: pytest.Config, tmp_path_factory: pytest.TempPathFactory
            ) -> real_cluster.RealCluster | None:
    """The real cluster of --kube-config (its CRDs applied when absent), or None: the sandbox."""
    path: pathlib.Path | None = pytestconfig.getoption("kube_config")
    if path is None:
        return None
    found = real_cluster.load(path.expanduser().resolve(), tmp_path_factory.mktemp("kube-config"))
    found.ensure_crds(CRDS)
    return found


@pytest.fixture()
def scenario_namespace(kube_cluster: real_cluster.RealCluster | None) -> Iterator[str]:
    """Where the scenario's objects live: the sandbox's `default`, or a namespace made for this test on
    the real cluster (deleted, with everything in it, after the test)."""
    if kube_cluster is None:
        yield "default"
        return
    created = kube_cluster.create_namespace()
    try:
        yield created
    finally:
        kube_cluster.delete_namespace(created)


@pytest.fixture()
def simulations() -> controllers.Simulations:
    """Which controller simulations run; override in a test module to switch some off."""
    return controllers.Simulations()


@pytest.fixture()
async def sandbox(simulations: controllers.Simulations, kube_cluster: real_cluster.RealCluster | None
                  ) -> AsyncIterator[runner.RunningSandbox | None]:
    """A sandbox API server on a free port with the project's CRDs registered (none under --kube-config,
    where the tests that use the sandbox itself are skipped)."""
    if kube_cluster is not None:
        yield None
        return
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


@pytest.fixture(autouse=True)
async def hot_path_clients_closed() -> AsyncIterator[None]:
    """The actions' asyncio clients (`kube.hot_path_client`, one per event loop) closed with the test's loop,
    as the operator closes them when it stops."""
    yield
    kube = sys.modules.get("remediator.kube")  # not imported for the tests that use no action
    if kube is not None:
        await kube.close_hot_path_clients()


@pytest.fixture()
def kubernetes_client(sandbox: runner.RunningSandbox) -> Iterator[kubernetes.client.ApiClient]:
    """An ApiClient for the sandbox, as the official client's users build one."""
    with kubernetes.client.ApiClient(kubernetes.client.Configuration(host=sandbox.url)) as client:
        # A kept-alive connection would hold up the server's shutdown by a second.
        client.set_default_header("Connection", "close")
        yield client


@pytest.fixture()
def kubeconfig(sandbox: runner.RunningSandbox | None, kube_cluster: real_cluster.RealCluster | None,
               scenario_namespace: str, tmp_path: pathlib.Path) -> pathlib.Path:
    """The kubeconfig the operator (and kubectl) is given: the sandbox's, or --kube-config's (defaulting to
    the test's namespace)."""
    if kube_cluster is not None:
        return kube_cluster.write_kubeconfig(tmp_path / "kubeconfig", scenario_namespace)
    assert sandbox is not None
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
async def start_operator(kubeconfig: pathlib.Path, scenario_namespace: str, tmp_path: pathlib.Path
                         ) -> AsyncIterator[OperatorFactory]:
    """Start `remediator run` with extra flags (and environment); waits until its liveness probe answers."""
    started: list[OperatorProcess] = []

    async def start(*flags: str, env: dict[str, str] | None = None) -> OperatorProcess:
        port = _free_port()
        # The test's namespace, unless the flags name the scope themselves.
        scope = () if "--all-namespaces" in flags else ("--namespace", scenario_namespace)
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
async def client(sandbox: runner.RunningSandbox | None, kube_cluster: real_cluster.RealCluster | None,
                 scenario_namespace: str) -> AsyncIterator[manifests.Client]:
    """Applies manifests and reads objects through the sandbox's API (or the real cluster's, with `default`
    meaning the test's namespace), as a user's tools would."""
    if kube_cluster is not None:
        async with kube_cluster.client(scenario_namespace) as namespaced:
            yield namespaced
        return
    assert sandbox is not None
    async with manifests.Client(sandbox.url) as api_client:
        yield api_client
