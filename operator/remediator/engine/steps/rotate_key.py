"""The `rotateKey` step: one rotation of a KeyRotation, asked for by id and awaited until verified.

The KeyRotation controller does the rotating (and applies its own guards to the consumer restarts);
the step only asks once and follows. The request id is recorded before it is written, and a retry
follows the same id: however often the step is retried, it asks for one rotation.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

import pydantic

from remediator.api.durations import parse_duration
from remediator.api.errors import validation_messages
from remediator.api.keyrotations import ROTATE_ANNOTATION, KeyRotationSpec, RoleStrategy, RotationStage
from remediator.api.steps import Step, StepState, StepStatus
from remediator.api.timelines import EventType
from remediator.engine import intents, plans, step_runs

RECORDED = ("keyRotation", "requestId", "emergency", "inline", "grace")
VERIFIED_STAGES = frozenset({RotationStage.GRACE, RotationStage.REVOKE, RotationStage.DONE})
FAILED_STAGES = frozenset({RotationStage.ROLLED_BACK, RotationStage.FAILED})


def _name(context: step_runs.Context, step: Step) -> str:
    assert step.rotate_key is not None
    ref = step.rotate_key.key_rotation_ref
    return ref.name if ref is not None else f"{context.incident.name}-{step.name}"


def plan(context: step_runs.Context, step: Step, observed: Mapping[str, Any],
         previous: Mapping[str, Any]) -> plans.Plan | step_runs.Progress:
    """What the rotation will do, judged from the KeyRotation's own spec (an emergency there counts too)."""
    rotate = step.rotate_key
    assert rotate is not None
    name = _name(context, step)
    if rotate.spec is not None:
        spec = rotate.spec
    else:
        looked = step_runs.ask(context, step, intents.ObserveKeyRotation(step.name, name))
        if not isinstance(looked, intents.Result):
            return looked
        try:
            spec = KeyRotationSpec.model_validate((looked.value or {}).get("spec") or {})
        except pydantic.ValidationError as e:
            return step_runs.fail_attempt(context, step, "InvalidKeyRotation",
                                          f"keyrotation/{name} is invalid: {'; '.join(validation_messages(e))}")
    emergency = bool(previous.get("emergency", rotate.emergency or spec.emergency))
    grace = spec.emergency_grace_period if emergency else spec.grace_period
    # Old values that die at once cut off whoever still uses them: that needs the same care as a kill.
    in_place = spec.database_role is not None and spec.database_role.strategy == RoleStrategy.IN_PLACE
    destructive = parse_duration(grace).total_seconds() == 0 or in_place
    recorded = {key: previous[key] for key in RECORDED if key in previous} or {
        "keyRotation": name,
        "requestId": f"incident/{context.incident.name}/{step.name}/{context.incident.uid[:8]}",
        "emergency": emergency,
        "inline": rotate.spec is not None,
        "grace": grace,
    }
    kind = "an emergency rotation" if emergency else "a rotation"
    revoked = "at once" if parse_duration(grace).total_seconds() == 0 else f"after {grace}"
    return plans.Plan(f"rotate the keys of keyrotation/{name} ({kind}; old values revoked {revoked})",
                      f"rotating the keys of keyrotation/{name}", destructive=destructive, recorded=recorded)


def advance(context: step_runs.Context, step: Step, status: StepStatus) -> step_runs.Progress:
    name, request_id = str(status.result["keyRotation"]), str(status.result["requestId"])
    emergency = bool(status.result.get("emergency"))
    observe = intents.ObserveKeyRotation(step.name, name)
    if status.result.get("inline"):
        assert step.rotate_key is not None and step.rotate_key.spec is not None
        spec = step.rotate_key.spec.model_dump(by_alias=True, mode="json", exclude_none=True)
        create = intents.EnsureKeyRotation(step.name, name, json.dumps(spec, sort_keys=True), request_id, emergency)
        looked = step_runs.create_then_observe(context, step, status, "created", create, observe)
    else:
        looked = step_runs.ask(context, step, observe)
    if not isinstance(looked, intents.Result):
        return looked
    rotation_object: Mapping[str, Any] = looked.value or {}
    rotation_status: Mapping[str, Any] = rotation_object.get("status") or {}
    rotation: Mapping[str, Any] = rotation_status.get("rotation") or {}
    if rotation.get("id") != request_id:
        return _ask_for_rotation(context, step, rotation_object, request_id, emergency)
    return _follow(context, step, status, name, rotation, rotation_status)


def _ask_for_rotation(context: step_runs.Context, step: Step, rotation_object: Mapping[str, Any], request_id: str,
                      emergency: bool) -> step_runs.Progress:
    """Write the request unless it is there; wait while another request is still to be taken up."""
    metadata: Mapping[str, Any] = rotation_object.get("metadata") or {}
    rotation_status: Mapping[str, Any] = rotation_object.get("status") or {}
    pending = (metadata.get("annotations") or {}).get(ROTATE_ANNOTATION)
    taken = rotation_status.get("lastRequest")
    name = str(metadata.get("name", ""))
    if taken == request_id:
        # Taken up but not started as ours: the KeyRotation refused it (an invalid spec, a conflict...).
        reason, message = _failure(rotation_status)
        return step_runs.fail_attempt(context, step, reason, f"keyrotation/{name} did not rotate: {message}")
    if pending not in (None, "", request_id, taken):
        _say(context, step, f"waiting for keyrotation/{name} to take up request {pending} first")
        return step_runs.Wait(context.now + step_runs.POLL)
    if pending != request_id:
        request = intents.RequestRotation(step.name, name, request_id, emergency,
                                          str(metadata.get("resourceVersion") or ""))
        written = context.result(request)
        if written is None:
            return request
        if not written.succeeded:
            return step_runs.fail_attempt(context, step, written.reason, written.message)
    _say(context, step, f"asked keyrotation/{name} for rotation {request_id}")
    return step_runs.Wait(context.now + step_runs.POLL)


def _follow(context: step_runs.Context, step: Step, status: StepStatus, name: str, rotation: Mapping[str, Any],
            rotation_status: Mapping[str, Any]) -> step_runs.Progress:
    """Record each stage the rotation reaches; succeed once it is verified, fail when it rolled back."""
    stage = str(rotation.get("stage") or RotationStage.PENDING)
    _record_stages(context, step, status, name, rotation, stage)
    if stage in VERIFIED_STAGES:
        expires = rotation_status.get("previousKeyExpiresAt")
        until = f"; old values kept until {expires}" if expires and stage != RotationStage.DONE else ""
        step_runs.finish(context, step, StepState.SUCCEEDED, "StepSucceeded",
                         f"rotated the keys of keyrotation/{name} to version {rotation.get('version')} "
                         f"and verified{until}")
        return None
    if stage in FAILED_STAGES:
        reason, message = _failure(rotation_status)
        step_runs.finish(context, step, StepState.FAILED, reason, f"keyrotation/{name}: {message}")
        return None
    return step_runs.Wait(context.now + step_runs.POLL)


def _record_stages(context: step_runs.Context, step: Step, status: StepStatus, name: str,
                   rotation: Mapping[str, Any], stage: str) -> None:
    """One timeline entry per stage the rotation entered, in order, with the time it entered it.

    The step looks every few seconds and a rotation may pass several stages in between: the stage times
    the KeyRotation recorded say what happened meanwhile.
    """
    seen = list(status.result.get("stages") or [])
    entered = dict(rotation.get("stageTimes") or {})
    entered.setdefault(stage, "")
    # By time; stages entered in the same instant keep the order the KeyRotation recorded them in.
    new = sorted(((str(at), entered_stage) for entered_stage, at in entered.items() if entered_stage not in seen),
                 key=lambda pair: pair[0])
    if not new:
        return
    for at, entered_stage in new:
        when = f" at {at}" if at else ""
        context.draft.add(EventType.NORMAL, "RotationStage",
                          f"keyrotation/{name} rotation {rotation.get('id')}: {entered_stage}{when}", step.name)
    seen += [entered_stage for _, entered_stage in new]
    message = f"keyrotation/{name}: {stage}" + (f" ({rotation['message']})" if rotation.get("message") else "")
    context.draft.update_step(step.name, result={**status.result, "stage": stage, "stages": seen,
                                                 "version": rotation.get("version")}, message=message)


def _failure(rotation_status: Mapping[str, Any]) -> tuple[str, str]:
    conditions = rotation_status.get("conditions") or []
    for kind in ("Failed", "Ready"):
        found = next((c for c in conditions if c.get("type") == kind), None)
        if found is not None and (found.get("status") == "True") == (kind == "Failed"):
            return str(found.get("reason") or "RotationFailed"), str(found.get("message") or kind)
    return "RotationFailed", "the rotation did not complete"


def _say(context: step_runs.Context, step: Step, message: str) -> None:
    if context.draft.step(step.name).message != message:
        context.draft.update_step(step.name, message=message)


KIND = step_runs.StepKind(plan=plan, advance=advance, locks=False, acts_on="KeyRotation")
