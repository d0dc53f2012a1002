"""The operator's Kubernetes connection: loading credentials and the shared client."""

from __future__ import annotations

import asyncio
import dataclasses
import functools
import math
import os
import pathlib
import time
import weakref
from collections.abc import Callable
from typing import Any

import aiohttp
import kopf
import kubernetes.client
import kubernetes.config
from kubernetes.aio import client as aio_client
from kubernetes.aio import config as aio_config

from remediator.actions import fences

# Every request of this process says who sent it: `remediator/VERSION (IDENTITY)` with leader election,
# so the API server's audit log tells replicas apart; kube-apiserver takes the field manager from it.
USER_AGENT = "remediator"


def set_identity(identity: str) -> None:
    """Name this process in the User-Agent of every later request (call before the first one)."""
    global USER_AGENT
    USER_AGENT = f"remediator/{_version()} ({identity})"


def _version() -> str:
    from importlib import metadata

    try:
        return metadata.version("remediator")
    except metadata.PackageNotFoundError:
        return "unknown"


@dataclasses.dataclass(frozen=True, kw_only=True)
class _IdentifiedConnection(kopf.ConnectionInfo):
    """Kopf's credentials, sending remediator's User-Agent instead of Kopf's."""

    user_agent: str = USER_AGENT

    def as_http_headers(self) -> dict[str, str]:
        return {**super().as_http_headers(), "User-Agent": self.user_agent}


def configure(kubeconfig: pathlib.Path | None) -> None:
    """Load credentials into the kubernetes client's default configuration.

    An explicit kubeconfig wins; otherwise in-cluster (service account), then $KUBECONFIG or
    ~/.kube/config. Raises kubernetes.config.ConfigException when none works.
    """
    if kubeconfig is not None:
        kubernetes.config.load_kube_config(config_file=str(kubeconfig))  # type: ignore[no-untyped-call]
        return
    try:
        kubernetes.config.load_incluster_config()  # type: ignore[no-untyped-call]
    except kubernetes.config.ConfigException:
        # The client reads $KUBECONFIG at import time; read it now so a later export counts.
        kubernetes.config.load_kube_config(config_file=os.environ.get("KUBECONFIG"))  # type: ignore[no-untyped-call]


def connection_info(settings: kopf.OperatorSettings) -> kopf.ConnectionInfo:
    """Kopf's credentials, taken from the kubernetes client's configuration (as Kopf's own login does)."""
    config = kubernetes.client.Configuration.get_default_copy()
    header = config.get_api_key_with_prefix("BearerToken") or config.get_api_key_with_prefix("authorization")
    parts = header.split(" ", 1) if header else []
    scheme, token = (None, None) if not parts else (None, parts[0]) if len(parts) == 1 else (parts[0], parts[1])
    return _IdentifiedConnection(
        user_agent=USER_AGENT,
        server=config.host,
        ca_path=config.ssl_ca_cert,
        insecure=not config.verify_ssl,
        username=config.username or None,
        password=config.password or None,
        scheme=scheme,
        token=token,
        certificate_path=config.cert_file,
        private_key_path=config.key_file,
        trust_env=settings.networking.trust_env,
    )


def fenced_session(info: kopf.ConnectionInfo) -> kopf.AiohttpSession:
    """Kopf's connection as Kopf would open it, except that every request passes the fence first.

    With leader election, Kopf's own requests (watches, its bookkeeping on RollbackRequests) then
    stop with the operator's when this replica no longer leads. Call it in the event loop.
    """
    trace = aiohttp.TraceConfig()
    trace.on_request_start.append(_pass_fence)
    session = aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0, ssl=info.as_ssl_context()),
                                    headers=info.as_http_headers(), proxy=info.proxy_url, trust_env=info.trust_env,
                                    trace_configs=[trace])
    return kopf.AiohttpSession(aiohttp_session=session, server=info.server, priority=info.priority,
                               default_namespace=info.default_namespace, expiration=info.expiration)


async def _pass_fence(session: aiohttp.ClientSession, context: object, params: aiohttp.TraceRequestStartParams) -> None:
    fences.check()


def load_api_classes() -> None:
    """Load the client's API classes the actions outside the Incident hot path use: about a second of
    imports and 29 MB of RSS (CoreV1Api alone brings 250 model modules)."""
    for api_class in (kubernetes.client.CoreV1Api, kubernetes.client.AppsV1Api,
                      kubernetes.client.CustomObjectsApi, kubernetes.client.PolicyV1Api,
                      kubernetes.client.BatchV1Api):
        assert api_class.__name__


_api_classes_loaded = False


async def api_classes_loaded() -> None:
    """Return once the API classes are loaded, loading them in a thread the first time: the event loop
    (the Lease's renewals among its tasks) does not stop for the imports. The Incident hot path sends its
    requests by path (retries.request_json) and never waits here, so an operator that only scales and
    restarts never pays for them."""
    global _api_classes_loaded
    # Two first callers at once both start the load: the import system's per-module locks make the second
    # wait for the first's imports and find them done, so no lock of ours is needed.
    if not _api_classes_loaded:
        await asyncio.to_thread(load_api_classes)
        _api_classes_loaded = True


# The credential loaders' hook runs before every request and re-applies the whole configuration: setting
# its `host` scans the process environment for proxies (7 % of the operator's CPU in a storm, more in a pod
# with a service's variables for every Service). The tokens it renews are renewed minutes before they
# expire (kubeconfig) or re-read every minute (in-cluster), so looking once a second is as good.
TOKEN_CHECK_SECONDS = 1.0


def _at_most_every(seconds: float, hook: Callable[[Any], None]) -> Callable[[Any], None]:
    """The hook, skipped when it ran less than `seconds` ago (a race between threads only runs it twice)."""
    last_run = [-math.inf]
    current = [hook]

    def refresh(configuration: Any) -> None:
        now = time.monotonic()
        if now - last_run[0] >= seconds:
            last_run[0] = now
            current[0](configuration)
            # The loaders' hook installs a new copy of itself each time it runs: call that one next time,
            # and stay in front of it.
            if configuration.refresh_api_key_hook is not refresh:
                current[0] = configuration.refresh_api_key_hook
                configuration.refresh_api_key_hook = refresh

    return refresh


@functools.cache
def api_client() -> kubernetes.client.ApiClient:
    """One ApiClient for the process, using the configuration loaded by `configure`, with a pooled
    connection for each of the API threads (actions/retries.py)."""
    from remediator.actions import retries

    configuration = kubernetes.client.Configuration.get_default_copy()
    configuration.connection_pool_maxsize = retries.API_CONCURRENCY
    if configuration.refresh_api_key_hook is not None:
        configuration.refresh_api_key_hook = _at_most_every(TOKEN_CHECK_SECONDS, configuration.refresh_api_key_hook)
    api = kubernetes.client.ApiClient(configuration)
    api.user_agent = USER_AGENT
    return api


# The connection settings the asyncio client takes over from the synchronous client's configuration.
_CONNECTION_FIELDS = ("host", "ssl_ca_cert", "ca_cert_data", "cert_file", "key_file", "verify_ssl", "assert_hostname",
                      "tls_server_name", "proxy_headers")
# Credentials: copied before every request (the hook below) from the synchronous configuration.
_CREDENTIAL_FIELDS = ("api_key", "api_key_prefix", "username", "password")
# One asyncio client per event loop and synchronous client: an aiohttp session belongs to the loop it was
# opened in (the operator runs one loop, the tests one per test).
_hot_path_clients: weakref.WeakKeyDictionary[
    asyncio.AbstractEventLoop, dict[kubernetes.client.ApiClient, aio_client.ApiClient]] = weakref.WeakKeyDictionary()


def hot_path_client(source: kubernetes.client.ApiClient) -> aio_client.ApiClient:
    """This event loop's asyncio ApiClient standing in for `source` (`api_client()`) in the requests by path
    (actions/retries.request_json): its host, TLS settings (CA, client certificate) and proxy, its
    credentials as its hook renews them (throttled, see `api_client`), its default headers (the User-Agent),
    and a keep-alive pool of API_CONCURRENCY connections. Call it in the event loop;
    `close_hot_path_clients` closes them."""
    clients = _hot_path_clients.setdefault(asyncio.get_running_loop(), {})
    client = clients.get(source)
    if client is None:
        from remediator.actions import retries

        configuration = aio_client.Configuration()
        for field in _CONNECTION_FIELDS:
            setattr(configuration, field, getattr(source.configuration, field))
        # The proxy as the synchronous client chose it (from the environment, unless $NO_PROXY names the host),
        # once: aiohttp trusting the environment instead reads it, and ~/.netrc, in a thread for every
        # request (a fifth of the operator's CPU in a storm).
        proxy = source.configuration.proxy
        bypass = kubernetes.client.rest.should_bypass_proxies(source.configuration.host,
                                                              source.configuration.no_proxy or "")
        configuration.proxy = None if bypass else proxy
        configuration.client_session_kwargs = {"trust_env": False}
        configuration.connection_pool_maxsize = retries.API_CONCURRENCY
        # The client asks for the credentials it holds, then runs the hook: hold them from the start.
        _credentials_of(source.configuration, configuration)
        configuration.refresh_api_key_hook = functools.partial(  # type: ignore[assignment]
            _credentials_of, source.configuration)
        client = clients[source] = aio_client.ApiClient(configuration)
        client.default_headers.update(source.default_headers)  # the User-Agent among them
    return client


def _credentials_of(source: kubernetes.client.Configuration, target: aio_client.Configuration) -> None:
    if source.refresh_api_key_hook is not None:
        source.refresh_api_key_hook(source)  # the throttled hook of api_client(): a renewed token, if any
    for field in _CREDENTIAL_FIELDS:
        setattr(target, field, getattr(source, field))


async def close_hot_path_clients() -> None:
    """Close this event loop's `hot_path_client`s (their connections)."""
    for client in _hot_path_clients.pop(asyncio.get_running_loop(), {}).values():
        await client.close()  # type: ignore[no-untyped-call]


async def async_client(kubeconfig: pathlib.Path | None) -> aio_client.ApiClient:
    """A new async ApiClient (kubernetes.aio), with the credentials `configure` would load, naming this process.

    Raises kubernetes.aio.config.ConfigException when no credentials are found.
    """
    configuration = aio_client.Configuration()
    if kubeconfig is not None:
        await aio_config.load_kube_config(config_file=str(kubeconfig), client_configuration=configuration)  # type: ignore[no-untyped-call]
    else:
        try:
            aio_config.load_incluster_config(client_configuration=configuration)  # type: ignore[no-untyped-call]
        except aio_config.ConfigException:
            await aio_config.load_kube_config(config_file=os.environ.get("KUBECONFIG"),  # type: ignore[no-untyped-call]
                                              client_configuration=configuration)
    api = aio_client.ApiClient(configuration)
    api.user_agent = USER_AGENT
    return api
