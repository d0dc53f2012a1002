"""The `notify` step: post the incident's message to the webhook held in a Secret."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from remediator.api.steps import Step, StepStatus
from remediator.engine import intents, plans, step_runs


def plan(context: step_runs.Context, step: Step, observed: Mapping[str, Any],
         previous: Mapping[str, Any]) -> plans.Plan | step_runs.Progress:
    return plans.notify()


def advance(context: step_runs.Context, step: Step, status: StepStatus) -> step_runs.Progress:
    assert step.notify is not None
    notify = intents.Notify(step.name, step.notify.webhook_secret_ref.name, step.notify.webhook_secret_ref.key,
                            _notification_text(context, step), status.idempotency_key or "")
    return step_runs.after_action(context, step, notify, "notification sent")


def _notification_text(context: step_runs.Context, step: Step) -> str:
    assert step.notify is not None
    spec = context.spec
    return f"[{spec.severity.value}] {context.incident.holder}: {spec.summary}\n{step.notify.message}"


KIND = step_runs.StepKind(plan=plan, advance=advance)
