"""Running the sandbox on a local port, with its controllers, CRDs and a kubeconfig."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import copy
import dataclasses
import functools
import pathlib
import socket
import ssl
from collections.abc import AsyncIterator, Iterable
from typing import Any

import aiohttp.web
import trustme
import yaml

from remediator.sandbox import authn, controllers, event_leases, images, resources, server, store

LOCALHOST = "127.0.0.1"


@dataclasses.dataclass
class RunningSandbox:
    """A sandbox API server listening on a port."""

    sandbox: server.Sandbox
    host: str
    port: int
    controllers: controllers.Controllers
    # The PEM of the CA that signed the server's certificate when it serves HTTPS (with auth), else None.
    ca_pem: bytes | None = None

    @property
    def url(self) -> str:
        return f"{'https' if self.ca_pem else 'http'}://{self.host}:{self.port}"

    def client_ssl(self) -> ssl.SSLContext | bool:
        """What an HTTP client should verify the server with (`verify=` of httpx)."""
        return ssl.create_default_context(cadata=self.ca_pem.decode()) if self.ca_pem else True

    @property
    def store(self) -> store.ObjectStore:
        return self.sandbox.store

    @property
    def admin_token(self) -> str:
        """The token of `sandbox-admin` (group system:masters); any token works with auth off."""
        authenticator = self.sandbox.access.authenticator
        return authenticator.admin_token if authenticator is not None else "sandbox"

    def token_for(self, username: str, groups: tuple[str, ...] = ()) -> str:
        """A bearer token authenticating as `username` in `groups` (like a line of `--token-auth-file`)."""
        authenticator = self.sandbox.access.authenticator
        if authenticator is None:
            raise RuntimeError("the sandbox runs without authentication (start it with auth=True)")
        return authenticator.token_for(username, groups)

    def kubeconfig(self, namespace: str = "default", token: str | None = None) -> dict[str, Any]:
        """A kubeconfig for this sandbox, with the admin's token unless another is given."""
        return kubeconfig_for(self.url, namespace, token or self.admin_token, self.ca_pem)

    def write_kubeconfig(self, path: pathlib.Path, namespace: str = "default", token: str | None = None
                         ) -> pathlib.Path:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(yaml.safe_dump(self.kubeconfig(namespace, token), sort_keys=False))
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


def kubeconfig_for(url: str, namespace: str = "default", token: str = "sandbox",
                   ca_pem: bytes | None = None) -> dict[str, Any]:
    """A kubeconfig with one context pointing at the sandbox (on loopback; HTTPS when a CA is given)."""
    cluster: dict[str, Any] = {"server": url}
    if ca_pem:
        cluster["certificate-authority-data"] = base64.b64encode(ca_pem).decode()
    return {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [{"name": "sandbox", "cluster": cluster}],
        "users": [{"name": "sandbox", "user": {"token": token}}],
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
    auth: bool = False,
    time_scale: float = 1.0,
    image_registry: images.Registry = images.EVERY_IMAGE,
    event_ttl: float = event_leases.EVENT_TTL_SECONDS,
) -> AsyncIterator[RunningSandbox]:
    """Serve a sandbox until the context exits.

    `handler` replaces the request handler (e.g. kmock's, which falls through to the sandbox).
    With `auth`, requests need a bearer token and RBAC decides (see `remediator.sandbox.access`), and
    the server speaks HTTPS with a certificate of its own CA: kubectl and client-go send bearer tokens
    over TLS only. `time_scale` compresses the simulated delays (a pod's termination grace period):
    0.01 lets a 30 s grace period pass in 0.3 s. `image_registry` says which images exist and how their
    containers behave (by default every image exists and runs); the ConfigMap kube-system/sandbox-images
    adds entries at run time. `event_ttl`: seconds an Event is kept after its last write (kube-apiserver's
    --event-ttl; 0 for ever), for the sandbox made here (a given `sandbox` has its store's own).
    """
    sandbox = sandbox or server.Sandbox(store.ObjectStore(resources.ResourceRegistry(), event_ttl=event_ttl),
                                        authenticator=authn.Authenticator() if auth else None)
    # Not `handler or ...`: a kmock handler with no requests logged yet is falsy.
    low_level = aiohttp.web.Server(sandbox.handle if handler is None else handler, handler_cancellation=True)
    loop = asyncio.get_running_loop()
    server_ssl, ca_pem = _tls(host) if sandbox.access.enabled else (None, None)
    tcp = await loop.create_server(low_level, host, port, reuse_address=True, ssl=server_ssl)
    bound_port = tcp.sockets[0].getsockname()[1]
    sim = controllers.Controllers(sandbox.store, simulations or controllers.Simulations(), time_scale, image_registry)
    running_sandbox = RunningSandbox(sandbox, host, bound_port, sim, ca_pem)
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


def _tls(host: str) -> tuple[ssl.SSLContext, bytes]:
    """A server TLS context with a certificate for `host` (and localhost), and the PEM of its new CA."""
    authority = trustme.CA(organization_name="remediator sandbox")
    certificate = authority.issue_cert(host, "localhost", "127.0.0.1")
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    certificate.configure_cert(context)
    return context, authority.cert_pem.bytes()
