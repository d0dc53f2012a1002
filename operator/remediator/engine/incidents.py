"""Deciding an Incident's next move: its life cycle (which step, which guard holds it, retries, timeouts,
escalation, how it ends). What each step kind plans and does is in engine/steps/, one module a kind.

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

import datetime
from collections.abc import Callable, Mapping
from typing import Any

import pydantic

from remediator.api.conditions import is_condition_true
from remediator.api.durations import parse_duration
from remediator.api.errors import validation_messages
from remediator.api.incidents import IncidentConditionType, IncidentSpec, IncidentStatus, OnResolve
from remediator.api.severities import default_escalate_after
from remediator.api.steps import OnFailure, Step, StepState
from remediator.api.timelines import EventType
from remediator.engine import guards, intents, plans, reruns, step_lists, step_runs, steps
from remediator.engine.step_runs import DEFAULT_MAX_REPLICAS, Decision, Incident, Policy, World

RUNBOOK_RECHECK = datetime.timedelta(seconds=30)
__all__ = ["DEFAULT_MAX_REPLICAS", "Decision", "Incident", "Policy", "World", "decide", "finished",
           "release_on_deletion"]


def decide(incident: Incident, world: World, now: datetime.datetime, policy: Policy) -> Decision:
    """The next move for an Incident; see the module docstring for the step life cycle."""
    status = IncidentStatus.model_validate(dict(incident.status or {}))
    draft = step_runs.Draft(status, incident, now)
    try:
        spec = IncidentSpec.model_validate(dict(incident.spec or {}))
    except pydantic.ValidationError as e:
        message = "; ".join(validation_messages(e))
        draft.condition("Ready", False, "InvalidSpec", message,
                        entry=(EventType.WARNING, "InvalidSpec", message, None))
        return draft.decision()
    reruns.rerun(draft, spec, incident.annotations)
    status = draft.status  # the draft edits a copy
    if finished(status):
        return draft.decision()
    context = step_runs.Context(draft, incident, spec, world, now, policy, spec.dry_run or policy.dry_run)
    frozen = _frozen_steps(context)
    if not isinstance(frozen, list):
        return _waiting(context, frozen, _check_escalation(context))
    context.steps = frozen
    if not is_condition_true(status.conditions, "Acknowledged"):
        _acknowledge(context)
    escalation_at = _check_escalation(context)
    if is_condition_true(status.conditions, ALERT_RESOLVED):
        _skip_on_resolve(context)
    for step in context.steps:
        if draft.step(step.name).state not in step_runs.TERMINAL_STEP_STATES:
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


def _waiting(context: step_runs.Context, progress: intents.Intent | step_runs.Wait,
             escalation_at: datetime.datetime | None) -> Decision:
    """The decision for an incident that asks for an intent, or waits (for time, or for a change)."""
    if not isinstance(progress, step_runs.Wait):
        return context.draft.decision(progress)
    waits = [t for t in (progress.until, escalation_at) if t is not None]
    return context.draft.decision(
        requeue_after=max(min(waits) - context.now, datetime.timedelta()) if waits else None, held_by=progress.reason)


def _frozen_steps(context: step_runs.Context) -> list[Step] | intents.Intent | step_runs.Wait:
    """The steps this incident runs: fixed when it is acknowledged, refused when edited afterwards."""
    spec, draft, incident = context.spec, context.draft, context.incident
    status = draft.status
    current = step_lists.digest(incident.spec)
    if is_condition_true(status.conditions, "Acknowledged"):
        if status.steps_digest is None:
            status.steps_digest = current  # acknowledged by an operator version that kept no digest
        if status.steps_digest != current:
            message = ("spec.steps, spec.runbookRef or spec.dryRun changed after the incident started; nothing "
                       "more is done until they are restored")
            draft.condition("Ready", False, "StepsChanged", message,
                            entry=(EventType.WARNING, "StepsChanged", message, None))
            return step_runs.Wait(None)
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
            return step_runs.Wait(context.now + RUNBOOK_RECHECK)
        runbook_steps, error = step_lists.from_runbook(looked.value, spec.steps)
        if error is not None:
            draft.condition("Ready", False, "InvalidRunbook", error,
                            entry=(EventType.WARNING, "InvalidRunbook", error, None))
            return step_runs.Wait(context.now + RUNBOOK_RECHECK)
    status.runbook_steps = runbook_steps
    status.steps_digest = current
    return [*runbook_steps, *spec.steps]


# -- the incident as a whole -----------------------------------------------------------------------------------

ALERT_RESOLVED = IncidentConditionType.ALERT_RESOLVED.value
# Which steps not yet started are Skipped once the alerts resolved, by spec.onResolve.
_SKIPPED_ON_RESOLVE: dict[OnResolve, Callable[[Step, StepState], bool]] = {
    OnResolve.KEEP_RUNNING: lambda step, state: state == StepState.AWAITING_APPROVAL,
    OnResolve.CANCEL_PENDING: lambda step, state: True,
    OnResolve.RUN_VERIFICATION: lambda step, state: not step.verify,
}


def _skip_on_resolve(context: step_runs.Context) -> None:
    """Apply spec.onResolve after the alerts resolved: skip the steps it says, never one in flight."""
    policy = context.spec.on_resolve
    for step in context.steps:
        status = context.draft.step(step.name)
        if status.state not in (StepState.PENDING, StepState.AWAITING_APPROVAL) or status.attempts:
            continue  # finished, running, or retrying: a step in flight is never cut short
        if _SKIPPED_ON_RESOLVE[policy](step, status.state):
            step_runs.finish(context, step, StepState.SKIPPED, ALERT_RESOLVED,
                             f"not run: the alert resolved (onResolve: {policy.value})")


def is_failed(status: Mapping[str, Any]) -> bool:
    """Whether a stored Incident status says the remediation failed."""
    return is_condition_true(IncidentStatus.model_validate(dict(status)).conditions, "Failed")


def is_over(incident: Mapping[str, Any]) -> bool:
    """Whether a stored Incident will do nothing more (see `finished`): over, and no retry is pending."""
    status = IncidentStatus.model_validate(dict(incident.get("status") or {}))
    retry = int((incident.get("spec") or {}).get("retry") or 0)
    return finished(status) and retry <= status.retried


def finished(status: IncidentStatus) -> bool:
    """Whether the Incident is over (Resolved, Failed, or a dry run planned): it will do nothing more."""
    return any(is_condition_true(status.conditions, t) for t in ("Resolved", "Failed")) or any(
        c.type == "Ready" and c.reason == "DryRunComplete" for c in status.conditions)


def _acknowledge(context: step_runs.Context) -> None:
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
    hold = spec.source.hold if spec.source else None
    if hold is not None:  # the receiver's loop guard held it at creation (its steps wait for approval)
        if hold.escalate:
            draft.condition("Escalated", True, hold.reason, hold.message,
                            entry=(EventType.WARNING, hold.reason, f"escalated: {hold.message}", None))
        else:
            draft.add(EventType.WARNING, hold.reason, hold.message)
    approval = context.incident.annotations.get(guards.APPROVE_ANNOTATION)
    if approval is not None:
        # Whoever creates an Incident must not approve it in the same breath.
        status.ignored_approval = approval
        draft.add(EventType.WARNING, "ApprovalIgnored",
                  f"the Incident arrived with {guards.APPROVE_ANNOTATION}={approval}: approvals present at creation "
                  f"are ignored; remove the annotation and approve again")


def _check_escalation(context: step_runs.Context) -> datetime.datetime | None:
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
    known: list[Step] = []
    try:
        status = IncidentStatus.model_validate(dict(incident.status or {}))
        claimed, known = _claimed(status), list(status.runbook_steps)
    except pydantic.ValidationError:
        claimed = set()
    try:
        known += IncidentSpec.model_validate(dict(incident.spec or {})).steps
    except pydantic.ValidationError:
        pass
    lockable = {t for t in (step_runs.target_of(step) for step in known if _locks(step)) if t is not None}
    targets = tuple(sorted(claimed | lockable))
    return intents.ReleaseTargets(incident.holder, targets) if targets else None


def _release(context: step_runs.Context) -> intents.ReleaseTargets | None:
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


def _conclude(context: step_runs.Context) -> None:
    draft, ran = context.draft, context.steps
    states = {s.name: s.state for s in draft.status.steps}
    stopping = [s for s in ran if states.get(s.name) == StepState.FAILED
                and _on_failure(s) != OnFailure.CONTINUE]
    if stopping:
        step = stopping[0]
        for later in ran:
            if draft.step(later.name).state not in step_runs.TERMINAL_STEP_STATES:
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
    failed = [s for s in ran if states.get(s.name) == StepState.FAILED]
    required = [s.name for s in failed if not _optional(s)]
    draft.condition("AwaitingApproval", False, "NothingAwaitingApproval", "no step is waiting for approval")
    if required:
        # onFailure: continue ran the later steps; it never turns a failed step into a success.
        message = f"{len(required)} of {len(ran)} step(s) failed: {', '.join(required)}"
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
    skipped = [s.name for s in ran if states.get(s.name) == StepState.SKIPPED]
    if skipped and is_condition_true(draft.status.conditions, ALERT_RESOLVED):
        message = f"the alert resolved; not run: {', '.join(skipped)}"
        draft.condition("Mitigated", True, ALERT_RESOLVED, message)
        draft.condition("Resolved", True, ALERT_RESOLVED, message,
                        entry=(EventType.NORMAL, "Resolved", f"incident resolved: {message}", None))
        draft.condition("Ready", True, "Resolved", "the incident is resolved")
        return
    # Mitigated and Resolved happen together here: one timeline entry (one Event) says both.
    draft.condition("Mitigated", True, "StepsSucceeded",
                    "every required remediation step succeeded" if failed else "every remediation step succeeded")
    verified = [s.name for s in ran if s.http_check is not None and states.get(s.name) == StepState.SUCCEEDED]
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


def _locks(step: Step) -> bool:
    """Whether the step claims its target (a step that only waits never does)."""
    kind = steps.KINDS.get(step.kind)
    return kind is not None and kind.locks


def _acts_on(step: Step) -> str | None:
    kind = steps.KINDS.get(step.kind)
    return kind.acts_on if kind is not None else None


def _action_name(step: Step) -> str:
    """The cooldown key: scale, restart, rollback... (waiting steps never act)."""
    return step.kind.replace("_", "")


def _advance(context: step_runs.Context, step: Step) -> step_runs.Progress:
    """Move one step as far as it can go now."""
    status = context.draft.step(step.name)
    if status.state == StepState.RUNNING:
        if status.result.get("claimed"):
            # After a crash the lock may be gone (released just before the crash) or taken:
            # the recorded intent is only (re)issued while this incident holds the target.
            held = _hold_target(context, step)
            if held is not None or step_runs.is_terminal(context, step):
                return held
        progress = _continue(context, step)
        if step_runs.is_terminal(context, step) or not _past_deadline(context, step):
            return progress
        return _time_out(context, step, progress)
    if status.retry_at is not None and context.now < status.retry_at:
        return step_runs.Wait(status.retry_at)
    held = _maintenance(context, step)
    if held is not None:
        return held
    target = step_runs.target_of(step)
    # Every step kind acts from the Incident's namespace: the namespace allow-list covers them all.
    kind = target[0] if target is not None else _acts_on(step)
    verdict = guards.allowed(context.incident.namespace, kind, context.policy.namespaces, context.policy.kinds)
    if not verdict.proceeds:
        step_runs.finish(context, step, StepState.FAILED, verdict.reason, verdict.message)
        return None
    observed: Mapping[str, Any] | None = None
    if target is not None:
        looked = step_runs.ask(context, step, intents.ObserveTarget(step.name, *target))
        if not isinstance(looked, intents.Result):
            return looked
        observed = looked.value
    dry_run = steps.KINDS[step.kind].dry_run if step.kind in steps.KINDS else None
    if context.dry_run and dry_run is not None:
        return dry_run(context, step)
    plan = _plan(context, step, observed or {})
    if not isinstance(plan, plans.Plan):
        return plan
    if plan.refused is not None:
        step_runs.finish(context, step, StepState.FAILED, *plan.refused)
        return None
    if context.dry_run:
        step_runs.finish(context, step, StepState.SKIPPED, "DryRun", f"dry run: would {plan.text}")
        return None
    held = _approval(context, step, plan)
    if held is not None:
        return held
    if step.job is not None and step.name not in context.world.rate_slots and not context.world.rate_limit.proceeds:
        return _hold(context, step, context.world.rate_limit)  # a Job changes the cluster as a scale does
    if target is not None and observed is not None and _locks(step):
        held = _claim(context, step, target, observed)
        if held is not None or step_runs.is_terminal(context, step):
            return held
    return _start(context, step, plan)


def _maintenance(context: step_runs.Context, step: Step) -> step_runs.Wait | None:
    """A step not yet started waits while the Incident was created in a maintenance window (spec.maintenanceUntil)."""
    until = context.spec.maintenance_until
    status = context.draft.step(step.name)
    if until is None or context.now >= until or status.attempts:
        return None
    message = f"waiting for the maintenance window to close at {step_runs.format_time(until)}"
    if status.message != message:
        context.draft.update_step(step.name, message=message)
        context.draft.add(EventType.NORMAL, "MaintenanceWindow", message, step.name)
    return step_runs.Wait(until)


def _plan(context: step_runs.Context, step: Step, observed: Mapping[str, Any]) -> plans.Plan | step_runs.Progress:
    """What the step will do; a retry's plan is the intent its first attempt recorded."""
    kind = steps.KINDS.get(step.kind)
    if kind is None:
        step_runs.finish(context, step, StepState.FAILED, "UnsupportedStep",
                         f"step kind {step.kind!r} is not supported by this operator version")
        return None
    status = context.draft.step(step.name)
    return kind.plan(context, step, observed, status.result if status.attempts else {})


def _past_deadline(context: step_runs.Context, step: Step) -> bool:
    status = context.draft.step(step.name)
    return bool(step.timeout and status.attempt_started_at
                and context.now >= status.attempt_started_at + parse_duration(step.timeout))


def _time_out(context: step_runs.Context, step: Step, progress: step_runs.Progress) -> step_runs.Progress:
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
            step_runs.finish(context, step, StepState.SUCCEEDED, "StepSucceeded",
                    f"{step_runs.done_text(step, status)} (found in place after the attempt's deadline)")
            return None
        where = step_runs.target_text(step)
        if isinstance(progress, intents.ScaleTo):
            replicas = (workload or {}).get("spec", {}).get("replicas", "an unknown number of")
            what = f"nothing was changed: {where} has {replicas} replicas, not {progress.replicas}"
        else:
            what = f"nothing was changed: {where} was not restarted"
        return step_runs.fail_attempt(context, step, "Timeout", f"{lead}; {what}")
    if isinstance(progress, step_runs.Wait) or progress is None:
        return step_runs.fail_attempt(context, step, "Timeout", f"{lead}: {status.message}")
    return step_runs.fail_attempt(context, step, "Timeout", f"{lead} before {_action_text(progress)}")


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
        return not finished(IncidentStatus.model_validate(holder.get("status") or {}))
    except pydantic.ValidationError:
        return True  # an unreadable status proves nothing: keep respecting the lock


def _hold_target(context: step_runs.Context, step: Step) -> step_runs.Progress:
    """Look at a Running step's target and make sure this incident holds its lock (None: it does)."""
    target = step_runs.target_of(step)
    assert target is not None
    looked = step_runs.ask(context, step, intents.ObserveTarget(step.name, *target))
    if not isinstance(looked, intents.Result):
        return looked
    return _claim(context, step, target, looked.value)


def _approval(context: step_runs.Context, step: Step, plan: plans.Plan) -> step_runs.Progress:
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
        return step_runs.Wait(None)
    if approver is not None and status.approved_by is None:
        context.draft.update_step(step.name, state=StepState.PENDING, approved_by=approver)
        context.draft.add(EventType.NORMAL, "Approved", f"approved by {approver}", step.name)
        context.draft.condition("AwaitingApproval", False, "Approved", f"step {step.name} was approved by {approver}")
    return None


def _claim(context: step_runs.Context, step: Step, target: tuple[str, str],
           observed: Mapping[str, Any]) -> step_runs.Progress:
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
    since = step_runs.parse_time(seen["since"]) if seen.get("stamp") == stamp and seen.get("since") else context.now
    verdicts = [guards.lock(holder, annotations, label, context.now + step_runs.POLL, stale=stale),
                guards.cooldown(action, holder, annotations, label, context.now, context.policy.max_cooldown, since)]
    if context.draft.step(step.name).state != StepState.RUNNING and step.name not in context.world.rate_slots:
        verdicts.append(context.world.rate_limit)  # a running step's action (or this claim) was already counted
    for verdict in verdicts:
        if not verdict.proceeds:
            if verdict.reason == "CoolingDown" and seen.get("stamp") != stamp:
                # The cap on a stamp counts from when it was first seen, not from every look at it.
                seen_now = {"stamp": stamp, "since": step_runs.format_time(context.now)}
                context.draft.update_step(step.name, result={**context.draft.step(step.name).result,
                                                             "cooldownSeen": seen_now})
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
    claimed = step_runs.ask(context, step, claim)
    return None if isinstance(claimed, intents.Result) else claimed


def _hold(context: step_runs.Context, step: Step, verdict: guards.Verdict) -> step_runs.Wait:
    status = context.draft.step(step.name)
    if status.message != verdict.message:
        context.draft.update_step(step.name, message=verdict.message)
        context.draft.add(EventType.NORMAL, verdict.reason, verdict.message, step.name)
    return step_runs.Wait(verdict.retry_at or context.now + step_runs.POLL, verdict.reason)


def _start(context: step_runs.Context, step: Step, plan: plans.Plan) -> step_runs.Progress:
    """Record the attempt's intent (absolute values, the plan's) and return the action that carries it out."""
    status = context.draft.step(step.name)
    attempts = status.attempts + 1
    key = f"{context.incident.uid}/{step.name}/{attempts}"
    target = step_runs.target_of(step)
    result: dict[str, Any] = {}
    if target is not None:
        result["target"] = {"kind": target[0], "name": target[1]}
        result["claimed"] = _locks(step)
    result.update(plan.recorded)
    context.draft.update_step(step.name, state=StepState.RUNNING, attempts=attempts, idempotency_key=key,
                              started_at=status.started_at or context.now, attempt_started_at=context.now,
                              retry_at=None, result=result, message=plan.doing)
    return _continue(context, step)


def _continue(context: step_runs.Context, step: Step) -> step_runs.Progress:
    """A Running step: issue (or re-issue after a crash) its recorded intent, or judge its outcome."""
    return steps.KINDS[step.kind].advance(context, step, context.draft.step(step.name))


# -- texts -----------------------------------------------------------------------------------------------------


def _human(duration: datetime.timedelta) -> str:
    seconds = int(duration.total_seconds())
    if seconds % 3600 == 0:
        return f"{seconds // 3600}h"
    if seconds % 60 == 0:
        return f"{seconds // 60}m"
    return f"{seconds}s"


