"""Deciding a RollbackRequest's next move: `kubectl rollout undo`, optionally with the application
stopped and a migration-rollback Job run first (the runbook's "Rolling back a bad migration").

`decide` is a pure function of the request, what the I/O layer observed and the outcomes of the
actions it performed, and the time. The state machine lives in the status; every action is an
absolute change whose parameters are recorded before it is carried out, so the operator can die
between any two lines and the next call re-issues the same action, never a second one:

  Pending ──read the Deployment──▶ Accepted=True: fromRevision, toRevision, toTemplateHash and
     │                               originalReplicas recorded (phase RollingBack)
     └──▶ Accepted=False: RevisionNotFound, AlreadyCurrent, TargetNotFound (phase Refused), nothing changed
  stop-application  [stopApplication] scale to 0 ─▶ ApplicationStopped=True
  migration         [migrationJob] record migrationJobName (MigrationRolledBack=False CreatingJob),
                    create the Job (MigrationRunning), wait ─▶ MigrationRolledBack=True, or
                    MigrationRollbackFailed: Failed, and the application stays stopped, never rolled back
  roll-back         copy the target ReplicaSet's template into the Deployment ─▶ RolledBack=True
                    (already done when the Deployment runs the recorded template hash)
  restore-replicas  [stopApplication] scale back to originalReplicas ─▶ ApplicationStopped=False
  rollout           RolloutComplete=False RollingOut (its lastTransitionTime starts rolloutTimeout)
                    ─▶ RolloutComplete=True, Ready=True (Complete); or RolloutTimeout (Failed)

A RollbackRequest is a one-shot request: its spec is bound when it is accepted. A spec change
after that is not applied: a finished request records a `SpecChangeIgnored` warning; a request
still under way stops where it is (Ready=False `SpecChanged`, phase Failed) rather than carry on
with a target or plan that is no longer the one it started with. A refused or invalid request
changed nothing, so a corrected spec is decided afresh.
"""

from __future__ import annotations

import dataclasses
import datetime
import hashlib
from collections.abc import Mapping
from typing import Any

import pydantic

from remediator import API_VERSION
from remediator.api.conditions import Condition, ConditionStatus, find_condition, is_condition_true
from remediator.api.durations import parse_duration
from remediator.api.errors import validation_messages
from remediator.api.jobs import JobTemplate
from remediator.api.rollbacks import RollbackConditionType, RollbackRequestSpec, RollbackRequestStatus
from remediator.api.timelines import EventType
from remediator.engine import allow_lists, drafts, guards, intents, phases, revisions
from remediator.engine.drafts import MAX_MESSAGE

ACCEPTED = RollbackConditionType.ACCEPTED.value
APPLICATION_STOPPED = RollbackConditionType.APPLICATION_STOPPED.value
MIGRATION_ROLLED_BACK = RollbackConditionType.MIGRATION_ROLLED_BACK.value
ROLLED_BACK = RollbackConditionType.ROLLED_BACK.value
ROLLOUT_COMPLETE = RollbackConditionType.ROLLOUT_COMPLETE.value
READY = RollbackConditionType.READY.value

# The steps of a rollback, as named in timeline entries and Events ("[migration] job/... failed").
STOP = "stop-application"
MIGRATION = "migration"
ROLL_BACK = "roll-back"
RESTORE = "restore-replicas"
ROLLOUT = "rollout"

IN_PROGRESS = "RollingBack"
CREATING_JOB = "CreatingJob"
MIGRATION_RUNNING = "MigrationRunning"
ROLLING_OUT = "RollingOut"
MAX_JOB_NAME = 63  # Job names become the `job-name` label of their pods: a label value.
MIN_POLL = datetime.timedelta(seconds=1)
MAX_POLL = datetime.timedelta(seconds=30)


@dataclasses.dataclass(frozen=True)
class RollbackRequest:
    """The engine's view of one RollbackRequest object."""

    uid: str
    name: str
    namespace: str
    generation: int
    spec: Mapping[str, Any]
    status: Mapping[str, Any]


@dataclasses.dataclass(frozen=True)
class Policy:
    """Operator-wide rules: in a dry run the plan is recorded and nothing is changed; the allow-lists
    (namespaces, kinds, what a migration Job may run) hold for RollbackRequests as for Incidents."""

    dry_run: bool = False
    namespaces: frozenset[str] | None = None
    kinds: frozenset[str] | None = None
    jobs: allow_lists.JobPolicy = dataclasses.field(default_factory=allow_lists.JobPolicy)


# -- what the engine asks for ---------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class ReadDeployment:
    """Read the Deployment and the ReplicaSets it controls (its revision history and rollout status)."""

    name: str


@dataclasses.dataclass(frozen=True)
class RunJob:
    """Create the Job `name` from `template` unless it exists (then it must be owned by `owner`).

    Not intents.RunJob: that one is a hashable Incident step intent (template as JSON, owner implied).
    """

    step: str
    name: str
    template: JobTemplate
    owner: intents.Owner


@dataclasses.dataclass(frozen=True)
class SetTemplate:
    """Set the Deployment's pod template to a revision's (without its hash label), unless it has it already."""

    step: str
    name: str
    template: Mapping[str, Any]
    template_hash: str


Observation = ReadDeployment | intents.ObserveJob
Action = intents.ScaleTo | RunJob | SetTemplate
Intent = Observation | Action


# -- what the I/O layer reports -------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class World:
    """What the I/O layer read since the last action, and the outcomes of actions, by step.

    `deployment` is the read of the Deployment: its value a revisions.DeploymentState, or why it
    could not be read (TargetNotFound, Forbidden).
    """

    deployment: intents.Result | None = None
    job: intents.JobObserved | None = None
    outcomes: Mapping[str, intents.Result] = dataclasses.field(default_factory=dict)


Decision = drafts.Decision[RollbackRequestStatus, Intent]


def decide(request: RollbackRequest, world: World, now: datetime.datetime, policy: Policy) -> Decision:
    """The next move for a RollbackRequest; see the module docstring for the life cycle."""
    status = RollbackRequestStatus.model_validate(dict(request.status or {}))
    draft = drafts.Draft(status, request.generation, now, phases.rollback_phase)
    accepted = find_condition(status.conditions, ACCEPTED)
    if accepted is not None and accepted.status == ConditionStatus.TRUE \
            and accepted.observed_generation not in (None, request.generation):
        return _spec_changed(draft, accepted)
    if _finished(status, request.generation):
        return draft.decision()
    try:
        spec = RollbackRequestSpec.model_validate(dict(request.spec or {}))
    except pydantic.ValidationError as e:
        message = "; ".join(validation_messages(e))[:MAX_MESSAGE]
        _refuse(draft, "InvalidSpec", message)
        return draft.decision()
    return _Rollback(draft, request, spec, world, policy).advance()


def migration_job_name(request_name: str) -> str:
    """`<request>-migration`, shortened with a digest of the name when that is longer than a label value."""
    name = f"{request_name}-migration"
    if len(name) <= MAX_JOB_NAME:
        return name
    digest = hashlib.sha256(request_name.encode()).hexdigest()[:8]
    prefix = request_name[:MAX_JOB_NAME - len("-migration") - len(digest) - 1].rstrip("-.")
    return f"{prefix}-{digest}-migration"


def poll_interval(waited: datetime.timedelta) -> datetime.timedelta:
    """How long to wait before looking again: a tenth of the time waited so far, within 1s..30s."""
    return min(MAX_POLL, max(MIN_POLL, waited / 10))


class _Rollback:
    """One decision about an accepted (or about to be accepted) request."""

    def __init__(self, draft: drafts.Draft[RollbackRequestStatus], request: RollbackRequest,
                 spec: RollbackRequestSpec, world: World, policy: Policy) -> None:
        self.draft = draft
        self.status = draft.status
        self.request = request
        self.spec = spec
        self.world = world
        self.policy = policy
        self.subject = f"deployment/{spec.target.name}"

    def advance(self) -> Decision:
        if not is_condition_true(self.status.conditions, ACCEPTED):
            refused_or_waiting = self._accept()
            if refused_or_waiting is not None:
                return refused_or_waiting
        for step in (self._stop, self._migrate, self._roll_back, self._restore):
            decision = step()
            if decision is not None:
                return decision
        return self._wait_for_rollout()

    # -- acceptance -------------------------------------------------------------------------------

    def _accept(self) -> Decision | None:
        """Resolve the target revision and record the plan; a Decision when it stops here."""
        verdicts = [guards.allowed(self.request.namespace, "Deployment", self.policy.namespaces, self.policy.kinds)]
        if self.spec.migration_job is not None:
            verdicts.append(guards.allowed(self.request.namespace, "Job", None, self.policy.kinds))
            verdicts.append(allow_lists.job_allowed(self.spec.migration_job, self.policy.jobs))
        for verdict in verdicts:
            if not verdict.proceeds:
                _refuse(self.draft, verdict.reason, verdict.message)
                return self.draft.decision()
        read = self.world.deployment
        if read is None:
            return self.draft.decision(ReadDeployment(self.spec.target.name))
        if not read.succeeded:
            _refuse(self.draft, read.reason, read.message)
            return self.draft.decision()
        state: revisions.DeploymentState = read.value
        plan = revisions.plan_rollback(state, self.spec.to_revision)
        if isinstance(plan, revisions.Refusal):
            _refuse(self.draft, plan.reason, plan.message)
            return self.draft.decision()
        status = self.status
        status.from_revision = plan.from_revision
        status.to_revision = plan.target.number
        status.to_template_hash = plan.target.template_hash
        rollback = f"{self.subject} from revision {plan.from_revision} to {plan.target.number}"
        if self.policy.dry_run:
            steps = self._planned_steps(state.replicas, rollback)
            self.draft.condition(ACCEPTED, True, "DryRun", f"would roll back {rollback}")
            self.draft.condition(READY, True, "DryRunComplete", f"dry run: would {steps}; nothing was changed",
                                 entry=(EventType.NORMAL, "DryRunComplete",
                                        f"dry run: would {steps}; nothing was changed", None))
            return self.draft.decision()
        if self.spec.stop_application:
            status.original_replicas = state.replicas
        how = ""
        if self.spec.migration_job is not None:
            how = f", with the application stopped ({state.replicas} replicas) and a migration rollback first"
        elif self.spec.stop_application:
            how = f", with the application stopped ({state.replicas} replicas)"
        self.draft.condition(ACCEPTED, True, "Accepted", f"rolling back {rollback}{how}",
                             entry=(EventType.NORMAL, "Accepted", f"rolling back {rollback}{how}", None))
        self.draft.condition(READY, False, IN_PROGRESS, f"rolling back {rollback}")
        return None

    def _planned_steps(self, replicas: int, rollback: str) -> str:
        steps = []
        if self.spec.stop_application:
            steps.append(f"scale {self.subject} from {replicas} to 0")
        if self.spec.migration_job is not None:
            steps.append(f"run job/{migration_job_name(self.request.name)} ({self.spec.migration_job.image})")
        steps.append(f"roll back {rollback}")
        if self.spec.stop_application:
            steps.append(f"scale {self.subject} back to {replicas}")
        return ", then ".join(steps)

    # -- the steps ----------------------------------------------------------------------------------

    def _stop(self) -> Decision | None:
        if not self.spec.stop_application or self._has(APPLICATION_STOPPED):
            return None
        outcome = self.world.outcomes.get(STOP)
        if outcome is None:
            return self._act(self._scale(STOP, 0), f"stopping {self.subject}")
        if not outcome.succeeded:
            return self._fail(outcome.reason or "StopFailed",
                              f"could not scale {self.subject} to 0: {outcome.message}; nothing else was done",
                              STOP)
        message = f"scaled {self.subject} from {self.status.original_replicas} to 0"
        self.draft.condition(APPLICATION_STOPPED, True, "ScaledToZero", message,
                             entry=(EventType.NORMAL, "ApplicationStopped", message, STOP))
        return None

    def _migrate(self) -> Decision | None:
        template = self.spec.migration_job
        if template is None or is_condition_true(self.status.conditions, MIGRATION_ROLLED_BACK):
            return None
        name = self.status.migration_job_name
        if name is None:
            name = self.status.migration_job_name = migration_job_name(self.request.name)
            self.draft.condition(MIGRATION_ROLLED_BACK, False, CREATING_JOB, f"creating job/{name}")
        run = RunJob(MIGRATION, name, template,
                     intents.Owner(API_VERSION, "RollbackRequest", self.request.name, self.request.uid))
        condition = find_condition(self.status.conditions, MIGRATION_ROLLED_BACK)
        if condition is None or condition.reason == CREATING_JOB:
            outcome = self.world.outcomes.get(MIGRATION)
            if outcome is None:
                # Also after a crash: the name is recorded, so the action finds the Job it may have created.
                return self._act(run, f"creating job/{name}")
            if not outcome.succeeded:
                return self._migration_failed(outcome.reason or "JobNotCreated",
                                              f"could not create job/{name}: {outcome.message}")
            self.draft.condition(MIGRATION_ROLLED_BACK, False, MIGRATION_RUNNING, f"job/{name} is running",
                                 entry=(EventType.NORMAL, "MigrationJobCreated",
                                        f"created job/{name} to roll the database schema back", MIGRATION))
        job = self.world.job
        if job is None:
            return self.draft.decision(intents.ObserveJob(MIGRATION, name))
        if job.phase == intents.JobPhase.MISSING:
            return self._migration_failed("MigrationJobLost",
                                          f"job/{name} disappeared before it was seen to finish")
        if job.phase == intents.JobPhase.FAILED:
            why = f" ({job.reason})" if job.reason else ""
            return self._migration_failed("MigrationRollbackFailed", f"job/{name} failed{why}: {job.message}")
        if job.phase == intents.JobPhase.RUNNING:
            return self._wait(f"waiting for job/{name} to finish", MIGRATION_ROLLED_BACK)
        self.draft.condition(MIGRATION_ROLLED_BACK, True, "MigrationSucceeded", f"job/{name} succeeded",
                             entry=(EventType.NORMAL, "MigrationRolledBack",
                                    f"job/{name} rolled the database schema back", MIGRATION))
        return None

    def _roll_back(self) -> Decision | None:
        if is_condition_true(self.status.conditions, ROLLED_BACK):
            return None
        outcome = self.world.outcomes.get(ROLL_BACK)
        if outcome is not None and not outcome.succeeded:
            return self._fail(outcome.reason or "RollbackFailed",
                              f"could not roll back {self.subject}: {outcome.message}{self._left_as()}", ROLL_BACK)
        if outcome is None:
            read = self.world.deployment
            if read is None:
                return self.draft.decision(ReadDeployment(self.spec.target.name))
            if not read.succeeded:
                return self._fail(read.reason, read.message + self._left_as(), ROLL_BACK)
            state: revisions.DeploymentState = read.value
            template_hash = self.status.to_template_hash or ""
            if not state.runs(template_hash):
                target = state.with_hash(template_hash)
                if target is None:
                    return self._fail("RevisionNotFound",
                                      f"the ReplicaSet of revision {self.status.to_revision} (pod-template-hash "
                                      f"{template_hash}) no longer exists{self._left_as()}", ROLL_BACK)
                return self._act(SetTemplate(ROLL_BACK, self.spec.target.name, target.template, template_hash),
                                 f"rolling back {self.subject} to revision {self.status.to_revision}")
            # Recorded as the target and already in place: a previous run got this far.
        message = (f"rolled back {self.subject} from revision {self.status.from_revision} "
                   f"to {self.status.to_revision}")
        self.draft.condition(ROLLED_BACK, True, "TemplateRestored",
                             f"{self.subject} has the pod template of revision {self.status.to_revision} again",
                             entry=(EventType.NORMAL, "RolledBack", message, ROLL_BACK))
        return None

    def _restore(self) -> Decision | None:
        if not is_condition_true(self.status.conditions, APPLICATION_STOPPED):
            return None
        replicas = self.status.original_replicas or 0
        outcome = self.world.outcomes.get(RESTORE)
        if outcome is None:
            return self._act(self._scale(RESTORE, replicas), f"scaling {self.subject} back to {replicas}")
        if not outcome.succeeded:
            return self._fail(outcome.reason or "RestoreFailed",
                              f"rolled back, but could not scale {self.subject} back to {replicas}: "
                              f"{outcome.message}", RESTORE)
        message = f"scaled {self.subject} from 0 to {replicas}"
        self.draft.condition(APPLICATION_STOPPED, False, "ReplicasRestored", message,
                             entry=(EventType.NORMAL, "ReplicasRestored", message, RESTORE))
        return None

    def _wait_for_rollout(self) -> Decision:
        timeout = self.spec.rollout_timeout
        if find_condition(self.status.conditions, ROLLOUT_COMPLETE) is None:
            self.draft.condition(ROLLOUT_COMPLETE, False, ROLLING_OUT,
                                 f"waiting for {self.subject} to roll out (timeout {timeout})")
        read = self.world.deployment
        if read is None:
            return self.draft.decision(ReadDeployment(self.spec.target.name))
        if not read.succeeded:
            return self._fail(read.reason, read.message, ROLLOUT)
        state: revisions.DeploymentState = read.value
        template_hash = self.status.to_template_hash or ""
        if not state.runs(template_hash):
            return self._fail("Superseded", f"{self.subject} was given another pod template while rolling back "
                                            f"to revision {self.status.to_revision}", ROLLOUT)
        progress = state.describe_rollout()
        if state.rollout_complete:
            self.draft.condition(ROLLOUT_COMPLETE, True, "RolloutComplete", f"{self.subject}: {progress}")
            self.draft.condition(READY, True, "RolledBack",
                                 f"{self.subject} runs revision {self.status.to_revision} again",
                                 entry=(EventType.NORMAL, "RollbackComplete",
                                        f"{self.subject} is back at revision {self.status.to_revision}: "
                                        f"{progress}", ROLLOUT))
            return self.draft.decision()
        rolling_out = find_condition(self.draft.status.conditions, ROLLOUT_COMPLETE)
        assert rolling_out is not None
        deadline = rolling_out.last_transition_time + parse_duration(timeout)
        if self.draft.now >= deadline:
            message = f"{self.subject} did not finish rolling out within {timeout}: {progress}"
            self.draft.condition(ROLLOUT_COMPLETE, False, "RolloutTimeout", message)
            return self._fail("RolloutTimeout", message, ROLLOUT)
        return self._wait(f"waiting for {self.subject} to roll out: {progress}", ROLLOUT_COMPLETE, deadline)

    # -- helpers --------------------------------------------------------------------------------------

    def _has(self, condition_type: str) -> bool:
        return find_condition(self.status.conditions, condition_type) is not None

    def _scale(self, step: str, replicas: int) -> intents.ScaleTo:
        return intents.ScaleTo(step, self.spec.target.kind, self.spec.target.name, replicas)

    def _act(self, action: Action, doing: str) -> Decision:
        self.draft.condition(READY, False, IN_PROGRESS, doing)
        return self.draft.decision(action)

    def _wait(self, waiting_for: str, since_condition: str,
              deadline: datetime.datetime | None = None) -> Decision:
        """Nothing to do until the world moves: look again later (Ready's message says what for)."""
        self.draft.condition(READY, False, IN_PROGRESS, waiting_for)
        since = find_condition(self.draft.status.conditions, since_condition)
        waited = self.draft.now - since.last_transition_time if since is not None else datetime.timedelta()
        delay = poll_interval(waited)
        if deadline is not None:
            delay = max(datetime.timedelta(milliseconds=100), min(delay, deadline - self.draft.now))
        return self.draft.decision(requeue_after=delay)

    def _fail(self, reason: str, message: str, step: str | None) -> Decision:
        self.draft.condition(READY, False, reason, message, entry=(EventType.WARNING, reason, message, step))
        return self.draft.decision()

    def _migration_failed(self, reason: str, message: str) -> Decision:
        message = f"{message}. {self.subject} stays stopped at 0 replicas and is not rolled back"
        self.draft.condition(MIGRATION_ROLLED_BACK, False, reason, message)
        return self._fail("MigrationRollbackFailed", message, MIGRATION)

    def _left_as(self) -> str:
        if is_condition_true(self.status.conditions, APPLICATION_STOPPED):
            return f"; {self.subject} stays stopped at 0 replicas"
        return ""


def _refuse(draft: drafts.Draft[RollbackRequestStatus], reason: str, message: str) -> None:
    draft.condition(ACCEPTED, False, reason, message, entry=(EventType.WARNING, reason, message, None))
    draft.condition(READY, False, reason, message)


def _finished(status: RollbackRequestStatus, generation: int) -> bool:
    """Complete, failed, planned; or refused/invalid for this very spec (a corrected spec is decided again)."""
    conditions = status.conditions
    ready = find_condition(conditions, READY)
    accepted = find_condition(conditions, ACCEPTED)
    if ready is None or accepted is None:
        return False
    if accepted.status != ConditionStatus.TRUE:
        return accepted.observed_generation in (None, generation)
    return ready.status == ConditionStatus.TRUE or ready.reason not in phases.ROLLBACK_IN_PROGRESS_REASONS


def _spec_changed(draft: drafts.Draft[RollbackRequestStatus], accepted: Condition) -> Decision:
    status = draft.status
    if _finished(status, draft.generation):
        if status.observed_generation != draft.generation:
            draft.add(EventType.WARNING, "SpecChangeIgnored",
                      f"a RollbackRequest is one-shot: the change to its spec (generation {draft.generation}) "
                      f"is ignored because it has already finished ({status.phase}); create a new one to roll "
                      "back again")
        return draft.decision()
    left = ""
    if is_condition_true(status.conditions, APPLICATION_STOPPED):
        left = f"; the application stays stopped (it had {status.original_replicas} replicas)"
    message = (f"the spec changed (generation {accepted.observed_generation} to {draft.generation}) after the "
               f"rollback was accepted; a RollbackRequest is one-shot, so it stops here{left}")
    draft.condition(READY, False, "SpecChanged", message, entry=(EventType.WARNING, "SpecChanged", message, None))
    return draft.decision()
