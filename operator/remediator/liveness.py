"""The liveness endpoint of a follower: Kopf serves it once this replica leads and Kopf runs.

A follower is alive when its event loop answers; it must not be restarted for waiting its turn.
"""

from __future__ import annotations

import contextlib
import urllib.parse
from collections.abc import AsyncIterator

import aiohttp.web


@contextlib.asynccontextmanager
async def serving(url: str | None) -> AsyncIterator[None]:
    """Answer 200 at the URL's path (http://HOST:PORT/PATH, as `--liveness` takes) while inside; None: nothing."""
    if url is None:
        yield
        return
    parts = urllib.parse.urlsplit(url)
    if parts.scheme != "http" or parts.port is None:
        raise ValueError(f"expected a liveness URL such as http://0.0.0.0:8080/healthz, got {url!r}")

    async def alive(_: aiohttp.web.Request) -> aiohttp.web.Response:
        return aiohttp.web.json_response({})

    app = aiohttp.web.Application()
    app.router.add_get(parts.path or "/", alive)
    runner = aiohttp.web.AppRunner(app, handle_signals=False, shutdown_timeout=1.0)
    await runner.setup()
    await aiohttp.web.TCPSite(runner, parts.hostname or "localhost", parts.port).start()
    try:
        yield
    finally:
        await runner.cleanup()
