"""Stopping child processes (the operator under the demo, the benchmark, the tests)."""

from __future__ import annotations

import asyncio

GRACE_SECONDS = 10.0


async def stop(process: asyncio.subprocess.Process, grace: float = GRACE_SECONDS) -> None:
    """SIGTERM, so the operator shuts down cleanly; SIGKILL if it is still there after `grace` seconds."""
    if process.returncode is not None:
        return
    process.terminate()
    try:
        await asyncio.wait_for(process.wait(), grace)
    except TimeoutError:
        process.kill()
        await process.wait()
