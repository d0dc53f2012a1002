"""The `httpCheck` step: probe an endpoint until it passes successThreshold times in a row."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from remediator.api.durations import parse_duration
from remediator.api.steps import Step, StepState, StepStatus
from remediator.engine import allow_lists, http_checks, intents, plans, step_runs


def plan(context: step_runs.Context, step: Step, observed: Mapping[str, Any],
         previous: Mapping[str, Any]) -> plans.Plan | step_runs.Progress:
    return plans.http_check(step, previous)


def advance(context: step_runs.Context, step: Step, status: StepStatus) -> step_runs.Progress:
    check = step.http_check
    assert check is not None
    probes = int(status.result.get("probes", 0))
    probe = intents.ProbeHttp(step.name, check.url, check.method, tuple(sorted(check.headers.items())),
                              parse_duration(check.request_timeout).total_seconds(), probes + 1)
    answer = context.result(probe)
    if answer is None:
        last = status.result.get("lastProbeAt")
        if last and context.now < step_runs.parse_time(last) + parse_duration(check.interval):
            return step_runs.Wait(step_runs.parse_time(last) + parse_duration(check.interval))
        return probe
    if not answer.succeeded and answer.reason == allow_lists.HOST_NOT_ALLOWED:
        step_runs.finish(context, step, StepState.FAILED, answer.reason, answer.message)  # no later probe can pass
        return None
    passed, message = http_checks.judge(check, answer.value or {}) if answer.succeeded else (False, answer.message)
    passes = int(status.result.get("consecutivePasses", 0)) + 1 if passed else 0
    result = {**status.result, "probes": probes + 1, "consecutivePasses": passes, "lastStatus":
              (answer.value or {}).get("status"), "lastProbeAt": step_runs.format_time(context.now)}
    context.draft.update_step(step.name, result=result, message=message)
    if passes >= check.success_threshold:
        step_runs.finish(context, step, StepState.SUCCEEDED, "StepSucceeded",
                f"{message} ({passes} consecutive pass{'es' if passes != 1 else ''})")
        return None
    return step_runs.Wait(context.now + parse_duration(check.interval))


KIND = step_runs.StepKind(plan=plan, advance=advance)
