"""Local HTTP servers standing in for what steps talk to (an app's health endpoint, a chat webhook)."""

from __future__ import annotations

import contextlib
import socket
from collections.abc import AsyncIterator

import aiohttp.web


@contextlib.asynccontextmanager
async def serving(app: aiohttp.web.Application) -> AsyncIterator[str]:
    """Serve `app` on a free port of 127.0.0.1; yields its base URL, e.g. http://127.0.0.1:41234."""
    app_runner = aiohttp.web.AppRunner(app)
    await app_runner.setup()
    site = aiohttp.web.TCPSite(app_runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        await app_runner.cleanup()


def free_port() -> int:
    """A TCP port of 127.0.0.1 that is free now (for a process the test starts)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port
