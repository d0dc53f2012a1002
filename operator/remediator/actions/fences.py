"""The fence every request to the cluster, and every step's action, passes first.

Open by default (one process, no leader election). With --leader-elect the operator installs the
leader's check: a replica whose renew deadline has passed (paused, cut off from the API) ends at
the first request it tries, before the request leaves, in whichever thread tries it. It also
holds the lease epoch written with each recorded intent.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping
from typing import Any, NoReturn

from remediator.engine import fencing


class LeadershipLost(RuntimeError):
    """This replica no longer leads: nothing may be written or carried out."""


def _refuse(message: str) -> NoReturn:
    raise LeadershipLost(message)


@dataclasses.dataclass(frozen=True)
class Fence:
    """What leader election installed: the check before each request, the epoch held, and how to stop."""

    check: Callable[[], None] = lambda: None
    epoch: int | None = None
    # The Lease the epoch counts takeovers of (each shard has its own).
    lease: str | None = None
    abandon: Callable[[str], NoReturn] = _refuse


_current = Fence()


def install(fence: Fence) -> None:
    """Fence every later request and action of this process (`remediator run --leader-elect`)."""
    global _current
    _current = fence


def check() -> None:
    """Return when this replica may act; otherwise the installed fence stops it (it does not return)."""
    _current.check()


def epoch() -> int | None:
    """The lease epoch this replica acts under, or None without leader election."""
    return _current.epoch


def abandon(message: str) -> NoReturn:
    """Stop acting for good: another replica leads (e.g. a newer epoch was found in a status)."""
    _current.abandon(message)


def admit(status: Mapping[str, Any] | None) -> None:
    """Return when this replica may record intents on (and act for) an object with this status; stop it
    when the status was written under a newer lease epoch than it holds (another replica leads)."""
    verdict = fencing.verdict(status, epoch(), _current.lease)
    if not verdict.proceeds:
        abandon(verdict.message)


def stamped(status: Mapping[str, Any]) -> dict[str, Any]:
    """The status to write, carrying this replica's lease epoch (unchanged without leader election)."""
    return fencing.stamped(status, epoch(), _current.lease)
