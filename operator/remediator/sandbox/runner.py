"""Running the sandbox on a local port, with its controllers, CRDs and a kubeconfig."""

from __future__ import annotations

import asyncio
import contextlib
import copy
import dataclasses
import functools
import pathlib
import socket
from collections.abc import AsyncIterator, Iterable
from typing import Any

import aiohttp.web
import yaml

from remediator.sandbox import controllers, resources, server, store

LOCALHOST = "127.0.0.1"


@dataclasses.dataclass
class RunningSandbox:
    """A sandbox API server listening on a port."""

    sandbox: server.Sandbox
    host: str
    port: int
    controllers: controllers.Controllers

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    @property
    def store(self) -> store.ObjectStore:
        return self.sandbox.store

    def kubeconfig(self, namespace: str = "default") -> dict[str, Any]:
        return kubeconfig_for(self.url, namespace)

    def write_kubeconfig(self, path: pathlib.Path, namespace: str = "default") -> pathlib.Path:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(yaml.safe_dump(self.kubeconfig(namespace), sort_keys=False))
        return path

    def apply_crds(self, paths: Iterable[pathlib.Path]) -> list[str]:
        """Register CRDs from YAML files directly in the store; returns their names."""
        crd_type = self.store.resource_type("apiextensions.k8s.io", "v1", "customresourcedefinitions")
        names = []
        for path in paths:
            for document in _crd_documents(path):
                name = document["metadata"]["name"]
                existing = self.store.find(crd_type, None, name)
                if existing is None:
                    self.store.create(crd_type, document)
                else:
                    document["metadata"]["resourceVersion"] = existing["metadata"]["resourceVersion"]
                    self.store.replace(crd_type, None, name, document)
                names.append(name)
        return names


@functools.lru_cache(maxsize=64)
def _parsed_yaml(path: pathlib.Path, mtime_ns: int) -> tuple[Any, ...]:
    # Parsing the CRD YAML dominated sandbox start-up; libyaml and a cache make it negligible.
    loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
    return tuple(document for document in yaml.load_all(path.read_text(), Loader=loader) if document)


def _crd_documents(path: pathlib.Path) -> list[Any]:
    """The YAML documents of a file, parsed once per file version; each call gets its own copies."""
    return copy.deepcopy(list(_parsed_yaml(path.resolve(), path.stat().st_mtime_ns)))


def kubeconfig_for(url: str, namespace: str = "default") -> dict[str, Any]:
    """A kubeconfig with one context pointing at the sandbox (plain HTTP on loopback)."""
    return {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [{"name": "sandbox", "cluster": {"server": url}}],
        "users": [{"name": "sandbox", "user": {"token": "sandbox"}}],
        "contexts": [{"name": "sandbox", "context": {"cluster": "sandbox", "user": "sandbox",
                                                      "namespace": namespace}}],
        "current-context": "sandbox",
        "preferences": {},
    }


def free_port(host: str = LOCALHOST) -> int:
    with socket.socket() as sock:
        sock.bind((host, 0))
        port: int = sock.getsockname()[1]
        return port


@contextlib.asynccontextmanager
async def running(
    *,
    host: str = LOCALHOST,
    port: int = 0,
    handler: Any = None,
    sandbox: server.Sandbox | None = None,
    crd_paths: Iterable[pathlib.Path] = (),
    simulations: controllers.Simulations | None = None,
) -> AsyncIterator[RunningSandbox]:
    """Serve a sandbox until the context exits.

    `handler` replaces the request handler (e.g. kmock's, which falls through to the sandbox).
    """
    sandbox = sandbox or server.Sandbox(store.ObjectStore(resources.ResourceRegistry()))
    # Not `handler or ...`: a kmock handler with no requests logged yet is falsy.
    low_level = aiohttp.web.Server(sandbox.handle if handler is None else handler, handler_cancellation=True)
    loop = asyncio.get_running_loop()
    tcp = await loop.create_server(low_level, host, port, reuse_address=True)
    bound_port = tcp.sockets[0].getsockname()[1]
    sim = controllers.Controllers(sandbox.store, simulations or controllers.Simulations())
    running_sandbox = RunningSandbox(sandbox, host, bound_port, sim)
    running_sandbox.apply_crds(crd_paths)
    sim.start()
    try:
        yield running_sandbox
    finally:
        await sim.stop()
        await sandbox.close()
        tcp.close()
        await low_level.shutdown(timeout=1.0)
        with contextlib.suppress(asyncio.TimeoutError):
            await asyncio.wait_for(tcp.wait_closed(), 2.0)
