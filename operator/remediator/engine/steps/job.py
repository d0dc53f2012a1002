"""The `job` step: a Job owned by the Incident, created once under a deterministic name, awaited."""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from typing import Any

from remediator.api.steps import Step, StepState, StepStatus
from remediator.engine import intents, plans, step_runs


def plan(context: step_runs.Context, step: Step, observed: Mapping[str, Any],
         previous: Mapping[str, Any]) -> plans.Plan | step_runs.Progress:
    return plans.job(step, job_name(context.incident.name, step.name), context.policy.jobs)


def job_name(incident: str, step: str) -> str:
    """`<incident>-<step>`, shortened with a digest to fit a Job name (63 characters, as a label value)."""
    name = f"{incident}-{step}"
    if len(name) <= 63:
        return name
    digest = hashlib.sha256(name.encode()).hexdigest()[:8]
    return f"{name[:54].rstrip('-')}-{digest}"


def advance(context: step_runs.Context, step: Step, status: StepStatus) -> step_runs.Progress:
    assert step.job is not None
    name = str(status.result["job"])
    observed = step_runs.create_then_observe(
        context, step, status, "created",
        intents.RunJob(step.name, name, step.job.template.model_dump_json(by_alias=True, exclude_none=True)),
        intents.ObserveJob(step.name, name))
    if not isinstance(observed, intents.Result):
        return observed
    job = observed.value or {}
    phase = job.get("phase")
    if phase == "Succeeded":
        step_runs.finish(context, step, StepState.SUCCEEDED, "StepSucceeded", f"job/{name} completed")
        return None
    if phase == "Failed":
        why = f" ({job['reason']})" if job.get("reason") else ""
        return step_runs.fail_attempt(context, step, "JobFailed", f"job/{name} failed{why}: {job.get('message', '')}")
    if phase == "Missing":
        return step_runs.fail_attempt(context, step, "JobGone", f"job/{name} disappeared before it finished")
    return step_runs.Wait(context.now + step_runs.POLL)


KIND = step_runs.StepKind(plan=plan, advance=advance, acts_on="Job")
