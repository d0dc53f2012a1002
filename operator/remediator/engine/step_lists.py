"""The steps an Incident runs, fixed when it starts: its Runbook's steps, then its own. Pure.

Steps are frozen once the incident is acknowledged: what was approved and started is what runs.
The Runbook's steps are copied into the status (later Runbook edits change no running incident),
and a digest of the spec's steps tells a change made afterwards, which the operator refuses.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping, Sequence
from typing import Any

import pydantic

from remediator.api.errors import validation_messages
from remediator.api.runbooks import RunbookDefaults, RunbookSpec
from remediator.api.steps import Step


def digest(spec: Mapping[str, Any]) -> str:
    """A fingerprint of what decides what is done: `steps`, `runbookRef` and `dryRun`, as the spec spells them."""
    chosen = {"steps": spec.get("steps") or [], "runbookRef": spec.get("runbookRef"),
              "dryRun": bool(spec.get("dryRun"))}
    return hashlib.sha256(json.dumps(chosen, sort_keys=True, separators=(",", ":")).encode()).hexdigest()


def with_defaults(steps: Sequence[Step], defaults: RunbookDefaults) -> list[Step]:
    """A Runbook's steps as an Incident runs them: `defaults.requiresApproval` becomes each step's own,
    so it holds after the copy (for a runbookRef and for an alert's Incident alike)."""
    return [s.model_copy(update={"requires_approval": s.requires_approval or defaults.requires_approval})
            for s in steps]


def from_runbook(runbook: Mapping[str, Any], own: Sequence[Step]) -> tuple[list[Step], str | None]:
    """The Runbook's steps as this incident will run them, or an error message.

    The Runbook's `defaults.requiresApproval` becomes each of its steps' own, so it holds after the copy.
    """
    name = (runbook.get("metadata") or {}).get("name", "")
    try:
        spec = RunbookSpec.model_validate(dict(runbook.get("spec") or {}))
    except pydantic.ValidationError as e:
        return [], f"Runbook {name} is invalid: {'; '.join(validation_messages(e))}"
    if not spec.steps:
        return [], (f"Runbook {name} has only steps for alerts (incident.steps), which need an alert's labels: "
                    f"it cannot be referenced")
    steps = with_defaults(spec.steps, spec.defaults)
    clash = sorted({s.name for s in steps} & {s.name for s in own})
    if clash:
        return [], f"step name(s) {', '.join(clash)} are used by Runbook {name} too"
    return steps, None
