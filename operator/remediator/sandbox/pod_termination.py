"""Graceful deletion of pods: what kube-apiserver's pod strategy and `BeforeDelete` decide. Pure.

A running pod is not removed by a DELETE: it gets `deletionTimestamp` (now + grace period) and
`deletionGracePeriodSeconds`, and stays Terminating until its kubelet has stopped it and deletes
it for good with a grace period of 0. A later DELETE may only shorten the grace period.
https://kubernetes.io/docs/concepts/workloads/pods/pod-lifecycle/#pod-termination
"""

from __future__ import annotations

import copy
import dataclasses
import datetime
from collections.abc import Mapping
from typing import Any

Object = dict[str, Any]
DEFAULT_GRACE_SECONDS = 30
FINISHED_PHASES = ("Succeeded", "Failed")


@dataclasses.dataclass(frozen=True)
class Deletion:
    """What a DELETE does to a pod: remove it now, or store `marked` (None: leave it as it is)."""

    immediate: bool
    marked: Object | None = None


def grace_period(pod: Mapping[str, Any], requested: int | None) -> int:
    """The request's gracePeriodSeconds, else the pod's terminationGracePeriodSeconds (default 30).

    0 for a pod no node runs yet and for a finished one: nothing needs stopping (CheckGracefulDelete).
    """
    spec, status = pod.get("spec") or {}, pod.get("status") or {}
    if not spec.get("nodeName") or status.get("phase") in FINISHED_PHASES:
        return 0
    if requested is None:
        requested = spec.get("terminationGracePeriodSeconds", DEFAULT_GRACE_SECONDS)
    # A negative period is taken as 1 second, the shortest graceful one.
    return max(1, int(requested)) if int(requested) != 0 else 0


def decide(pod: Mapping[str, Any], requested: int | None, now: datetime.datetime) -> Deletion:
    """How a DELETE with `requested` gracePeriodSeconds (None: not given) treats a stored pod."""
    meta = pod["metadata"]
    if meta.get("deletionTimestamp"):
        current = meta.get("deletionGracePeriodSeconds")
        if not current:  # held by finalizers only: the generic store's path
            return Deletion(immediate=True)
        if requested is None or requested >= current:
            return Deletion(immediate=False)  # graceful deletion already pending
        if requested <= 0:
            return Deletion(immediate=True)
        started = _parse(meta["deletionTimestamp"]) - datetime.timedelta(seconds=current)
        return Deletion(immediate=False, marked=_marked(pod, requested, started, bump_generation=False))
    grace = grace_period(pod, requested)
    if grace == 0:
        return Deletion(immediate=True)
    return Deletion(immediate=False, marked=_marked(pod, grace, now, bump_generation=True))


def _marked(pod: Mapping[str, Any], grace: int, start: datetime.datetime, *, bump_generation: bool) -> Object:
    marked = copy.deepcopy(dict(pod))
    meta = marked["metadata"]
    meta["deletionTimestamp"] = _format(start + datetime.timedelta(seconds=grace))
    meta["deletionGracePeriodSeconds"] = grace
    if bump_generation and meta.get("generation"):
        meta["generation"] = int(meta["generation"]) + 1
    return marked


def _parse(stamp: str) -> datetime.datetime:
    return datetime.datetime.strptime(stamp, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=datetime.UTC)


def _format(moment: datetime.datetime) -> str:
    return moment.astimezone(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
