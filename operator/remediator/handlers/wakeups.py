"""When each waiting Incident wants to be looked at again, and one reconciliation at a time per Incident."""

from __future__ import annotations

import asyncio
import collections
import datetime


class Wakeups:
    """In-memory schedule: lost on restart, which is fine: resume handlers reconcile everything once."""

    def __init__(self) -> None:
        self._due: dict[str, datetime.datetime] = {}
        self._locks: collections.defaultdict[str, asyncio.Lock] = collections.defaultdict(asyncio.Lock)
        self._approvals: dict[str, str] = {}

    def lock(self, uid: str) -> asyncio.Lock:
        """Held while an Incident is reconciled, so a timer tick and a change never overlap."""
        return self._locks[uid]

    def schedule(self, uid: str, at: datetime.datetime | None) -> None:
        if at is None:
            self._due.pop(uid, None)
        else:
            self._due[uid] = at

    def due(self, uid: str, now: datetime.datetime) -> bool:
        at = self._due.get(uid)
        return at is not None and at <= now

    def notice_approval(self, uid: str, value: str, now: datetime.datetime) -> None:
        """Wake the Incident up now when its approval annotation changed since last seen."""
        if value and self._approvals.get(uid) != value:
            self._approvals[uid] = value
            self.schedule(uid, now)

    def forget(self, uid: str) -> None:
        self._due.pop(uid, None)
        self._locks.pop(uid, None)
        self._approvals.pop(uid, None)
