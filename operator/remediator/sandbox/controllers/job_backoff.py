"""The Job controller's back-off before it replaces a failed pod (pkg/controller/job/backoff_utils.go).

After a Job's pod fails, its replacement waits 10 s, doubling with every failure in a row (a
success resets the count), up to 10 minutes (DefaultJobPodFailureBackOff, MaxJobPodFailureBackOff),
times the sandbox's time scale. Like the real controller's backoffRecordStore it lives in memory:
one record per Job, fed with the Job's pods as they finish.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Mapping
from typing import Any

from remediator.sandbox.controllers import pods

BACKOFF_START = 10.0
BACKOFF_MAX = 600.0


@dataclasses.dataclass(frozen=True)
class BackoffRecord:
    """A Job's failures since its last success; times are time.monotonic() values."""

    failures_after_success: int = 0
    last_failure: float = 0.0
    counted: frozenset[str] = frozenset()  # uids of the finished pods already counted


def _finished_at(pod: Mapping[str, Any]) -> str:
    # The latest container finish (RFC 3339 sorts as text); the real controller sorts by finish time too.
    statuses = (pod.get("status") or {}).get("containerStatuses") or ()
    return max((str(((s.get("state") or {}).get("terminated") or {}).get("finishedAt") or "") for s in statuses),
               default="")


def observe(record: BackoffRecord | None, job_pods: Iterable[Mapping[str, Any]], now: float) -> BackoffRecord:
    """The record after counting the Job's pods that finished since it was last seen, in finish order."""
    record = record or BackoffRecord()
    finished = sorted((pod for pod in job_pods if pods.phase(pod) in pods.FINISHED_PHASES
                       and pod["metadata"].get("uid") not in record.counted), key=_finished_at)
    failures, last_failure = record.failures_after_success, record.last_failure
    for pod in finished:
        if pods.phase(pod) == "Succeeded":
            failures = 0
        else:
            failures, last_failure = failures + 1, now
    if not finished:
        return record
    counted = record.counted | {str(pod["metadata"].get("uid")) for pod in finished}
    return BackoffRecord(failures, last_failure, counted)


def delay(failures_after_success: int) -> float:
    """Seconds (Kubernetes' seconds) a replacement waits after this many failures in a row."""
    if failures_after_success <= 0:
        return 0.0
    return min(BACKOFF_START * 2.0 ** (failures_after_success - 1), BACKOFF_MAX)


def remaining(record: BackoffRecord, now: float, time_scale: float) -> float:
    """Seconds (the sandbox's) until the Job may create a pod again; 0 when it may now."""
    return max(0.0, record.last_failure + delay(record.failures_after_success) * time_scale - now)
