"""The `database` step: one first-aid operation on a PostgreSQL database."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from remediator.api.steps import Step, StepState, StepStatus
from remediator.engine import intents, plans, step_runs


def plan(context: step_runs.Context, step: Step, observed: Mapping[str, Any],
         previous: Mapping[str, Any]) -> plans.Plan | step_runs.Progress:
    return plans.database(step, previous)


def advance(context: step_runs.Context, step: Step, status: StepStatus) -> step_runs.Progress:
    assert step.database is not None
    result = status.result
    step_json = step.database.model_dump_json(by_alias=True, exclude_none=True)
    only = None
    if step.database.operation in plans.DESTRUCTIVE_DATABASE_OPERATIONS:
        # List the sessions first and record them: this attempt and every retry signal those, no others.
        if "plannedTargets" not in result:
            listed = step_runs.ask(context, step, intents.RunDatabaseOperation(step.name, step_json, True, 0))
            if not isinstance(listed, intents.Result):
                return listed
            planned = [[t["pid"], t["backendStart"]] for t in (listed.value or {}).get("targets", [])]
            result = context.draft.update_step(step.name, result={**result, "plannedTargets": planned}).result
        only = tuple((int(pid), str(start)) for pid, start in result["plannedTargets"])
    run = intents.RunDatabaseOperation(step.name, step_json, False, status.attempts, only)
    outcome = step_runs.ask(context, step, run)
    if not isinstance(outcome, intents.Result):
        return outcome
    context.draft.update_step(step.name, result=step_runs.bounded_result(
        {"operation": step.database.operation, **(outcome.value or {})}, step_runs.MAX_RESULT_BYTES))
    step_runs.finish(context, step, StepState.SUCCEEDED, "StepSucceeded", database_summary(step, outcome.value or {}))
    return None


def dry_run(context: step_runs.Context, step: Step) -> step_runs.Progress:
    """A database step's dry run still looks: it lists the targets it would act on."""
    assert step.database is not None
    run = intents.RunDatabaseOperation(step.name, step.database.model_dump_json(by_alias=True, exclude_none=True),
                                       True, 0)
    outcome = context.result(run)
    if outcome is None:
        return run
    if not outcome.succeeded:
        step_runs.finish(context, step, StepState.FAILED, outcome.reason, outcome.message)
        return None
    context.draft.update_step(step.name, result=step_runs.bounded_result(
        {"operation": step.database.operation, **(outcome.value or {})}, step_runs.MAX_RESULT_BYTES))
    step_runs.finish(context, step, StepState.SKIPPED, "DryRun",
                     f"dry run: would {database_summary(step, outcome.value or {})}")
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


KIND = step_runs.StepKind(plan=plan, advance=advance, dry_run=dry_run)
