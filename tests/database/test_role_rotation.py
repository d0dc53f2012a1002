"""Rotating a PostgreSQL role's password on the embedded server: the old login keeps working until
revocation, the new one works, refused roles are left alone, a crash is finished by a retry, and no
password ever reaches the server (statement log, pg_stat_activity, pg_stat_statements).

The roles here (all named rot_…) must prove their password: the module puts a scram-sha-256 line
for them at the top of pg_hba.conf (trust stays for everyone else). The operator connects as
`rot_operator`: CREATEROLE, pg_signal_backend, and ADMIN on each role it rotates, never a superuser.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
from collections.abc import AsyncIterator, Iterator
from typing import Any

import psycopg
import pytest
from tests.database.conftest import Server, wait_until

from remediator import faults
from remediator.actions import database, database_roles
from remediator.api.keyrotations import RoleStrategy
from remediator.engine import intents, role_rotations
from remediator.engine.role_rotations import RolePlan

pytestmark = pytest.mark.timeout(60)

DATABASE = "rotations"
OPERATOR = "rot_operator"
OPERATOR_PASSWORD = "op-Zq81-never-logged"
OWNER = "rot_owner"
OLD = "old-Hx4t-password"
NEW = "new-Pw9v-password"
ALTERNATING = RoleStrategy.ALTERNATING_USERS
HBA_LINE = "local all /^rot_ scram-sha-256\n"


@pytest.fixture(scope="module")
def rotation_server(postgres: Server) -> Iterator[Server]:
    hba = postgres.pgdata / "pg_hba.conf"
    text = hba.read_text()
    if HBA_LINE not in text:
        hba.write_text(HBA_LINE + text)
    with psycopg.connect(postgres.uri, autocommit=True) as admin:
        admin.execute("SELECT pg_reload_conf()")
        if not admin.execute("SELECT 1 FROM pg_roles WHERE rolname = %s", (OPERATOR,)).fetchone():
            admin.execute(f"CREATE ROLE {OPERATOR} LOGIN CREATEROLE PASSWORD '{OPERATOR_PASSWORD}'")
            admin.execute(f"GRANT pg_signal_backend, pg_read_all_stats TO {OPERATOR}")
            # Every statement the operator sends lands in the server log, where the tests search it.
            admin.execute(f"ALTER ROLE {OPERATOR} SET log_statement = 'all'")
            admin.execute(f"CREATE ROLE {OWNER} LOGIN PASSWORD '{OLD}'")
            admin.execute(f"GRANT {OWNER} TO {OPERATOR} WITH ADMIN TRUE, INHERIT FALSE, SET FALSE")
            admin.execute(f"CREATE DATABASE {DATABASE} OWNER {OWNER}")
    yield postgres


def operator(server: Server) -> database.Connection:
    return database.Connection(server.conninfo(OPERATOR, password=OPERATOR_PASSWORD, dbname=DATABASE))


@contextlib.contextmanager
def superuser(server: Server) -> Iterator[psycopg.Connection[Any]]:
    with psycopg.connect(server.conninfo(dbname=DATABASE), autocommit=True) as connection:
        yield connection


def log_in(server: Server, user: str, password: str) -> psycopg.Connection[Any]:
    return psycopg.connect(server.conninfo(user, password=password, dbname=DATABASE), autocommit=True)


def can_log_in(server: Server, user: str, password: str) -> bool:
    try:
        with log_in(server, user, password) as connection:
            connection.execute("SELECT 1")
    except psycopg.OperationalError:
        return False
    return True


def works(connection: psycopg.Connection[Any]) -> bool:
    try:
        return connection.execute("SELECT 1").fetchone() == (1,)
    except psycopg.OperationalError:
        return False


class Roles:
    """Login roles a test rotates (rot_<name>, with password OLD), dropped with their rot_<name>_b afterwards."""

    numbers = itertools.count()

    def __init__(self, server: Server) -> None:
        self.server = server
        self.made: list[str] = []

    def make(self, name: str, *attributes: str, settings: dict[str, str] | None = None) -> str:
        role = f"rot_{name}_{next(self.numbers)}"
        with superuser(self.server) as admin:
            admin.execute(f"CREATE ROLE {role} LOGIN {' '.join(attributes)} PASSWORD '{OLD}'")
            admin.execute(f"GRANT {role} TO {OPERATOR} WITH ADMIN TRUE, INHERIT FALSE, SET FALSE")
            for setting, value in (settings or {}).items():
                admin.execute(f"ALTER ROLE {role} SET {setting} = '{value}'")
        self.made.append(role)
        return role

    def drop(self) -> None:
        with superuser(self.server) as admin:
            for role in self.made:
                for user in (role + "_b", role):
                    if admin.execute("SELECT 1 FROM pg_roles WHERE rolname = %s", (user,)).fetchone():
                        admin.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE usename = %s",
                                      (user,))
                        admin.execute(f"DROP OWNED BY {user}")
                        admin.execute(f"DROP ROLE {user}")


@pytest.fixture()
def roles(rotation_server: Server) -> Iterator[Roles]:
    made = Roles(rotation_server)
    try:
        yield made
    finally:
        made.drop()


def planned(role: str, current: str | None = None, strategy: RoleStrategy = ALTERNATING) -> RolePlan:
    plan = role_rotations.plan(strategy, role, current)
    assert isinstance(plan, RolePlan)
    return plan


def succeeded(result: intents.Result) -> Any:
    assert result.succeeded, (result.reason, result.message)
    return result.value


async def rotate(server: Server, plan: RolePlan, password: str) -> None:
    """Set and prove, as the controller does before Promote."""
    connection = operator(server)
    if plan.alternate is not None:
        succeeded(await database_roles.ensure_alternate(connection, plan.role))
    succeeded(await database_roles.set_password(connection, plan.role, plan.set_password_of, password, plan.strategy))
    succeeded(await database_roles.prove_login(connection, plan.set_password_of, password))


async def test_the_old_login_keeps_working_through_the_grace_period_and_new_logins_with_it_are_refused_after(
        rotation_server: Server, roles: Roles) -> None:
    role = roles.make("orders")
    plan = planned(role)
    with log_in(rotation_server, role, OLD) as client:
        await rotate(rotation_server, plan, NEW)
        assert can_log_in(rotation_server, role + "_b", NEW), "the new password works"
        assert works(client), "the client connected with the old password keeps working"
        assert can_log_in(rotation_server, role, OLD), "new logins with the old password work until revocation"
        assert not can_log_in(rotation_server, role + "_b", OLD)

        assert plan.revoke_at_revocation == role
        revoked = succeeded(await database_roles.revoke(operator(rotation_server), role, role, ALTERNATING,
                                                        terminate_sessions=False))
        assert revoked == {"user": role, "openSessions": 1, "terminatedSessions": 0}
        assert not can_log_in(rotation_server, role, OLD), "after revocation the old password is refused"
        assert works(client), "the open session is not terminated unless asked"
        assert can_log_in(rotation_server, role + "_b", NEW)

    # The next rotation sets the role's own password again and revokes <role>_b.
    again = planned(role, current=plan.current_after)
    assert (again.set_password_of, again.revoke_at_revocation) == (role, role + "_b")
    await rotate(rotation_server, again, OLD + "-2")
    assert can_log_in(rotation_server, role, OLD + "-2") and can_log_in(rotation_server, role + "_b", NEW)
    succeeded(await database_roles.revoke(operator(rotation_server), role, role + "_b", ALTERNATING,
                                          terminate_sessions=False))
    assert not can_log_in(rotation_server, role + "_b", NEW)


async def test_orders_b_has_the_roles_privileges_and_settings(rotation_server: Server, roles: Roles) -> None:
    role = roles.make("privileges", settings={"statement_timeout": "5s", "application_name": "orders, the app"})
    with superuser(rotation_server) as admin:
        admin.execute(f"CREATE TABLE {role}_orders (id int)")
        admin.execute(f"INSERT INTO {role}_orders VALUES (1), (2)")
        admin.execute(f"GRANT SELECT ON {role}_orders TO {role}")
        admin.execute(f"""ALTER ROLE {role} SET search_path = "$user", public, "My Schema" """)
    await rotate(rotation_server, planned(role), NEW)
    with log_in(rotation_server, role + "_b", NEW) as alternate:
        assert alternate.execute(f"SELECT count(*) FROM {role}_orders").fetchone() == (2,)
        assert alternate.execute("SHOW search_path").fetchone() == ('"$user", public, "My Schema"',)
        assert alternate.execute("SHOW statement_timeout").fetchone() == ("5s",)
        assert alternate.execute("SHOW application_name").fetchone() == ("orders, the app",)
    with superuser(rotation_server) as admin:
        [(settings,)] = admin.execute(f"SELECT rolconfig FROM pg_roles WHERE rolname = '{role}_b'").fetchall()
        [(expected,)] = admin.execute(f"SELECT rolconfig FROM pg_roles WHERE rolname = '{role}'").fetchall()
    assert sorted(settings) == sorted([*expected, f"role={role}"])


async def test_orders_b_acts_as_the_role_so_what_it_creates_is_the_roles(rotation_server: Server, roles: Roles) -> None:
    role = roles.make("acting")
    with superuser(rotation_server) as admin:
        admin.execute(f"GRANT CREATE ON SCHEMA public TO {role}")
    await rotate(rotation_server, planned(role), NEW)
    with log_in(rotation_server, role + "_b", NEW) as alternate:
        assert alternate.execute("SELECT current_user, session_user").fetchone() == (role, role + "_b")
        alternate.execute(f"CREATE TABLE {role}_made (id int)")
        alternate.commit()
    with superuser(rotation_server) as admin:
        assert admin.execute(f"SELECT tableowner FROM pg_tables WHERE tablename = '{role}_made'").fetchone() == (role,)
        admin.execute(f"DROP TABLE {role}_made")
        admin.execute(f"REVOKE CREATE ON SCHEMA public FROM {role}")


async def test_the_alternate_user_follows_a_changed_setting_at_the_next_rotation(
        rotation_server: Server, roles: Roles) -> None:
    role = roles.make("follow", settings={"work_mem": "8MB"})
    connection = operator(rotation_server)
    succeeded(await database_roles.ensure_alternate(connection, role))
    with superuser(rotation_server) as admin:
        admin.execute(f"ALTER ROLE {role} RESET work_mem")
        admin.execute(f"ALTER ROLE {role} SET lock_timeout = '2s'")
    ensured = succeeded(await database_roles.ensure_alternate(connection, role))
    assert ensured == {"user": role + "_b", "created": False, "settingsSet": ["lock_timeout"],
                       "settingsReset": ["work_mem"]}


@pytest.mark.parametrize(("kind", "reason"), [("superuser", "SuperuserRole"), ("owner", "DatabaseOwnerRole"),
                                            ("operator", "OperatorRole")])
async def test_refused_roles_are_left_alone(rotation_server: Server, roles: Roles, kind: str, reason: str) -> None:
    if kind == "superuser":
        role, password = roles.make("super", "SUPERUSER"), OLD
    elif kind == "owner":
        role, password = OWNER, OLD
    else:
        role, password = OPERATOR, OPERATOR_PASSWORD
    connection = operator(rotation_server)
    results = [
        await database_roles.ensure_alternate(connection, role),
        await database_roles.set_password(connection, role, role, NEW, RoleStrategy.IN_PLACE),
        await database_roles.set_password(connection, role, role + "_b", NEW, ALTERNATING),
        await database_roles.revoke(connection, role, role, RoleStrategy.IN_PLACE, terminate_sessions=True),
    ]
    assert [(r.succeeded, r.reason) for r in results] == [(False, reason)] * 4
    assert role in results[0].message
    with superuser(rotation_server) as admin:
        assert not admin.execute("SELECT 1 FROM pg_roles WHERE rolname = %s", (role + "_b",)).fetchone()
    assert can_log_in(rotation_server, role, password) and not can_log_in(rotation_server, role, NEW)


async def test_a_crash_between_creating_orders_b_and_copying_its_settings_is_finished_by_a_retry(
        rotation_server: Server, roles: Roles, monkeypatch: pytest.MonkeyPatch) -> None:
    role = roles.make("crash", settings={"statement_timeout": "7s"})

    def crash(name: str) -> None:
        if name == "role-rotation-alternate-created":
            raise RuntimeError("the operator died here")

    monkeypatch.setattr(faults, "crash_point", crash)
    with pytest.raises(RuntimeError):
        await database_roles.ensure_alternate(operator(rotation_server), role)
    monkeypatch.undo()
    with superuser(rotation_server) as admin:
        assert not admin.execute("SELECT 1 FROM pg_roles WHERE rolname = %s", (role + "_b",)).fetchone(), \
            "no half-made user is left behind"
    ensured = succeeded(await database_roles.ensure_alternate(operator(rotation_server), role))
    assert ensured == {"user": role + "_b", "created": True, "settingsSet": ["statement_timeout", "role"],
                       "settingsReset": []}
    repeated = succeeded(await database_roles.ensure_alternate(operator(rotation_server), role))
    assert repeated == {"user": role + "_b", "created": False, "settingsSet": [], "settingsReset": []}
    await rotate(rotation_server, planned(role), NEW)
    with log_in(rotation_server, role + "_b", NEW) as alternate:
        assert alternate.execute("SHOW statement_timeout").fetchone() == ("7s",)


async def test_a_half_made_orders_b_is_completed(rotation_server: Server, roles: Roles) -> None:
    role = roles.make("half", settings={"statement_timeout": "9s"})
    with superuser(rotation_server) as admin:
        # As a crash would have left it without the transaction: created, a member, no settings.
        admin.execute(f"CREATE ROLE {role}_b LOGIN IN ROLE {role}")
        admin.execute(f"GRANT {role}_b TO {OPERATOR} WITH ADMIN TRUE, INHERIT FALSE, SET FALSE")
    ensured = succeeded(await database_roles.ensure_alternate(operator(rotation_server), role))
    assert ensured == {"user": role + "_b", "created": False, "settingsSet": ["statement_timeout", "role"],
                       "settingsReset": []}


async def test_an_orders_b_that_is_not_a_member_of_orders_is_not_taken_over(
        rotation_server: Server, roles: Roles) -> None:
    role = roles.make("stranger")
    roles.made.append(role + "_b")
    with superuser(rotation_server) as admin:
        admin.execute(f"CREATE ROLE {role}_b LOGIN PASSWORD '{OLD}'")
    refused = await database_roles.ensure_alternate(operator(rotation_server), role)
    assert (refused.succeeded, refused.reason) == (False, "AlternateUserConflict")
    with superuser(rotation_server) as admin:
        assert not admin.execute("SELECT pg_has_role(%s, %s, 'MEMBER')", (role + "_b", role)).fetchone()[0]


async def test_sessions_of_the_revoked_user_are_counted_and_terminated_only_when_asked(
        rotation_server: Server, roles: Roles) -> None:
    role = roles.make("sessions")
    await rotate(rotation_server, planned(role), NEW)
    with log_in(rotation_server, role, OLD) as first, log_in(rotation_server, role, OLD) as second:
        kept = succeeded(await database_roles.revoke(operator(rotation_server), role, role, ALTERNATING,
                                                     terminate_sessions=False))
        assert (kept["openSessions"], kept["terminatedSessions"]) == (2, 0)
        assert works(first) and works(second)
        cut = succeeded(await database_roles.revoke(operator(rotation_server), role, role, ALTERNATING,
                                                    terminate_sessions=True))
        assert (cut["openSessions"], cut["terminatedSessions"]) == (2, 2)
        with superuser(rotation_server) as admin:
            wait_until(lambda: admin.execute("SELECT count(*) FROM pg_stat_activity WHERE usename = %s",
                                             (role,)).fetchone() == (0,))
        assert not works(first) and not works(second)
    with log_in(rotation_server, role + "_b", NEW) as current:
        assert works(current), "the current user's sessions are untouched"


async def test_in_place_changes_the_roles_own_password_and_a_rollback_restores_the_old_one(
        rotation_server: Server, roles: Roles) -> None:
    role = roles.make("inplace")
    plan = planned(role, strategy=RoleStrategy.IN_PLACE)
    with log_in(rotation_server, role, OLD) as client:
        await rotate(rotation_server, plan, NEW)
        assert can_log_in(rotation_server, role, NEW) and not can_log_in(rotation_server, role, OLD)
        assert works(client), "open sessions survive an in-place rotation"
    with superuser(rotation_server) as admin:
        assert not admin.execute("SELECT 1 FROM pg_roles WHERE rolname = %s", (role + "_b",)).fetchone()
    assert plan.restore_password_on_rollback
    succeeded(await database_roles.set_password(operator(rotation_server), role, plan.current_on_rollback, OLD,
                                                RoleStrategy.IN_PLACE))
    assert can_log_in(rotation_server, role, OLD) and not can_log_in(rotation_server, role, NEW)


async def test_an_alternating_rollback_makes_the_old_user_current_and_discards_the_new_password(
        rotation_server: Server, roles: Roles) -> None:
    role = roles.make("rollback")
    plan = planned(role)
    await rotate(rotation_server, plan, NEW)
    assert (plan.current_on_rollback, plan.revoke_on_rollback) == (role, role + "_b")
    succeeded(await database_roles.revoke(operator(rotation_server), role, role + "_b", ALTERNATING,
                                          terminate_sessions=False))
    assert can_log_in(rotation_server, role, OLD) and not can_log_in(rotation_server, role + "_b", NEW)


async def test_a_wrong_password_fails_the_login_proof_without_saying_it(
        rotation_server: Server, roles: Roles) -> None:
    role = roles.make("proof")
    proof = await database_roles.prove_login(operator(rotation_server), role, NEW)
    assert (proof.succeeded, proof.reason) == (False, "AuthenticationFailed")
    assert role in proof.message
    assert NEW not in proof.message and OPERATOR_PASSWORD not in proof.message
    missing = await database_roles.set_password(operator(rotation_server), role, role + "_b", NEW, ALTERNATING)
    assert (missing.succeeded, missing.reason) == (False, "UserNotFound")
    stranger = await database_roles.set_password(operator(rotation_server), role, OWNER, NEW, ALTERNATING)
    assert (stranger.succeeded, stranger.reason) == (False, "UnknownUser")
    assert can_log_in(rotation_server, OWNER, OLD)


async def test_revoking_an_alternate_user_that_is_gone_is_done(rotation_server: Server, roles: Roles) -> None:
    role = roles.make("gone")
    revoked = succeeded(await database_roles.revoke(operator(rotation_server), role, role + "_b", RoleStrategy.IN_PLACE,
                                                    terminate_sessions=True))
    assert revoked == {"user": role + "_b", "openSessions": 0, "terminatedSessions": 0}
    assert can_log_in(rotation_server, role, OLD)


async def test_without_pg_read_all_stats_sessions_are_counted_but_not_terminated(
        rotation_server: Server, roles: Roles) -> None:
    role = roles.make("blind")
    narrow = roles.make("narrow_operator", "CREATEROLE")
    with superuser(rotation_server) as admin:
        admin.execute(f"GRANT pg_signal_backend TO {narrow}")
        admin.execute(f"GRANT {role} TO {narrow} WITH ADMIN TRUE, INHERIT FALSE, SET FALSE")
    connection = database.Connection(rotation_server.conninfo(narrow, password=OLD, dbname=DATABASE))
    with log_in(rotation_server, role, OLD) as client:
        counted = succeeded(await database_roles.revoke(connection, role, role, RoleStrategy.IN_PLACE,
                                                        terminate_sessions=False))
        assert counted["openSessions"] == 1
        refused = await database_roles.revoke(connection, role, role, RoleStrategy.IN_PLACE, terminate_sessions=True)
        assert (refused.succeeded, refused.reason) == (False, "PermissionDenied")
        assert "pg_read_all_stats" in refused.message
        assert works(client)
    assert not can_log_in(rotation_server, role, OLD)


def track_statements(server: Server) -> bool:
    """Start pg_stat_statements afresh in the test database; False when the server cannot load it."""
    with superuser(server) as admin:
        try:
            admin.execute("CREATE EXTENSION IF NOT EXISTS pg_stat_statements")
            admin.execute("SELECT pg_stat_statements_reset()")
        except psycopg.Error:
            return False
    return True


@contextlib.asynccontextmanager
async def watching_queries(server: Server) -> AsyncIterator[set[str]]:
    """Every query text pg_stat_activity shows while the block runs (sampled as fast as the server answers)."""
    seen: set[str] = set()
    stop = asyncio.Event()

    async def sample() -> None:
        async with await psycopg.AsyncConnection.connect(server.conninfo(dbname=DATABASE), autocommit=True) as admin:
            while not stop.is_set():
                rows = await (await admin.execute(
                    "SELECT query FROM pg_stat_activity WHERE pid <> pg_backend_pid()")).fetchall()
                seen.update(row[0] or "" for row in rows)
                await asyncio.sleep(0)

    task = asyncio.create_task(sample())
    try:
        yield seen
    finally:
        stop.set()
        await task


async def test_no_password_reaches_the_server(
        rotation_server: Server, roles: Roles, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    role = roles.make("secret")
    log = rotation_server.pgdata / "log"
    log_start = log.stat().st_size
    statements_tracked = track_statements(rotation_server)
    async with watching_queries(rotation_server) as seen:
        plan = planned(role)
        await rotate(rotation_server, plan, NEW)
        failed_proof = await database_roles.prove_login(operator(rotation_server), role, NEW + "-wrong")
        succeeded(await database_roles.revoke(operator(rotation_server), role, role, ALTERNATING,
                                              terminate_sessions=True))
    assert not failed_proof.succeeded and NEW not in failed_proof.message

    with log.open("rb") as server_log:
        server_log.seek(log_start)
        logged = server_log.read().decode(errors="replace")
    assert f'ALTER ROLE "{role}_b" PASSWORD \'SCRAM-SHA-256$4096:' in logged, "the statements are logged"
    assert any("ALTER ROLE" in query for query in seen), "pg_stat_activity was sampled during the rotation"
    for place, text in [("server log", logged), ("pg_stat_activity", "\n".join(seen)), ("operator log", caplog.text)]:
        assert NEW not in text, f"the password is in the {place}"
        assert OPERATOR_PASSWORD not in text, f"the operator's password is in the {place}"
    if not statements_tracked:
        pytest.skip("pg_stat_statements is not available on this server: the server log and pg_stat_activity "
                    "were checked, pg_stat_statements was not")
    with superuser(rotation_server) as admin:
        statements = "\n".join(row[0] for row in admin.execute("SELECT query FROM pg_stat_statements").fetchall())
    assert "ALTER ROLE" in statements, "pg_stat_statements tracks utility statements"
    assert NEW not in statements and OPERATOR_PASSWORD not in statements
