"""Leader election over a coordination.k8s.io/v1 Lease, decided without I/O (client-go's rules).

A candidate reads the Lease and asks `next_move`: create it, take it over (its holder let it expire,
counted on the candidate's own clock from when it last saw the record change, so clock skew between
replicas does not matter), renew it (it is ours), or wait. Taking it over counts one more
`leaseTransitions`: the epoch that fences every intent the new leader records.
"""

from __future__ import annotations

import dataclasses
import datetime

# client-go's JitterFactor: the retry period, jittered, must fit in the renew deadline.
JITTER_FACTOR = 1.2


@dataclasses.dataclass(frozen=True)
class Timings:
    """How long a Lease lasts, how long a leader keeps trying to renew it, how often anyone tries."""

    lease_duration: float = 15.0
    renew_deadline: float = 10.0
    retry_period: float = 2.0

    def problem(self) -> str | None:
        """Why these timings cannot work (kube-controller-manager's checks), or None."""
        if self.retry_period <= 0:
            return "the retry period must be positive"
        if self.lease_duration <= self.renew_deadline:
            return "the lease duration must be longer than the renew deadline"
        if self.renew_deadline <= self.retry_period * JITTER_FACTOR:
            return f"the renew deadline must be longer than {JITTER_FACTOR:g} times the retry period"
        return None


@dataclasses.dataclass(frozen=True)
class LeaseRecord:
    """The spec of a Lease, as leader election reads and writes it."""

    holder: str
    duration_seconds: int
    acquired_at: datetime.datetime | None
    renewed_at: datetime.datetime | None
    transitions: int = 0


@dataclasses.dataclass(frozen=True)
class Create:
    """No Lease yet: create it, held by us, at epoch 0."""

    record: LeaseRecord


@dataclasses.dataclass(frozen=True)
class Update:
    """Write this record (on condition that the Lease is still as read): a renewal, or a takeover."""

    record: LeaseRecord
    takeover: bool


@dataclasses.dataclass(frozen=True)
class Wait:
    """Another candidate holds the Lease and it has not expired on our clock."""

    holder: str
    expires_in: float


LeaseMove = Create | Update | Wait


def next_move(found: LeaseRecord | None, identity: str, seen_since: float, clock: float,
              wall: datetime.datetime, timings: Timings) -> LeaseMove:
    """What `identity` does about the Lease it found (None: there is none).

    `seen_since` is the time on `clock` (monotonic seconds) when the candidate first saw the record
    as it is now; `wall` stamps acquireTime and renewTime, for people reading the Lease.
    """
    duration = max(1, round(timings.lease_duration))
    if found is None:
        return Create(LeaseRecord(identity, duration, wall, wall, 0))
    if found.holder == identity:
        return Update(dataclasses.replace(found, duration_seconds=duration, renewed_at=wall), takeover=False)
    expires_in = seen_since + found.duration_seconds - clock
    if found.holder and expires_in > 0:
        return Wait(found.holder, expires_in)
    return Update(LeaseRecord(identity, duration, wall, wall, found.transitions + 1), takeover=True)


def still_leading(renewed_at: float, clock: float, timings: Timings) -> bool:
    """Whether a leader whose last successful renewal was sent at `renewed_at` may still act.

    A leader stops at the renew deadline, before the lease duration after which others take over:
    counted from when the renewal was sent (not answered), the earlier and safer end.
    """
    return clock - renewed_at < timings.renew_deadline
