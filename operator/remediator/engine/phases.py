"""The one-word phase shown in `kubectl get`, derived from the conditions (which are the truth)."""

from __future__ import annotations

from collections.abc import Sequence

from remediator.api.conditions import Condition, find_condition, is_condition_true

# First match wins: the most final state is the one shown.
_PHASE_BY_TRUE_CONDITION = (
    ("Resolved", "Resolved"),
    ("Failed", "Failed"),
    ("Escalated", "Escalated"),
    ("AwaitingApproval", "AwaitingApproval"),
    ("Mitigated", "Mitigated"),
    ("Acknowledged", "Remediating"),
)


def incident_phase(conditions: Sequence[Condition]) -> str:
    """Invalid, Planned, Resolved, Failed, Escalated, AwaitingApproval, Mitigated, Remediating or Pending."""
    ready = find_condition(conditions, "Ready")
    if ready is not None and ready.reason == "InvalidSpec":
        return "Invalid"
    if ready is not None and ready.reason == "DryRunComplete":
        return "Planned"
    for condition_type, phase in _PHASE_BY_TRUE_CONDITION:
        if is_condition_true(conditions, condition_type):
            return phase
    return "Pending"


# Ready=False reasons of a rollback that is still under way; any other Ready=False after acceptance is a failure.
ROLLBACK_IN_PROGRESS_REASONS = frozenset({"RollingBack"})


def rollback_phase(conditions: Sequence[Condition]) -> str:
    """Invalid, Planned, Refused, Complete, Failed, RollingBack or Pending (a RollbackRequest's phase)."""
    ready = find_condition(conditions, "Ready")
    accepted = find_condition(conditions, "Accepted")
    if ready is not None and ready.reason == "InvalidSpec":
        return "Invalid"
    if ready is not None and ready.reason == "DryRunComplete":
        return "Planned"
    if accepted is not None and not is_condition_true(conditions, "Accepted"):
        return "Refused"
    if is_condition_true(conditions, "Ready"):
        return "Complete"
    if accepted is None:
        return "Pending"
    if ready is not None and ready.reason not in ROLLBACK_IN_PROGRESS_REASONS:
        return "Failed"
    return "RollingBack"
