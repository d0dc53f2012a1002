"""Which Incidents to reconcile and when, and the newest copy of each: one reconciliation at a time each.

A change seen on the watch starts a reconciliation at once; a waiting step asks to be woken at a
time. The newest body is kept so a reconciliation needs no read of its own. It must never go back
in time behind the operator's own status writes (acting on such a copy could repeat a step that a
write recorded as done), and the watch may deliver a write before or after its response arrives.
So: the operator's own writes are noted until the watch shows them; a watch body that is neither
one of them nor arrives while none is outstanding is of unknown age, and the copy is dropped
(the next reconciliation reads the Incident afresh).

At most `max_running` Incidents are reconciled at once; the others wait their turn, the most severe
first and, within a severity, in the order they were kicked (a P0 arriving in a storm of P3s does
not wait behind them). In a storm that bounds what is in flight (handler runs, their requests and responses),
which is what the operator's memory peaks with, not how many Incidents are open.

Copies are kept as compact JSON text, one string each, parsed when a reconciliation starts: in a storm,
a thousand Incidents waiting their turn would otherwise each hold a tree of small objects, and the
allocator keeps the arenas such a peak took for good (docs/benchmarks.md).

A deleted Incident is let go of here too: once no reconciliation of it runs, the queue forgets it and
runs what its deletion still needs (the release of its target locks), at most `max_running` at once,
in the order they were deleted. The watch's handler only hands the deletion over, so a storm's deletions
wait their turn as a line of small records, not as a thousand handler runs each holding its body.
"""

from __future__ import annotations

import asyncio
import collections
import datetime
import heapq
import itertools
import json
import logging
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

Run = Callable[[str], Awaitable[None]]
# What a deleted Incident still needs once no reconciliation of it runs (its locks released).
Release = Callable[[], Awaitable[None]]
# Versions remembered per Incident; a watch is at most a few writes behind its writer.
RECENT = 32
# The priority of an Incident whose severity is unknown (invalid): after every valid one.
LAST = 99
logger = logging.getLogger("remediator.incidents")


class IncidentQueue:
    """In-memory, lost on restart, which is fine: the watch's initial listing reconciles everything once."""

    def __init__(self, max_running: int | None = None) -> None:
        if max_running is not None and max_running < 1:
            raise ValueError(f"max_running must be at least 1, not {max_running}")
        self.max_running = max_running
        self._names: dict[str, tuple[str, str]] = {}
        self._bodies: dict[str, str] = {}  # uid -> the copy, as JSON text
        self._watched: dict[str, list[str]] = {}  # versions the watch delivered, newest last (at most RECENT)
        self._pending: dict[str, list[str]] = {}  # our own writes the watch has not shown yet (at most RECENT)
        self._due: dict[str, datetime.datetime] = {}
        self._running: dict[str, asyncio.Task[None]] = {}
        self._again: set[str] = set()
        self._waiting: dict[str, tuple[int, Run]] = {}  # kicked while max_running were running: its ticket
        self._line: list[tuple[int, int, str]] = []  # (priority, ticket, uid), a heap; stale tickets are skipped
        self._tickets = itertools.count()
        self._priorities: dict[str, int] = {}
        # Deleted Incidents still to be let go of, in the order they were deleted; a storm's deletions
        # come at once, like its creations: at most max_running releasers work the line.
        self._deleted: collections.deque[tuple[str, Release]] = collections.deque()
        self._releasers: set[asyncio.Task[None]] = set()

    def names(self, uid: str) -> tuple[str, str] | None:
        """(namespace, name) of a known Incident."""
        return self._names.get(uid)

    def body(self, uid: str) -> dict[str, Any] | None:
        """The newest copy known to include every status write of ours, or None (read it afresh); the
        caller's own, to change as it likes."""
        copy = self._bodies.get(uid)
        return None if copy is None else _parsed(copy)

    def seen(self, body: Mapping[str, Any]) -> bool:
        """Take a body from the watch; returns whether it may hold news (not just our own write)."""
        meta = body["metadata"]
        uid, version = meta["uid"], str(meta.get("resourceVersion"))
        self._names[uid] = (meta["namespace"], meta["name"])
        _remember(self._watched.setdefault(uid, []), version)
        pending = self._pending.get(uid)
        if pending and version in pending:
            pending.remove(version)
            return False
        if pending:
            self._bodies.pop(uid, None)  # older than our write, or a relisting: of unknown age
        else:
            self._bodies[uid] = _compact(body)
        return True

    def wrote(self, body: Mapping[str, Any]) -> None:
        """Take the body the API server answered our status write with."""
        meta = body["metadata"]
        uid, version = meta["uid"], str(meta["resourceVersion"])
        if version in self._watched.get(uid, ()):
            return  # the watch was quicker: the copy it left is this write or newer
        _remember(self._pending.setdefault(uid, []), version)
        self._bodies[uid] = _compact(body)

    def read(self, body: Mapping[str, Any]) -> None:
        """Take a body just read from the API server: it includes every write of ours."""
        meta = body["metadata"]
        self._names[meta["uid"]] = (meta["namespace"], meta["name"])
        self._bodies[meta["uid"]] = _compact(body)

    def drop_copy(self, uid: str) -> None:
        """Forget the copy of an Incident that waits for nothing but a change (finished, or awaiting an
        approval): thousands of resolved Incidents need not stay in memory; a change brings a new one.
        Kept while another reconciliation is due (it would only have to read it again)."""
        if uid not in self._again:
            self._bodies.pop(uid, None)

    def kick(self, uid: str, run: Run, priority: int | None = None) -> None:
        """Reconcile now, or as soon as fewer than `max_running` run (lower `priority` first: the
        severity's rank, kept from the last kick that gave one); when a reconciliation is already
        running, once more right after it."""
        if priority is not None:
            self._priorities[uid] = priority
        if uid in self._running:
            self._again.add(uid)
            return
        if uid in self._waiting:
            return
        if self.max_running is not None and len(self._running) >= self.max_running:
            ticket = next(self._tickets)
            self._waiting[uid] = (ticket, run)
            heapq.heappush(self._line, (self._priorities.get(uid, LAST), ticket, uid))
            return
        self._start(uid, run)

    def _next_waiting(self) -> tuple[str, Run] | None:
        while self._line:
            _, ticket, uid = heapq.heappop(self._line)
            waiting = self._waiting.get(uid)
            if waiting is not None and waiting[0] == ticket:
                del self._waiting[uid]
                return uid, waiting[1]
        return None

    def deleted(self, uid: str, release: Release) -> None:
        """The Incident is gone: once no reconciliation of it runs, forget it and await `release`; at most
        `max_running` releases at once (as reconciliations), in the background. A reconciliation still
        waiting its turn is dropped now."""
        self._unwait(uid)
        self._deleted.append((uid, release))
        if self.max_running is None or len(self._releasers) < self.max_running:
            task = asyncio.create_task(self._release_deleted())
            self._releasers.add(task)
            task.add_done_callback(self._releasers.discard)

    async def _release_deleted(self) -> None:
        while self._deleted:
            uid, release = self._deleted.popleft()
            await self.idle(uid)  # a running reconciliation may still claim a lock, or write its state here
            self.forget(uid)
            try:
                await release()
            except Exception:  # one deletion's failure must not strand the others in the line
                logger.exception("releasing a deleted Incident's locks failed (uid %s)", uid)

    def running(self) -> int:
        """How many reconciliations run now (at most `max_running`)."""
        return len(self._running)

    def _start(self, uid: str, run: Run) -> None:
        self._running[uid] = asyncio.create_task(self._drain(uid, run))

    async def _drain(self, uid: str, run: Run) -> None:
        try:
            while True:
                self._again.discard(uid)
                await run(uid)
                if uid not in self._again:
                    return
        finally:
            self._running.pop(uid, None)
            if not (self.max_running is not None and len(self._running) >= self.max_running):
                if (waiting := self._next_waiting()) is not None:
                    self._start(*waiting)

    async def idle(self, uid: str) -> None:
        """Wait until no reconciliation of the Incident is running; one still waiting its turn is dropped."""
        self._unwait(uid)
        while (task := self._running.get(uid)) is not None:
            self._again.discard(uid)
            await asyncio.wait([task])

    def schedule(self, uid: str, at: datetime.datetime | None) -> None:
        if at is None:
            self._due.pop(uid, None)
        else:
            self._due[uid] = at

    def pop_due(self, now: datetime.datetime) -> list[str]:
        """The uids of every Incident due now; they are unscheduled until they ask again."""
        due = [uid for uid, at in self._due.items() if at <= now]
        for uid in due:
            del self._due[uid]
        return due

    def forget(self, uid: str) -> None:
        for table in (self._names, self._bodies, self._watched, self._pending, self._due, self._priorities):
            table.pop(uid, None)
        self._unwait(uid)
        self._again.discard(uid)

    def _unwait(self, uid: str) -> None:
        self._waiting.pop(uid, None)  # its ticket in the line goes stale
        if not self._waiting:
            self._line.clear()

    def holding(self) -> set[str]:
        """The uids the queue keeps anything for (a copy, versions, a wakeup, a running reconciliation):
        once an Incident is deleted, nothing of it may stay (thousands go through a storm)."""
        tables = (self._names, self._bodies, self._watched, self._pending, self._due, self._running, self._again,
                  self._waiting, self._priorities)
        return set().union(*tables, (uid for *_, uid in self._line), (uid for uid, _ in self._deleted))

    def cancel_all(self) -> None:
        self._waiting.clear()
        self._line.clear()
        self._deleted.clear()  # locks a stopped operator did not release are taken over by their next Incident
        for task in (*self._running.values(), *self._releasers):
            task.cancel()


def _remember(versions: list[str], version: str) -> None:
    versions.append(version)
    if len(versions) > RECENT:
        del versions[0]


def _compact(body: Mapping[str, Any]) -> str:
    return json.dumps(body, separators=(",", ":"))


def _parsed(copy: str) -> dict[str, Any]:
    body: dict[str, Any] = json.loads(copy)
    return body
