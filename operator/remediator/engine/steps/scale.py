"""The `scale` step: set a workload's replicas to the planned (recorded) number."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from remediator.api.steps import Step, StepStatus
from remediator.engine import intents, plans, step_runs


def plan(context: step_runs.Context, step: Step, observed: Mapping[str, Any],
         previous: Mapping[str, Any]) -> plans.Plan | step_runs.Progress:
    kind, name = step_runs.target_of(step) or ("", "")
    return plans.scale(step, observed, kind, name, previous, context.policy.max_replicas)


def advance(context: step_runs.Context, step: Step, status: StepStatus) -> step_runs.Progress:
    kind, name = step_runs.target_of(step) or ("", "")
    scale = intents.ScaleTo(step.name, kind, name, int(status.result["to"]), status.idempotency_key or "")
    return step_runs.after_action(context, step, scale, step_runs.done_text(step, status))


KIND = step_runs.StepKind(plan=plan, advance=advance)
