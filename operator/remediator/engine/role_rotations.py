"""Rotating a PostgreSQL role's password, without a database: who gets the new password, who is
current afterwards, who is revoked, and which roles must never be touched.

The KeyRotation controller records the current login user in its status (None before the first
rotation) and asks `plan` what to do; `actions/database_roles.py` observes the roles (`RoleFacts`),
asks `refusal` whether they may be changed, and carries the plan out.

- alternatingUsers (the default): two login users, `<role>` and `<role>_b` (a member of `<role>`
  with the same settings). Each rotation sets the password of the one that is not current and
  promotes it; the other keeps working until revocation sets its password to NULL.
- inPlace: the role's own password changes; the old password stops working at once, so the grace
  period only keeps the old value in the Secret.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable

from remediator.api.keyrotations import RoleStrategy

# PostgreSQL truncates identifiers to NAMEDATALEN - 1 bytes: a longer `<role>_b` would silently be another name.
IDENTIFIER_LIMIT_BYTES = 63
ALTERNATE_SUFFIX = "_b"


@dataclasses.dataclass(frozen=True)
class RolePlan:
    """What one rotation of `role` does, user by user."""

    strategy: RoleStrategy
    role: str
    alternate: str | None  # `<role>_b`, ensured before its password is set (alternatingUsers only)
    set_password_of: str  # gets the new password (Set)
    current_after: str  # the login user the Secret names after Promote
    revoke_at_revocation: str | None  # its password becomes NULL at Revoke (None: nothing to revoke)
    current_on_rollback: str  # the login user that is current again when verification fails
    revoke_on_rollback: str | None  # its new password is discarded (set to NULL) on rollback
    # inPlace: the old password must be set again on rollback, since the same user got the new one.
    restore_password_on_rollback: bool


@dataclasses.dataclass(frozen=True)
class Refusal:
    """Why a role may not be rotated: a CamelCase reason and a message naming the role (never a password)."""

    reason: str
    message: str


def alternate_user(role: str) -> str:
    """The second login user of alternatingUsers: `<role>_b`."""
    return role + ALTERNATE_SUFFIX


def plan(strategy: RoleStrategy, role: str, current: str | None) -> RolePlan | Refusal:
    """The users one rotation touches, given the login user that is current now (None: never rotated).

    Refused with RoleNameTooLong when `<role>_b` does not fit PostgreSQL's 63-byte identifiers
    (alternatingUsers), and UnknownCurrentUser when `current` is neither `<role>` nor `<role>_b`.
    """
    alternate = alternate_user(role)
    if strategy == RoleStrategy.ALTERNATING_USERS and len(alternate.encode()) > IDENTIFIER_LIMIT_BYTES:
        return Refusal("RoleNameTooLong", f"role {role}: the alternate user {alternate} would be longer than "
                                          f"PostgreSQL's {IDENTIFIER_LIMIT_BYTES}-byte identifier limit; "
                                          "use strategy inPlace or a shorter role name")
    if current not in (None, role, alternate):
        return Refusal("UnknownCurrentUser", f"role {role}: the recorded current user {current} is neither "
                                             f"{role} nor {alternate}")
    live = current or role  # before the first rotation the role itself is the login user
    if strategy == RoleStrategy.ALTERNATING_USERS:
        target = alternate if live == role else role
    else:
        target = role
    return RolePlan(
        strategy=strategy,
        role=role,
        alternate=alternate if strategy == RoleStrategy.ALTERNATING_USERS else None,
        set_password_of=target,
        current_after=target,
        # inPlace after alternatingUsers: the alternate is still live and is revoked like an old user.
        revoke_at_revocation=live if live != target else None,
        current_on_rollback=live,
        revoke_on_rollback=target if target != live else None,
        restore_password_on_rollback=target == live,
    )


@dataclasses.dataclass(frozen=True)
class LoginUser:
    """What the database says about one user (pg_roles), as seen from the operator's connection."""

    name: str
    exists: bool
    superuser: bool = False
    owns_database: bool = False  # owner of the connection's database
    is_operator: bool = False  # session_user of the operator's own connection
    settings: tuple[str, ...] = ()  # rolconfig: "name=value" entries
    member_of_role: bool = False  # granted the rotated role (for `<role>_b`)


@dataclasses.dataclass(frozen=True)
class RoleFacts:
    """The rotated role and its alternate user `<role>_b` (which may not exist)."""

    role: LoginUser
    alternate: LoginUser
    database: str


# Each user a rotation changes is checked against every rule, in this order.
UserRule = tuple[Callable[[LoginUser], bool], str, str]
USER_RULES: tuple[UserRule, ...] = (
    (lambda user: user.superuser, "SuperuserRole",
     "{name} is a superuser: its password is not rotated (a rotation must never be able to lock out "
     "or take over the server)"),
    (lambda user: user.owns_database, "DatabaseOwnerRole",
     "{name} owns the database {database}: its password is not rotated"),
    (lambda user: user.is_operator, "OperatorRole",
     "{name} is the role the operator connects as: rotating it would cut the operator off"),
)


def users_changed(facts: RoleFacts, strategy: RoleStrategy) -> list[LoginUser]:
    """The existing users a rotation of this role may change: the role, and `<role>_b` where it belongs to it."""
    users = [facts.role]
    alternate = facts.alternate
    if alternate.exists and (strategy == RoleStrategy.ALTERNATING_USERS or alternate.member_of_role):
        users.append(alternate)
    return users


def refusal(facts: RoleFacts, strategy: RoleStrategy) -> Refusal | None:
    """Why this role must not be rotated, or None when it may be.

    RoleNotFound: the role does not exist. SuperuserRole, DatabaseOwnerRole, OperatorRole: the role
    (or its alternate user) is one of those. AlternateUserConflict (alternatingUsers): a `<role>_b`
    exists that is not a member of the role, so it is someone else's and is left alone.
    """
    if not facts.role.exists:
        return Refusal("RoleNotFound", f"role {facts.role.name} does not exist")
    for user in users_changed(facts, strategy):
        for applies, reason, message in USER_RULES:
            if applies(user):
                return Refusal(reason, message.format(name=user.name, database=facts.database))
    alternate = facts.alternate
    if strategy == RoleStrategy.ALTERNATING_USERS and alternate.exists and not alternate.member_of_role:
        return Refusal("AlternateUserConflict", f"{alternate.name} exists but is not a member of "
                                                f"{facts.role.name}: it is not the rotation's alternate user")
    return None


# Settings whose values are lists of quoted names (pg_dump's variable_is_guc_list_quote): rolconfig
# holds them flattened ('"$user", public'), and each element must be given back as its own literal.
LIST_SETTINGS = frozenset({"local_preload_libraries", "search_path", "session_preload_libraries",
                           "shared_preload_libraries", "temp_tablespaces", "unix_socket_directories"})


@dataclasses.dataclass(frozen=True)
class Setting:
    """One rolconfig entry, ready for `ALTER ROLE … SET name TO value, …`."""

    name: str
    values: tuple[str, ...]


def parse_setting(entry: str) -> Setting:
    """A rolconfig entry ("name=value") as a Setting; list settings split into their elements."""
    name, _, value = entry.partition("=")
    if name.lower() in LIST_SETTINGS:
        return Setting(name, tuple(split_list(value)))
    return Setting(name, (value,))


def split_list(value: str) -> list[str]:
    """The elements of a flattened list setting: comma-separated, each optionally double-quoted ("" is a quote)."""
    elements: list[str] = []
    index = 0
    while index < len(value):
        while index < len(value) and value[index] in " \t":
            index += 1
        if index < len(value) and value[index] == '"':
            element, index = _quoted(value, index + 1)
        else:
            end = value.find(",", index)
            end = len(value) if end < 0 else end
            element, index = value[index:end].strip(), end
        elements.append(element)
        while index < len(value) and value[index] in " \t":
            index += 1
        index += 1  # the comma (or past the end)
    return elements


def _quoted(value: str, index: int) -> tuple[str, int]:
    element: list[str] = []
    while index < len(value):
        if value[index] == '"':
            if value[index + 1:index + 2] == '"':
                element.append('"')
                index += 2
                continue
            return "".join(element), index + 1
        element.append(value[index])
        index += 1
    return "".join(element), index


def settings_changes(role: LoginUser, alternate: LoginUser) -> tuple[list[Setting], list[str]]:
    """What makes the alternate user's settings the role's (plus `role = <role>`): entries to set, and
    names to reset.

    Only differences: a repeat after a crash sets nothing that is already right.
    """
    wanted = {parse_setting(entry).name: entry for entry in role.settings}
    # Sessions of the alternate user act as the role (SET ROLE at login): what they create is the role's,
    # and current_user checks (row-level security, ownership) see the same role whichever user logged in.
    wanted.setdefault("role", f"role={role.name}")
    present = {parse_setting(entry).name: entry for entry in alternate.settings}
    to_set = [parse_setting(entry) for name, entry in wanted.items() if present.get(name) != entry]
    to_reset = [name for name in present if name not in wanted]
    return to_set, to_reset
