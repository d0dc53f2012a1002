"""The KeyRotation kind: rotate keys held in a Secret, on a schedule or on demand.

Status never holds a secret value: only times and counts.
"""

from enum import StrEnum
from typing import Annotated, Literal, Self

from pydantic import AwareDatetime, Field, model_validator

from remediator.api.bases import SpecModel, StatusModel, list_map
from remediator.api.conditions import Condition
from remediator.api.durations import Duration, PositiveDuration
from remediator.api.errors import FieldRuleError
from remediator.api.http_steps import HttpCheck
from remediator.api.patterns import SECRET_KEY, DNSLabel, DNSSubdomain, Matches, SecretKey, SqlRole
from remediator.api.references import ConnectionSecretRef, SecretReference
from remediator.api.schedules import ScheduleExpression, TimeZone
from remediator.api.targets import Target
from remediator.api.timelines import TimelineEntry
from remediator.api.windows import MaintenanceWindow

KeySuffix = Annotated[str, Matches(SECRET_KEY, "a Secret key suffix", max_length=63)]

ROTATE_ANNOTATION = "remediator.dev/rotate"
"""On a KeyRotation: a new value asks for one rotation now, with that value as its id (an Incident's
rotateKey step writes it). Unlike spec.trigger it is metadata, so GitOps tools see no drift."""
EMERGENCY_ANNOTATION = "remediator.dev/rotate-emergency"
"""On a KeyRotation, written with ROTATE_ANNOTATION: "true" makes that rotation an emergency."""
MANAGED_SECRET_LABEL = "remediator.dev/key-rotation"
"""On a Secret a KeyRotation writes: the KeyRotation's name (tell Argo CD and Flux to ignore these)."""


class KeyRotationConditionType(StrEnum):
    """The condition types of a KeyRotation."""

    READY = "Ready"
    ROTATED = "Rotated"
    CONSUMERS_RESTARTED = "ConsumersRestarted"
    VERIFIED = "Verified"
    PREVIOUS_KEY_REVOKED = "PreviousKeyRevoked"
    FAILED = "Failed"


class RotationStage(StrEnum):
    """Where a rotation stands; status.rotation is its write-ahead log, so each stage is recorded first."""

    PENDING = "Pending"
    """New values are being made and kept in the staging Secret `<name>-pending`."""
    SET = "Set"
    """The database user's password is being set to the pending value and proven by a login."""
    PROMOTE = "Promote"
    """The live Secret is being written: new values, old ones under the previous-key suffix."""
    RESTART = "Restart"
    """The consumers are being restarted."""
    VERIFY = "Verify"
    """The verify checks are running."""
    GRACE = "Grace"
    """Verified; the old values stay available until previousKeyExpiresAt."""
    REVOKE = "Revoke"
    """The old values are being removed and the old database credential revoked."""
    DONE = "Done"
    """Rotated, verified and revoked."""
    ROLLING_BACK = "RollingBack"
    """Verification failed: the previous values are being put back."""
    ROLLED_BACK = "RolledBack"
    """The previous values are current again and verified."""
    FAILED = "Failed"
    """Stopped before changing anything (or the rollback failed): see the Failed condition."""


class RolloutMode(StrEnum):
    """How the consumers are restarted."""

    ALL = "all"
    """Every consumer at once (each through the restart step's rules), then verify."""
    STAGED = "staged"
    """One consumer, verify, then the rest, then verify again."""


class RoleStrategy(StrEnum):
    """How a database role's password is rotated."""

    ALTERNATING_USERS = "alternatingUsers"
    """Two login users (<role> and <role>_b) take turns, so the old password keeps working until revoked."""
    IN_PLACE = "inPlace"
    """One role, ALTER ROLE ... PASSWORD: the old password stops working at once."""


class KeyEncoding(StrEnum):
    """How random bytes become the stored text."""

    BASE64 = "base64"
    HEX = "hex"
    ALPHANUMERIC = "alphanumeric"


class KeyGenerator(SpecModel):
    """How a new key value is made."""

    type: Literal["random"] = "random"
    """random: from the operating system's cryptographic random source."""
    length: int = Field(default=32, ge=16, le=4096)
    """Random bytes (alphanumeric: characters) in a new value."""
    encoding: KeyEncoding = KeyEncoding.BASE64
    """base64, hex or alphanumeric."""


class SourceSecretKeyRef(SpecModel):
    """A key of another Secret whose value becomes the new value (a key issued elsewhere)."""

    name: DNSSubdomain
    """Name of the Secret."""
    key: SecretKey
    """Key within the Secret."""
    namespace: DNSLabel | None = None
    """Must be the KeyRotation's own namespace when set: a rotation never reads another namespace."""


class RotatedKey(SpecModel):
    """One key of the Secret that gets a new value."""

    key: SecretKey
    """The key within the Secret."""
    generator: KeyGenerator = Field(default_factory=KeyGenerator)
    """How the new value is made (ignored with fromSecretRef)."""
    from_secret_ref: SourceSecretKeyRef | None = None
    """Copy the new value from this Secret key instead of generating one."""


class DatabaseRole(SpecModel):
    """A PostgreSQL role whose password is set to a rotated key."""

    connection_secret_ref: ConnectionSecretRef
    """How to connect as a role allowed to ALTER ROLE."""
    role: SqlRole
    """The role whose password changes."""
    password_key: SecretKey
    """The rotated key (one of keys[].key) holding the new password."""
    username_key: SecretKey | None = None
    """A key of the Secret that gets the login user's name (alternatingUsers: it changes each rotation)."""
    strategy: RoleStrategy = RoleStrategy.ALTERNATING_USERS
    """alternatingUsers (default) or inPlace."""
    terminate_sessions_on_revoke: bool = False
    """At revocation, end the sessions still open under the old user (always done in an emergency)."""


class Consumers(SpecModel):
    """The workloads that read the Secret and are restarted after a rotation."""

    auto: bool = False
    """Find them: every Deployment, StatefulSet and DaemonSet in the namespace whose pod template
    references the Secret (env, envFrom, volumes, projected volumes)."""
    workloads: list[Target] = Field(default_factory=list)
    """These workloads (not with auto)."""

    @model_validator(mode="after")
    def _auto_or_list(self) -> Self:
        if self.auto and self.workloads:
            raise FieldRuleError("workloads", "must be empty when auto is true")
        return self


class KeyRotationSpec(SpecModel):
    """Keys of one Secret to rotate, who to restart, how to verify, and when."""

    secret_ref: SecretReference
    """The Secret holding the keys, in the same namespace."""
    keys: list[RotatedKey] = Field(min_length=1, json_schema_extra=list_map("key"))
    """The keys to rotate."""
    previous_key_suffix: KeySuffix = "_previous"
    """The old value of key K is kept under K+suffix during the grace period."""
    database_role: DatabaseRole | None = None
    """A database role whose password is one of the keys."""
    consumers: Consumers = Field(default_factory=Consumers)
    """Workloads restarted (rolling) after the Secret changed, so they read the new values."""
    rollout: RolloutMode = RolloutMode.ALL
    """all (default): restart every consumer, then verify; staged: one consumer and verify first."""
    max_consumers: int = Field(default=20, ge=1, le=1000)
    """More consumers than this stops the rotation before anything changes (TooManyConsumers)."""
    verify: list[HttpCheck] = Field(default_factory=list)
    """Checks that must pass after the restart; a failure puts the previous values back."""
    verify_timeout: PositiveDuration = "5m"
    """A verify check that has not passed successThreshold times in a row by then fails the rotation."""
    grace_period: Duration = "24h"
    """How long the old values stay available after a verified rotation."""
    emergency: bool = False
    """Every rotation is an emergency: the old values go after emergencyGracePeriod."""
    emergency_grace_period: Duration = "0s"
    """The grace period of an emergency rotation (a compromised key)."""
    schedule: ScheduleExpression | None = None
    """When to rotate: cron ("0 3 1 */3 *"), @monthly, or "@every 90d" from creation; unset: on demand only."""
    time_zone: TimeZone = "UTC"
    """The IANA time zone the schedule and maintenance windows are read in, e.g. Europe/Berlin."""
    maintenance_windows: list[MaintenanceWindow] = Field(default_factory=list)
    """A scheduled rotation waits until one of these is open (none: any time); triggers do not wait."""
    trigger: str | None = Field(default=None, min_length=1, max_length=253)
    """Changing this value rotates once, at once and outside maintenance windows (GitOps-driven rotation)."""
    suspend: bool = False
    """Skip scheduled rotations; trigger and Incident rotations still run."""

    @model_validator(mode="after")
    def _keys_do_not_collide(self) -> Self:
        names = [rotated.key for rotated in self.keys]
        for index, name in enumerate(names):
            if name in names[:index]:
                raise FieldRuleError(f"keys[{index}].key", f"duplicate key {name!r}")
            if name + self.previous_key_suffix in names:
                # The old value of one key would overwrite another key.
                raise FieldRuleError(
                    f"keys[{index}].key", f"{name!r} plus previousKeySuffix names another rotated key"
                )
        if self.database_role is not None and self.database_role.password_key not in names:
            raise FieldRuleError(
                "databaseRole.passwordKey", f"{self.database_role.password_key!r} is not one of keys[].key"
            )
        if self.database_role is not None and self.database_role.username_key in names:
            raise FieldRuleError("databaseRole.usernameKey", "must not be one of keys[].key (it names the user)")
        return self


class ConsumerRestart(StatusModel):
    """One consumer's restart in the current rotation."""

    kind: str
    """Deployment, StatefulSet or DaemonSet."""
    name: str
    """The workload's name."""
    state: str = "Pending"
    """Pending, Restarting (its restart time is recorded), Restarted (or shared another restart) or Skipped."""
    restarted_at: str | None = None
    """The restartedAt value written to its pod template (the recorded intent, re-issued on a retry)."""
    message: str | None = None
    """Why it was skipped or failed, or which rotation's restart it shared."""


class DatabaseRotation(StatusModel):
    """The database side of the current rotation: user names only, never a password."""

    new_user: str | None = None
    """The user whose password is set to the new value and that becomes current."""
    previous_user: str | None = None
    """The user that stays valid until revocation."""
    sessions_at_revoke: int | None = Field(default=None, ge=0)
    """Sessions open under the previous user when it was revoked."""
    sessions_terminated: int | None = Field(default=None, ge=0)
    """How many of them were terminated."""
    alternate_ready: bool = False
    """alternatingUsers: <role>_b exists with the role's membership and settings."""
    password_set: bool = False
    """The new user's password is the pending value, proven by a login (a rollback sets it back to False)."""


class Rotation(StatusModel):
    """The rotation in progress (or the last one): its write-ahead log."""

    id: str
    """<generation>-<tick, e.g. 20270101T030000Z> for a scheduled rotation, else the trigger value or the
    remediator.dev/rotate request that asked for it."""
    cause: str
    """schedule, trigger or request (an Incident step or the remediator.dev/rotate annotation); creating a
    KeyRotation rotates nothing."""
    emergency: bool = False
    """Whether the emergency grace period applies."""
    stage: RotationStage = RotationStage.PENDING
    """Where it stands."""
    started_at: AwareDatetime | None = None
    """When the id was recorded."""
    stage_times: dict[str, AwareDatetime] = Field(default_factory=dict)
    """When each stage was entered."""
    version: int = Field(default=0, ge=0)
    """The version the keys get (status.currentVersion + 1 when it started)."""
    secret_resource_version: str | None = None
    """The live Secret's resourceVersion the Promote write is conditional on."""
    consumers: list[ConsumerRestart] = Field(default_factory=list)
    """Each consumer's restart."""
    database: DatabaseRotation | None = None
    """The database users involved."""
    verify_passes: int = Field(default=0, ge=0)
    """Healthy answers in a row so far."""
    verify_check: int = Field(default=0, ge=0)
    """How many of the verify checks have passed (the next one runs)."""
    verify_probes: int = Field(default=0, ge=0)
    """Requests sent by the verify check that runs now."""
    last_probe_at: AwareDatetime | None = None
    """When the last verify request was sent."""
    rollback_stage: RotationStage | None = None
    """While rolling back: Promote (the previous values go back), Restart, Verify or Revoke (the failed
    values are removed)."""
    message: str | None = None
    """The last thing that happened, for humans."""


class KeyRotationStatus(StatusModel):
    """When keys were rotated and when the old values go; never a secret value."""

    phase: str | None = None
    """One-word summary of the conditions, for display."""
    conditions: list[Condition] = Field(default_factory=list, json_schema_extra=list_map("type"))
    """Ready, Rotated, ConsumersRestarted, Verified, PreviousKeyRevoked, Failed."""
    rotation: Rotation | None = None
    """The rotation in progress, or the last one."""
    current_version: int = Field(default=0, ge=0)
    """The version of the values now in the Secret (0: never rotated by remediator)."""
    current_database_user: str | None = None
    """The database login user whose password is the current value."""
    last_trigger: str | None = None
    """The spec.trigger value last acted on."""
    last_request: str | None = None
    """The remediator.dev/rotate annotation value last acted on."""
    last_schedule_time: AwareDatetime | None = None
    """The last schedule tick that was rotated for (missed ticks count once)."""
    last_rotation_time: AwareDatetime | None = None
    """When the keys last got new values."""
    next_rotation_time: AwareDatetime | None = None
    """When the schedule rotates next."""
    previous_key_expires_at: AwareDatetime | None = None
    """When the old values are removed from the Secret."""
    rotations: int = Field(default=0, ge=0)
    """How many rotations have completed."""
    timeline: list[TimelineEntry] = Field(default_factory=list)
    """What happened, oldest first; the oldest entries are folded away when it grows long."""
    timeline_folded: int = Field(default=0, ge=0)
    """How many of the oldest timeline entries were folded away."""
    observed_generation: int | None = Field(default=None, ge=0)
    """The metadata.generation this status was computed for."""
    lease_epoch: int | None = Field(default=None, ge=0)
    """With --leader-elect: the Lease's leaseTransitions when the replica that last wrote this status took it;
    a replica holding an older epoch never records or carries out an intent here."""
    lease_name: str | None = None
    """With --leader-elect: the Lease whose leaseTransitions leaseEpoch counts (each shard has its own Lease);
    epochs of different Leases are never compared."""
