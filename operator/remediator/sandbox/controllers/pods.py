"""What the controllers read from pods: active, ready, available, and which to delete first."""

from __future__ import annotations

import datetime
from collections.abc import Iterable, Mapping
from typing import Any

from remediator.sandbox.controllers import conditions, ownership, timestamps

Pod = Mapping[str, Any]
FINISHED_PHASES = ("Succeeded", "Failed")
_PHASE_RANK = {"Pending": 0, "Unknown": 1, "Running": 2}


def phase(pod: Pod) -> str:
    return str((pod.get("status") or {}).get("phase") or "Pending")


def is_active(pod: Pod) -> bool:
    """Counted by a controller: not finished and not being deleted (controller.FilterActivePods)."""
    return phase(pod) not in FINISHED_PHASES and not ownership.is_terminating(pod)


def is_ready(pod: Pod) -> bool:
    return conditions.is_true((pod.get("status") or {}).get("conditions"), "Ready")


def ready_since(pod: Pod) -> datetime.datetime | None:
    """When the pod last became Ready, or None while it is not ready."""
    if not is_ready(pod):
        return None
    ready = conditions.find_condition((pod.get("status") or {}).get("conditions"), "Ready")
    return timestamps.parse_time((ready or {}).get("lastTransitionTime"))


def seconds_until_available(pod: Pod, min_ready_seconds: int, now: datetime.datetime) -> float | None:
    """How long until a ready pod counts as available (0 when it is); None when it is not ready.

    A pod is available once it has been ready for minReadySeconds (podutil.IsPodAvailable).
    """
    if not is_ready(pod):
        return None
    if min_ready_seconds <= 0:
        return 0.0
    since = ready_since(pod)
    if since is None:
        return 0.0
    return max(0.0, (since + datetime.timedelta(seconds=min_ready_seconds) - now).total_seconds())


def is_available(pod: Pod, min_ready_seconds: int, now: datetime.datetime) -> bool:
    return seconds_until_available(pod, min_ready_seconds, now) == 0.0


def restarts(pod: Pod) -> int:
    statuses = (pod.get("status") or {}).get("containerStatuses") or ()
    return sum(int(s.get("restartCount") or 0) for s in statuses)


def deletion_order(candidates: Iterable[Pod]) -> list[Pod]:
    """Pods in the order a ReplicaSet deletes surplus ones (controller.ActivePods, first = first deleted).

    Unscheduled before scheduled, pending before running, not ready before ready, ready for a
    shorter time first, more restarts first, newer before older.
    """
    def rank(pod: Pod) -> tuple[Any, ...]:
        since = ready_since(pod)
        created = timestamps.parse_time(pod["metadata"].get("creationTimestamp"))
        return (
            bool((pod.get("spec") or {}).get("nodeName")),
            _PHASE_RANK.get(phase(pod), 2),
            is_ready(pod),
            -(since.timestamp() if since else 0.0),
            -restarts(pod),
            -(created.timestamp() if created else 0.0),
            _reverse_text(pod["metadata"]["name"]),
        )
    return sorted(candidates, key=rank)


def _reverse_text(text: str) -> tuple[int, ...]:
    # Names sort descending as a last tiebreak, so the order is total and repeatable.
    return tuple(-ord(c) for c in text)
