"""Leader election for `remediator run --leader-elect`: take the Lease, keep it, and stop at once without it.

The leader renews every retry period. It leads while its last successful renewal was sent less
than the renew deadline ago; it checks that on its own monotonic clock before every request it
sends (actions/fences.py), so a leader that was paused (SIGSTOP, a frozen VM, a long GC) ends at
the first request it tries after waking, before the request leaves. A renew loop that cannot renew
by the deadline, or finds another holder, cancels the operator and ends the process non-zero: the
Deployment starts it again, as a follower.
"""

from __future__ import annotations

import asyncio
import dataclasses
import datetime
import logging
import os
import secrets
import socket
import sys
import time
from collections.abc import Callable
from typing import NoReturn

import aiohttp
from kubernetes.aio import client

from remediator.actions import fences, leases
from remediator.engine import leases as lease_rules

# The Deployment restarts a container that exits non-zero; 1 is what a crash would give.
EXIT_LOST = 1
# A follower whose holder's lease is about to run out tries no more often than this.
MIN_RETRY_SECONDS = 0.05
logger = logging.getLogger("remediator.leadership")


@dataclasses.dataclass(frozen=True)
class Election:
    """Which Lease to take, as whom, with what timings."""

    namespace: str
    name: str = "remediator"
    identity: str = ""
    timings: lease_rules.Timings = dataclasses.field(default_factory=lease_rules.Timings)


def identity() -> str:
    """This replica's name in the Lease: the pod name (the hostname in Kubernetes) and a random suffix,
    so a restarted container never mistakes its predecessor's lease for its own."""
    return f"{os.environ.get('POD_NAME') or socket.gethostname()}_{secrets.token_hex(4)}"


def default_namespace() -> str:
    """The namespace the operator runs in (POD_NAMESPACE, or the ServiceAccount's), else 'default'."""
    if os.environ.get("POD_NAMESPACE"):
        return os.environ["POD_NAMESPACE"]
    try:
        with open("/var/run/secrets/kubernetes.io/serviceaccount/namespace") as f:
            return f.read().strip() or "default"
    except OSError:
        return "default"


class Leadership:
    """One candidate's view of the Lease; `acquire`, then `keep` until it is lost."""

    def __init__(self, api: client.ApiClient, election: Election,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.api = api
        self.election = election
        self.clock = clock
        self.epoch: int | None = None
        self._renewed_at = -float("inf")
        self._seen: lease_rules.LeaseRecord | None = None
        self._seen_since = clock()
        self._waiting_for = ""
        self._expires_in = 0.0

    def leads(self) -> bool:
        """Whether this replica may still act (its last renewal is younger than the renew deadline)."""
        return lease_rules.still_leading(self._renewed_at, self.clock(), self.election.timings)

    def check(self) -> None:
        """The fence: return while this replica leads; end the process otherwise."""
        if not self.leads():
            self.abandon(f"the lease was not renewed within {self.election.timings.renew_deadline:g}s")

    def abandon(self, reason: str) -> NoReturn:
        """End the process now, whatever thread asks: nothing more may leave it."""
        logger.critical(f"lost the lease {self.election.namespace}/{self.election.name} as "
                        f"{self.election.identity}: {reason}; stopping")
        for handler in logging.getLogger().handlers:
            handler.flush()
        sys.stdout.flush()
        os._exit(EXIT_LOST)

    async def acquire(self) -> None:
        """Wait until this replica holds the Lease (creating it, or taking it over once it expires)."""
        while True:
            if await self._attempt(renewal=False):
                break
            # Try again as soon as the holder's lease runs out on our clock, or after the retry period.
            await asyncio.sleep(min(self.election.timings.retry_period, max(self._expires_in, MIN_RETRY_SECONDS)))
        logger.info(f"leading: took the lease {self.election.namespace}/{self.election.name} as "
                    f"{self.election.identity} at epoch {self.epoch}")

    async def keep(self) -> str:
        """Renew the Lease every retry period; return why it was lost (the caller stops the operator)."""
        timings = self.election.timings
        while True:
            await asyncio.sleep(timings.retry_period)
            left = self._renewed_at + timings.renew_deadline - self.clock()
            if left <= 0:
                return f"the lease was not renewed within {timings.renew_deadline:g}s"
            try:
                async with asyncio.timeout(left):
                    renewed = await self._attempt(renewal=True)
            except TimeoutError:
                continue
            seen = self._seen
            if renewed:
                continue
            if seen is None:
                return "the Lease was deleted"
            if seen.holder != self.election.identity:
                return f"{seen.holder or 'nobody'} holds it now"

    async def release(self) -> None:
        """Give the Lease up (best effort, after the operator stopped) so a follower takes over at once."""
        if not self.leads() or self._seen is None:
            return
        found = await self._read()
        if found is None or found.record.holder != self.election.identity:
            return
        released = dataclasses.replace(found.record, holder="", duration_seconds=1,
                                       renewed_at=datetime.datetime.now(datetime.UTC))
        await leases.write(self.api, self.election.namespace, self.election.name, released,
                           found.resource_version, self._timeout())
        logger.info(f"released the lease {self.election.namespace}/{self.election.name}")

    async def _attempt(self, *, renewal: bool) -> bool:
        """One read and, if the rules say so, one conditional write; False when not (or no longer) holding."""
        self._expires_in = self.election.timings.retry_period
        try:
            found = await self._read()
            record = None if found is None else found.record
            if record != self._seen:
                self._seen, self._seen_since = record, self.clock()
            sent = self.clock()
            move = lease_rules.next_move(record, self.election.identity, self._seen_since, sent,
                                         datetime.datetime.now(datetime.UTC), self.election.timings)
            # A leader only renews: a Lease taken meanwhile, or deleted, is lost (recreating it would
            # restart the epochs at 0).
            renews = isinstance(move, lease_rules.Update) and not move.takeover
            if isinstance(move, lease_rules.Wait) or (renewal and not renews):
                self._note_holder(move)
                return False
            written = await leases.write(self.api, self.election.namespace, self.election.name, move.record,
                                         None if found is None else found.resource_version, self._timeout())
        except (client.ApiException, aiohttp.ClientError, OSError) as e:
            described = f"API error {e.status}" if isinstance(e, client.ApiException) else type(e).__name__
            logger.warning(f"could not {'renew' if renewal else 'take'} the lease ({described})")
            return False
        if written:
            self._renewed_at, self.epoch = sent, move.record.transitions
            self._seen, self._seen_since = move.record, self.clock()
        return written

    async def _read(self) -> leases.FoundLease | None:
        return await leases.read(self.api, self.election.namespace, self.election.name, self._timeout())

    def _timeout(self) -> float:
        return self.election.timings.renew_deadline

    def _note_holder(self, move: lease_rules.LeaseMove) -> None:
        holder = move.holder if isinstance(move, lease_rules.Wait) else ""
        if isinstance(move, lease_rules.Wait):
            self._expires_in = move.expires_in
        if holder and holder != self._waiting_for:
            logger.info(f"following: {holder} holds the lease {self.election.namespace}/{self.election.name}")
        self._waiting_for = holder


def fence_of(leadership: Leadership) -> fences.Fence:
    """The fence a leader installs: its check, its epoch, and how it stops."""
    return fences.Fence(check=leadership.check, epoch=leadership.epoch, lease=leadership.election.name,
                        abandon=leadership.abandon)
