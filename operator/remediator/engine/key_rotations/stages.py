"""Deciding a KeyRotation's next move: start a rotation when one is asked for, and take it through its
stages. `decide` is pure (clock injected); status.rotation is the write-ahead log: every stage, restart
time and Secret version an action depends on is recorded (and written by the handler) before the
action is carried out, so after a crash the same action is re-issued, never planned again.

  idle ──asked (request, trigger change)──▶ Pending: new values in the staging Secret <name>-pending
  Set      a database role's password (passes straight through without databaseRole)
  Promote  read the live Secret, record its resourceVersion, one conditional update ─▶ Rotated=True
  Restart  each consumer once (a restart made after the promotion is shared; not before restartCoalesce,
           except in an emergency), then wait for its rollout (staged: the first consumer, Verify, the rest)
           ─▶ ConsumersRestarted=True
  Verify   each check passes successThreshold times in a row within verifyTimeout ─▶ Verified=True
  Grace    until previousKeyExpiresAt (cut short when another rotation is asked for)
  Revoke   remove the previous keys, delete the staging Secret ─▶ PreviousKeyRevoked=True, Done
  RollingBack (a check or a rollout failed) Promote: the previous values back in one conditional
           write; Restart; Verify; Revoke: the failed values removed ─▶ RolledBack, Failed=True
           VerificationFailed; a rollback that cannot finish: Failed, reason RollbackFailed and its stage.
"""

from __future__ import annotations

import dataclasses
import datetime
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import pydantic

from remediator import API_VERSION
from remediator.api.conditions import Condition, find_condition
from remediator.api.durations import parse_duration
from remediator.api.errors import validation_messages
from remediator.api.keyrotations import (
    ROTATE_ANNOTATION,
    ConsumerRestart,
    DatabaseRotation,
    KeyRotationConditionType,
    KeyRotationSpec,
    KeyRotationStatus,
    RoleStrategy,
    RolloutMode,
    Rotation,
    RotationStage,
)
from remediator.api.timelines import EventType
from remediator.engine import allow_lists, drafts, guards, http_checks, intents, role_rotations, schedules
from remediator.engine.key_rotations import consumers, moves, schedule_decisions, triggers, validation, views

READY = KeyRotationConditionType.READY.value
ROTATED = KeyRotationConditionType.ROTATED.value
CONSUMERS_RESTARTED = KeyRotationConditionType.CONSUMERS_RESTARTED.value
VERIFIED = KeyRotationConditionType.VERIFIED.value
PREVIOUS_KEY_REVOKED = KeyRotationConditionType.PREVIOUS_KEY_REVOKED.value
FAILED = KeyRotationConditionType.FAILED.value

ROTATING = "Rotating"
ROLLING_BACK = "RollingBack"
ROLLBACK_FAILED = "RollbackFailed"
VERIFICATION_FAILED = "VerificationFailed"
FINISHED = frozenset({RotationStage.DONE, RotationStage.ROLLED_BACK, RotationStage.FAILED})
# Outcomes worth trying again shortly: someone wrote the object meanwhile, or the API server failed.
TRANSIENT_REASONS = frozenset({"Conflict", "ApiError"})
RETRY = datetime.timedelta(seconds=2)
ROLLOUT_POLL = datetime.timedelta(seconds=1)
MIN_WAIT = datetime.timedelta(milliseconds=100)
MAX_MOVES = 50
# stage_times keys that are no stage: the restarts' reference (a restart after it has the new values).
PROMOTED = "Promoted"
RESTORED = "Restored"
ROLLBACK_VERIFY = "RollingBack.Verify"
CONSUMER_PENDING, RESTARTING, RESTARTED, SKIPPED = "Pending", "Restarting", "Restarted", "Skipped"

Decision = drafts.Decision[KeyRotationStatus, moves.Intent]


def phase(conditions: Sequence[Condition]) -> str:
    """Ready, Rotating, RollingBack, Failed (a rollback that could not finish), Invalid or Pending."""
    ready = find_condition(conditions, READY)
    if ready is None:
        return "Pending"
    if ready.status == "True":
        return "Ready"
    return {ROTATING: "Rotating", ROLLING_BACK: "RollingBack", ROLLBACK_FAILED: "Failed"}.get(ready.reason, "Invalid")


def decide(rotation: views.KeyRotation, world: views.World, now: datetime.datetime,
           policy: views.Policy) -> Decision:
    """The next move for a KeyRotation; see the module docstring for the stages."""
    status = KeyRotationStatus.model_validate(dict(rotation.status or {}))
    draft = drafts.Draft(status, rotation.generation, now, phase)
    try:
        spec = KeyRotationSpec.model_validate(dict(rotation.spec or {}))
    except pydantic.ValidationError as e:
        message = "; ".join(validation_messages(e))
        draft.condition(READY, False, "InvalidSpec", message, entry=(EventType.WARNING, "InvalidSpec", message, None))
        request = rotation.annotations.get(ROTATE_ANNOTATION, "").strip()
        if request and request != status.last_request:
            draft.status.last_request = request
            draft.add(EventType.WARNING, "RequestRefused", f"rotation request {request} refused: {message}")
        return draft.decision()
    return _Controller(draft, rotation, spec, world, policy).advance()


@dataclasses.dataclass
class _Controller:
    draft: drafts.Draft[KeyRotationStatus]
    rotation: views.KeyRotation
    spec: KeyRotationSpec
    world: views.World
    policy: views.Policy

    @property
    def status(self) -> KeyRotationStatus:
        return self.draft.status

    @property
    def now(self) -> datetime.datetime:
        return self.draft.now

    @property
    def secret(self) -> str:
        return self.spec.secret_ref.name

    @property
    def keys(self) -> tuple[str, ...]:
        return tuple(k.key for k in self.spec.keys)

    def advance(self) -> Decision:
        for _ in range(MAX_MOVES):
            current = self.status.rotation
            if current is None or current.stage in FINISHED:
                decision = self._idle()
            else:
                decision = _STAGES[current.stage](self, current)
            if decision is not None:
                return decision
        return self.draft.decision(requeue_after=RETRY)  # a bug, not progress: look again later

    # -- idle: validation, and starting a rotation --------------------------------------------------------

    def _idle(self) -> Decision | None:
        if triggers.is_first_sight(self.status) and self.spec.trigger is not None:
            self.status.last_trigger = self.spec.trigger  # the baseline: creating a KeyRotation rotates nothing
        refusal = validation.static(self.spec, self.rotation, self.policy)
        if refusal is not None:
            return self._refuse(refusal)
        read = moves.ReadSecrets(validation.secret_names(self.spec))
        secrets = self.world.answer(read)
        if secrets is None:
            return self.draft.decision(read)
        others = self.world.answer(moves.ListKeyRotations())
        if others is None:
            return self.draft.decision(moves.ListKeyRotations())
        workloads = self.world.answer(moves.ListWorkloads())
        if workloads is None:
            return self.draft.decision(moves.ListWorkloads())
        refusal = validation.against_world(self.spec, self.rotation, secrets.value, others.value, workloads.value)
        if refusal is None and self.spec.database_role is not None:
            observe = moves.ObserveRole(self._database(), self.spec.database_role.role)
            observed = self.world.answer(observe)
            if observed is None:
                return self.draft.decision(observe)
            refusal = validation.role_refusal(self.spec, self.status.current_database_user, observed)
        if refusal is not None:
            return self._refuse(refusal)
        try:
            due = schedule_decisions.scheduled(self.spec, self.status, self._created(), self.now)
        except schedules.ScheduleError as e:
            return self._refuse(validation.Refusal(e.reason, f"spec.{e.field}", e.message))
        ask = triggers.pending(self.spec, self.status, self.rotation.annotations, due, self.rotation.generation)
        if ask is None:
            self.status.next_rotation_time = due.next_time
            self._idle_ready(due.next_time)
            wake = None if due.next_time is None else max(MIN_WAIT, due.next_time - self.now)
            return self.draft.decision(requeue_after=wake)
        found, _ = consumers.select(self.spec.consumers, self.secret, workloads.value)
        if self.policy.dry_run:
            self._dry_run(ask, found)
            return None
        self._start(ask, found)
        return None

    def _dry_run(self, ask: triggers.Ask, found: Sequence[tuple[str, str]]) -> None:
        """What the rotation would do, said once; what asked for it counts as seen (another may be pending)."""
        triggers.record(ask, self.spec, self.status)
        restarts = ", ".join(f"{kind.lower()}/{name}" for kind, name in found) or "no consumer"
        message = (f"dry run: would rotate {', '.join(self.keys)} of secret {self.secret} (rotation {ask.id}, "
                   f"asked by {ask.cause}{', an emergency' if ask.emergency else ''}) and restart {restarts}; "
                   f"nothing was changed")
        self.draft.add(EventType.NORMAL, "DryRun", message, None)

    def _created(self) -> datetime.datetime:
        """The creationTimestamp: where an @every schedule counts from, and the first tick's lower bound."""
        try:
            return datetime.datetime.fromisoformat(self.rotation.created_at.replace("Z", "+00:00"))
        except ValueError:
            return self.now

    def _refuse(self, refusal: validation.Refusal) -> Decision:
        self.draft.condition(READY, False, refusal.reason, refusal.text,
                             entry=(EventType.WARNING, refusal.reason, refusal.text, None))
        ask = triggers.pending(self.spec, self.status, self.rotation.annotations)
        if ask is not None and ask.cause == triggers.REQUEST:
            # A request is one-shot: it is answered (the asking Incident step fails with the reason), not kept.
            # A trigger stays wanted: it rotates once the input is fixed.
            triggers.record(ask, self.spec, self.status)
            self.draft.add(EventType.WARNING, "RequestRefused", f"rotation request {ask.id} refused: {refusal.text}")
        return self.draft.decision()

    def _idle_ready(self, next_time: datetime.datetime | None) -> None:
        failed = find_condition(self.status.conditions, FAILED)
        if failed is not None and failed.status == "True" and failed.reason == ROLLBACK_FAILED:
            return  # stays not Ready until a new rotation is asked for: someone must look first
        if self.status.rotations or self.status.current_version:
            message = f"version {self.status.current_version} of the keys is current; waiting to be asked again"
        else:
            message = "waiting for a request (remediator.dev/rotate), a trigger change or the schedule"
        if next_time is not None:
            message += f"; the schedule rotates next at {next_time:%Y-%m-%dT%H:%M:%SZ}"
        self.draft.condition(READY, True, "Idle", message)

    def _start(self, ask: triggers.Ask, found: Sequence[tuple[str, str]]) -> None:
        version = self.status.current_version + 1
        self.status.rotation = Rotation(
            id=ask.id, cause=ask.cause, emergency=ask.emergency, stage=RotationStage.PENDING, started_at=self.now,
            stage_times={RotationStage.PENDING.value: self.now}, version=version,
            consumers=[ConsumerRestart(kind=kind, name=name) for kind, name in found])
        triggers.record(ask, self.spec, self.status)
        self.status.previous_key_expires_at = None
        role = self.spec.database_role
        if role is not None:
            planned = role_rotations.plan(role.strategy, role.role, self.status.current_database_user)
            assert isinstance(planned, role_rotations.RolePlan)  # refusals stopped it in validation
            self.status.rotation.database = DatabaseRotation(
                new_user=planned.set_password_of, previous_user=self.status.current_database_user or role.role)
        what = f"rotation {ask.id} ({ask.cause}{', emergency' if ask.emergency else ''})"
        self.draft.condition(FAILED, False, ROTATING, f"{what} started")
        for condition_type in (ROTATED, CONSUMERS_RESTARTED, VERIFIED, PREVIOUS_KEY_REVOKED):
            self.draft.condition(condition_type, False, ROTATING, f"{what} has not got there yet")
        self.draft.add(EventType.NORMAL, "RotationStarted",
                       f"{what} started: version {version} of {', '.join(self.keys)} in secret {self.secret}, "
                       f"{len(found)} consumer{'s' if len(found) != 1 else ''} to restart")

    # -- the stages -------------------------------------------------------------------------------------------

    def _pending(self, current: Rotation) -> Decision | None:
        values = tuple(moves.NewValue(k.key, k.generator.length, k.generator.encoding,
                                      (k.from_secret_ref.name, k.from_secret_ref.key) if k.from_secret_ref else None)
                       for k in self.spec.keys)
        owner = intents.Owner(API_VERSION, "KeyRotation", self.rotation.name, self.rotation.uid)
        stage = moves.StageValues(current.id, current.version, self.rotation.staging_secret, values, owner)
        outcome = self._outcome(stage, f"staging new values in secret {self.rotation.staging_secret}",
                                lambda failed: self._fail_early(current, failed))
        if not isinstance(outcome, intents.Result):
            return outcome
        self._enter(current, RotationStage.SET)
        return None

    def _set(self, current: Rotation) -> Decision | None:
        role, database = self.spec.database_role, current.database
        if role is None or database is None or database.new_user is None:
            self._enter(current, RotationStage.PROMOTE)
            return None
        if current.rollback_stage == RotationStage.SET:
            return self._restore_in_place(current)
        if role.strategy == RoleStrategy.ALTERNATING_USERS and not database.alternate_ready:
            ensure = moves.EnsureAlternateUser(self._database(), role.role)
            outcome = self._outcome(ensure, f"making sure the alternate user of role {role.role} exists",
                                    lambda failed: self._fail_early(current, failed))
            if not isinstance(outcome, intents.Result):
                return outcome
            database.alternate_ready = True
        if not database.password_set:
            apply = moves.SetRolePassword(self._database(), role.role, database.new_user, role.strategy,
                                          self.rotation.staging_secret, role.password_key,
                                          (current.id, current.version))
            outcome = self._outcome(apply, f"setting the password of {database.new_user}",
                                    lambda failed: self._set_failed(current, failed))
            if not isinstance(outcome, intents.Result):
                return outcome
            database.password_set = True
            self.draft.add(EventType.NORMAL, "PasswordSet",
                           f"the password of database user {database.new_user} is the new value, proven by a login")
        self._enter(current, RotationStage.PROMOTE)
        return None

    def _set_failed(self, current: Rotation, failed: intents.Result) -> Decision | None:
        """A password that could not be set and proven. With inPlace the one login user may hold the new
        password already (the proof failed after it was set) while the Secret still holds the old one: the
        old one is set again before the rotation stops, or every new connection of the consumers would fail."""
        role = self.spec.database_role
        if role is None or role.strategy != RoleStrategy.IN_PLACE:
            return self._fail_early(current, failed)
        current.rollback_stage = RotationStage.SET
        current.message = f"{failed.reason or 'PasswordNotSet'}: {failed.message}"
        return None

    def _restore_in_place(self, current: Rotation) -> Decision | None:
        role = self.spec.database_role
        assert role is not None
        restore = moves.SetRolePassword(self._database(), role.role, role.role, role.strategy, self.secret,
                                        role.password_key)
        outcome = self._outcome(restore, f"setting the previous password of {role.role} again",
                                self._stops_rollback(current, RotationStage.SET), reason=ROLLING_BACK)
        if not isinstance(outcome, intents.Result):
            return outcome
        current.rollback_stage = None
        reason, _, why = (current.message or "PasswordNotSet: ").partition(": ")
        return self._fail_early(current, intents.failed(
            reason, f"{why}; the previous password of {role.role} (still in secret {self.secret}) was set again"))

    def _promote(self, current: Rotation) -> Decision | None:
        if current.secret_resource_version is None:
            read = moves.ReadSecrets((self.secret,))
            answer = self.world.answer(read)
            if answer is None:
                return self.draft.decision(read)
            live: moves.SecretSeen | None = answer.value.get(self.secret)
            if live is None:
                return self._fail_early(current, intents.failed(
                    "SecretNotFound", f"secret {self.secret} disappeared before its keys were promoted"))
            current.secret_resource_version = live.resource_version
        promote = moves.PromoteSecret(current.id, current.version, self.secret, self.rotation.staging_secret,
                                      self.keys, self.spec.previous_key_suffix,
                                      consumers.format_restart_time(current.stage_times[RotationStage.PROMOTE.value]),
                                      current.secret_resource_version, self.rotation.name,
                                      self._username(current, True))
        outcome = self.world.answer(promote)
        if outcome is None:
            return self._act(promote, f"promoting version {current.version} into secret {self.secret}")
        if not outcome.succeeded and outcome.reason == "Conflict":
            # Written by someone else since it was read: read it again (the previous values are taken then).
            current.secret_resource_version = None
            self.draft.add(EventType.NORMAL, "SecretChanged",
                           f"secret {self.secret} changed before the promotion; reading it again", None)
            return None
        if not outcome.succeeded:
            return self._retry_or(outcome, lambda failed: self._fail_early(current, failed))
        previous = ", ".join(k + self.spec.previous_key_suffix for k in self.keys)
        message = (f"secret {self.secret} holds version {current.version} of {', '.join(self.keys)}; "
                   f"the previous values stay under {previous}")
        self.draft.condition(ROTATED, True, "Promoted", message, entry=(EventType.NORMAL, "Promoted", message, None))
        self.status.current_version = current.version
        self.status.last_rotation_time = self.now
        if current.database is not None:
            self.status.current_database_user = current.database.new_user
        current.stage_times[PROMOTED] = self.now
        self._enter(current, RotationStage.RESTART)
        return None

    def _restart(self, current: Rotation) -> Decision | None:
        waiting = self._restart_consumers(current, current.stage_times[PROMOTED], rollback=False)
        if waiting is not None or current.stage != RotationStage.RESTART:  # waiting, or a rollout failed
            return waiting
        if all(c.state in (RESTARTED, SKIPPED) for c in current.consumers):
            restarted = sum(c.state == RESTARTED for c in current.consumers)
            message = f"{restarted} of {len(current.consumers)} consumers restarted with version {current.version}"
            self.draft.condition(CONSUMERS_RESTARTED, True, "Restarted", message,
                                 entry=(EventType.NORMAL, "ConsumersRestarted", message, None))
        self._enter(current, RotationStage.VERIFY)
        return None

    def _verify(self, current: Rotation) -> Decision | None:
        started = current.stage_times[RotationStage.VERIFY.value]
        outcome = self._run_checks(current, started)
        if isinstance(outcome, str):
            return self._verification_failed(current, outcome)
        if outcome is not None:
            return outcome
        if any(c.state == CONSUMER_PENDING for c in current.consumers):
            self._enter(current, RotationStage.RESTART)  # staged: the first consumer passed; now the rest
            return None
        grace = self.spec.emergency_grace_period if current.emergency else self.spec.grace_period
        expires = self.now + parse_duration(grace)
        self.status.previous_key_expires_at = expires
        message = (f"{len(self.spec.verify)} check{'s' if len(self.spec.verify) != 1 else ''} passed with version "
                   f"{current.version}; the previous values go at {expires:%Y-%m-%dT%H:%M:%SZ}")
        self.draft.condition(VERIFIED, True, "Verified", message, entry=(EventType.NORMAL, "Verified", message, None))
        self._enter(current, RotationStage.GRACE)
        return None

    def _grace(self, current: Rotation) -> Decision | None:
        expires = self.status.previous_key_expires_at or self.now
        ask = triggers.pending(self.spec, self.status, self.rotation.annotations)
        if ask is not None and self.now < expires:
            # Every consumer runs the current values: another rotation need not wait out this grace period.
            self.draft.add(EventType.NORMAL, "GracePeriodCutShort",
                           f"rotation {ask.id} was asked for: the previous values of rotation {current.id} go now")
        elif self.now < expires:
            # Rotated and verified: ready; only the previous values wait to be removed.
            self.draft.condition(READY, True, "GracePeriod", f"rotation {current.id} is verified; the previous "
                                 f"values stay until {expires:%Y-%m-%dT%H:%M:%SZ}")
            return self.draft.decision(requeue_after=max(MIN_WAIT, expires - self.now))
        self._enter(current, RotationStage.REVOKE)
        return None

    def _revoke(self, current: Rotation) -> Decision | None:
        database = current.database
        if database is not None and database.previous_user != database.new_user:
            waiting = self._revoke_user(current, database.previous_user or "")
            if waiting is not None:
                return waiting
        revoke = self._revoke_intent(current)
        outcome = self._outcome(revoke, f"removing the previous values from secret {self.secret}",
                                lambda failed: self._wait(self.now + RETRY, failed.message))
        if not isinstance(outcome, intents.Result):
            return outcome
        message = (f"removed {', '.join(k + self.spec.previous_key_suffix for k in self.keys)} from secret "
                   f"{self.secret}: only version {current.version} is valid now")
        self.draft.condition(PREVIOUS_KEY_REVOKED, True, "Revoked", message,
                             entry=(EventType.NORMAL, "PreviousKeyRevoked", message, None))
        self.status.rotations += 1
        self._enter(current, RotationStage.DONE)
        return None

    # -- rolling back -------------------------------------------------------------------------------------

    def _verification_failed(self, current: Rotation, why: str) -> Decision | None:
        self.draft.condition(VERIFIED, False, VERIFICATION_FAILED, why)
        message = f"rotation {current.id} failed verification ({why}); putting the previous values back"
        self.draft.condition(FAILED, True, VERIFICATION_FAILED, message,
                             entry=(EventType.WARNING, VERIFICATION_FAILED, message, None))
        current.consumers = [
            c.model_copy(update={"state": CONSUMER_PENDING, "restarted_at": None, "message": None})
            if c.state in (RESTARTED, RESTARTING)
            else c.model_copy(update={"state": SKIPPED, "message": "never restarted with the new values"})
            for c in current.consumers]
        self._enter(current, RotationStage.ROLLING_BACK)
        current.rollback_stage = RotationStage.PROMOTE
        return None

    def _rolling_back(self, current: Rotation) -> Decision | None:
        step = current.rollback_stage or RotationStage.PROMOTE
        if step == RotationStage.PROMOTE:
            restore = moves.RestoreSecret(current.id, current.version, self.secret, self.keys,
                                          self.spec.previous_key_suffix, self._username(current, False))
            outcome = self._outcome(restore, f"putting the previous values back into secret {self.secret}",
                                    self._stops_rollback(current, step), reason=ROLLING_BACK)
            if not isinstance(outcome, intents.Result):
                return outcome
            self.status.current_version = current.version - 1
            if current.database is not None:
                self.status.current_database_user = current.database.previous_user
            message = (f"secret {self.secret} holds version {current.version - 1} again; the failed values stay "
                       f"under the previous keys until the consumers are restarted")
            self.draft.condition(ROTATED, False, "RolledBack", message,
                                 entry=(EventType.NORMAL, "PreviousValuesRestored", message, None))
            current.stage_times[RESTORED] = self.now
            current.rollback_stage = RotationStage.RESTART
            return None
        if step == RotationStage.RESTART:
            database, role = current.database, self.spec.database_role
            if database is not None and role is not None and database.password_set \
                    and database.new_user == database.previous_user:
                # inPlace: the one user got the new password; the previous one (back in the Secret) is set again.
                apply = moves.SetRolePassword(self._database(), role.role, database.new_user or "", role.strategy,
                                              self.secret, role.password_key)
                outcome = self._outcome(apply, f"setting the previous password of {database.new_user} again",
                                        self._stops_rollback(current, step), reason=ROLLING_BACK)
                if not isinstance(outcome, intents.Result):
                    return outcome
                database.password_set = False
            waiting = self._restart_consumers(current, current.stage_times[RESTORED], rollback=True)
            if waiting is not None:
                return waiting
            current.stage_times[ROLLBACK_VERIFY] = self.now
            current.rollback_stage = RotationStage.VERIFY
            return None
        if step == RotationStage.VERIFY:
            checked = self._run_checks(current, current.stage_times[ROLLBACK_VERIFY], ROLLING_BACK)
            if isinstance(checked, str):
                return self._rollback_failed(current, step, checked)
            if checked is not None:
                return checked
            current.rollback_stage = RotationStage.REVOKE
            return None
        database = current.database
        if database is not None and database.new_user != database.previous_user:
            waiting = self._revoke_user(current, database.new_user or "")
            if waiting is not None:
                return waiting
        revoke = self._revoke_intent(current)
        outcome = self._outcome(revoke, f"removing the failed values from secret {self.secret}",
                                self._stops_rollback(current, step), reason=ROLLING_BACK)
        if not isinstance(outcome, intents.Result):
            return outcome
        failed = find_condition(self.status.conditions, VERIFIED)
        why = failed.message if failed is not None else "verification failed"
        message = (f"rotation {current.id} failed verification ({why}) and was rolled back: version "
                   f"{current.version - 1} is current again and verified")
        self.draft.condition(FAILED, True, VERIFICATION_FAILED, message,
                             entry=(EventType.WARNING, "RolledBack", message, None))
        self._enter(current, RotationStage.ROLLED_BACK)
        current.rollback_stage = None
        return None

    def _stops_rollback(self, current: Rotation, step: RotationStage) -> Callable[[intents.Result], Decision]:
        return lambda failed: self._rollback_failed(current, step, failed.message)

    def _rollback_failed(self, current: Rotation, step: RotationStage, why: str) -> Decision:
        message = f"rolling back rotation {current.id} stopped at {step.value}: {why}; a person must look"
        self.draft.condition(FAILED, True, ROLLBACK_FAILED, message,
                             entry=(EventType.WARNING, ROLLBACK_FAILED, message, None))
        self.draft.condition(READY, False, ROLLBACK_FAILED, message)
        self._enter(current, RotationStage.FAILED)
        return self.draft.decision()

    # -- shared by the rotation and its rollback ------------------------------------------------------------

    def _restart_consumers(self, current: Rotation, since: datetime.datetime, rollback: bool) -> Decision | None:
        """Restart each consumer of this round once and wait for its rollout; None when all are done.

        A restart stamped after `since` (by this or another rotation, or an Incident) is shared.
        """
        doing = ROLLING_BACK if rollback else ROTATING
        batch = self._batch(current, rollback)
        if not batch:
            return None
        listed = self.world.answer(moves.ListWorkloads())
        if listed is None:
            return self.draft.decision(moves.ListWorkloads())
        workloads: list[Mapping[str, Any]] = listed.value
        not_before = since if current.emergency or rollback else since + self.policy.restart_coalesce
        for index in batch:
            consumer = current.consumers[index]
            workload = consumers.find(workloads, consumer.kind, consumer.name)
            target = f"{consumer.kind.lower()}/{consumer.name}"
            if consumer.state in (RESTARTED, SKIPPED):
                continue
            if workload is None:
                self._consumer(current, index, state=SKIPPED, message=f"{target} no longer exists")
                continue
            stamped = consumers.restarted_at(workload)
            ours = consumer.restarted_at if consumer.state == RESTARTING else None
            if stamped is not None and stamped > since and consumers.format_restart_time(stamped) != ours:
                self._consumer(current, index, state=RESTARTED, restarted_at=consumers.format_restart_time(stamped),
                               message=f"shared the restart of {target} at {stamped:%H:%M:%S}")
                continue
            # Conditional on the version judged on: of two rotations restarting one workload, one writes.
            version = str((workload.get("metadata") or {}).get("resourceVersion") or "")
            if ours is not None:
                restart = intents.RolloutRestart("restart", consumer.kind, consumer.name, ours,
                                                 resource_version=version)
                outcome = self.world.answer(restart)
                if outcome is None:
                    return self._act(restart, f"restarting {target}", doing)
                if not outcome.succeeded and outcome.reason == "TargetNotFound":
                    self._consumer(current, index, state=SKIPPED, message=outcome.message)
                    continue
                if not outcome.succeeded:
                    retry = self.now + (MIN_WAIT if outcome.reason == "Conflict" else RETRY)
                    return self._wait(retry, f"restarting {target}: {outcome.message}", doing)
                self._consumer(current, index, state=RESTARTED, message=f"restarted {target}")
                continue
            if self.now < not_before:
                continue
            waiting = self._guarded(current, workload, target, rollback)
            if waiting is not None:
                return waiting
            stamp = consumers.format_restart_time(self.now)
            self._consumer(current, index, state=RESTARTING, restarted_at=stamp, message=None)
            # Recorded in the status this decision writes before the restart is carried out.
            return self._act(intents.RolloutRestart("restart", consumer.kind, consumer.name, stamp,
                                                    resource_version=version), f"restarting {target}", doing)
        if any(current.consumers[i].state == CONSUMER_PENDING for i in batch):
            return self._wait(not_before, f"restarting {len(batch)} consumers at {not_before:%H:%M:%S} "
                                          "(a restart made meanwhile is shared)", doing)
        for index in batch:
            consumer = current.consumers[index]
            workload = consumers.find(workloads, consumer.kind, consumer.name)
            if consumer.state != RESTARTED or workload is None:
                continue
            complete, progress = consumers.rolled_out(workload)
            if complete:
                continue
            deadline = not_before + parse_duration(self.spec.verify_timeout)
            if self.now >= deadline:
                why = f"{progress} after {self.spec.verify_timeout}"
                if rollback:
                    return self._rollback_failed(current, RotationStage.RESTART, why)
                return self._verification_failed(current, why)
            return self._wait(min(deadline, self.now + ROLLOUT_POLL), progress, doing)
        return None

    def _guarded(self, current: Rotation, workload: Mapping[str, Any], target: str,
                 rollback: bool) -> Decision | None:
        """The engine's guards before a restart: an Incident's lock on the workload, then (not when putting
        the previous values back) the operator-wide rate limit and, unless an emergency, a restart cooldown
        an Incident started there. A Decision to wait, or None to go ahead."""
        doing = ROLLING_BACK if rollback else ROTATING
        annotations = (workload.get("metadata") or {}).get("annotations") or {}
        verdicts = [guards.lock("", annotations, target, self.now + RETRY)]
        if not rollback:
            verdicts.append(self.world.rate_limit)
        if not rollback and not current.emergency:
            verdicts.append(guards.cooldown("restart", f"keyrotation/{self.rotation.namespace}/{self.rotation.name}",
                                            annotations, target, self.now, self.policy.max_cooldown))
        for verdict in verdicts:
            if not verdict.proceeds:
                return self._wait(verdict.retry_at or self.now + RETRY, verdict.message, doing)
        return None

    def _batch(self, current: Rotation, rollback: bool) -> list[int]:
        """The consumers of this round: staged (not when rolling back), the first one first, then the rest."""
        indices = list(range(len(current.consumers)))
        if self.spec.rollout == RolloutMode.STAGED and not rollback and indices \
                and current.consumers[0].state not in (RESTARTED, SKIPPED):
            return indices[:1]
        return indices

    def _consumer(self, current: Rotation, index: int, **changes: Any) -> None:
        current.consumers[index] = current.consumers[index].model_copy(update=changes)

    def _run_checks(self, current: Rotation, started: datetime.datetime,
                    doing: str = ROTATING) -> Decision | str | None:
        """Run the verify checks in order, each until it passes successThreshold times in a row.

        None: all passed; a Decision: probe or wait; a str: why verification failed.
        """
        checks = self.spec.verify
        deadline = started + parse_duration(self.spec.verify_timeout)
        while current.verify_check < len(checks):
            check = checks[current.verify_check]
            probe = intents.ProbeHttp(f"verify[{current.verify_check}]", check.url, check.method,
                                      tuple(sorted(check.headers.items())),
                                      parse_duration(check.request_timeout).total_seconds(), current.verify_probes + 1)
            answer = self.world.answer(probe)
            interval = parse_duration(check.interval)
            if answer is None:
                if current.last_probe_at is not None and self.now < current.last_probe_at + interval:
                    return self._wait(current.last_probe_at + interval, current.message or "verifying", doing)
                return self.draft.decision(probe)
            if not answer.succeeded and answer.reason == allow_lists.HOST_NOT_ALLOWED:
                return answer.message  # no later request can pass
            passed, message = http_checks.judge(check, answer.value or {}) if answer.succeeded \
                else (False, answer.message)
            current.verify_probes += 1
            current.last_probe_at = self.now
            current.verify_passes = current.verify_passes + 1 if passed else 0
            current.message = message
            if current.verify_passes >= check.success_threshold:
                current.verify_check += 1
                current.verify_passes = current.verify_probes = 0
                current.last_probe_at = None
                continue
            if self.now >= deadline:
                return f"{message}; not {check.success_threshold} healthy answers in a row within " \
                       f"{self.spec.verify_timeout}"
            return self._wait(self.now + interval, message, doing)
        return None

    def _database(self) -> moves.Database:
        role = self.spec.database_role
        assert role is not None
        return moves.Database(role.connection_secret_ref.name, role.connection_secret_ref.key)

    def _username(self, current: Rotation, promoted: bool) -> tuple[str, str] | None:
        """(usernameKey, the login user current after the promotion, or again after a rollback)."""
        role, database = self.spec.database_role, current.database
        if role is None or role.username_key is None or database is None:
            return None
        return role.username_key, (database.new_user if promoted else database.previous_user) or role.role

    def _revoke_user(self, current: Rotation, user: str) -> Decision | None:
        """Refuse new logins as `user` (once: the session counts are its record); None when done."""
        database, role = current.database, self.spec.database_role
        assert database is not None and role is not None
        if database.sessions_at_revoke is not None:
            return None
        doing = ROLLING_BACK if current.stage == RotationStage.ROLLING_BACK else ROTATING
        revoke = moves.RevokeRoleUser(self._database(), role.role, user, role.strategy,
                                      role.terminate_sessions_on_revoke or current.emergency)
        outcome = self.world.answer(revoke)
        if outcome is None:
            return self._act(revoke, f"revoking database user {user}", doing)
        if not outcome.succeeded:
            if doing == ROLLING_BACK:
                return self._retry_or(outcome, self._stops_rollback(current, RotationStage.REVOKE))
            return self._retry_or(outcome, lambda failed: self._wait(self.now + RETRY, failed.message))
        database.sessions_at_revoke = int(outcome.value["openSessions"])
        database.sessions_terminated = int(outcome.value["terminatedSessions"])
        self.draft.add(EventType.NORMAL, "DatabaseUserRevoked",
                       f"database user {user} can no longer log in; {database.sessions_at_revoke} session(s) were "
                       f"open, {database.sessions_terminated} terminated")
        return None

    def _revoke_intent(self, current: Rotation) -> moves.RevokePrevious:
        username = self._username(current, True)
        return moves.RevokePrevious(current.id, current.version, self.secret, self.rotation.staging_secret,
                                    self.keys, self.spec.previous_key_suffix, (username[0],) if username else ())

    # -- helpers ----------------------------------------------------------------------------------------------

    def _enter(self, current: Rotation, stage: RotationStage) -> None:
        current.stage = stage
        current.stage_times[stage.value] = self.now
        if stage in (RotationStage.VERIFY, RotationStage.ROLLING_BACK):
            current.verify_check = current.verify_passes = current.verify_probes = 0
            current.last_probe_at = None

    def _act(self, action: moves.Action, doing: str, reason: str = ROTATING) -> Decision:
        self._in_progress(doing, reason)
        return self.draft.decision(action)

    def _wait(self, until: datetime.datetime, waiting_for: str, reason: str = ROTATING) -> Decision:
        self._in_progress(waiting_for, reason)
        return self.draft.decision(requeue_after=max(MIN_WAIT, until - self.now))

    def _in_progress(self, doing: str, reason: str) -> None:
        current = self.status.rotation
        stage = current.stage.value if current is not None else ""
        self.draft.condition(READY, False, reason, f"rotation {current.id if current else ''} at {stage}: {doing}")

    def _outcome(self, action: moves.Action, doing: str, otherwise: Callable[[intents.Result], Decision | None],
                 reason: str = ROTATING) -> Decision | intents.Result | None:
        """The action's successful outcome; else the move to make first: carry the action out (Ready says
        `doing`), wait to try a transient failure again, or `otherwise(failure)` (None: decide again)."""
        outcome = self.world.answer(action)
        if outcome is None:
            return self._act(action, doing, reason)
        if not outcome.succeeded:
            return self._retry_or(outcome, otherwise)
        return outcome

    def _retry_or(self, outcome: intents.Result,
                  otherwise: Callable[[intents.Result], Decision | None]) -> Decision | None:
        """A failed outcome: tried again shortly when transient, else `otherwise(outcome)`."""
        if outcome.reason in TRANSIENT_REASONS:
            return self._wait(self.now + RETRY, outcome.message)
        return otherwise(outcome)

    def _fail_early(self, current: Rotation, outcome: intents.Result) -> Decision | None:
        """A failure before the live Secret was written: the rotation stops, and nothing was changed."""
        message = f"rotation {current.id} stopped at {current.stage.value}: {outcome.message}; nothing was changed"
        self.draft.condition(FAILED, True, outcome.reason or "RotationFailed", message,
                             entry=(EventType.WARNING, outcome.reason or "RotationFailed", message, None))
        self._enter(current, RotationStage.FAILED)
        return None


_STAGES: dict[RotationStage, Callable[[_Controller, Rotation], Decision | None]] = {
    RotationStage.PENDING: _Controller._pending,
    RotationStage.SET: _Controller._set,
    RotationStage.PROMOTE: _Controller._promote,
    RotationStage.RESTART: _Controller._restart,
    RotationStage.VERIFY: _Controller._verify,
    RotationStage.GRACE: _Controller._grace,
    RotationStage.REVOKE: _Controller._revoke,
    RotationStage.ROLLING_BACK: _Controller._rolling_back,
}
