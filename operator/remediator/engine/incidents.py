"""Deciding an Incident's next move: which step, which guard holds it, what to observe or do.

`decide` is a pure function of the Incident, what the I/O layer has answered so far (`World`),
the time and the operator's policy. The state machine lives in the status, so the operator can
die between any two lines: the next call continues from what was recorded.

A step's life: Pending → guards (allow-lists, approval, target lock, cooldown, rate limit) →
Running with its intent recorded (an absolute change, e.g. "to 6 replicas") → the action →
Succeeded, or a failed attempt that is retried with backoff or fails the step for good.
The intent is persisted before the action, so a repeat after a crash re-applies the same
absolute change rather than a new delta.
"""

from __future__ import annotations

import dataclasses
import datetime
import hashlib
import json
from collections.abc import Mapping
from typing import Any

import pydantic

from remediator.api.conditions import is_condition_true
from remediator.api.durations import parse_duration
from remediator.api.errors import validation_messages
from remediator.api.incidents import IncidentSpec, IncidentStatus
from remediator.api.severities import default_escalate_after
from remediator.api.steps import OnFailure, Step, StepState, StepStatus
from remediator.api.timelines import EventType
from remediator.engine import (
    allow_lists,
    drafts,
    guards,
    http_checks,
    intents,
    phases,
    plans,
    pod_restarts,
    rollouts,
    step_lists,
)

TERMINAL_STEP_STATES = frozenset({StepState.SUCCEEDED, StepState.FAILED, StepState.SKIPPED})
POLL = datetime.timedelta(seconds=2)
DEFAULT_MAX_REPLICAS = 1000
RUNBOOK_RECHECK = datetime.timedelta(seconds=30)
# etcd takes objects up to 1.5 MiB; an Incident's status stays far below, whatever its steps report.
MAX_STATUS_BYTES = 200 * 1024
MAX_RESULT_BYTES = 16 * 1024
Decision = drafts.Decision[IncidentStatus, intents.Intent]


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
    annotations: Mapping[str, str] = dataclasses.field(default_factory=dict)

    @property
    def holder(self) -> str:
        """How locks and cooldown stamps name this incident."""
        return f"{self.namespace}/{self.name}"


@dataclasses.dataclass(frozen=True)
class Policy:
    """Operator-wide rules applied to every incident."""

    dry_run: bool = False
    namespaces: frozenset[str] | None = None
    kinds: frozenset[str] | None = None
    approval: guards.ApprovalPolicy = dataclasses.field(default_factory=guards.ApprovalPolicy)
    cooldown: datetime.timedelta = guards.DEFAULT_COOLDOWN
    max_cooldown: datetime.timedelta = guards.DEFAULT_MAX_COOLDOWN  # no cooldown (spec or stamp) lasts longer
    max_replicas: int = DEFAULT_MAX_REPLICAS  # no scale plans more replicas than this
    jobs: allow_lists.JobPolicy = dataclasses.field(default_factory=allow_lists.JobPolicy)


@dataclasses.dataclass(frozen=True)
class World:
    """What the I/O layer answered since the last persisted state, and the rate limiter's verdict now."""

    results: Mapping[intents.Intent, intents.Result] = dataclasses.field(default_factory=dict)
    rate_limit: guards.Verdict = guards.PROCEED
    rate_slots: frozenset[str] = frozenset()  # steps that took a rate-limit slot in this reconciliation


@dataclasses.dataclass(frozen=True)
class _Wait:
    until: datetime.datetime | None  # None: until something changes (e.g. an approval annotation)


_Progress = intents.Intent | _Wait | None  # None: the step reached a terminal state


def decide(incident: Incident, world: World, now: datetime.datetime, policy: Policy) -> Decision:
    """The next move for an Incident; see the module docstring for the step life cycle."""
    status = IncidentStatus.model_validate(dict(incident.status or {}))
    draft = _Draft(status, incident, now)
    try:
        spec = IncidentSpec.model_validate(dict(incident.spec or {}))
    except pydantic.ValidationError as e:
        message = "; ".join(validation_messages(e))
        draft.condition("Ready", False, "InvalidSpec", message,
                        entry=(EventType.WARNING, "InvalidSpec", message, None))
        return draft.decision()
    if _finished(status):
        return draft.decision()
    context = _Context(draft, incident, spec, world, now, policy, spec.dry_run or policy.dry_run)
    frozen = _frozen_steps(context)
    if not isinstance(frozen, list):
        return _waiting(context, frozen, _check_escalation(context))
    context.steps = frozen
    if not is_condition_true(status.conditions, "Acknowledged"):
        _acknowledge(context)
    escalation_at = _check_escalation(context)
    for step in context.steps:
        if draft.step(step.name).state not in TERMINAL_STEP_STATES:
            progress = _advance(context, step)
            if progress is not None:
                return _waiting(context, progress, escalation_at)
        if draft.step(step.name).state == StepState.FAILED and _on_failure(step) != OnFailure.CONTINUE:
            break  # later steps never run after a step that aborts or escalates
    release = _release(context)
    if release is not None:
        return draft.decision(release)
    _conclude(context)
    return draft.decision()


def _waiting(context: _Context, progress: intents.Intent | _Wait,
             escalation_at: datetime.datetime | None) -> Decision:
    """The decision for an incident that asks for an intent, or waits (for time, or for a change)."""
    if not isinstance(progress, _Wait):
        return context.draft.decision(progress)
    waits = [t for t in (progress.until, escalation_at) if t is not None]
    return context.draft.decision(
        requeue_after=max(min(waits) - context.now, datetime.timedelta()) if waits else None)


def _frozen_steps(context: _Context) -> list[Step] | intents.Intent | _Wait:
    """The steps this incident runs: fixed when it is acknowledged, refused when edited afterwards."""
    spec, draft, incident = context.spec, context.draft, context.incident
    status = draft.status
    current = step_lists.digest(incident.spec)
    if is_condition_true(status.conditions, "Acknowledged"):
        if status.steps_digest is None:
            status.steps_digest = current  # acknowledged by an operator version that kept no digest
        if status.steps_digest != current:
            message = ("spec.steps or spec.runbookRef changed after the incident started; nothing more is done "
                       "until they are restored")
            draft.condition("Ready", False, "StepsChanged", message,
                            entry=(EventType.WARNING, "StepsChanged", message, None))
            return _Wait(None)
        if any(c.type == "Ready" and c.reason == "StepsChanged" for c in status.conditions):
            draft.condition("Ready", False, "Remediating", "the steps are as acknowledged again",
                            entry=(EventType.NORMAL, "StepsRestored", "the steps are as acknowledged again", None))
        return [*status.runbook_steps, *spec.steps]
    runbook_steps: list[Step] = []
    if spec.runbook_ref is not None:
        observe = intents.ObserveRunbook(incident.namespace, spec.runbook_ref.name)
        looked = context.result(observe)
        if looked is None:
            return observe
        if not looked.succeeded or looked.value is None:
            message = f"Runbook {spec.runbook_ref.name} not found in namespace {incident.namespace}"
            draft.condition("Ready", False, "RunbookNotFound", message,
                            entry=(EventType.WARNING, "RunbookNotFound", message, None))
            return _Wait(context.now + RUNBOOK_RECHECK)
        runbook_steps, error = step_lists.from_runbook(looked.value, spec.steps)
        if error is not None:
            draft.condition("Ready", False, "InvalidRunbook", error,
                            entry=(EventType.WARNING, "InvalidRunbook", error, None))
            return _Wait(context.now + RUNBOOK_RECHECK)
    status.runbook_steps = runbook_steps
    status.steps_digest = current
    return [*runbook_steps, *spec.steps]


class _Draft(drafts.Draft[IncidentStatus]):
    """An Incident status being edited, with per-step helpers."""

    def __init__(self, status: IncidentStatus, incident: Incident, now: datetime.datetime) -> None:
        super().__init__(status, incident.generation, now, phases.incident_phase)

    def step(self, name: str) -> StepStatus:
        for step_status in self.status.steps:
            if step_status.name == name:
                return step_status
        step_status = StepStatus(name=name)
        self.status.steps.append(step_status)
        return step_status

    def update_step(self, name: str, **changes: Any) -> StepStatus:
        updated = self.step(name).model_copy(update=changes)
        self.status.steps = [updated if s.name == name else s for s in self.status.steps]
        return updated

    def bound(self) -> None:
        # The status must fit in the object whatever the steps report: the largest results of finished steps
        # give way first (a running step's result holds its intent, which must stay whole).
        results = sorted((s for s in self.status.steps if s.state in TERMINAL_STEP_STATES),
                         key=lambda s: -_size(s.result))
        while results and _size(self.status) > MAX_STATUS_BYTES:
            largest = results.pop(0)
            self.update_step(largest.name, result=bounded_result(largest.result, 0))


def _size(value: Any) -> int:
    if isinstance(value, pydantic.BaseModel):
        return len(value.model_dump_json(by_alias=True, exclude_none=True))
    return len(json.dumps(value, default=str))


def bounded_result(result: Mapping[str, Any], limit: int) -> dict[str, Any]:
    """A step result of at most `limit` bytes of JSON: a larger one keeps only its small fields and says so."""
    size = _size(result)
    if size <= limit:
        return dict(result)
    kept = {k: v for k, v in result.items() if _size(v) <= 256}
    return {**kept, "truncated": True, "bytes": size}


@dataclasses.dataclass
class _Context:
    draft: _Draft
    incident: Incident
    spec: IncidentSpec
    world: World
    now: datetime.datetime
    policy: Policy
    dry_run: bool
    steps: list[Step] = dataclasses.field(default_factory=list)  # frozen when acknowledged

    def result(self, intent: intents.Intent) -> intents.Result | None:
        return self.world.results.get(intent)


# -- the incident as a whole -----------------------------------------------------------------------------------


def _finished(status: IncidentStatus) -> bool:
    return any(is_condition_true(status.conditions, t) for t in ("Resolved", "Failed")) or any(
        c.type == "Ready" and c.reason == "DryRunComplete" for c in status.conditions)


def _acknowledge(context: _Context) -> None:
    spec, draft = context.spec, context.draft
    status = draft.status
    status.detected_at = status.detected_at or (
        spec.source.starts_at if spec.source and spec.source.starts_at else context.incident.created_at)
    status.acknowledged_at = context.now
    for step in context.steps:
        draft.step(step.name)
    draft.condition("Acknowledged", True, "OperatorAcknowledged", f"{spec.severity.value}: {spec.summary}",
                    entry=(EventType.NORMAL, "Acknowledged",
                           f"{spec.severity.value} incident acknowledged: {spec.summary}", None))
    draft.condition("Ready", False, "Remediating", f"running {len(context.steps)} step(s)")
    approval = context.incident.annotations.get(guards.APPROVE_ANNOTATION)
    if approval is not None:
        # Whoever creates an Incident must not approve it in the same breath.
        status.ignored_approval = approval
        draft.add(EventType.WARNING, "ApprovalIgnored",
                  f"the Incident arrived with {guards.APPROVE_ANNOTATION}={approval}: approvals present at creation "
                  f"are ignored; remove the annotation and approve again")


def _check_escalation(context: _Context) -> datetime.datetime | None:
    """Escalate when unmitigated past escalateAfter; returns when to look again (None: no deadline)."""
    spec, status = context.spec, context.draft.status
    if is_condition_true(status.conditions, "Mitigated") or is_condition_true(status.conditions, "Escalated"):
        return None
    after = parse_duration(spec.escalate_after) if spec.escalate_after else default_escalate_after(spec.severity)
    deadline = (status.detected_at or context.incident.created_at) + after
    if context.now < deadline:
        return deadline
    message = f"not mitigated within {_human(after)} of detection ({spec.severity.value})"
    context.draft.condition("Escalated", True, "NotMitigatedInTime", message,
                            entry=(EventType.WARNING, "Escalated", f"escalated: {message}", None))
    return None


def _claimed(status: IncidentStatus) -> set[tuple[str, str]]:
    return {(str(s.result["target"]["kind"]), str(s.result["target"]["name"])) for s in status.steps
            if isinstance(s.result.get("target"), dict) and s.result.get("claimed")}


def release_on_deletion(incident: Incident) -> intents.ReleaseTargets | None:
    """The locks a deleted Incident may still hold: those its status records, and every target its
    steps would lock (a claim can land just before a deletion, with no status write after it).
    Releasing is conditional on the lock naming this incident, so the extra targets cost nothing."""
    steps: list[Step] = []
    try:
        status = IncidentStatus.model_validate(dict(incident.status or {}))
        claimed, steps = _claimed(status), list(status.runbook_steps)
    except pydantic.ValidationError:
        claimed = set()
    try:
        steps += IncidentSpec.model_validate(dict(incident.spec or {})).steps
    except pydantic.ValidationError:
        pass
    lockable = {t for t in (_target(step) for step in steps if step.wait_for_rollout is None) if t is not None}
    targets = tuple(sorted(claimed | lockable))
    return intents.ReleaseTargets(incident.holder, targets) if targets else None


def _release(context: _Context) -> intents.ReleaseTargets | None:
    """Release the target locks this incident claimed, once, before concluding."""
    claimed = tuple(sorted(_claimed(context.draft.status)))
    if not claimed:
        return None
    release = intents.ReleaseTargets(context.incident.holder, claimed)
    result = context.result(release)
    if result is None:
        return release
    for step_status in context.draft.status.steps:
        if step_status.result.get("claimed"):
            context.draft.update_step(step_status.name, result={**step_status.result, "claimed": False})
    return None


def _conclude(context: _Context) -> None:
    draft, steps = context.draft, context.steps
    states = {s.name: s.state for s in draft.status.steps}
    stopping = [s for s in steps if states.get(s.name) == StepState.FAILED
                and _on_failure(s) != OnFailure.CONTINUE]
    if stopping:
        step = stopping[0]
        for later in steps:
            if draft.step(later.name).state not in TERMINAL_STEP_STATES:
                draft.update_step(later.name, state=StepState.SKIPPED, finished_at=context.now,
                                  message=f"not run: step {step.name} failed")
        if _on_failure(step) == OnFailure.ESCALATE:
            draft.condition("Escalated", True, "StepFailed", f"step {step.name} failed",
                            entry=(EventType.WARNING, "Escalated", f"escalated: step {step.name} failed",
                                   step.name))
        draft.condition("Failed", True, "StepFailed", f"step {step.name} failed",
                        entry=(EventType.WARNING, "IncidentFailed", f"remediation failed at step {step.name}", None))
        draft.condition("Ready", False, "StepFailed", f"step {step.name} failed")
        return
    if context.dry_run:
        draft.condition("Ready", True, "DryRunComplete", "every step was planned; nothing was changed",
                        entry=(EventType.NORMAL, "DryRunComplete",
                               "dry run complete: every step was planned, nothing was changed", None))
        return
    failed = [s for s in steps if states.get(s.name) == StepState.FAILED]
    required = [s.name for s in failed if not _optional(s)]
    draft.condition("AwaitingApproval", False, "NothingAwaitingApproval", "no step is waiting for approval")
    if required:
        # onFailure: continue ran the later steps; it never turns a failed step into a success.
        message = f"{len(required)} of {len(steps)} step(s) failed: {', '.join(required)}"
        draft.condition("Mitigated", False, "StepsFailed", message)
        draft.condition("Failed", True, "StepsFailed", message,
                        entry=(EventType.WARNING, "IncidentFailed", f"remediation failed: {message}", None))
        draft.condition("Ready", False, "StepsFailed", message)
        return
    now = context.now
    draft.status.mitigated_at = draft.status.mitigated_at or now
    draft.status.resolved_at = draft.status.resolved_at or now
    if failed:
        optional = ", ".join(s.name for s in failed)
        draft.condition("Degraded", True, "OptionalStepsFailed", f"optional step(s) failed: {optional}",
                        entry=(EventType.WARNING, "Degraded", f"optional step(s) failed: {optional}", None))
    # Mitigated and Resolved happen together here: one timeline entry (one Event) says both.
    draft.condition("Mitigated", True, "StepsSucceeded",
                    "every required remediation step succeeded" if failed else "every remediation step succeeded")
    verified = [s.name for s in steps if s.http_check is not None and states.get(s.name) == StepState.SUCCEEDED]
    if verified:
        draft.condition("Verified", True, "ChecksPassed", f"verified by {', '.join(verified)}")
    draft.condition("Resolved", True, "StepsSucceeded", "the incident is resolved",
                    entry=(EventType.NORMAL, "Resolved", "every remediation step succeeded: incident resolved", None))
    draft.condition("Ready", True, "Resolved", "the incident is resolved")


# -- one step --------------------------------------------------------------------------------------------------


def _optional(step: Step) -> bool:
    """Whether the incident may succeed without this step (a notification may fail quietly)."""
    return step.optional or (step.notify is not None and not step.notify.fail_on_error)


def _on_failure(step: Step) -> OnFailure:
    # An optional step never stops the incident.
    return OnFailure.CONTINUE if _optional(step) else step.on_failure


def _target(step: Step) -> tuple[str, str] | None:
    for kind_step in (step.scale, step.restart, step.rollback, step.wait_for_rollout):
        if kind_step is not None:
            return str(kind_step.target.kind), str(kind_step.target.name)
    return None


def _action_name(step: Step) -> str:
    """The cooldown key: scale, restart, rollback... (waiting steps never act)."""
    return step.kind.replace("_", "")


def _advance(context: _Context, step: Step) -> _Progress:
    """Move one step as far as it can go now."""
    status = context.draft.step(step.name)
    if status.state == StepState.RUNNING:
        if status.result.get("claimed"):
            # After a crash the lock may be gone (released just before the crash) or taken:
            # the recorded intent is only (re)issued while this incident holds the target.
            held = _hold_target(context, step)
            if held is not None or _is_terminal(context, step):
                return held
        progress = _continue(context, step)
        if _is_terminal(context, step) or not _past_deadline(context, step):
            return progress
        return _time_out(context, step, progress)
    if status.retry_at is not None and context.now < status.retry_at:
        return _Wait(status.retry_at)
    target = _target(step)
    # Every step kind acts from the Incident's namespace: the namespace allow-list covers them all.
    kind = target[0] if target is not None else "Job" if step.job is not None else None
    verdict = guards.allowed(context.incident.namespace, kind, context.policy.namespaces, context.policy.kinds)
    if not verdict.proceeds:
        _finish(context, step, StepState.FAILED, verdict.reason, verdict.message)
        return None
    observed: Mapping[str, Any] | None = None
    if target is not None:
        looked = _ask(context, step, intents.ObserveTarget(step.name, *target))
        if not isinstance(looked, intents.Result):
            return looked
        observed = looked.value
    if context.dry_run and step.database is not None:
        return _dry_run_database(context, step)
    plan = _plan(context, step, observed or {})
    if not isinstance(plan, plans.Plan):
        return plan
    if plan.refused is not None:
        _finish(context, step, StepState.FAILED, *plan.refused)
        return None
    if context.dry_run:
        _finish(context, step, StepState.SKIPPED, "DryRun", f"dry run: would {plan.text}")
        return None
    held = _approval(context, step, plan)
    if held is not None:
        return held
    if step.job is not None and step.name not in context.world.rate_slots and not context.world.rate_limit.proceeds:
        return _hold(context, step, context.world.rate_limit)  # a Job changes the cluster as a scale does
    if target is not None and observed is not None and step.wait_for_rollout is None:
        held = _claim(context, step, target, observed)
        if held is not None or _is_terminal(context, step):
            return held
    return _start(context, step, plan)


def _plan(context: _Context, step: Step, observed: Mapping[str, Any]) -> plans.Plan | _Progress:
    """What the step will do; a retry's plan is the intent its first attempt recorded."""
    status = context.draft.step(step.name)
    previous = status.result if status.attempts else {}
    kind, name = _target(step) or ("", "")
    if step.scale is not None:
        return plans.scale(step, observed, kind, name, previous, context.policy.max_replicas)
    if step.restart is not None and step.restart.selector is not None:
        selector = pod_restarts.selector_string(step.restart.selector)
        listed = _ask(context, step, intents.ObservePods(step.name, selector))
        if not isinstance(listed, intents.Result):
            return listed
        return plans.delete_pods(step, listed.value, kind, name, selector, previous)
    if step.restart is not None:
        restarted_at = str(previous.get("restartedAt") or context.now.strftime("%Y-%m-%dT%H:%M:%SZ"))
        return plans.rollout_restart(kind, name, restarted_at)
    if step.rollback is not None:
        return plans.rollback(step, f"{context.incident.name}-{step.name}")
    if step.wait_for_rollout is not None:
        return plans.wait_for_rollout(kind, name)
    if step.http_check is not None:
        return plans.http_check(step, previous)
    if step.notify is not None:
        return plans.notify()
    if step.job is not None:
        return plans.job(step, job_name(context.incident.name, step.name), context.policy.jobs)
    if step.database is not None:
        return plans.database(step, previous)
    _finish(context, step, StepState.FAILED, "UnsupportedStep",
            f"step kind {step.kind!r} is not supported by this operator version")
    return None


def _past_deadline(context: _Context, step: Step) -> bool:
    status = context.draft.step(step.name)
    return bool(step.timeout and status.attempt_started_at
                and context.now >= status.attempt_started_at + parse_duration(step.timeout))


def _time_out(context: _Context, step: Step, progress: _Progress) -> _Progress:
    """An attempt past its deadline ends its waiting, not the truth: it never starts (or repeats) an
    action, it looks whether the recorded change is in place, and the timeline says what was changed."""
    if isinstance(progress, intents.OBSERVATIONS):
        return progress  # what is true decides, so look first
    status = context.draft.step(step.name)
    lead = f"attempt {status.attempts} timed out after {step.timeout}"
    if isinstance(progress, intents.ScaleTo | intents.RolloutRestart):
        observe = intents.ObserveTarget(step.name, progress.kind, progress.name)
        looked = context.result(observe)
        if looked is None:
            return observe
        workload = looked.value if looked.succeeded else None
        if workload is not None and _in_place(progress, workload):
            _finish(context, step, StepState.SUCCEEDED, "StepSucceeded",
                    f"{_done_text(step, status)} (found in place after the attempt's deadline)")
            return None
        where = _target_text(step)
        if isinstance(progress, intents.ScaleTo):
            replicas = (workload or {}).get("spec", {}).get("replicas", "an unknown number of")
            what = f"nothing was changed: {where} has {replicas} replicas, not {progress.replicas}"
        else:
            what = f"nothing was changed: {where} was not restarted"
        return _fail_attempt(context, step, "Timeout", f"{lead}; {what}")
    if isinstance(progress, _Wait) or progress is None:
        return _fail_attempt(context, step, "Timeout", f"{lead}: {status.message}")
    return _fail_attempt(context, step, "Timeout", f"{lead} before {_action_text(progress)}")


def _in_place(action: intents.ScaleTo | intents.RolloutRestart, workload: Mapping[str, Any]) -> bool:
    spec = workload.get("spec") or {}
    if isinstance(action, intents.ScaleTo):
        return bool(spec.get("replicas") == action.replicas)
    annotations = ((spec.get("template") or {}).get("metadata") or {}).get("annotations") or {}
    return bool(annotations.get(intents.RESTARTED_AT_ANNOTATION) == action.restarted_at)


def _action_text(action: intents.Intent) -> str:
    """What a timed-out attempt did not start (after a restart, it may have started it before)."""
    if isinstance(action, intents.Notify):
        return "the notification was sent"
    if isinstance(action, intents.RunJob):
        return f"job/{action.name} was created"
    if isinstance(action, intents.EnsureRollbackRequest):
        return f"RollbackRequest {action.name} was created"
    if isinstance(action, intents.DeletePods):
        return f"deleting pod(s) {', '.join(action.names)}"
    if isinstance(action, intents.RunDatabaseOperation):
        return "the database operation ran (if it ran before a restart, its outcome was not recorded)"
    return "its action was carried out"


def _still_remediating(holder: Mapping[str, Any] | None) -> bool:
    """Whether a lock holder (the Incident object, None when it is gone) may still act on its targets."""
    if holder is None:
        return False
    try:
        return not _finished(IncidentStatus.model_validate(holder.get("status") or {}))
    except pydantic.ValidationError:
        return True  # an unreadable status proves nothing: keep respecting the lock


def _is_terminal(context: _Context, step: Step) -> bool:
    return context.draft.step(step.name).state in TERMINAL_STEP_STATES


def _hold_target(context: _Context, step: Step) -> _Progress:
    """Look at a Running step's target and make sure this incident holds its lock (None: it does)."""
    target = _target(step)
    assert target is not None
    looked = _ask(context, step, intents.ObserveTarget(step.name, *target))
    if not isinstance(looked, intents.Result):
        return looked
    return _claim(context, step, target, looked.value)


def _ask(context: _Context, step: Step, intent: intents.Intent) -> _Progress | intents.Result:
    """The successful answer to `intent`, or the move to make first: issue it, or fail the attempt."""
    result = context.result(intent)
    if result is None:
        return intent
    if not result.succeeded:
        return _fail_attempt(context, step, result.reason, result.message)
    return result


def _approval(context: _Context, step: Step, plan: plans.Plan) -> _Progress:
    status = context.draft.step(step.name)
    annotations = context.incident.annotations
    ignored = context.draft.status.ignored_approval
    if ignored and annotations.get(guards.APPROVE_ANNOTATION) == ignored:
        annotations = {k: v for k, v in annotations.items()
                       if k not in (guards.APPROVE_ANNOTATION, guards.APPROVED_BY_ANNOTATION)}
    elif ignored:
        # Changed since creation: a new approval, or none. Emptied, not removed: the status is merge-patched.
        context.draft.status.ignored_approval = ""
    verdict, approver = guards.approval(step, plan, context.spec.severity, context.policy.approval, annotations)
    if not verdict.proceeds:
        if status.state != StepState.AWAITING_APPROVAL:
            context.draft.update_step(step.name, state=StepState.AWAITING_APPROVAL, message=verdict.message)
            context.draft.add(EventType.NORMAL, "AwaitingApproval", verdict.message, step.name)
        context.draft.condition("AwaitingApproval", True, "StepAwaitingApproval",
                                f"step {step.name} is waiting for approval")
        return _Wait(None)
    if approver is not None and status.approved_by is None:
        context.draft.update_step(step.name, state=StepState.PENDING, approved_by=approver)
        context.draft.add(EventType.NORMAL, "Approved", f"approved by {approver}", step.name)
        context.draft.condition("AwaitingApproval", False, "Approved", f"step {step.name} was approved by {approver}")
    return None


def _claim(context: _Context, step: Step, target: tuple[str, str], observed: Mapping[str, Any]) -> _Progress:
    """Hold the step back while another incident owns the target or its cooldown; else claim it."""
    metadata = observed.get("metadata") or {}
    annotations = metadata.get("annotations") or {}
    holder, label = context.incident.holder, f"{target[0].lower()}/{target[1]}"
    action = _action_name(step)
    current = annotations.get(guards.LOCK_ANNOTATION) or ""
    stale = False
    if current not in ("", holder):
        # A lock left by an incident that was deleted (or finished) while the operator was down.
        namespace, _, name = current.partition("/")
        looked = context.result(intents.ObserveHolder(namespace, name))
        if looked is None:
            return intents.ObserveHolder(namespace, name)
        stale = looked.succeeded and not _still_remediating(looked.value)
    stamp = annotations.get(guards.cooldown_annotation(action), "")
    seen = context.draft.step(step.name).result.get("cooldownSeen") or {}
    since = _parse_time(seen["since"]) if seen.get("stamp") == stamp and seen.get("since") else context.now
    verdicts = [guards.lock(holder, annotations, label, context.now + POLL, stale=stale),
                guards.cooldown(action, holder, annotations, label, context.now, context.policy.max_cooldown, since)]
    if context.draft.step(step.name).state != StepState.RUNNING and step.name not in context.world.rate_slots:
        verdicts.append(context.world.rate_limit)  # a running step's action (or this claim) was already counted
    for verdict in verdicts:
        if not verdict.proceeds:
            if verdict.reason == "CoolingDown" and seen.get("stamp") != stamp:
                # The cap on a stamp counts from when it was first seen, not from every look at it.
                context.draft.update_step(step.name, result={
                    **context.draft.step(step.name).result, "cooldownSeen": {"stamp": stamp, "since": _format_time(
                        context.now)}})
            return _hold(context, step, verdict)
    if current == holder and stamp.endswith(f" {holder}"):
        return None
    if stale:
        context.draft.add(EventType.NORMAL, "StaleLockTakenOver",
                          f"{label} was still locked by incident {current}, which is no longer remediating",
                          step.name)
    cooldown = parse_duration(context.spec.cooldown) if context.spec.cooldown else context.policy.cooldown
    cooldown = min(cooldown, context.policy.max_cooldown)
    claim = intents.ClaimTarget(step.name, target[0], target[1], holder, action, context.now + cooldown,
                                str(metadata.get("resourceVersion") or ""),
                                takes_rate_slot=context.draft.step(step.name).state != StepState.RUNNING)
    claimed = _ask(context, step, claim)
    return None if isinstance(claimed, intents.Result) else claimed


def _hold(context: _Context, step: Step, verdict: guards.Verdict) -> _Wait:
    status = context.draft.step(step.name)
    if status.message != verdict.message:
        context.draft.update_step(step.name, message=verdict.message)
        context.draft.add(EventType.NORMAL, verdict.reason, verdict.message, step.name)
    return _Wait(verdict.retry_at or context.now + POLL)


def _start(context: _Context, step: Step, plan: plans.Plan) -> _Progress:
    """Record the attempt's intent (absolute values, the plan's) and return the action that carries it out."""
    status = context.draft.step(step.name)
    attempts = status.attempts + 1
    key = f"{context.incident.uid}/{step.name}/{attempts}"
    target = _target(step)
    result: dict[str, Any] = {}
    if target is not None:
        result["target"] = {"kind": target[0], "name": target[1]}
        result["claimed"] = step.wait_for_rollout is None
    result.update(plan.recorded)
    context.draft.update_step(step.name, state=StepState.RUNNING, attempts=attempts, idempotency_key=key,
                              started_at=status.started_at or context.now, attempt_started_at=context.now,
                              retry_at=None, result=result, message=plan.doing)
    return _continue(context, step)


def _continue(context: _Context, step: Step) -> _Progress:
    """A Running step: issue (or re-issue after a crash) its recorded intent, or judge its outcome."""
    status = context.draft.step(step.name)
    result = status.result
    target = _target(step)
    if step.scale is not None and target is not None:
        scale = intents.ScaleTo(step.name, *target, int(result["to"]), status.idempotency_key or "")
        return _after_action(context, step, scale, _done_text(step, status))
    if step.restart is not None and result.get("mode") == "deletePods":
        return _continue_pod_restart(context, step, status)
    if step.restart is not None and target is not None:
        restart = intents.RolloutRestart(step.name, *target, str(result["restartedAt"]))
        return _after_action(context, step, restart, _done_text(step, status))
    if step.notify is not None:
        notify = intents.Notify(step.name, step.notify.webhook_secret_ref.name, step.notify.webhook_secret_ref.key,
                                _notification_text(context, step), status.idempotency_key or "")
        return _after_action(context, step, notify, "notification sent")
    if step.rollback is not None:
        return _continue_rollback(context, step, status)
    if step.job is not None:
        return _continue_job(context, step, status)
    if step.database is not None:
        step_json = step.database.model_dump_json(by_alias=True, exclude_none=True)
        only = None
        if step.database.operation in plans.DESTRUCTIVE_DATABASE_OPERATIONS:
            # List the sessions first and record them: this attempt and every retry signal those, no others.
            if "plannedTargets" not in result:
                listed = _ask(context, step, intents.RunDatabaseOperation(step.name, step_json, True, 0))
                if not isinstance(listed, intents.Result):
                    return listed
                planned = [[t["pid"], t["backendStart"]] for t in (listed.value or {}).get("targets", [])]
                result = context.draft.update_step(step.name, result={**result, "plannedTargets": planned}).result
            only = tuple((int(pid), str(start)) for pid, start in result["plannedTargets"])
        run = intents.RunDatabaseOperation(step.name, step_json, False, status.attempts, only)
        outcome = _ask(context, step, run)
        if not isinstance(outcome, intents.Result):
            return outcome
        context.draft.update_step(step.name, result=bounded_result(
            {"operation": step.database.operation, **(outcome.value or {})}, MAX_RESULT_BYTES))
        _finish(context, step, StepState.SUCCEEDED, "StepSucceeded", database_summary(step, outcome.value or {}))
        return None
    if step.wait_for_rollout is not None and target is not None:
        observation = _ask(context, step, intents.ObserveTarget(step.name, *target))
        if not isinstance(observation, intents.Result):
            return observation
        complete, message = rollouts.rollout_status(observation.value)
        if complete:
            _finish(context, step, StepState.SUCCEEDED, "StepSucceeded", message)
            return None
        if status.message != message:
            context.draft.update_step(step.name, message=message)
        return _Wait(context.now + POLL)
    if step.http_check is not None:
        return _continue_http_check(context, step, status)
    return None


def _after_action(context: _Context, step: Step, action: intents.Action, success: str) -> _Progress:
    outcome = context.result(action)
    if outcome is None:
        return action
    if outcome.succeeded:
        _finish(context, step, StepState.SUCCEEDED, "StepSucceeded", success)
        return None
    return _fail_attempt(context, step, outcome.reason or "ActionFailed", outcome.message)


def _continue_rollback(context: _Context, step: Step, status: StepStatus) -> _Progress:
    assert step.rollback is not None
    name = str(status.result["rollbackRequest"])
    spec = step.rollback.model_dump(by_alias=True, mode="json", exclude_none=True)
    spec["incidentRef"] = {"name": context.incident.name}
    observed = _create_then_observe(
        context, step, status, "requested",
        intents.EnsureRollbackRequest(step.name, name, json.dumps(spec, sort_keys=True)),
        intents.ObserveRollbackRequest(step.name, name))
    if not isinstance(observed, intents.Result):
        return observed
    request_status = (observed.value or {}).get("status") or {}
    phase = request_status.get("phase")
    if phase == "Complete":
        revisions = {k: request_status[k] for k in ("fromRevision", "toRevision") if k in request_status}
        context.draft.update_step(step.name, result={**context.draft.step(step.name).result, **revisions})
        _finish(context, step, StepState.SUCCEEDED, "StepSucceeded",
                f"rolled back {_target_text(step)} from revision {revisions.get('fromRevision')} "
                f"to {revisions.get('toRevision')}")
        return None
    if phase in ("Failed", "Refused"):
        ready: Mapping[str, Any] = next(
            (c for c in request_status.get("conditions") or [] if c.get("type") == "Ready"), {})
        reason = str(ready.get("reason") or "RollbackFailed")
        message = f"RollbackRequest {name}: {ready.get('message') or phase}"
        _finish(context, step, StepState.FAILED, reason, message)
        if reason == "MigrationRollbackFailed":
            # The app was stopped for the migration rollback and stays stopped: a person must step in now.
            context.draft.condition("Escalated", True, reason, f"{_target_text(step)} is stopped: {message}",
                                    entry=(EventType.WARNING, "Escalated",
                                           f"escalated: {_target_text(step)} is stopped after a failed migration "
                                           "rollback", step.name))
        return None
    return _Wait(context.now + POLL)


def _dry_run_database(context: _Context, step: Step) -> _Progress:
    """A database step's dry run still looks: it lists the targets it would act on."""
    assert step.database is not None
    run = intents.RunDatabaseOperation(step.name, step.database.model_dump_json(by_alias=True, exclude_none=True),
                                       True, 0)
    outcome = context.result(run)
    if outcome is None:
        return run
    if not outcome.succeeded:
        _finish(context, step, StepState.FAILED, outcome.reason, outcome.message)
        return None
    context.draft.update_step(step.name, result=bounded_result(
        {"operation": step.database.operation, **(outcome.value or {})}, MAX_RESULT_BYTES))
    _finish(context, step, StepState.SKIPPED, "DryRun", f"dry run: would {database_summary(step, outcome.value or {})}")
    return None


def database_summary(step: Step, value: Mapping[str, Any]) -> str:
    """One line for the timeline: what a database operation did (or, in a dry run, would do)."""
    assert step.database is not None
    operation = step.database.operation
    if "targets" in value:
        verb = "cancel" if operation == "cancel_long_running" else "terminate"
        count = len(value["targets"])
        done = verb if value.get("dryRun") else {"cancel": "cancelled", "terminate": "terminated"}[verb]
        return f"{done} {count} session(s) ({operation})"
    if "statements" in value:
        return ("run " if value.get("dryRun") else "ran ") + "; ".join(str(s) for s in value["statements"])
    if operation == "report":
        return _report_summary(value)
    if operation == "health_check":
        lag = value.get("replicationLagSeconds")
        return "database is healthy" + (f" (replication lag {lag:.1f}s)" if isinstance(lag, int | float) else "")
    return f"{operation} recorded in the step result"


def _report_summary(report: Mapping[str, Any]) -> str:
    """The report in one line: connections, the longest query, blocking, bloat, top statements."""
    connections = report.get("connections") or []
    total = sum(int(row.get("count", 0)) for row in connections)
    by_state = ", ".join(f"{row.get('count')} {row.get('state')}" for row in connections[:4])
    parts = [f"{total} of {report.get('maxConnections', '?')} connections ({by_state})"]
    longest = (report.get("longestRunning") or [None])[0]
    if longest:
        parts.append(f"longest query {longest.get('durationSeconds')}s by {longest.get('user')}")
    parts.append(f"{len(report.get('blocked') or [])} blocked session(s)")
    dead = (report.get("deadTuples") or [None])[0]
    if dead:
        parts.append(f"most dead tuples: {dead.get('name')} ({dead.get('dead')})")
    if report.get("topStatements"):
        parts.append(f"{len(report['topStatements'])} top statements")
    parts.extend(str(note) for note in report.get("notes") or [])
    return "report: " + "; ".join(parts)


def job_name(incident: str, step: str) -> str:
    """`<incident>-<step>`, shortened with a digest to fit a Job name (63 characters, as a label value)."""
    name = f"{incident}-{step}"
    if len(name) <= 63:
        return name
    digest = hashlib.sha256(name.encode()).hexdigest()[:8]
    return f"{name[:54].rstrip('-')}-{digest}"


def _create_then_observe(context: _Context, step: Step, status: StepStatus, flag: str, create: intents.Action,
                         observe: intents.Observation) -> _Progress | intents.Result:
    """Create a child object once (remembered in the step result under `flag`), then read it.

    Returns the intent still to carry out, the attempt's failure progress, or the successful read.
    """
    created = context.result(create)
    if created is None and not status.result.get(flag):
        return create
    if created is not None and not created.succeeded:
        return _fail_attempt(context, step, created.reason, created.message)
    if not status.result.get(flag):
        context.draft.update_step(step.name, result={**status.result, flag: True})
    return _ask(context, step, observe)


def _continue_job(context: _Context, step: Step, status: StepStatus) -> _Progress:
    assert step.job is not None
    name = str(status.result["job"])
    observed = _create_then_observe(
        context, step, status, "created",
        intents.RunJob(step.name, name, step.job.template.model_dump_json(by_alias=True, exclude_none=True)),
        intents.ObserveJob(step.name, name))
    if not isinstance(observed, intents.Result):
        return observed
    job = observed.value or {}
    phase = job.get("phase")
    if phase == "Succeeded":
        _finish(context, step, StepState.SUCCEEDED, "StepSucceeded", f"job/{name} completed")
        return None
    if phase == "Failed":
        why = f" ({job['reason']})" if job.get("reason") else ""
        return _fail_attempt(context, step, "JobFailed", f"job/{name} failed{why}: {job.get('message', '')}")
    if phase == "Missing":
        return _fail_attempt(context, step, "JobGone", f"job/{name} disappeared before it finished")
    return _Wait(context.now + POLL)


def _continue_pod_restart(context: _Context, step: Step, status: StepStatus) -> _Progress:
    assert step.restart is not None
    listed = _ask(context, step, intents.ObservePods(step.name, str(status.result["selector"])))
    if not isinstance(listed, intents.Result):
        return listed
    plan = pod_restarts.next_round(list(status.result["pods"]), listed.value, step.restart.max_unavailable)
    if plan.done:
        _finish(context, step, StepState.SUCCEEDED, "StepSucceeded", f"{plan.message} of {_target_text(step)}")
        return None
    message = plan.message
    if plan.batch:
        labels = {pod["name"]: tuple(sorted(pod["labels"].items())) for pod in listed.value}
        delete = intents.DeletePods(step.name, plan.batch, tuple(labels[name] for name in plan.batch))
        outcome = _ask(context, step, delete)
        if not isinstance(outcome, intents.Result):
            return outcome
        if outcome.value["blocked"]:
            message = f"eviction of {', '.join(outcome.value['blocked'])} refused by a PodDisruptionBudget; retrying"
    if status.message != message:
        context.draft.update_step(step.name, message=message)
    return _Wait(context.now + datetime.timedelta(seconds=1))


def _continue_http_check(context: _Context, step: Step, status: StepStatus) -> _Progress:
    check = step.http_check
    assert check is not None
    probes = int(status.result.get("probes", 0))
    probe = intents.ProbeHttp(step.name, check.url, check.method, tuple(sorted(check.headers.items())),
                              parse_duration(check.request_timeout).total_seconds(), probes + 1)
    answer = context.result(probe)
    if answer is None:
        last = status.result.get("lastProbeAt")
        if last and context.now < _parse_time(last) + parse_duration(check.interval):
            return _Wait(_parse_time(last) + parse_duration(check.interval))
        return probe
    if not answer.succeeded and answer.reason == allow_lists.HOST_NOT_ALLOWED:
        _finish(context, step, StepState.FAILED, answer.reason, answer.message)  # no later probe can pass
        return None
    passed, message = http_checks.judge(check, answer.value or {}) if answer.succeeded else (False, answer.message)
    passes = int(status.result.get("consecutivePasses", 0)) + 1 if passed else 0
    result = {**status.result, "probes": probes + 1, "consecutivePasses": passes, "lastStatus":
              (answer.value or {}).get("status"), "lastProbeAt": _format_time(context.now)}
    context.draft.update_step(step.name, result=result, message=message)
    if passes >= check.success_threshold:
        _finish(context, step, StepState.SUCCEEDED, "StepSucceeded",
                f"{message} ({passes} consecutive pass{'es' if passes != 1 else ''})")
        return None
    return _Wait(context.now + parse_duration(check.interval))


def _fail_attempt(context: _Context, step: Step, reason: str, message: str) -> _Progress:
    """A failed attempt: retried after backoff while retries remain, else the step fails."""
    status = context.draft.step(step.name)
    attempts = max(status.attempts, 1)
    if attempts <= step.retries:
        retry_at = context.now + parse_duration(step.retry_backoff) * (2 ** (attempts - 1))
        text = f"attempt {attempts} failed ({reason}): {message}; retrying at {retry_at:%H:%M:%S}"
        context.draft.update_step(step.name, state=StepState.PENDING, retry_at=retry_at, attempts=attempts,
                                  message=text, idempotency_key=None)
        context.draft.add(EventType.WARNING, "StepRetrying", text, step.name)
        return _Wait(retry_at)
    _finish(context, step, StepState.FAILED, reason or "StepFailed", message)
    return None


def _finish(context: _Context, step: Step, state: StepState, reason: str, message: str) -> None:
    context.draft.update_step(step.name, state=state, finished_at=context.now, message=message[:drafts.MAX_MESSAGE])
    event_type = EventType.WARNING if state == StepState.FAILED else EventType.NORMAL
    context.draft.add(event_type, reason, message, step.name)


# -- texts -----------------------------------------------------------------------------------------------------


def _target_text(step: Step) -> str:
    target = _target(step)
    return f"{target[0].lower()}/{target[1]}" if target else step.kind


def _done_text(step: Step, status: StepStatus) -> str:
    """What a scale or rollout restart changed, from its recorded intent."""
    if step.scale is not None:
        return f"scaled {_target_text(step)} from {status.result['from']} to {status.result['to']}"
    return f"restarted {_target_text(step)}"


def _notification_text(context: _Context, step: Step) -> str:
    assert step.notify is not None
    spec = context.spec
    return f"[{spec.severity.value}] {context.incident.holder}: {spec.summary}\n{step.notify.message}"


def _human(duration: datetime.timedelta) -> str:
    seconds = int(duration.total_seconds())
    if seconds % 3600 == 0:
        return f"{seconds // 3600}h"
    if seconds % 60 == 0:
        return f"{seconds // 60}m"
    return f"{seconds}s"


def _format_time(moment: datetime.datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _parse_time(text: str) -> datetime.datetime:
    return datetime.datetime.fromisoformat(str(text).replace("Z", "+00:00"))
