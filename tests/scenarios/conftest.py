"""Fixtures of the scenarios: stand-ins for the services an incident's steps talk to."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import aiohttp.web
import pytest
from tests.local_servers import serving


class FakeService:
    """A local HTTP server standing in for the app's health endpoint and a chat webhook."""

    def __init__(self) -> None:
        self.health_statuses: list[int] = []
        self.messages: list[dict[str, Any]] = []
        self.requests: list[str] = []  # every request's path, in order
        self.url = ""

    async def health(self, request: aiohttp.web.Request) -> aiohttp.web.Response:
        self.requests.append(request.path)
        status = self.health_statuses.pop(0) if self.health_statuses else 200
        return aiohttp.web.Response(status=status, text="ok" if status == 200 else "broken")

    async def webhook(self, request: aiohttp.web.Request) -> aiohttp.web.Response:
        self.requests.append(request.path)
        self.messages.append(await request.json())
        return aiohttp.web.Response(text="ok")


@pytest.fixture()
async def service() -> AsyncIterator[FakeService]:
    fake = FakeService()
    app = aiohttp.web.Application()
    app.router.add_get("/healthz", fake.health)
    app.router.add_post("/hooks/incidents", fake.webhook)
    async with serving(app) as fake.url:
        yield fake
