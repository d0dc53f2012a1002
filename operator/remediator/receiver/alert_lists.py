"""An Incident's status.alerts[]: the alerts of its episode, merged in by the receiver. Pure.

Merging is idempotent: an alert is identified by fingerprint and startsAt, so a resend, an HA
duplicate or a second replica's write of the same notification adds nothing. When every recorded alert
is resolved, the condition AlertResolved becomes True.

Timeline entries are per write, not per alert: one AlertReceived for the alerts a notification adds
(naming the first few), one AlertChanged for those whose state it changes. An alert storm (100 alerts of
a group in one notification) thus adds one entry, not 100 that would fold the operator's own entries
out of the bounded timeline, and the receiver posts each entry as an Event without multiplying writes.
"""

from __future__ import annotations

import dataclasses
import datetime
from collections.abc import Mapping, Sequence
from typing import Any

from remediator.api.incidents import MAX_ALERTS, AlertRecord, AlertState, IncidentStatus
from remediator.api.timelines import EventType, TimelineEntry
from remediator.engine import drafts, incidents, phases

ALERT_RESOLVED = incidents.ALERT_RESOLVED
# How many alerts one timeline entry names (its message is cut at 1,024 characters anyway).
LISTED_IN_ENTRY = 5


@dataclasses.dataclass(frozen=True)
class Merged:
    """The Incident's status with the alerts merged in (JSON), and the timeline entries that adds."""

    status: dict[str, Any]
    entries: tuple[TimelineEntry, ...]


def merge(status: Mapping[str, Any], alerts: Sequence[AlertRecord], truncated_alerts: int,
          now: datetime.datetime) -> Merged | None:
    """The Incident's status with `alerts` merged in; None when that changes nothing."""
    if _holds_already(status, alerts, truncated_alerts):
        return None  # a resend or an HA duplicate, the usual case in a storm: no need to read the whole status
    current = IncidentStatus.model_validate(dict(status))
    draft: drafts.Draft[IncidentStatus] = drafts.Draft(
        current, current.observed_generation or 0, now, phases.incident_phase)
    recorded = draft.status.alerts
    index = {(a.fingerprint, a.starts_at): i for i, a in enumerate(recorded)}
    received: list[str] = []
    changed: list[str] = []
    for alert in alerts:
        found = index.get((alert.fingerprint, alert.starts_at))
        if found is None:
            index[(alert.fingerprint, alert.starts_at)] = len(recorded)
            recorded.append(alert)
            received.append(f"{_named(alert)} {alert.status.value}, started {alert.starts_at.isoformat()}")
        elif recorded[found] != alert:
            if recorded[found].status != alert.status:
                changed.append(f"{_named(alert)} is {alert.status.value}")
            recorded[found] = alert
    if received:
        draft.add(EventType.NORMAL, "AlertReceived", _listed(received, "received"))
    if changed:
        draft.add(EventType.NORMAL, "AlertChanged", _listed(changed, "changed"))
    draft.status.alerts, draft.status.alerts_folded = _bounded(recorded, draft.status.alerts_folded)
    draft.status.truncated_alerts = max(draft.status.truncated_alerts, truncated_alerts)
    if all(a.status == AlertState.RESOLVED for a in draft.status.alerts):
        draft.condition(ALERT_RESOLVED, True, ALERT_RESOLVED, "every alert of this incident is resolved",
                        entry=(EventType.NORMAL, ALERT_RESOLVED, "every alert of this incident is resolved", None))
    elif any(c.type == ALERT_RESOLVED for c in draft.status.conditions):
        draft.condition(ALERT_RESOLVED, False, "AlertFiring", "an alert of this incident is firing again",
                        entry=(EventType.NORMAL, "AlertFiring", "an alert of this incident is firing again", None))
    decision: drafts.Decision[IncidentStatus, None] = draft.decision()
    # Only the operator says which generation it has seen.
    decision.status.observed_generation = current.observed_generation
    if decision.status == current:
        return None
    return Merged(decision.status.model_dump(by_alias=True, mode="json", exclude_none=True), decision.entries)


def _holds_already(status: Mapping[str, Any], alerts: Sequence[AlertRecord], truncated_alerts: int) -> bool:
    """Whether the status records every alert exactly as given, and at least as many truncated alerts."""
    if truncated_alerts > int(status.get("truncatedAlerts") or 0):
        return False
    recorded = {(a.fingerprint, a.starts_at): a for a in (AlertRecord.model_validate(dict(r))
                                                          for r in status.get("alerts") or [])}
    return all(recorded.get((a.fingerprint, a.starts_at)) == a for a in alerts)


def _named(alert: AlertRecord) -> str:
    return f"alert {alert.fingerprint or '(no fingerprint)'}"


def _listed(descriptions: Sequence[str], what: str) -> str:
    """One alert's description, or how many alerts and the first few of them."""
    if len(descriptions) == 1:
        return descriptions[0]
    shown = "; ".join(descriptions[:LISTED_IN_ENTRY])
    more = len(descriptions) - LISTED_IN_ENTRY
    return f"{len(descriptions)} alerts {what}: {shown}" + (f"; and {more} more" if more > 0 else "")


def _bounded(alerts: list[AlertRecord], folded: int) -> tuple[list[AlertRecord], int]:
    """At most MAX_ALERTS: the oldest resolved alerts are folded first, then the oldest firing ones."""
    overflow = len(alerts) - MAX_ALERTS
    if overflow <= 0:
        return alerts, folded
    dropped = {i for i, a in enumerate(alerts) if a.status == AlertState.RESOLVED}
    dropped = set(sorted(dropped)[:overflow])
    dropped |= set([i for i in range(len(alerts)) if i not in dropped][: overflow - len(dropped)])
    return [a for i, a in enumerate(alerts) if i not in dropped], folded + overflow


def is_open(incident: Mapping[str, Any]) -> bool:
    """Whether an Incident (as stored) is still under way: new alerts of its key join it."""
    # Only the conditions say whether it is finished: the rest of the status (alerts, timeline) is not read.
    conditions = (incident.get("status") or {}).get("conditions") or []
    return not incidents.finished(IncidentStatus.model_validate({"conditions": conditions}))
