"""The egress allow-list: httpCheck and notify reach only allowed hosts, never a metadata address."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import AsyncIterator
from typing import Any

import aiohttp.web
import httpx
import pytest
from tests.local_servers import serving

from remediator.actions import egress
from remediator.engine import allow_lists


@pytest.mark.parametrize(("host", "addresses", "patterns", "allowed"), [
    ("hooks.slack.com", ["3.1.1.1"], None, True),
    ("hooks.slack.com", ["3.1.1.1"], ["*.slack.com"], True),
    ("evil.example", ["3.1.1.1"], ["*.slack.com"], False),
    ("metadata.google.internal", ["169.254.169.254"], None, False),
    ("metadata.google.internal", ["169.254.169.254"], ["*"], False),
    ("169.254.169.254", ["169.254.169.254"], ["169.254.169.254"], True),
    ("fd00:ec2::254", ["fd00:ec2::254"], None, False),
    ("mapped", ["::ffff:169.254.169.254"], None, False),
    ("ipv6-link-local", ["fe80::1%eth0"], None, False),
    ("HOOKS.Slack.com.", ["3.1.1.1"], ["hooks.slack.com"], True),
], ids=lambda v: str(v))
def test_the_egress_allow_list(host: str, addresses: list[str], patterns: list[str] | None, allowed: bool) -> None:
    verdict = allow_lists.host_allowed(host, addresses, patterns)
    assert verdict.proceeds is allowed
    if not allowed:
        assert verdict.reason == "HostNotAllowed"


@pytest.fixture()
async def web_server() -> AsyncIterator[int]:
    async def ok(request: aiohttp.web.Request) -> aiohttp.web.Response:
        return aiohttp.web.Response(text="ok")

    app = aiohttp.web.Application()
    app.router.add_get("/healthz", ok)
    async with serving(app) as url:
        yield int(url.rsplit(":", 1)[1])


async def test_an_allowed_host_is_reached_and_another_is_refused_before_connecting(web_server: int) -> None:
    async with egress.client(["127.0.0.1"], timeout=5) as client:
        assert (await client.get(f"http://127.0.0.1:{web_server}/healthz")).text == "ok"
    async with egress.client(["*.example.com"], timeout=5) as client:
        with pytest.raises(egress.EgressRefused, match="not on the operator's egress allow-list"):
            await client.get(f"http://127.0.0.1:{web_server}/healthz")


async def test_a_name_resolving_to_a_metadata_address_is_refused_and_the_checked_address_is_the_one_used(
        web_server: int, monkeypatch: pytest.MonkeyPatch) -> None:
    """DNS rebinding: a name that answers one address to the check and another to the connect."""
    answers = {"rebind.example": ["127.0.0.1", "169.254.169.254"], "metadata.example": ["169.254.169.254"]}
    asked: list[str] = []
    loop = asyncio.get_running_loop()
    real = loop.getaddrinfo

    async def getaddrinfo(host: str, port: Any, **kwargs: Any) -> list[Any]:
        if host not in answers:
            return await real(host, port, **kwargs)
        asked.append(host)
        address = answers[host].pop(0) if len(answers[host]) > 1 else answers[host][0]
        return [(socket.AF_INET, socket.SOCK_STREAM, 6, "", (address, port))]

    monkeypatch.setattr(loop, "getaddrinfo", getaddrinfo)
    async with egress.client(None, timeout=5) as client:
        with pytest.raises(egress.EgressRefused, match=r"169\.254\.169\.254"):
            await client.get(f"http://metadata.example:{web_server}/healthz")
        assert (await client.get(f"http://rebind.example:{web_server}/healthz")).text == "ok"
    assert asked == ["metadata.example", "rebind.example"], "one resolution per connection: the checked one"


async def test_a_name_lookup_that_hangs_times_out_as_a_connection_does(monkeypatch: pytest.MonkeyPatch) -> None:
    loop = asyncio.get_running_loop()

    async def hanging(host: str, port: Any, **kwargs: Any) -> list[Any]:
        await asyncio.sleep(3600)
        return []

    monkeypatch.setattr(loop, "getaddrinfo", hanging)
    async with egress.client(None, timeout=0.2) as client:
        with pytest.raises(httpx.ConnectTimeout):
            await client.get("http://slow-dns.example/healthz")
