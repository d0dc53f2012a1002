"""HTTP clients that connect only where the operator's egress allow-list says (`--allow-http-host`).

The check runs where the connection is made, on the addresses the name resolved to, and the
connection goes to a checked address: a name that resolves to a metadata address (or changes its
answer between a check and the connect) never reaches it. TLS still verifies the name.
"""

from __future__ import annotations

import asyncio
import socket
import typing
from collections.abc import Collection

import httpcore
import httpx

from remediator.engine import allow_lists


class EgressRefused(Exception):
    """The allow-list refused the host; `reason` and `message` say why (never the URL)."""

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason
        self.message = message


class _GuardedBackend(httpcore.AsyncNetworkBackend):
    def __init__(self, patterns: Collection[str] | None) -> None:
        self._patterns = patterns
        self._inner = httpcore.AnyIOBackend()

    async def connect_tcp(self, host: str, port: int, timeout: float | None = None, local_address: str | None = None,
                          socket_options: typing.Iterable[httpcore.SOCKET_OPTION] | None = None,
                          ) -> httpcore.AsyncNetworkStream:
        try:
            # The name lookup counts against the connect timeout, as it does in httpcore's own backends.
            infos = await asyncio.wait_for(
                asyncio.get_running_loop().getaddrinfo(host, port, type=socket.SOCK_STREAM), timeout)
        except TimeoutError as e:
            raise httpcore.ConnectTimeout(f"looking up {host} timed out") from e
        except OSError as e:  # httpx maps httpcore's ConnectError (as httpcore's own backends raise), not OSError
            raise httpcore.ConnectError(str(e)) from e
        addresses = list(dict.fromkeys(str(info[4][0]) for info in infos))
        verdict = allow_lists.host_allowed(host, addresses, self._patterns)
        if not verdict.proceeds:
            raise EgressRefused(verdict.reason, verdict.message)
        failure: Exception = httpcore.ConnectError(f"no address of {host} answered")
        for address in addresses:
            try:
                return await self._inner.connect_tcp(address, port, timeout, local_address, socket_options)
            except httpcore.ConnectError as e:
                failure = e
        raise failure

    async def connect_unix_socket(self, path: str, timeout: float | None = None,
                                  socket_options: typing.Iterable[httpcore.SOCKET_OPTION] | None = None,
                                  ) -> httpcore.AsyncNetworkStream:
        raise EgressRefused(allow_lists.HOST_NOT_ALLOWED, "unix sockets are not on the operator's egress allow-list")

    async def sleep(self, seconds: float) -> None:
        await self._inner.sleep(seconds)


def client(patterns: Collection[str] | None, *, timeout: float, follow_redirects: bool = False) -> httpx.AsyncClient:
    """An httpx client whose every connection (redirects included) passes the egress allow-list.

    Proxies from the environment are not used: a proxy would make the proxy, not the target, the peer
    the allow-list judges.
    """
    transport = httpx.AsyncHTTPTransport(trust_env=False)
    # httpx takes no network backend; its pool is httpcore's, which does (the one attribute we set).
    transport._pool._network_backend = _GuardedBackend(patterns)
    return httpx.AsyncClient(transport=transport, timeout=timeout, follow_redirects=follow_redirects,
                             trust_env=False)
