"""The `restart` step: a rollout restart, or deleting a snapshot of pods a few at a time."""

from __future__ import annotations

import datetime
from collections.abc import Mapping
from typing import Any

from remediator.api.steps import Step, StepState, StepStatus
from remediator.engine import intents, plans, pod_restarts, step_runs


def plan(context: step_runs.Context, step: Step, observed: Mapping[str, Any],
         previous: Mapping[str, Any]) -> plans.Plan | step_runs.Progress:
    assert step.restart is not None
    kind, name = step_runs.target_of(step) or ("", "")
    if step.restart.selector is not None:
        selector = pod_restarts.selector_string(step.restart.selector)
        listed = step_runs.ask(context, step, intents.ObservePods(step.name, selector))
        if not isinstance(listed, intents.Result):
            return listed
        return plans.delete_pods(step, listed.value, kind, name, selector, previous)
    restarted_at = str(previous.get("restartedAt") or context.now.strftime("%Y-%m-%dT%H:%M:%SZ"))
    return plans.rollout_restart(kind, name, restarted_at)


def advance(context: step_runs.Context, step: Step, status: StepStatus) -> step_runs.Progress:
    if status.result.get("mode") == "deletePods":
        return _continue_pod_restart(context, step, status)
    kind, name = step_runs.target_of(step) or ("", "")
    restart = intents.RolloutRestart(step.name, kind, name, str(status.result["restartedAt"]))
    return step_runs.after_action(context, step, restart, step_runs.done_text(step, status))


def _continue_pod_restart(context: step_runs.Context, step: Step, status: StepStatus) -> step_runs.Progress:
    assert step.restart is not None
    listed = step_runs.ask(context, step, intents.ObservePods(step.name, str(status.result["selector"])))
    if not isinstance(listed, intents.Result):
        return listed
    plan = pod_restarts.next_round(list(status.result["pods"]), listed.value, step.restart.max_unavailable)
    if plan.done:
        step_runs.finish(context, step, StepState.SUCCEEDED, "StepSucceeded",
                         f"{plan.message} of {step_runs.target_text(step)}")
        return None
    message = plan.message
    if plan.batch:
        labels = {pod["name"]: tuple(sorted(pod["labels"].items())) for pod in listed.value}
        delete = intents.DeletePods(step.name, plan.batch, tuple(labels[name] for name in plan.batch))
        outcome = step_runs.ask(context, step, delete)
        if not isinstance(outcome, intents.Result):
            return outcome
        if outcome.value["blocked"]:
            message = f"eviction of {', '.join(outcome.value['blocked'])} refused by a PodDisruptionBudget; retrying"
    if status.message != message:
        context.draft.update_step(step.name, message=message)
    return step_runs.Wait(context.now + datetime.timedelta(seconds=1))


KIND = step_runs.StepKind(plan=plan, advance=advance)
