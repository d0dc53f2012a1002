"""Running a failed incident again from its failed step, when a person raises spec.retry. Pure.

The steps that succeeded stay done; the failed step and every later one that did not succeed start
afresh (a new plan from what is true now, a new retry budget). Approvals given before do not carry
over: a retried step that needs approval waits for a new one.
"""

from __future__ import annotations

from collections.abc import Mapping

from remediator.api.conditions import is_condition_true
from remediator.api.incidents import IncidentSpec
from remediator.api.steps import StepState, StepStatus
from remediator.api.timelines import EventType
from remediator.engine import guards, step_runs


def rerun(draft: step_runs.Draft, spec: IncidentSpec, annotations: Mapping[str, str]) -> None:
    """Act on a raised spec.retry once: reopen a failed incident from its first failed step."""
    status = draft.status
    if spec.retry <= status.retried:
        return
    status.retried = spec.retry
    who = annotations.get(guards.RETRIED_BY_ANNOTATION) or "unknown"
    if not is_condition_true(status.conditions, "Failed"):
        draft.add(EventType.NORMAL, "RetryIgnored",
                  f"retry {spec.retry} (requested by {who}) ignored: the incident has not failed", None)
        return
    names = [s.name for s in status.steps]
    first = next((i for i, s in enumerate(status.steps) if s.state == StepState.FAILED), None)
    if first is None:
        return
    reopened = [name for name in names[first:] if draft.step(name).state != StepState.SUCCEEDED]
    message = f"retry {spec.retry} requested by {who}: running again from step {names[first]}"
    for name in reopened:
        status.steps = [StepStatus(name=name, message=message) if s.name == name else s for s in status.steps]
    # Whatever approval is on the Incident now was given for the run that failed.
    status.ignored_approval = annotations.get(guards.APPROVE_ANNOTATION) or None
    for kind in ("Failed", "Escalated"):
        if is_condition_true(status.conditions, kind):
            draft.condition(kind, False, "Retried", message)
    draft.condition("Ready", False, "Remediating", message, entry=(EventType.NORMAL, "Retried", message, None))
