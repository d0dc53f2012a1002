"""Deciding an Incident's next move: which step, observe or act, and the status to record.

`decide` is a pure function of the Incident, what the I/O layer has observed and the outcomes
of actions it performed, and the time. The state machine lives in the status, so the operator
can die between any two lines: the next call continues from what was recorded.

A step's life: Pending → (observe the target) → Running with the intent recorded (the absolute
result, e.g. "to 6 replicas") → the action → Succeeded/Failed. The intent is persisted before the
action, so a repeat after a crash re-applies the same absolute change rather than a new delta.
"""

from __future__ import annotations

import dataclasses
import datetime
from collections.abc import Mapping
from typing import Any

import pydantic

from remediator.api.conditions import is_condition_true
from remediator.api.errors import validation_messages
from remediator.api.incidents import IncidentSpec, IncidentStatus
from remediator.api.steps import Step, StepState, StepStatus
from remediator.api.timelines import EventType
from remediator.engine import drafts, intents, phases, scaling
from remediator.engine.drafts import MAX_MESSAGE

TERMINAL_STEP_STATES = frozenset({StepState.SUCCEEDED, StepState.FAILED, StepState.SKIPPED})


@dataclasses.dataclass(frozen=True)
class Incident:
    """The engine's view of one Incident object."""

    uid: str
    name: str
    namespace: str
    generation: int
    created_at: datetime.datetime
    spec: Mapping[str, Any]
    status: Mapping[str, Any]


@dataclasses.dataclass(frozen=True)
class Policy:
    """Operator-wide rules the engine applies to every incident."""

    dry_run: bool = False


@dataclasses.dataclass(frozen=True)
class World:
    """What the I/O layer found or did since the last decision, keyed by step name."""

    observations: Mapping[str, intents.Observed] = dataclasses.field(default_factory=dict)
    outcomes: Mapping[str, intents.Outcome] = dataclasses.field(default_factory=dict)


Decision = drafts.Decision[IncidentStatus, intents.Intent]


def decide(incident: Incident, world: World, now: datetime.datetime, policy: Policy) -> Decision:
    """The next move for an Incident; see the module docstring for the step life cycle."""
    status = IncidentStatus.model_validate(dict(incident.status or {}))
    draft = _Draft(status, incident, now)
    try:
        spec = IncidentSpec.model_validate(dict(incident.spec or {}))
    except pydantic.ValidationError as e:
        message = "; ".join(validation_messages(e))[:MAX_MESSAGE]
        draft.condition("Ready", False, "InvalidSpec", message,
                        entry=(EventType.WARNING, "InvalidSpec", message, None))
        return draft.decision()
    if _finished(status):
        return draft.decision()
    if not is_condition_true(status.conditions, "Acknowledged"):
        _acknowledge(draft, spec)
    dry_run = spec.dry_run or policy.dry_run
    for step in spec.steps:
        step_status = draft.step(step.name)
        if step_status.state in TERMINAL_STEP_STATES:
            continue
        intent = _advance_step(draft, incident, step, step_status, world, dry_run)
        if intent is not None:
            return draft.decision(intent)
        if draft.step(step.name).state not in TERMINAL_STEP_STATES:
            return draft.decision()
        if draft.step(step.name).state == StepState.FAILED and step.on_failure.value != "continue":
            break
    _conclude(draft, spec, dry_run)
    return draft.decision()


class _Draft(drafts.Draft[IncidentStatus]):
    """An Incident status being edited, with per-step helpers."""

    def __init__(self, status: IncidentStatus, incident: Incident, now: datetime.datetime) -> None:
        super().__init__(status, incident.generation, now, phases.incident_phase)
        self.incident = incident

    def step(self, name: str) -> StepStatus:
        for step_status in self.status.steps:
            if step_status.name == name:
                return step_status
        step_status = StepStatus(name=name)
        self.status.steps.append(step_status)
        return step_status

    def update_step(self, name: str, **changes: Any) -> StepStatus:
        current = self.step(name)
        updated = current.model_copy(update=changes)
        self.status.steps = [updated if s.name == name else s for s in self.status.steps]
        return updated


def _finished(status: IncidentStatus) -> bool:
    return any(is_condition_true(status.conditions, t) for t in ("Resolved", "Failed")) or any(
        c.type == "Ready" and c.reason == "DryRunComplete" for c in status.conditions)


def _acknowledge(draft: _Draft, spec: IncidentSpec) -> None:
    status = draft.status
    status.detected_at = status.detected_at or (
        spec.source.starts_at if spec.source and spec.source.starts_at else draft.incident.created_at)
    status.acknowledged_at = draft.now
    for step in spec.steps:
        draft.step(step.name)
    draft.condition("Acknowledged", True, "OperatorAcknowledged",
                    f"{spec.severity.value}: {spec.summary}",
                    entry=(EventType.NORMAL, "Acknowledged",
                           f"{spec.severity.value} incident acknowledged: {spec.summary}", None))
    draft.condition("Ready", False, "Remediating", f"running {len(spec.steps)} step(s)")


def _advance_step(draft: _Draft, incident: Incident, step: Step, step_status: StepStatus, world: World,
                  dry_run: bool) -> intents.Intent | None:
    """Move one step as far as it can go now; return what must be observed or done next."""
    if step.scale is not None:
        return _advance_scale(draft, incident, step, step_status, world, dry_run)
    _finish(draft, step.name, StepState.FAILED, "UnsupportedStep",
            f"step kind {step.kind!r} is not supported by this operator version")
    return None


def _advance_scale(draft: _Draft, incident: Incident, step: Step, step_status: StepStatus, world: World,
                   dry_run: bool) -> intents.Intent | None:
    assert step.scale is not None
    target = step.scale.target
    if step_status.state == StepState.RUNNING and step_status.idempotency_key:
        outcome = world.outcomes.get(step.name)
        desired = int(step_status.result.get("to", 0))
        if outcome is None:
            # Intent recorded but no outcome: the action may or may not have happened. Redo it.
            return intents.ScaleTo(step.name, target, desired, step_status.idempotency_key)
        if outcome.succeeded:
            _finish(draft, step.name, StepState.SUCCEEDED, "StepSucceeded",
                    f"scaled {target.kind.lower()}/{target.name} from {step_status.result.get('from')} "
                    f"to {desired}")
        else:
            _finish(draft, step.name, StepState.FAILED, outcome.reason or "ActionFailed", outcome.message)
        return None
    observed = world.observations.get(step.name)
    if observed is None:
        return intents.ObserveReplicas(step.name, target)
    if observed.value is None:
        _finish(draft, step.name, StepState.FAILED, observed.reason or "TargetNotFound", observed.message)
        return None
    plan = scaling.plan_scale(step.scale, observed.value)
    result: dict[str, Any] = {"from": plan.current, "to": plan.desired, "requested": plan.requested}
    if plan.limited_by:
        result["limitedBy"] = plan.limited_by
    if dry_run:
        draft.update_step(step.name, result={**result, "dryRun": True})
        _finish(draft, step.name, StepState.SKIPPED, "DryRun",
                f"dry run: would scale {plan.describe(target.kind, target.name)}")
        return None
    attempts = step_status.attempts + 1
    key = f"{incident.uid}/{step.name}/{attempts}"
    draft.update_step(step.name, state=StepState.RUNNING, attempts=attempts,
                      started_at=step_status.started_at or draft.now, result=result, idempotency_key=key,
                      message=f"scaling {plan.describe(target.kind, target.name)}")
    return intents.ScaleTo(step.name, target, plan.desired, key)


def _finish(draft: _Draft, name: str, state: StepState, reason: str, message: str) -> None:
    draft.update_step(name, state=state, finished_at=draft.now, message=message[:MAX_MESSAGE])
    event_type = EventType.WARNING if state == StepState.FAILED else EventType.NORMAL
    draft.add(event_type, reason, message, name)


def _conclude(draft: _Draft, spec: IncidentSpec, dry_run: bool) -> None:
    states = {s.name: s.state for s in draft.status.steps}
    failed = [step for step in spec.steps if states.get(step.name) == StepState.FAILED]
    aborting = [step for step in failed if step.on_failure.value != "continue"]
    if aborting:
        step = aborting[0]
        if step.on_failure.value == "escalate":
            draft.condition("Escalated", True, "StepFailed", f"step {step.name} failed",
                            entry=(EventType.WARNING, "Escalated", f"escalated: step {step.name} failed",
                                   step.name))
        draft.condition("Failed", True, "StepFailed", f"step {step.name} failed",
                        entry=(EventType.WARNING, "IncidentFailed", f"remediation failed at step {step.name}",
                               None))
        draft.condition("Ready", False, "StepFailed", f"step {step.name} failed")
        return
    if dry_run:
        draft.condition("Ready", True, "DryRunComplete", "every step was planned; nothing was changed",
                        entry=(EventType.NORMAL, "DryRunComplete",
                               "dry run complete: every step was planned, nothing was changed", None))
        return
    draft.status.mitigated_at = draft.status.mitigated_at or draft.now
    draft.status.resolved_at = draft.status.resolved_at or draft.now
    draft.condition("Mitigated", True, "StepsSucceeded", "every remediation step finished",
                    entry=(EventType.NORMAL, "Mitigated", "every remediation step finished", None))
    draft.condition("Resolved", True, "StepsSucceeded", "the incident is resolved",
                    entry=(EventType.NORMAL, "Resolved", "incident resolved", None))
    draft.condition("Ready", True, "Resolved", "the incident is resolved")
