"""The step kinds: one module each, one line each in KINDS (keyed by the step's kind, e.g. "http_check")."""

from __future__ import annotations

from remediator.engine import step_runs
from remediator.engine.steps import (
    database,
    http_check,
    job,
    notify,
    restart,
    rollback,
    rotate_key,
    scale,
    wait_for_rollout,
)

KINDS: dict[str, step_runs.StepKind] = {
    "scale": scale.KIND,
    "restart": restart.KIND,
    "rollback": rollback.KIND,
    "wait_for_rollout": wait_for_rollout.KIND,
    "http_check": http_check.KIND,
    "notify": notify.KIND,
    "job": job.KIND,
    "database": database.KIND,
    "rotate_key": rotate_key.KIND,
}
