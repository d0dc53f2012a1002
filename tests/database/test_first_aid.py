"""The `database` step against a real PostgreSQL: exactly the right backends die, the rest live."""

from __future__ import annotations

import asyncio
import json
import logging
from typing import Any

import psycopg
import psycopg.conninfo
import pytest
from tests.database.conftest import OTHER_DATABASE, PASSWORDS, Server, Sessions

from remediator.actions import database
from remediator.api.database_steps import DatabaseStep, VacuumAnalyze

pytestmark = pytest.mark.timeout(60)


def step(**operation: Any) -> DatabaseStep:
    return DatabaseStep.model_validate({"connectionSecretRef": {"name": "db", "key": "uri"}, **operation})


def firstaid(postgres: Server) -> database.Connection:
    return database.Connection(postgres.conninfo("firstaid"))


def alive(admin: psycopg.Connection[Any], pid: int) -> bool:
    return admin.execute("SELECT 1 FROM pg_stat_activity WHERE pid = %s", (pid,)).fetchone() is not None


async def gone(admin: psycopg.Connection[Any], *pids: int) -> bool:
    for _ in range(200):
        if not any(alive(admin, pid) for pid in pids):
            return True
        await asyncio.sleep(0.05)
    return False


async def in_state_for(admin: psycopg.Connection[Any], pids: list[int], seconds: float, state: str = "active",
                       waiting_for: str | None = None) -> None:
    """Wait until every pid has been in `state` (and waiting for `waiting_for`, a wait_event_type) for
    `seconds`; fail after 10 seconds."""
    for _ in range(200):
        rows = admin.execute("SELECT count(*) FROM pg_stat_activity WHERE pid = ANY(%s) AND state = %s "
                             "AND wait_event_type IS NOT DISTINCT FROM coalesce(%s, wait_event_type) "
                             "AND now() - state_change > make_interval(secs => %s)",
                             (pids, state, waiting_for, seconds)).fetchone()
        if rows and rows[0] == len(pids):
            return
        await asyncio.sleep(0.05)
    raise AssertionError(f"sessions {pids} were not {state} for {seconds}s")


async def active_for(admin: psycopg.Connection[Any], pids: list[int], seconds: float) -> None:
    """Wait until every pid has been running its query for `seconds`."""
    await in_state_for(admin, pids, seconds)


async def survived(admin: psycopg.Connection[Any], sessions: Sessions, pids: list[int]) -> None:
    """Assert that no pid's session was terminated: cancel their queries now and check each query ends
    by that cancel and its session lives on. A termination sent earlier would have ended it first."""
    admin.execute("SELECT pg_cancel_backend(pid) FROM unnest(%s::int[]) AS pid", (pids,))
    for pid in pids:
        with pytest.raises(psycopg.errors.QueryCanceled):
            await asyncio.wait_for(sessions.queries[pid], 10)
        assert alive(admin, pid)


def assert_secret_free(result: Any, caplog: pytest.LogCaptureFixture) -> None:
    for password in PASSWORDS.values():
        assert password not in result.message and password not in caplog.text
        assert password not in json.dumps(result.value, default=str)


async def test_long_running_queries_are_terminated_but_superusers_and_other_databases_are_spared(
        postgres: Server, sessions: Sessions, admin: psycopg.Connection[Any]) -> None:
    victims = [await sessions.running("report-export"), await sessions.running("report-export")]
    superuser = await sessions.running("report-export", user="postgres")
    elsewhere = await sessions.running("report-export", dbname=OTHER_DATABASE)
    other_app = await sessions.running("checkout")
    await active_for(admin, [*victims, superuser, elsewhere, other_app], 0.3)

    result = await database.run(firstaid(postgres), step(terminateLongRunning={
        "olderThan": "200ms", "usernames": ["app", "postgres"], "applicationNames": ["report-export"]}),
        dry_run=False)

    assert result.succeeded, result
    assert sorted(t["pid"] for t in result.value["targets"]) == sorted(victims)
    assert all(t["signalled"] and t["user"] == "app" and t["durationSeconds"] > 0.2
               and t["query"] == "SELECT pg_sleep(?)" for t in result.value["targets"])
    assert await gone(admin, *victims)
    assert all(alive(admin, pid) for pid in (superuser, elsewhere, other_app))


async def test_cancelling_a_long_running_query_keeps_its_session(
        postgres: Server, sessions: Sessions, admin: psycopg.Connection[Any]) -> None:
    victim = await sessions.running("batch")
    await active_for(admin, [victim], 0.3)
    result = await database.run(firstaid(postgres), step(cancelLongRunning={
        "olderThan": "200ms", "applicationNames": ["batch"]}), dry_run=False)
    assert result.succeeded and [t["pid"] for t in result.value["targets"]] == [victim]
    with pytest.raises(psycopg.errors.QueryCanceled):
        await sessions.tasks[0]
    assert alive(admin, victim)


async def test_the_operator_never_terminates_its_own_session(postgres: Server) -> None:
    result = await database.run(firstaid(postgres), step(terminateLongRunning={
        "olderThan": "1ms", "usernames": ["firstaid"]}), dry_run=False)
    assert result.succeeded and result.value["targets"] == []


async def test_a_dry_run_lists_the_targets_and_terminates_nothing(
        postgres: Server, sessions: Sessions, admin: psycopg.Connection[Any]) -> None:
    victim = await sessions.running("dry", query="SELECT pg_sleep(60), 'card-4111-1111'")
    await active_for(admin, [victim], 0.3)
    result = await database.run(firstaid(postgres), step(terminateLongRunning={
        "olderThan": "200ms", "applicationNames": ["dry"]}), dry_run=True)
    assert result.succeeded and result.value["dryRun"] is True
    assert [t["pid"] for t in result.value["targets"]] == [victim]
    assert result.value["targets"][0]["query"] == "SELECT pg_sleep(?), '?'"
    assert "card-4111" not in json.dumps(result.value, default=str)
    await survived(admin, sessions, [victim])


async def test_more_matches_than_max_terminations_terminates_nothing(
        postgres: Server, sessions: Sessions, admin: psycopg.Connection[Any]) -> None:
    victims = [await sessions.running("herd") for _ in range(3)]
    await active_for(admin, victims, 0.3)
    result = await database.run(firstaid(postgres), step(maxTerminations=2, terminateLongRunning={
        "olderThan": "200ms", "applicationNames": ["herd"]}), dry_run=False)
    assert not result.succeeded and result.reason == "TooManyTargets"
    await survived(admin, sessions, victims)


async def test_idle_sessions_are_terminated_and_idle_in_transaction_only_when_asked(
        postgres: Server, sessions: Sessions, admin: psycopg.Connection[Any]) -> None:
    _, idle = await sessions.open("pool")
    in_transaction, idle_in_transaction = await sessions.open("pool")
    await in_transaction.execute("BEGIN")
    await in_transaction.execute("SELECT 1")
    _, superuser_idle = await sessions.open("pool", user="postgres")
    await in_state_for(admin, [idle, superuser_idle], 0.3, state="idle")
    await in_state_for(admin, [idle_in_transaction], 0.3, state="idle in transaction")
    pool_only = step(terminateIdle={"idleFor": "200ms"})

    # Every idle session in the database matches; restrict what we look at to this test's pool.
    result = await database.run(firstaid(postgres), pool_only, dry_run=True)
    pool = {t["pid"] for t in result.value["targets"]} & {idle, idle_in_transaction, superuser_idle}
    assert pool == {idle}

    result = await database.run(firstaid(postgres), step(maxTerminations=50, terminateIdle={
        "idleFor": "200ms", "includeIdleInTransaction": True}), dry_run=False)
    assert result.succeeded, result
    assert {idle, idle_in_transaction} <= {t["pid"] for t in result.value["targets"]}
    assert await gone(admin, idle, idle_in_transaction)
    assert alive(admin, superuser_idle)


async def test_the_head_of_a_lock_chain_is_terminated_and_its_victims_proceed(
        postgres: Server, sessions: Sessions, admin: psycopg.Connection[Any]) -> None:
    admin.execute("DROP TABLE IF EXISTS accounts; CREATE TABLE accounts (id int PRIMARY KEY, balance int);"
                  "INSERT INTO accounts VALUES (1, 100); GRANT ALL ON accounts TO app")
    holder_connection, holder = await sessions.open("locker")
    await holder_connection.execute("BEGIN")
    await holder_connection.execute("UPDATE accounts SET balance = balance - 1 WHERE id = 1")
    first = await sessions.running("waiter", "UPDATE accounts SET balance = balance + 1 WHERE id = 1")
    second = await sessions.running("waiter", "UPDATE accounts SET balance = balance + 2 WHERE id = 1")
    await in_state_for(admin, [first, second], 0.3, waiting_for="Lock")

    result = await database.run(firstaid(postgres), step(killBlockers={"blockedFor": "200ms"}), dry_run=False)

    assert result.succeeded, result
    assert [t["pid"] for t in result.value["targets"]] == [holder]
    assert await gone(admin, holder)
    await asyncio.wait_for(asyncio.gather(*sessions.tasks), 10)
    assert alive(admin, first) and alive(admin, second)
    assert admin.execute("SELECT balance FROM accounts").fetchone() == (103,)


async def test_a_bloated_table_shows_in_the_report_and_is_vacuumed(
        postgres: Server, sessions: Sessions, admin: psycopg.Connection[Any]) -> None:
    admin.execute("DROP TABLE IF EXISTS bloated; CREATE TABLE bloated (id int, note text) "
                  "WITH (autovacuum_enabled = false);"
                  "INSERT INTO bloated SELECT i, 'row ' || i FROM generate_series(1, 20000) i;"
                  "DELETE FROM bloated WHERE id > 1000; SELECT pg_stat_force_next_flush()")
    for _ in range(100):
        row = admin.execute("SELECT n_dead_tup FROM pg_stat_user_tables WHERE relname = 'bloated'").fetchone()
        if row and row[0] > 0:
            break
        await asyncio.sleep(0.1)
    sleeper = await sessions.running("reporting", query="SELECT pg_sleep(60), 'api-key-abc123'")
    await active_for(admin, [sleeper], 0.2)

    result = await database.run(firstaid(postgres), step(report={"topN": 5}), dry_run=False)

    assert result.succeeded, result
    report = result.value
    assert report["maxConnections"] > 0 and any(row["state"] == "active" for row in report["connections"])
    assert any(row["name"] == "bloated" and row["dead"] == 19000 for row in report["deadTuples"])
    assert any(row["name"] == "bloated" for row in report["largestTables"])
    assert any(t["pid"] == sleeper and t["query"] == "SELECT pg_sleep(?), '?'" for t in report["longestRunning"])
    assert report["topStatements"] == [] and "pg_stat_statements is not installed" in report["notes"][0]
    assert "api-key-abc123" not in json.dumps(report, default=str)
    assert len(json.dumps(report, default=str)) <= 16_000

    result = await database.run(firstaid(postgres), step(vacuumAnalyze={"tables": ["public.bloated"]}),
                                dry_run=False)
    assert result.succeeded and result.value["statements"] == ['VACUUM (ANALYZE) "public"."bloated"']
    for _ in range(100):
        row = admin.execute("SELECT n_dead_tup FROM pg_stat_user_tables WHERE relname = 'bloated'").fetchone()
        if row and row[0] == 0:
            break
        await asyncio.sleep(0.1)
    else:
        raise AssertionError("the dead tuples remained")


# What pg_stat_statements keeps of each statement is the first text it saw, normalised: the literals
# of plain queries become $n, but comments and the literals of utility statements (DDL, DO) stay.
# https://www.postgresql.org/docs/current/pgstatstatements.html#PGSTATSTATEMENTS-CONFIG-PARAMS
STATEMENTS_DATABASE = "statements"
SECRET_STATEMENTS = {
    "SELECT pg_sleep(0.05) /* api-key=sk_live_abc123 */": "SELECT pg_sleep($1) /* */",
    "SELECT 'card-4111-1111-1111-1111'::text AS card, 987654321987 AS pin": "SELECT $1::text AS card, $2 AS pin",
    "CREATE ROLE statements_probe PASSWORD 'role-password-secret'": "CREATE ROLE statements_probe PASSWORD '?'",
    "COMMENT ON TABLE cards IS 'comment-secret'": "COMMENT ON TABLE cards IS '?'",
    "DO $$BEGIN PERFORM 'dollar-secret-42'; END$$": "DO '?'",
    "CREATE TEMP TABLE scratch AS SELECT E'esc\\\\secret-e' AS s": "CREATE TEMP TABLE scratch AS SELECT $1 AS s",
}
SECRETS = ("sk_live_abc123", "card-4111", "987654321987", "role-password-secret", "comment-secret",
           "dollar-secret-42", "secret-e")


async def test_top_statements_from_pg_stat_statements_hold_no_literal(
        postgres: Server, admin: psycopg.Connection[Any]) -> None:
    """The report's topStatements, read from a real pg_stat_statements (the embedded server preloads its
    library, see conftest): each statement is there, its literals and comments redacted."""
    admin.execute(f"DROP DATABASE IF EXISTS {STATEMENTS_DATABASE}")
    admin.execute("DROP ROLE IF EXISTS statements_probe")
    admin.execute(f"CREATE DATABASE {STATEMENTS_DATABASE}")
    with psycopg.connect(postgres.conninfo(dbname=STATEMENTS_DATABASE), autocommit=True) as owner:
        owner.execute("CREATE EXTENSION pg_stat_statements")
        owner.execute("CREATE TABLE cards (number text)")
        owner.execute("SELECT pg_stat_statements_reset()")
        for statement in SECRET_STATEMENTS:
            owner.execute(statement)
    try:
        result = await database.run(database.Connection(postgres.conninfo("firstaid", dbname=STATEMENTS_DATABASE)),
                                    step(report={"topN": 100}), dry_run=False)
    finally:
        admin.execute("DROP ROLE statements_probe")

    assert result.succeeded, result
    queries = [row["query"] for row in result.value["topStatements"]]
    assert set(SECRET_STATEMENTS.values()) <= set(queries), queries
    assert all(row["calls"] >= 1 and row["total_ms"] >= 0 for row in result.value["topStatements"])
    assert result.value["notes"] == []
    report = json.dumps(result.value, default=str)
    assert [secret for secret in SECRETS if secret in report] == []


async def test_hostile_table_names_are_identifiers_never_sql(
        postgres: Server, admin: psycopg.Connection[Any]) -> None:
    hostile = 'x"; DROP TABLE y; --'
    admin.execute('DROP TABLE IF EXISTS y, "x""; DROP TABLE y; --"; CREATE TABLE y (id int);'
                  'CREATE TABLE "x""; DROP TABLE y; --" (id int)')
    # The API refuses such names; the action quotes them anyway.
    hostile_step = DatabaseStep.model_construct(
        connection_secret_ref=step(analyze={}).connection_secret_ref,
        vacuum_analyze=VacuumAnalyze.model_construct(tables=[hostile]))
    result = await database.run(firstaid(postgres), hostile_step, dry_run=False)
    assert result.succeeded, result
    assert admin.execute("SELECT to_regclass('y')").fetchone() != (None,)


async def test_analyze_and_reindex_concurrently(postgres: Server, admin: psycopg.Connection[Any]) -> None:
    admin.execute("DROP TABLE IF EXISTS orders; CREATE TABLE orders (id int PRIMARY KEY, total int);"
                  "CREATE INDEX orders_total ON orders (total)")
    for operation in ({"analyze": {"tables": ["orders"]}}, {"analyze": {}},
                      {"reindex": {"index": "public.orders_total"}},
                      {"reindex": {"table": "orders", "concurrently": False}}):
        result = await database.run(firstaid(postgres), step(**operation), dry_run=False)
        assert result.succeeded, (operation, result)
    dry = await database.run(firstaid(postgres), step(reindex={"table": "orders"}), dry_run=True)
    assert dry.value == {"dryRun": True, "statements": ['REINDEX TABLE CONCURRENTLY "orders"']}


async def test_a_healthy_primary_passes_the_health_check(postgres: Server) -> None:
    result = await database.run(firstaid(postgres), step(healthCheck={"maxReplicationLag": "10s"}), dry_run=False)
    assert result.succeeded and result.value["inRecovery"] is False
    assert result.value["replicationLagSeconds"] is None


async def test_the_operator_session_is_named_and_bounded(postgres: Server) -> None:
    session = await database._connect(firstaid(postgres), step(statementTimeout="7s", lockTimeout="3s",
                                                               healthCheck={}))
    async with session:
        row = await (await session.execute(
            "SELECT current_setting('application_name') AS app, current_setting('statement_timeout') AS st,"
            " current_setting('lock_timeout') AS lt")).fetchone()
    assert row == {"app": "remediator", "st": "7s", "lt": "3s"}
    assert session.closed


# Errors: each with its reason, and never the password.

async def test_an_unreachable_database_is_connection_failed(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    connection = database.Connection(f"postgresql://firstaid:{PASSWORDS['firstaid']}@127.0.0.1:1/postgres")
    result = await database.run(connection, step(healthCheck={}), dry_run=False)
    assert result.reason == "ConnectionFailed" and "firstaid@127.0.0.1:1/postgres" in result.message
    assert_secret_free(result, caplog)
    assert PASSWORDS["firstaid"] not in repr(connection) and PASSWORDS["firstaid"] not in str(connection)


async def test_a_wrong_password_is_authentication_failed(postgres: Server, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    right = await database.run(database.Connection(postgres.conninfo("locked")), step(healthCheck={}),
                               dry_run=False)
    assert right.succeeded, right
    wrong = database.Connection(postgres.conninfo("locked", password=PASSWORDS["locked"] + "-wrong"))
    result = await database.run(wrong, step(healthCheck={}), dry_run=False)
    assert result.reason == "AuthenticationFailed", result
    assert_secret_free(result, caplog)
    assert PASSWORDS["locked"] + "-wrong" not in result.message + caplog.text


async def test_a_slow_statement_is_a_timeout(postgres: Server, sessions: Sessions,
                                             caplog: pytest.LogCaptureFixture,
                                             admin: psycopg.Connection[Any]) -> None:
    caplog.set_level(logging.DEBUG)
    admin.execute("DROP TABLE IF EXISTS busy; CREATE TABLE busy (id int); GRANT ALL ON busy TO app")
    holder, _ = await sessions.open("migration")
    await holder.execute("BEGIN")
    await holder.execute("LOCK TABLE busy IN ACCESS EXCLUSIVE MODE")
    result = await database.run(firstaid(postgres), step(statementTimeout="1s", lockTimeout="30s",
                                                         vacuumAnalyze={"tables": ["busy"]}), dry_run=False)
    assert result.reason == "Timeout" and "statement_timeout (1s)" in result.message, result
    assert_secret_free(result, caplog)

    result = await database.run(firstaid(postgres), step(statementTimeout="30s", lockTimeout="200ms",
                                                         vacuumAnalyze={"tables": ["busy"]}), dry_run=False)
    assert result.reason == "Timeout" and "lock_timeout (200ms)" in result.message, result


async def test_a_role_without_privileges_is_permission_denied(
        postgres: Server, sessions: Sessions, admin: psycopg.Connection[Any],
        caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    admin.execute("DROP TABLE IF EXISTS ledger; CREATE TABLE ledger (id int PRIMARY KEY)")
    nopriv = database.Connection(postgres.conninfo("nopriv"))
    victim = await sessions.running("ledger-sync")
    await active_for(admin, [victim], 0.3)
    for operation in ({"terminateLongRunning": {"olderThan": "200ms", "applicationNames": ["ledger-sync"]}},
                      {"vacuumAnalyze": {"tables": ["ledger"]}},
                      {"reindex": {"table": "ledger", "concurrently": False}}):
        result = await database.run(nopriv, step(**operation), dry_run=False)
        assert result.reason == "PermissionDenied", (operation, result)
        assert_secret_free(result, caplog)
    assert alive(admin, victim)


async def test_a_missing_table_is_object_not_found(postgres: Server) -> None:
    result = await database.run(firstaid(postgres), step(vacuumAnalyze={"tables": ["nope.missing"]}),
                                dry_run=False)
    assert result.reason == "ObjectNotFound", result


async def test_connections_come_from_a_secret_uri_or_its_keys_and_a_missing_one_is_secret_not_found(
        sandbox: Any, postgres: Server) -> None:
    import kubernetes.client

    with kubernetes.client.ApiClient(kubernetes.client.Configuration(host=sandbox.url)) as api:
        api.set_default_header("Connection", "close")
        core = kubernetes.client.CoreV1Api(api)
        uri = f"postgresql://firstaid:{PASSWORDS['firstaid']}@db.example:5432/orders"
        create = core.create_namespaced_secret  # blocking: the sandbox serves on this event loop
        await asyncio.to_thread(create, "default", {"metadata": {"name": "db-uri"}, "stringData": {"uri": uri}})
        await asyncio.to_thread(create, "default", {"metadata": {"name": "db-keys"}, "stringData": {
            "host": "db.example", "port": "5432", "user": "firstaid", "password": PASSWORDS["firstaid"],
            "dbname": "orders", "sslmode": "require"}})

        from_uri = await database.connection_from_secret(api, "default", "db-uri", "uri")
        from_keys = await database.connection_from_secret(api, "default", "db-keys", None)
        assert isinstance(from_uri, database.Connection) and from_uri.conninfo == uri
        assert isinstance(from_keys, database.Connection)
        assert psycopg.conninfo.conninfo_to_dict(from_keys.conninfo)["sslmode"] == "require"
        for connection in (from_uri, from_keys):
            assert str(connection) == "firstaid@db.example:5432/orders"
            assert PASSWORDS["firstaid"] not in repr(connection) + str(connection)

        for name, key in (("absent", None), ("absent", "uri"), ("db-uri", "other")):
            missing = await database.connection_from_secret(api, "default", name, key)
            assert not isinstance(missing, database.Connection)
            assert missing.reason == "SecretNotFound", (name, key, missing)
