"""Loop guards for Incidents created from alerts. Pure.

An alert that the remediation does not cure comes back, and an automated remediation would repeat
forever. Counted per incident key (the Runbook and the alert's key labels: in practice, the target):
- `maxRemediations` Incidents within `window` (default 3 in 1h): the next one is created Escalated
  (RemediationLoop) with every step waiting for approval, so it does not act by itself;
- `maxConsecutiveFailures` Failed Incidents in a row (default 2): the next one waits for approval.
The hold is in the Incident's spec from its creation (steps requiresApproval, and why in
`source.hold`), so no race with the operator and no crash can let it act first, and whichever
replica reconciles the Incident first records it (Escalated, or a timeline entry).
"""

from __future__ import annotations

import dataclasses
import datetime
from collections.abc import Mapping, Sequence
from typing import Any

from remediator.api.durations import format_duration, parse_duration
from remediator.api.incidents import LoopGuardHold
from remediator.api.runbooks import RunbookDefaults

REMEDIATION_LOOP = "RemediationLoop"
CONSECUTIVE_FAILURES = "ConsecutiveFailures"


@dataclasses.dataclass(frozen=True)
class LoopGuard:
    """The operator's limits (`--max-remediations`, `--max-consecutive-failures`); a Runbook may set its own."""

    max_remediations: int = 3
    window: datetime.timedelta = datetime.timedelta(hours=1)
    max_consecutive_failures: int = 2

    def for_runbook(self, defaults: RunbookDefaults) -> LoopGuard:
        """These limits with the Runbook's own where it sets them."""
        return LoopGuard(
            defaults.max_remediations or self.max_remediations,
            parse_duration(defaults.remediation_window) if defaults.remediation_window else self.window,
            defaults.max_consecutive_failures or self.max_consecutive_failures)


# Why a new Incident must not act by itself; `escalate`: it is created Escalated.
Hold = LoopGuardHold


def judge(incidents: Sequence[Mapping[str, Any]], guard: LoopGuard, now: datetime.datetime) -> Hold | None:
    """Whether the next Incident of a key is held, given the key's earlier Incidents (any state)."""
    recent = [i for i in incidents if _created_at(i) > now - guard.window]
    if len(recent) >= guard.max_remediations:
        return Hold(reason=REMEDIATION_LOOP, message=f"{len(recent)} incidents for this target within "
                    f"{format_duration(guard.window)} (maxRemediations {guard.max_remediations}): every step waits "
                    f"for approval", escalate=True)
    streak = 0
    for incident in sorted(incidents, key=_created_at, reverse=True):
        if not _failed(incident):
            break
        streak += 1
    if streak >= guard.max_consecutive_failures:
        return Hold(reason=CONSECUTIVE_FAILURES, message=f"the last {streak} incidents for this target failed "
                    f"(maxConsecutiveFailures {guard.max_consecutive_failures}): every step waits for approval",
                    escalate=False)
    return None


def held(manifest: Mapping[str, Any], hold: Hold) -> dict[str, Any]:
    """The Incident manifest with every step waiting for approval, and why in `spec.source.hold`."""
    spec = dict(manifest["spec"])
    spec["steps"] = [{**step, "requiresApproval": True} for step in spec.get("steps", [])]
    spec["source"] = {**(spec.get("source") or {}), "hold": hold.model_dump(by_alias=True, mode="json")}
    return {**manifest, "spec": spec}


def _created_at(incident: Mapping[str, Any]) -> datetime.datetime:
    text = str((incident.get("metadata") or {}).get("creationTimestamp") or "")
    try:
        return datetime.datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return datetime.datetime.min.replace(tzinfo=datetime.UTC)


def _failed(incident: Mapping[str, Any]) -> bool:
    conditions = (incident.get("status") or {}).get("conditions") or []
    return any(c.get("type") == "Failed" and c.get("status") == "True" for c in conditions)
