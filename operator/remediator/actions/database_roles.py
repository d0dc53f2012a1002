"""PostgreSQL role passwords for the KeyRotation controller (psycopg's async API).

Each action opens its own session on the operator's connection (`database.Connection`), reads the
roles first (`observe`), refuses what `engine.role_rotations.refusal` refuses, acts, and returns an
`intents.Result`: done(value) for the timeline, or failed(reason, message). Every action may be
repeated after a crash at any line and ends in the same state.

A password never travels as plaintext in SQL: libpq computes the SCRAM-SHA-256 verifier on the
client (PQencryptPasswordConn) and only the verifier is sent, so no server log, pg_stat_activity or
pg_stat_statements can hold the password. No message holds a password or a connection string.

What the operator's connection role needs (it must not be a superuser, nor the rotated role):
CREATEROLE and ADMIN OPTION on the rotated role (PostgreSQL 16+: `GRANT orders TO remediator WITH
ADMIN TRUE, INHERIT FALSE, SET FALSE`; `<role>_b` it creates itself), pg_read_all_stats to tell the
revoked user's sessions apart, and pg_signal_backend to terminate them.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import Any

import psycopg
import psycopg.conninfo
import psycopg.errors
from psycopg import sql
from psycopg.rows import dict_row

from remediator import faults
from remediator.actions import database
from remediator.api.keyrotations import RoleStrategy
from remediator.engine import intents, role_rotations
from remediator.engine.role_rotations import LoginUser, RoleFacts

# ALTER ROLE waits for a lock on the catalogue; a stuck one must fail the action, not hang the operator.
SESSION_OPTIONS = "-c statement_timeout=30000 -c lock_timeout=10000"
SCRAM = b"scram-sha-256"

logger = logging.getLogger(__name__)

ROLES = """
    SELECT r.rolname, r.rolsuper, coalesce(r.rolconfig, '{}') AS settings,
           EXISTS (SELECT 1 FROM pg_database d WHERE d.datname = current_database() AND d.datdba = r.oid)
               AS owns_database,
           r.rolname = session_user AS is_operator,
           EXISTS (SELECT 1 FROM pg_auth_members m JOIN pg_roles g ON g.oid = m.roleid
                   WHERE m.member = r.oid AND g.rolname = %(role)s) AS member_of_role
    FROM pg_roles r WHERE r.rolname IN (%(role)s, %(alternate)s)
"""
# Client sessions of one user, in any database: a role logs in cluster-wide. Without pg_read_all_stats
# (or ADMIN on the user) the operator sees only pid and usename of them: backend_type and backend_start are NULL.
SESSIONS_OF = """
    SELECT pid, backend_start FROM pg_stat_activity
    WHERE usename = %s AND coalesce(backend_type, 'client backend') = 'client backend' AND pid <> pg_backend_pid()
"""

# Which database errors become which failure, most specific first.
FAILURES: tuple[tuple[type[psycopg.Error], str, str], ...] = (
    (psycopg.errors.QueryCanceled, "Timeout", "statement_timeout reached"),
    (psycopg.errors.LockNotAvailable, "Timeout", "lock_timeout reached"),
    (psycopg.errors.InsufficientPrivilege, "PermissionDenied", "permission denied"),
    (psycopg.OperationalError, "ConnectionFailed", "the connection broke"),
    (psycopg.Error, "DatabaseError", "the database refused"),
)

Session = psycopg.AsyncConnection[dict[str, Any]]


async def observe(connection: database.Connection, role: str) -> intents.Result:
    """done(RoleFacts): the role and its alternate user `<role>_b`, as the operator's connection sees them."""

    async def read(session: Session) -> intents.Result:
        return intents.done(await _facts(session, role))

    return await _in_session(connection, read)


async def ensure_alternate(connection: database.Connection, role: str) -> intents.Result:
    """Make `<role>_b`: a login user, member of the role (inheriting its privileges), with the role's
    settings (rolconfig); done({user, created, settingsSet, settingsReset}).

    In one transaction, and each part only where the world differs: after a crash anywhere, a
    repeat finishes the job. Refused (nothing changed) as `role_rotations.refusal` says.
    """
    alternate = role_rotations.alternate_user(role)

    async def ensure(session: Session) -> intents.Result:
        async with session.transaction():
            facts = await _facts(session, role)
            refused = role_rotations.refusal(facts, RoleStrategy.ALTERNATING_USERS)
            if refused is not None:
                return intents.failed(refused.reason, refused.message)
            created = not facts.alternate.exists
            if created:
                await session.execute(sql.SQL("CREATE ROLE {} LOGIN INHERIT IN ROLE {}").format(
                    sql.Identifier(alternate), sql.Identifier(role)))
            faults.crash_point("role-rotation-alternate-created")
            to_set, to_reset = role_rotations.settings_changes(facts.role, facts.alternate)
            for setting in to_set:
                await session.execute(sql.SQL("ALTER ROLE {} SET {} TO {}").format(
                    sql.Identifier(alternate), sql.Identifier(*setting.name.split(".")),
                    sql.SQL(", ").join(sql.Literal(value) for value in setting.values)))
            for name in to_reset:
                await session.execute(sql.SQL("ALTER ROLE {} RESET {}").format(
                    sql.Identifier(alternate), sql.Identifier(*name.split("."))))
        logger.info(f"alternate user {alternate} of {role}: created={created}, {len(to_set)} setting(s) set, "
                    f"{len(to_reset)} reset")
        return intents.done({"user": alternate, "created": created,
                             "settingsSet": [s.name for s in to_set], "settingsReset": to_reset})

    return await _in_session(connection, ensure)


async def set_password(connection: database.Connection, role: str, user: str, password: str,
                       strategy: RoleStrategy) -> intents.Result:
    """Set `user`'s password (`user` is the role or `<role>_b`); done({user}).

    Only the SCRAM-SHA-256 verifier computed here is sent. Setting the same password again is harmless.
    Fails with UserNotFound when the user does not exist (ensure the alternate first), or as refused.
    """

    async def apply(session: Session) -> intents.Result:
        checked = await _user_to_change(session, role, user, strategy)
        if isinstance(checked, intents.Result):
            return checked
        if not checked.exists:
            return intents.failed("UserNotFound", f"{user} does not exist: the alternate user is made first")
        verifier = session.pgconn.encrypt_password(password.encode(), user.encode(), SCRAM)
        await session.execute(sql.SQL("ALTER ROLE {} PASSWORD {}").format(
            sql.Identifier(user), sql.Literal(verifier.decode())))
        logger.info(f"password of {user} set (SCRAM-SHA-256 verifier)")
        return intents.done({"user": user})

    return await _in_session(connection, apply)


async def prove_login(connection: database.Connection, user: str, password: str) -> intents.Result:
    """Log in as `user` with `password` where the operator's connection goes (same host and database),
    run SELECT 1, and close; done({user}), or failed(AuthenticationFailed | ConnectionFailed)
    with a message that holds neither the password nor the connection string."""
    login = database.Connection(psycopg.conninfo.make_conninfo(connection.conninfo, user=user, password=password))
    try:
        async with await psycopg.AsyncConnection.connect(
                login.conninfo, autocommit=True, application_name=database.APPLICATION_NAME,
                connect_timeout=database.CONNECT_TIMEOUT_SECONDS) as session:
            await session.execute("SELECT 1")
    except psycopg.OperationalError as e:
        return database.connect_failure(login, e)
    except psycopg.Error as e:
        return database.failure(login, "DatabaseError", "the database refused", e)
    return intents.done({"user": user})


async def revoke(connection: database.Connection, role: str, user: str, strategy: RoleStrategy, *,
                 terminate_sessions: bool) -> intents.Result:
    """Refuse new logins as `user` (its password becomes NULL) and count the sessions still open
    under it; terminate them only with `terminate_sessions` (terminateSessionsOnRevoke, or an
    emergency). done({user, openSessions, terminatedSessions}).

    Repeating it changes nothing more (the password is already NULL; sessions are counted again).
    """

    async def apply(session: Session) -> intents.Result:
        checked = await _user_to_change(session, role, user, strategy)
        if isinstance(checked, intents.Result):
            return checked
        if not checked.exists:  # no such user, so no login with it either
            return intents.done({"user": user, "openSessions": 0, "terminatedSessions": 0})
        await session.execute(sql.SQL("ALTER ROLE {} PASSWORD NULL").format(sql.Identifier(user)))
        faults.crash_point("role-rotation-password-revoked")
        open_sessions = await (await session.execute(SESSIONS_OF, (user,))).fetchall()
        terminated = 0
        if terminate_sessions and any(row["backend_start"] is None for row in open_sessions):
            return intents.failed("PermissionDenied", f"{user}'s password is revoked but its {len(open_sessions)} "
                                  "open session(s) cannot be told apart: grant pg_read_all_stats to the "
                                  "operator's role to terminate them")
        if terminate_sessions and open_sessions:
            # Signal only the very sessions counted: a pid reused by a new session has another backend_start.
            rows = await (await session.execute(
                sql.SQL(database.SIGNAL).format(function=sql.Identifier("pg_terminate_backend")),
                ([row["pid"] for row in open_sessions], [row["backend_start"] for row in open_sessions]),
            )).fetchall()
            terminated = sum(1 for row in rows if row["signalled"])
        logger.info(f"password of {user} revoked: {len(open_sessions)} session(s) open, {terminated} terminated")
        return intents.done({"user": user, "openSessions": len(open_sessions), "terminatedSessions": terminated})

    return await _in_session(connection, apply)


async def _in_session(connection: database.Connection,
                      act: Callable[[Session], Awaitable[intents.Result]]) -> intents.Result:
    """Run `act(session)` in a session of its own; database errors become failed(reason, message)."""
    try:
        session: Session = await psycopg.AsyncConnection.connect(
            connection.conninfo, autocommit=True, row_factory=dict_row, application_name=database.APPLICATION_NAME,
            options=SESSION_OPTIONS, connect_timeout=database.CONNECT_TIMEOUT_SECONDS)
    except psycopg.OperationalError as e:
        return database.connect_failure(connection, e)
    try:
        async with session:
            return await act(session)
    except psycopg.Error as e:
        reason, summary = next((reason, summary) for kind, reason, summary in FAILURES if isinstance(e, kind))
        return database.failure(connection, reason, summary, e)


async def _facts(session: Session, role: str) -> RoleFacts:
    alternate = role_rotations.alternate_user(role)
    rows = await (await session.execute(ROLES, {"role": role, "alternate": alternate})).fetchall()
    found = {row["rolname"]: LoginUser(
        name=row["rolname"], exists=True, superuser=row["rolsuper"], owns_database=row["owns_database"],
        is_operator=row["is_operator"], settings=tuple(row["settings"]), member_of_role=row["member_of_role"],
    ) for row in rows}
    database_name = session.info.dbname
    return RoleFacts(role=found.get(role, LoginUser(role, exists=False)),
                     alternate=found.get(alternate, LoginUser(alternate, exists=False)), database=database_name)


async def _user_to_change(session: Session, role: str, user: str, strategy: RoleStrategy) -> LoginUser | intents.Result:
    """The user, if it is one of the role's login users and the rotation is not refused; else failed(...)."""
    facts = await _facts(session, role)
    users = {facts.role.name: facts.role, facts.alternate.name: facts.alternate}
    if user not in users:
        return intents.failed("UnknownUser", f"{user} is neither {role} nor {facts.alternate.name}")
    refused = role_rotations.refusal(facts, strategy)
    if refused is not None:
        return intents.failed(refused.reason, refused.message)
    return users[user]
