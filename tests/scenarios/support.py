"""Helpers for operator tests: polling until the cluster shows what a user waits for."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable


async def wait_for(check: Callable[[], Awaitable[object]], timeout: float = 20.0, interval: float = 0.05) -> object:
    """Poll `check` until it returns something truthy; fail with the last value after `timeout`."""
    deadline = asyncio.get_running_loop().time() + timeout
    last: object = None
    while asyncio.get_running_loop().time() < deadline:
        last = await check()
        if last:
            return last
        await asyncio.sleep(interval)
    raise AssertionError(f"condition not met within {timeout}s; last value: {last!r}")
