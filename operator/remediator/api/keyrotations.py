"""The KeyRotation kind: rotate keys held in a Secret, on a schedule or on demand.

Status never holds a secret value: only times and counts.
"""

from enum import StrEnum
from typing import Annotated, Literal, Self

from pydantic import AwareDatetime, Field, model_validator

from remediator.api.bases import SpecModel, StatusModel, list_map
from remediator.api.conditions import Condition
from remediator.api.durations import Duration
from remediator.api.errors import FieldRuleError
from remediator.api.http_steps import HttpCheck
from remediator.api.patterns import SECRET_KEY, Matches, SecretKey, SqlRole
from remediator.api.references import ConnectionSecretRef, SecretReference
from remediator.api.targets import Target
from remediator.api.timelines import TimelineEntry

# Five cron fields (minute hour day-of-month month day-of-week) or a @ shorthand.
CRON = (
    r"^(@(yearly|annually|monthly|weekly|daily|midnight|hourly)"
    r"|([-0-9A-Za-z*?,/]+[ \t]+){4}[-0-9A-Za-z*?,/]+)$"
)
CronSchedule = Annotated[
    str, Matches(CRON, "a cron schedule such as '0 3 1 * *' or @monthly", max_length=128)
]
KeySuffix = Annotated[str, Matches(SECRET_KEY, "a Secret key suffix", max_length=63)]


class KeyRotationConditionType(StrEnum):
    """The condition types of a KeyRotation."""

    READY = "Ready"
    ROTATED = "Rotated"
    VERIFIED = "Verified"
    PREVIOUS_KEY_REVOKED = "PreviousKeyRevoked"
    FAILED = "Failed"


class KeyEncoding(StrEnum):
    """How random bytes become the stored text."""

    BASE64 = "base64"
    HEX = "hex"
    ALPHANUMERIC = "alphanumeric"


class KeyGenerator(SpecModel):
    """How a new key value is made."""

    type: Literal["random"] = "random"
    """random: from the operating system's cryptographic random source."""
    length: int = Field(default=32, ge=16, le=256)
    """Random bytes (alphanumeric: characters) in a new value."""
    encoding: KeyEncoding = KeyEncoding.BASE64
    """base64, hex or alphanumeric."""


class RotatedKey(SpecModel):
    """One key of the Secret that gets a new value."""

    key: SecretKey
    """The key within the Secret."""
    generator: KeyGenerator = Field(default_factory=KeyGenerator)
    """How the new value is made."""


class DatabaseRole(SpecModel):
    """A PostgreSQL role whose password is set to a rotated key."""

    connection_secret_ref: ConnectionSecretRef
    """How to connect as a role allowed to ALTER ROLE."""
    role: SqlRole
    """The role whose password changes."""
    password_key: SecretKey
    """The rotated key (one of keys[].key) holding the new password."""


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
    restart_targets: list[Target] = Field(default_factory=list)
    """Workloads restarted (rolling) after the Secret changed, so they read the new values."""
    verify: list[HttpCheck] = Field(default_factory=list)
    """Checks that must pass after the restart; the old values are kept until they do."""
    grace_period: Duration = "24h"
    """How long the old values stay available after a verified rotation."""
    schedule: CronSchedule | None = None
    """When to rotate (cron, UTC); only on demand when unset."""
    suspend: bool = False
    """Skip scheduled rotations; on-demand rotations still run."""

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
        return self


class KeyRotationStatus(StatusModel):
    """When keys were rotated and when the old values go; never a secret value."""

    phase: str | None = None
    """One-word summary of the conditions, for display."""
    conditions: list[Condition] = Field(default_factory=list, json_schema_extra=list_map("type"))
    """Ready, Rotated, Verified, PreviousKeyRevoked, Failed."""
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
