"""One loop per KeyRotation: reconcile, then sleep until it changes or asks to be looked at again.

In memory, lost on restart, which is fine: the watch's initial listing starts every loop again, and
the status holds everything a loop needs.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable

logger = logging.getLogger(__name__)
# After a bug (an exception the reconciliation did not expect): look again, but not in a tight loop.
BUG_DELAY = 10.0

# (namespace, name) -> seconds until the next look, or None: only when the object changes.
Reconcile = Callable[[str, str], Awaitable[float | None]]


class KeyRotationLoops:
    def __init__(self, reconcile: Reconcile) -> None:
        self._reconcile = reconcile
        self._wakeups: dict[str, asyncio.Event] = {}
        self._tasks: dict[str, asyncio.Task[None]] = {}

    def kick(self, uid: str, namespace: str, name: str) -> None:
        """The object changed: reconcile it now (start its loop, or wake it)."""
        wakeup = self._wakeups.setdefault(uid, asyncio.Event())
        wakeup.set()
        if uid not in self._tasks:
            self._tasks[uid] = asyncio.create_task(self._loop(uid, namespace, name), name=f"keyrotation {name}")

    def forget(self, uid: str) -> None:
        """The object is gone: stop its loop."""
        task = self._tasks.pop(uid, None)
        self._wakeups.pop(uid, None)
        if task is not None:
            task.cancel()

    def cancel_all(self) -> None:
        for uid in list(self._tasks):
            self.forget(uid)

    async def _loop(self, uid: str, namespace: str, name: str) -> None:
        wakeup = self._wakeups[uid]
        while True:
            wakeup.clear()
            try:
                delay = await self._reconcile(namespace, name)
            except Exception:
                logger.exception(f"keyrotation {namespace}/{name}: reconciliation failed; trying again in "
                                 f"{BUG_DELAY:g}s")
                delay = BUG_DELAY
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(wakeup.wait(), timeout=delay)
