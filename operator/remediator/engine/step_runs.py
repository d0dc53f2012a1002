"""One step's run, shared by the incident's life cycle (engine/incidents.py) and the step kinds
(engine/steps/): the engine's view of the Incident, what a decision is made from (`Context`), and the
moves every step kind makes (ask for an intent's answer, finish, fail an attempt). Pure.
"""

from __future__ import annotations

import dataclasses
import datetime
import json
from collections.abc import Callable, Mapping
from typing import Any

import pydantic

from remediator.api.durations import parse_duration
from remediator.api.incidents import IncidentSpec, IncidentStatus
from remediator.api.steps import Step, StepState, StepStatus
from remediator.api.timelines import EventType
from remediator.engine import allow_lists, drafts, guards, intents, phases, plans

TERMINAL_STEP_STATES = frozenset({StepState.SUCCEEDED, StepState.FAILED, StepState.SKIPPED})
POLL = datetime.timedelta(seconds=2)
DEFAULT_MAX_REPLICAS = 1000
# etcd takes objects up to 1.5 MiB; an Incident's status stays far below, whatever its steps report.
MAX_STATUS_BYTES = 200 * 1024
MAX_RESULT_BYTES = 16 * 1024
Decision = drafts.Decision[IncidentStatus, intents.Intent]


@dataclasses.dataclass(frozen=True)
class Incident:
    """The engine's view of one Incident object."""

    uid: str
    name: str
    namespace: str
    generation: int
    created_at: datetime.datetime
    spec: Mapping[str, Any]
    status: Mapping[str, Any]
    annotations: Mapping[str, str] = dataclasses.field(default_factory=dict)

    @property
    def holder(self) -> str:
        """How locks and cooldown stamps name this incident."""
        return f"{self.namespace}/{self.name}"


@dataclasses.dataclass(frozen=True)
class Policy:
    """Operator-wide rules applied to every incident."""

    dry_run: bool = False
    namespaces: frozenset[str] | None = None
    kinds: frozenset[str] | None = None
    approval: guards.ApprovalPolicy = dataclasses.field(default_factory=guards.ApprovalPolicy)
    cooldown: datetime.timedelta = guards.DEFAULT_COOLDOWN
    max_cooldown: datetime.timedelta = guards.DEFAULT_MAX_COOLDOWN  # no cooldown (spec or stamp) lasts longer
    max_replicas: int = DEFAULT_MAX_REPLICAS  # no scale plans more replicas than this
    jobs: allow_lists.JobPolicy = dataclasses.field(default_factory=allow_lists.JobPolicy)


@dataclasses.dataclass(frozen=True)
class World:
    """What the I/O layer answered since the last persisted state, and the rate limiter's verdict now."""

    results: Mapping[intents.Intent, intents.Result] = dataclasses.field(default_factory=dict)
    rate_limit: guards.Verdict = guards.PROCEED
    rate_slots: frozenset[str] = frozenset()  # steps that took a rate-limit slot in this reconciliation


@dataclasses.dataclass(frozen=True)
class Wait:
    until: datetime.datetime | None  # None: until something changes (e.g. an approval annotation)
    reason: str = ""  # the reason of the guard holding the step back (guards.RATE_LIMITED, ...); "" for other waits


Progress = intents.Intent | Wait | None  # None: the step reached a terminal state


class Draft(drafts.Draft[IncidentStatus]):
    """An Incident status being edited, with per-step helpers."""

    def __init__(self, status: IncidentStatus, incident: Incident, now: datetime.datetime) -> None:
        super().__init__(status, incident.generation, now, phases.incident_phase)

    def step(self, name: str) -> StepStatus:
        for step_status in self.status.steps:
            if step_status.name == name:
                return step_status
        step_status = StepStatus(name=name)
        self.status.steps.append(step_status)
        return step_status

    def update_step(self, name: str, **changes: Any) -> StepStatus:
        updated = self.step(name).model_copy(update=changes)
        self.status.steps = [updated if s.name == name else s for s in self.status.steps]
        return updated

    def bound(self) -> None:
        # The status must fit in the object whatever the steps report: the largest results of finished steps
        # give way first (a running step's result holds its intent, which must stay whole).
        results = sorted((s for s in self.status.steps if s.state in TERMINAL_STEP_STATES),
                         key=lambda s: -_size(s.result))
        while results and _size(self.status) > MAX_STATUS_BYTES:
            largest = results.pop(0)
            self.update_step(largest.name, result=bounded_result(largest.result, 0))


def _size(value: Any) -> int:
    if isinstance(value, pydantic.BaseModel):
        return len(value.model_dump_json(by_alias=True, exclude_none=True))
    return len(json.dumps(value, default=str))


def bounded_result(result: Mapping[str, Any], limit: int) -> dict[str, Any]:
    """A step result of at most `limit` bytes of JSON: a larger one keeps only its small fields and says so."""
    size = _size(result)
    if size <= limit:
        return dict(result)
    kept = {k: v for k, v in result.items() if _size(v) <= 256}
    return {**kept, "truncated": True, "bytes": size}


@dataclasses.dataclass
class Context:
    draft: Draft
    incident: Incident
    spec: IncidentSpec
    world: World
    now: datetime.datetime
    policy: Policy
    dry_run: bool
    steps: list[Step] = dataclasses.field(default_factory=list)  # frozen when acknowledged

    def result(self, intent: intents.Intent) -> intents.Result | None:
        return self.world.results.get(intent)


@dataclasses.dataclass(frozen=True)
class StepKind:
    """What makes a step kind: how it plans (before any guard), and how a Running step goes on.

    `plan(context, step, observed, previous)`: the plan (or an intent to answer first); `previous` is
    the result the first attempt recorded, reused by a retry. `advance(context, step, status)`: issue
    (or re-issue) the recorded intent, or judge its outcome. `dry_run`, when set, replaces the
    generic "would ..." of a dry run (a database step still lists its targets). `locks`: whether the
    step claims its target (a waiting step does not). `acts_on`: the kind `--allow-kind` must list for a
    step without a workload target (Job, KeyRotation).
    """

    plan: Callable[[Context, Step, Mapping[str, Any], Mapping[str, Any]], plans.Plan | Progress]
    advance: Callable[[Context, Step, StepStatus], Progress]
    dry_run: Callable[[Context, Step], Progress] | None = None
    locks: bool = True
    acts_on: str | None = None  # the kind the allow-list judges when the step has no workload target


def target_of(step: Step) -> tuple[str, str] | None:
    for kind_step in (step.scale, step.restart, step.rollback, step.wait_for_rollout):
        if kind_step is not None:
            return str(kind_step.target.kind), str(kind_step.target.name)
    return None


def ask(context: Context, step: Step, intent: intents.Intent) -> Progress | intents.Result:
    """The successful answer to `intent`, or the move to make first: issue it, or fail the attempt."""
    result = context.result(intent)
    if result is None:
        return intent
    if not result.succeeded:
        return fail_attempt(context, step, result.reason, result.message)
    return result


def after_action(context: Context, step: Step, action: intents.Action, success: str) -> Progress:
    outcome = context.result(action)
    if outcome is None:
        return action
    if outcome.succeeded:
        finish(context, step, StepState.SUCCEEDED, "StepSucceeded", success)
        return None
    return fail_attempt(context, step, outcome.reason or "ActionFailed", outcome.message)


def create_then_observe(context: Context, step: Step, status: StepStatus, flag: str, create: intents.Action,
                         observe: intents.Observation) -> Progress | intents.Result:
    """Create a child object once (remembered in the step result under `flag`), then read it.

    Returns the intent still to carry out, the attempt's failure progress, or the successful read.
    """
    created = context.result(create)
    if created is None and not status.result.get(flag):
        return create
    if created is not None and not created.succeeded:
        return fail_attempt(context, step, created.reason, created.message)
    if not status.result.get(flag):
        context.draft.update_step(step.name, result={**status.result, flag: True})
    return ask(context, step, observe)


def is_terminal(context: Context, step: Step) -> bool:
    return context.draft.step(step.name).state in TERMINAL_STEP_STATES


def fail_attempt(context: Context, step: Step, reason: str, message: str) -> Progress:
    """A failed attempt: retried after backoff while retries remain, else the step fails."""
    status = context.draft.step(step.name)
    attempts = max(status.attempts, 1)
    if attempts <= step.retries:
        retry_at = context.now + parse_duration(step.retry_backoff) * (2 ** (attempts - 1))
        text = f"attempt {attempts} failed ({reason}): {message}; retrying at {retry_at:%H:%M:%S}"
        context.draft.update_step(step.name, state=StepState.PENDING, retry_at=retry_at, attempts=attempts,
                                  message=text, idempotency_key=None)
        context.draft.add(EventType.WARNING, "StepRetrying", text, step.name)
        return Wait(retry_at)
    finish(context, step, StepState.FAILED, reason or "StepFailed", message)
    return None


def finish(context: Context, step: Step, state: StepState, reason: str, message: str) -> None:
    context.draft.update_step(step.name, state=state, finished_at=context.now, message=message[:drafts.MAX_MESSAGE])
    event_type = EventType.WARNING if state == StepState.FAILED else EventType.NORMAL
    context.draft.add(event_type, reason, message, step.name)


def target_text(step: Step) -> str:
    target = target_of(step)
    return f"{target[0].lower()}/{target[1]}" if target else step.kind


def done_text(step: Step, status: StepStatus) -> str:
    """What a scale or rollout restart changed, from its recorded intent."""
    if step.scale is not None:
        return f"scaled {target_text(step)} from {status.result['from']} to {status.result['to']}"
    return f"restarted {target_text(step)}"


def format_time(moment: datetime.datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def parse_time(text: str) -> datetime.datetime:
    return datetime.datetime.fromisoformat(str(text).replace("Z", "+00:00"))
