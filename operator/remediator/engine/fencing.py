"""Fencing by lease epoch: a replica never records an intent under an older epoch than the status holds.

A Lease is not a fence: a leader paused past its lease may wake up mid-reconcile. Every status
write of a leader carries its epoch (the Lease's `leaseTransitions` when it took the Lease); one
that finds a newer epoch recorded knows another replica leads now, and stops.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from remediator.engine import guards

EPOCH_FIELD = "leaseEpoch"
LEASE_FIELD = "leaseName"


def recorded_epoch(status: Mapping[str, Any] | None) -> int | None:
    """The lease epoch the status was last written under, or None (no leader election wrote it)."""
    value = (status or {}).get(EPOCH_FIELD)
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def verdict(status: Mapping[str, Any] | None, held: int | None, lease: str | None = None) -> guards.Verdict:
    """Whether a replica holding epoch `held` of the Lease `lease` (None: no leader election) may write and act
    on this status.

    Epochs count the takeovers of one Lease: one recorded under another Lease (another shard's, before a
    re-shard moved the namespace) says nothing about this one. A status without a Lease name was written
    before the names were recorded, under the one Lease there was, and is compared.
    """
    recorded = recorded_epoch(status)
    recorded_lease = (status or {}).get(LEASE_FIELD)
    if held is None or recorded is None or recorded <= held or (recorded_lease and recorded_lease != lease):
        return guards.PROCEED
    return guards.Verdict(guards.Outcome.REFUSE, "NewerLeaseEpoch",
                          f"the status was written under lease epoch {recorded} and this replica holds epoch "
                          f"{held}: another replica leads now")


def stamped(status: Mapping[str, Any], held: int | None, lease: str | None = None) -> dict[str, Any]:
    """The status to write, carrying the writer's lease epoch and Lease name (unchanged without leader election)."""
    if held is None:
        return dict(status)
    return {**status, EPOCH_FIELD: held} if lease is None else {**status, EPOCH_FIELD: held, LEASE_FIELD: lease}
