"""The controllers' work queue: object keys waiting to be reconciled, each at most once.

Like client-go's workqueue: a key added while it is queued is not queued twice (it keeps its
place); a key added while it is being reconciled is queued again, so no change is missed.
"""

from __future__ import annotations

import asyncio
from collections.abc import Hashable
from typing import Generic, TypeVar

Key = TypeVar("Key", bound=Hashable)


class WorkQueue(Generic[Key]):
    """A coalescing FIFO of keys with delayed re-adds; `idle` is set while nothing is queued or running."""

    def __init__(self) -> None:
        self._pending: dict[Key, None] = {}
        self._running: Key | None = None
        self._wakeup = asyncio.Event()
        self.idle = asyncio.Event()
        self.idle.set()
        self._timers: dict[Key, asyncio.TimerHandle] = {}

    def __len__(self) -> int:
        return len(self._pending)

    def add(self, key: Key) -> None:
        self._pending.setdefault(key, None)
        self.idle.clear()
        self._wakeup.set()

    def add_after(self, key: Key, delay: float) -> None:
        """Add the key after a delay; an earlier pending re-add for the same key wins."""
        loop = asyncio.get_running_loop()
        when = loop.time() + max(0.0, delay)
        timer = self._timers.get(key)
        if timer is not None:
            if timer.when() <= when:
                return
            timer.cancel()
        self._timers[key] = loop.call_at(when, self._fire, key)

    def _fire(self, key: Key) -> None:
        self._timers.pop(key, None)
        self.add(key)

    async def get(self) -> Key:
        """The oldest queued key, waiting for one; call `done()` once it is reconciled."""
        while not self._pending:
            self._wakeup.clear()
            await self._wakeup.wait()
        key = next(iter(self._pending))
        del self._pending[key]
        self._running = key
        return key

    def done(self) -> None:
        self._running = None
        if not self._pending:
            self.idle.set()

    def close(self) -> None:
        """Cancel the delayed re-adds."""
        for timer in self._timers.values():
            timer.cancel()
        self._timers.clear()
