"""When each waiting Incident wants to be looked at again, and one reconciliation at a time per Incident."""

from __future__ import annotations

import asyncio
import collections
import datetime


class Wakeups:
    """In-memory schedule: lost on restart, which is fine: resume handlers reconcile everything once."""

    def __init__(self) -> None:
        self._due: dict[str, datetime.datetime] = {}
        self._names: dict[str, tuple[str, str]] = {}
        self._locks: collections.defaultdict[str, asyncio.Lock] = collections.defaultdict(asyncio.Lock)
        self._approvals: dict[str, str] = {}

    def lock(self, uid: str) -> asyncio.Lock:
        """Held while an Incident is reconciled, so a timer tick and a change never overlap."""
        return self._locks[uid]

    def remember(self, uid: str, namespace: str, name: str) -> None:
        self._names[uid] = (namespace, name)

    def pop_due(self, now: datetime.datetime) -> list[tuple[str, str, str]]:
        """(uid, namespace, name) of every Incident due now; they are unscheduled until reconciled again."""
        due = [uid for uid, at in self._due.items() if at <= now and uid in self._names]
        for uid in due:
            del self._due[uid]
        return [(uid, *self._names[uid]) for uid in due]

    def schedule(self, uid: str, at: datetime.datetime | None) -> None:
        if at is None:
            self._due.pop(uid, None)
        else:
            self._due[uid] = at

    def notice_approval(self, uid: str, value: str, now: datetime.datetime) -> None:
        """Wake the Incident up now when its approval annotation changed since last seen."""
        if value and self._approvals.get(uid) != value:
            self._approvals[uid] = value
            self.schedule(uid, now)

    def forget(self, uid: str) -> None:
        self._due.pop(uid, None)
        self._locks.pop(uid, None)
        self._approvals.pop(uid, None)
        self._names.pop(uid, None)
