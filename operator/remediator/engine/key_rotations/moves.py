"""What the KeyRotation controller asks the I/O layer for: reads, and actions that carry absolute values.

Every action names the rotation it belongs to, and the Secret it writes records that id, so an
action repeated after a crash finds its own mark and changes nothing more. No intent carries a
key's value: values are made and moved by the I/O layer, from Secret to Secret.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping

from remediator.api.keyrotations import KeyEncoding, RoleStrategy
from remediator.engine import intents

# On the live Secret (and the staging Secret): which rotation wrote it, when, and the version of its keys.
ROTATION_ID_ANNOTATION = "remediator.dev/rotation-id"
ROTATED_AT_ANNOTATION = "remediator.dev/rotated-at"
KEY_VERSION_ANNOTATION = "remediator.dev/key-version"
ROLLED_BACK_ANNOTATION = "remediator.dev/rolled-back"


@dataclasses.dataclass(frozen=True)
class SecretSeen:
    """A Secret as read: its version, key names and annotations (never its values)."""

    name: str
    resource_version: str
    keys: frozenset[str]
    annotations: tuple[tuple[str, str], ...] = ()
    type: str = "Opaque"
    immutable: bool = False

    def annotation(self, name: str) -> str | None:
        return dict(self.annotations).get(name)


@dataclasses.dataclass(frozen=True)
class ReadSecrets:
    """Read these Secrets of the namespace: the value maps each name to a SecretSeen, or None when missing."""

    names: tuple[str, ...]


@dataclasses.dataclass(frozen=True)
class ListKeyRotations:
    """List the namespace's KeyRotations: [{name, uid, createdAt, spec}], to find two managing one key."""


@dataclasses.dataclass(frozen=True)
class ListWorkloads:
    """List the namespace's Deployments, StatefulSets and DaemonSets as plain dicts (API field names)."""


@dataclasses.dataclass(frozen=True)
class NewValue:
    """How one key's new value is made: random (length, encoding), or copied from a Secret key."""

    key: str
    length: int = 32
    encoding: KeyEncoding = KeyEncoding.BASE64
    source: tuple[str, str] | None = None  # (secret, key)


@dataclasses.dataclass(frozen=True)
class StageValues:
    """Make sure the staging Secret holds new values for this rotation: created (owned by the KeyRotation)
    unless it already carries the rotation id, in which case its values are kept, never made twice."""

    rotation_id: str
    version: int
    staging: str
    values: tuple[NewValue, ...]
    owner: intents.Owner


@dataclasses.dataclass(frozen=True)
class PromoteSecret:
    """One update of the live Secret, conditional on `resource_version`: each key gets the staged value and
    key+suffix the old one; annotations record the rotation id, time and version; the managed label.

    Already done when the Secret carries the rotation id."""

    rotation_id: str
    version: int
    secret: str
    staging: str
    keys: tuple[str, ...]
    suffix: str
    rotated_at: str
    resource_version: str
    managed_by: str
    username: tuple[str, str] | None = None  # (usernameKey, the login user that becomes current)


@dataclasses.dataclass(frozen=True)
class RestoreSecret:
    """The rollback's one conditional write: each key gets its previous value back, and key+suffix keeps the
    failed new value until the consumers are restarted again; the key version goes back to version - 1.
    Refused unless the Secret holds this rotation's promotion; already done when marked rolled back."""

    rotation_id: str
    version: int
    secret: str
    keys: tuple[str, ...]
    suffix: str
    username: tuple[str, str] | None = None  # (usernameKey, the login user that is current again)


@dataclasses.dataclass(frozen=True)
class RevokePrevious:
    """Remove key+suffix from the live Secret (a conditional write) and delete the staging Secret."""

    rotation_id: str
    version: int
    secret: str
    staging: str
    keys: tuple[str, ...]
    suffix: str
    extra_keys: tuple[str, ...] = ()  # the usernameKey: its previous user name goes too


@dataclasses.dataclass(frozen=True)
class Database:
    """Where the role lives: the Secret that says how to connect (its key, or None: one key per parameter)."""

    secret: str
    key: str | None


@dataclasses.dataclass(frozen=True)
class ObserveRole:
    """Read the role and its alternate user <role>_b: the value is an engine.role_rotations.RoleFacts."""

    database: Database
    role: str


@dataclasses.dataclass(frozen=True)
class EnsureAlternateUser:
    """alternatingUsers: make <role>_b (a login member of the role, with its settings) unless it is there."""

    database: Database
    role: str


@dataclasses.dataclass(frozen=True)
class SetRolePassword:
    """Set `user`'s password to the value of `secret`[`key`] and prove it by a login. With `mark` (rotation
    id, version), the Secret must carry it (the staging Secret of this rotation)."""

    database: Database
    role: str
    user: str
    strategy: RoleStrategy
    secret: str
    key: str
    mark: tuple[str, int] | None = None


@dataclasses.dataclass(frozen=True)
class RevokeRoleUser:
    """New logins as `user` are refused (password NULL); its open sessions are counted, and terminated when
    asked. The value is {user, openSessions, terminatedSessions}."""

    database: Database
    role: str
    user: str
    strategy: RoleStrategy
    terminate_sessions: bool


Observation = ReadSecrets | ListKeyRotations | ListWorkloads | ObserveRole | intents.ProbeHttp
Action = (StageValues | PromoteSecret | RestoreSecret | RevokePrevious | EnsureAlternateUser | SetRolePassword
          | RevokeRoleUser | intents.RolloutRestart)
Intent = Observation | Action
OBSERVATIONS = (ReadSecrets, ListKeyRotations, ListWorkloads, ObserveRole, intents.ProbeHttp)


def is_observation(intent: Intent) -> bool:
    return isinstance(intent, OBSERVATIONS)


Results = Mapping[Intent, intents.Result]
