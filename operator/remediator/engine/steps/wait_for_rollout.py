"""The `waitForRollout` step: wait until the workload's rollout is complete."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from remediator.api.steps import Step, StepState, StepStatus
from remediator.engine import intents, plans, rollouts, step_runs


def plan(context: step_runs.Context, step: Step, observed: Mapping[str, Any],
         previous: Mapping[str, Any]) -> plans.Plan | step_runs.Progress:
    kind, name = step_runs.target_of(step) or ("", "")
    return plans.wait_for_rollout(kind, name)


def advance(context: step_runs.Context, step: Step, status: StepStatus) -> step_runs.Progress:
    kind, name = step_runs.target_of(step) or ("", "")
    observation = step_runs.ask(context, step, intents.ObserveTarget(step.name, kind, name))
    if not isinstance(observation, intents.Result):
        return observation
    complete, message = rollouts.rollout_status(observation.value)
    if complete:
        step_runs.finish(context, step, StepState.SUCCEEDED, "StepSucceeded", message)
        return None
    if status.message != message:
        context.draft.update_step(step.name, message=message)
    return step_runs.Wait(context.now + step_runs.POLL)


KIND = step_runs.StepKind(plan=plan, advance=advance, locks=False)
