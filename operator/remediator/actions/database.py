"""The `database` step against PostgreSQL: first aid through psycopg's async API.

Each run opens its own session (application_name 'remediator', the step's statement_timeout and
lock_timeout), reads the world, lets `engine.database_rules` choose, acts, and closes the session.
Failures come back as `intents.failed(reason, message)`; no message ever holds the password or
the connection string, only "user@host:port/dbname".
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Collection
from typing import Any

import kubernetes.client
import psycopg
import psycopg.conninfo
import psycopg.errors
from kubernetes.client.exceptions import ApiException
from psycopg import sql
from psycopg.rows import dict_row

from remediator.actions import http
from remediator.api.database_steps import DatabaseStep
from remediator.api.durations import parse_duration
from remediator.engine import database_rules, intents

APPLICATION_NAME = "remediator"
CONNECT_TIMEOUT_SECONDS = 10
SECRET_KEYS = ("host", "port", "user", "password", "dbname", "sslmode")
INSUFFICIENT_PRIVILEGE = "42501"
# VACUUM and ANALYZE skip a table they may not maintain with a plain WARNING (SQLSTATE 01000), not an error.
SKIPPED_FOR_PRIVILEGE = "permission denied"

logger = logging.getLogger(__name__)

# Every session, with facts enough for database_rules to decide what may be touched.
BACKENDS = sql.SQL("""
    SELECT a.pid, a.backend_start, a.usename, coalesce(a.application_name, '') AS application_name,
           a.state, coalesce(a.backend_type, '') AS backend_type,
           coalesce(a.datname = current_database(), false) AS same_database,
           coalesce(r.rolsuper, true) AS superuser,
           a.pid = pg_backend_pid() AS own,
           extract(epoch FROM clock_timestamp() - a.query_start)::float8 AS query_seconds,
           extract(epoch FROM clock_timestamp() - a.state_change)::float8 AS state_seconds,
           extract(epoch FROM clock_timestamp() - a.xact_start)::float8 AS transaction_seconds,
           coalesce(a.query, '') AS query,
           CASE WHEN a.wait_event_type = 'Lock' THEN pg_blocking_pids(a.pid) ELSE '{}' END AS blocked_by,
           CASE WHEN a.wait_event_type = 'Lock'
                THEN extract(epoch FROM clock_timestamp() - coalesce(w.waitstart, a.query_start))::float8
           END AS waiting_seconds
    FROM pg_stat_activity a
    LEFT JOIN pg_roles r ON r.oid = a.usesysid
    LEFT JOIN (SELECT pid, min(waitstart) AS waitstart FROM pg_locks WHERE NOT granted GROUP BY pid) w
           ON w.pid = a.pid
""")
# Signal only the very backends chosen: a pid reused by a new session has another backend_start.
SIGNAL = """
    SELECT t.pid, {function}(t.pid) AS signalled
    FROM unnest(%s::int[], %s::timestamptz[]) AS t(pid, started)
    JOIN pg_stat_activity a ON a.pid = t.pid AND a.backend_start = t.started
"""


@dataclasses.dataclass(frozen=True)
class Connection:
    """How to reach a database (a libpq URI or key=value string); shown without its password."""

    conninfo: str = dataclasses.field(repr=False)

    def __repr__(self) -> str:
        return f"Connection({self.describe()})"

    def __str__(self) -> str:
        return self.describe()

    def describe(self) -> str:
        """"user@host:port/dbname", whatever of it the conninfo says: safe for messages and logs."""
        params = _params(self.conninfo)
        host = params.get("host") or "localhost"
        port = f":{params['port']}" if params.get("port") else ""
        user = f"{params['user']}@" if params.get("user") else ""
        return f"{user}{host}{port}/{params.get('dbname') or ''}"

    @property
    def hosts(self) -> list[str]:
        """Every host (and hostaddr) libpq may connect to: `host` may list several; none means localhost."""
        params = _params(self.conninfo)
        named = [h.strip() for h in str(params.get("host") or "localhost").split(",") if h.strip()]
        addresses = [a.strip() for a in str(params.get("hostaddr") or "").split(",") if a.strip()]
        return named + addresses

    @property
    def password(self) -> str | None:
        return _params(self.conninfo).get("password") or None


def _params(conninfo: str) -> dict[str, Any]:
    try:
        return psycopg.conninfo.conninfo_to_dict(conninfo)
    except psycopg.Error:
        return {}


async def connection_from_secret(api: kubernetes.client.ApiClient, namespace: str, name: str,
                                  key: str | None) -> Connection | intents.Result:
    """The Connection a Secret describes: with `key`, that key's libpq URI; without, the keys
    host, port, user, password, dbname and sslmode (those present).

    Returns failed("SecretNotFound") when the Secret or the key is missing, failed("SecretUnreadable")
    on another API error, failed("InvalidConnectionSecret") when the value is not a connection string.
    """
    try:
        if key is not None:
            uri = await http.read_secret_value(api, namespace, name, key)
            if uri is None:
                return intents.failed("SecretNotFound", f"secret {name} or its key {key} does not exist")
            connection = Connection(uri.strip())
        else:
            values = {part: await http.read_secret_value(api, namespace, name, part) for part in SECRET_KEYS}
            present = {part: value.strip() for part, value in values.items() if value is not None}
            if not present:
                return intents.failed("SecretNotFound", f"secret {name} does not exist or has none of the keys "
                                      f"{', '.join(SECRET_KEYS)}")
            connection = Connection(psycopg.conninfo.make_conninfo(**present))
    except ApiException as e:
        return intents.failed("SecretUnreadable", f"secret {name}: API error {e.status}")
    if not _params(connection.conninfo):
        return intents.failed("InvalidConnectionSecret", f"secret {name} does not hold a valid libpq connection "
                              "string (postgresql://user:password@host:port/dbname)")
    return connection


async def run(connection: Connection, step: DatabaseStep, *, dry_run: bool,
              only: Collection[tuple[int, str]] | None = None) -> intents.Result:
    """Run the step's one operation in a session of its own; done(value) with what was found or done.

    Fails with ConnectionFailed, AuthenticationFailed, Timeout (statement or lock timeout),
    PermissionDenied, ObjectNotFound, TooManyTargets, ReplicationLagging or DatabaseError.
    In a dry run, targets are listed and nothing is changed. With `only` ((pid, backend start) pairs,
    as a dry run listed them), a session-ending operation signals no session outside that list.
    """
    try:
        session = await _connect(connection, step)
    except psycopg.OperationalError as e:
        return connect_failure(connection, e)
    try:
        async with session:
            if step.operation in SIGNALLING:
                return await SIGNALLING[step.operation](session, step, dry_run, only)
            return await OPERATIONS[step.operation](session, step, dry_run)
    except psycopg.errors.QueryCanceled as e:
        return failure(connection, "Timeout", f"statement_timeout ({step.statement_timeout}) reached", e)
    except psycopg.errors.LockNotAvailable as e:
        return failure(connection, "Timeout", f"lock_timeout ({step.lock_timeout}) reached", e)
    except psycopg.errors.InsufficientPrivilege as e:
        return failure(connection, "PermissionDenied", "permission denied", e)
    except (psycopg.errors.UndefinedTable, psycopg.errors.UndefinedObject, psycopg.errors.InvalidSchemaName) as e:
        return failure(connection, "ObjectNotFound", "no such table or index", e)
    except psycopg.OperationalError as e:
        return failure(connection, "ConnectionFailed", "the connection broke", e)
    except psycopg.Error as e:
        return failure(connection, "DatabaseError", "the database refused", e)


async def _connect(connection: Connection, step: DatabaseStep) -> psycopg.AsyncConnection[dict[str, Any]]:
    # Autocommit: VACUUM and REINDEX CONCURRENTLY refuse to run inside a transaction block.
    options = (f"-c statement_timeout={_milliseconds(step.statement_timeout)} "
               f"-c lock_timeout={_milliseconds(step.lock_timeout)}")
    return await psycopg.AsyncConnection.connect(
        connection.conninfo, autocommit=True, row_factory=dict_row, application_name=APPLICATION_NAME,
        options=options, connect_timeout=CONNECT_TIMEOUT_SECONDS)


def _milliseconds(duration: str) -> int:
    return max(int(parse_duration(duration).total_seconds() * 1000), 1)


def _seconds(duration: str) -> float:
    return parse_duration(duration).total_seconds()


def connect_failure(connection: Connection, error: psycopg.OperationalError) -> intents.Result:
    """failed(AuthenticationFailed) when the server refused the credentials, else failed(ConnectionFailed)."""
    text = str(error)
    if error.sqlstate in ("28P01", "28000") or "authentication failed" in text or "password" in text.lower():
        return failure(connection, "AuthenticationFailed", "authentication failed", error)
    return failure(connection, "ConnectionFailed", "cannot connect", error)


def failure(connection: Connection, reason: str, summary: str, error: psycopg.Error) -> intents.Result:
    """failed(reason) naming the database and the server's first line of explanation, scrubbed."""
    detail = _scrub(connection, (str(error).strip().splitlines() or [""])[0])
    sqlstate = f" [{error.sqlstate}]" if error.sqlstate else ""
    message = f"{connection.describe()}: {summary}{sqlstate}: {detail}"
    logger.warning(f"database step failed ({reason}): {message}")
    return intents.failed(reason, message)


def _scrub(connection: Connection, text: str) -> str:
    for secret in (connection.conninfo, connection.password):
        if secret:
            text = text.replace(secret, "***")
    return database_rules.bound_text(text, 300)


# The operations: each takes the open session, the step and dry_run, and returns a Result.

async def _backends(session: psycopg.AsyncConnection[dict[str, Any]]) -> list[database_rules.Backend]:
    rows = await (await session.execute(BACKENDS)).fetchall()
    return [database_rules.Backend(
        pid=row["pid"], backend_start=row["backend_start"], user=row["usename"],
        application=row["application_name"], state=row["state"], backend_type=row["backend_type"],
        same_database=row["same_database"], superuser=row["superuser"], own=row["own"],
        query_seconds=row["query_seconds"], state_seconds=row["state_seconds"],
        transaction_seconds=row["transaction_seconds"], query=row["query"],
        blocked_by=tuple(row["blocked_by"] or ()), waiting_seconds=row["waiting_seconds"],
    ) for row in rows]


async def _signal(session: psycopg.AsyncConnection[dict[str, Any]], step: DatabaseStep,
                  targets: list[database_rules.Target], function: str, dry_run: bool,
                  only: Collection[tuple[int, str]] | None) -> intents.Result:
    """Cancel or terminate the targets (all, or none when there are more than maxTerminations).

    With `only`, just those of the targets that are in it: the sessions an earlier listing recorded.
    """
    if only is not None:
        listed = set(only)
        targets = [t for t in targets if (t.backend.pid, t.describe()["backendStart"]) in listed]
    problem = database_rules.too_many(targets, step.max_terminations)
    if problem is not None:
        return intents.failed("TooManyTargets", problem)
    described = [target.describe() for target in targets]
    if dry_run or not targets:
        return intents.done({"dryRun": dry_run, "action": function, "targets": described})
    query = sql.SQL(SIGNAL).format(function=sql.Identifier(function))
    rows = await (await session.execute(query, ([t.backend.pid for t in targets],
                                                [t.backend.backend_start for t in targets]))).fetchall()
    signalled = {row["pid"] for row in rows if row["signalled"]}
    for target in described:
        target["signalled"] = target["pid"] in signalled
    logger.info(f"{function}: signalled {len(signalled)} of {len(targets)} backends {sorted(signalled)}")
    return intents.done({"dryRun": False, "action": function, "targets": described})


async def _long_running(session: psycopg.AsyncConnection[dict[str, Any]], step: DatabaseStep,
                        dry_run: bool, only: Collection[tuple[int, str]] | None) -> intents.Result:
    terminate = step.terminate_long_running is not None
    spec = step.terminate_long_running or step.cancel_long_running
    assert spec is not None
    targets = database_rules.long_running(
        await _backends(session), older_than=_seconds(spec.older_than), states=[str(s) for s in spec.states],
        usernames=spec.usernames, application_names=spec.application_names)
    return await _signal(session, step, targets, "pg_terminate_backend" if terminate else "pg_cancel_backend",
                         dry_run, only)


async def _terminate_idle(session: psycopg.AsyncConnection[dict[str, Any]], step: DatabaseStep,
                          dry_run: bool, only: Collection[tuple[int, str]] | None) -> intents.Result:
    assert step.terminate_idle is not None
    targets = database_rules.idle(await _backends(session), idle_for=_seconds(step.terminate_idle.idle_for),
                                  include_idle_in_transaction=step.terminate_idle.include_idle_in_transaction)
    return await _signal(session, step, targets, "pg_terminate_backend", dry_run, only)


async def _kill_blockers(session: psycopg.AsyncConnection[dict[str, Any]], step: DatabaseStep,
                         dry_run: bool, only: Collection[tuple[int, str]] | None) -> intents.Result:
    assert step.kill_blockers is not None
    targets = database_rules.blockers(await _backends(session), blocked_for=_seconds(step.kill_blockers.blocked_for))
    return await _signal(session, step, targets, "pg_terminate_backend", dry_run, only)


def relation(name: str) -> sql.Composable:
    """A table or index name (optionally schema.name) as quoted identifiers: never spliced as text."""
    return sql.Identifier(*database_rules.split_name(name))


async def _maintain(session: psycopg.AsyncConnection[dict[str, Any]], statements: list[sql.Composed],
                    dry_run: bool) -> intents.Result:
    """Run maintenance statements; VACUUM's "skipping" warnings about privileges count as failures."""
    rendered = [statement.as_string(session) for statement in statements]
    if dry_run:
        return intents.done({"dryRun": True, "statements": rendered})
    denied: list[str] = []

    def on_notice(notice: psycopg.errors.Diagnostic) -> None:
        if notice.sqlstate == INSUFFICIENT_PRIVILEGE or SKIPPED_FOR_PRIVILEGE in (notice.message_primary or ""):
            denied.append(notice.message_primary or "permission denied")

    session.add_notice_handler(on_notice)
    try:
        for statement in statements:
            await session.execute(statement)
    finally:
        session.remove_notice_handler(on_notice)
    if denied:
        return intents.failed("PermissionDenied", f"{denied[0]} (of {'; '.join(rendered)})")
    return intents.done({"dryRun": False, "statements": rendered})


async def _vacuum_analyze(session: psycopg.AsyncConnection[dict[str, Any]], step: DatabaseStep,
                          dry_run: bool) -> intents.Result:
    assert step.vacuum_analyze is not None
    return await _maintain(session, [sql.SQL("VACUUM (ANALYZE) {}").format(relation(table))
                                     for table in step.vacuum_analyze.tables], dry_run)


async def _analyze(session: psycopg.AsyncConnection[dict[str, Any]], step: DatabaseStep,
                   dry_run: bool) -> intents.Result:
    assert step.analyze is not None
    statements: list[sql.Composed] = [sql.SQL("ANALYZE {}").format(relation(table))
                                        for table in step.analyze.tables] or [sql.Composed([sql.SQL("ANALYZE")])]
    return await _maintain(session, statements, dry_run)


async def _reindex(session: psycopg.AsyncConnection[dict[str, Any]], step: DatabaseStep,
                   dry_run: bool) -> intents.Result:
    spec = step.reindex
    assert spec is not None
    kind, name = (sql.SQL("TABLE"), spec.table) if spec.table is not None else (sql.SQL("INDEX"), spec.index)
    assert name is not None
    concurrently = sql.SQL(" CONCURRENTLY") if spec.concurrently else sql.SQL("")
    return await _maintain(session, [sql.SQL("REINDEX {}{} {}").format(kind, concurrently, relation(name))],
                           dry_run)


REPORT_QUERIES = {
    "connections": """
        SELECT coalesce(state, 'unknown') AS state, count(*)::int AS count FROM pg_stat_activity
        WHERE backend_type = 'client backend' GROUP BY 1 ORDER BY 2 DESC""",
    "largestTables": """
        SELECT n.nspname AS schema, c.relname AS name, pg_total_relation_size(c.oid) AS bytes
        FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
        WHERE c.relkind IN ('r', 'm', 'p') AND n.nspname NOT IN ('pg_catalog', 'information_schema')
          AND n.nspname NOT LIKE 'pg_toast%%'
        ORDER BY 3 DESC LIMIT %(top_n)s""",
    "largestIndexes": """
        SELECT n.nspname AS schema, c.relname AS name, pg_relation_size(c.oid) AS bytes
        FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
        WHERE c.relkind = 'i' AND n.nspname NOT IN ('pg_catalog', 'information_schema')
          AND n.nspname NOT LIKE 'pg_toast%%'
        ORDER BY 3 DESC LIMIT %(top_n)s""",
    "deadTuples": """
        SELECT schemaname AS schema, relname AS name, n_live_tup AS live, n_dead_tup AS dead,
               round(n_dead_tup::numeric / greatest(n_live_tup + n_dead_tup, 1), 3)::float8 AS dead_ratio,
               last_autovacuum::text AS last_autovacuum
        FROM pg_stat_user_tables WHERE n_dead_tup > 0 ORDER BY n_dead_tup DESC LIMIT %(top_n)s""",
}
TOP_STATEMENTS = """
    SELECT query, calls, round(total_exec_time::numeric, 1)::float8 AS total_ms,
           round(mean_exec_time::numeric, 1)::float8 AS mean_ms
    FROM pg_stat_statements ORDER BY total_exec_time DESC LIMIT %(top_n)s"""


async def _report(session: psycopg.AsyncConnection[dict[str, Any]], step: DatabaseStep,
                  dry_run: bool) -> intents.Result:
    assert step.report is not None
    top_n = step.report.top_n
    report: dict[str, Any] = {}
    row = await (await session.execute("SELECT current_setting('max_connections')::int AS max")).fetchone()
    report["maxConnections"] = row["max"] if row else None
    for section, query in REPORT_QUERIES.items():
        report[section] = await (await session.execute(query, {"top_n": top_n})).fetchall()

    backends = await _backends(session)
    active = [database_rules.Target(b, b.query_seconds) for b in backends
              if b.state == "active" and not b.own and b.backend_type == database_rules.CLIENT_BACKEND
              and b.query_seconds is not None]
    report["longestRunning"] = [target.describe() for target in
                                sorted(active, key=lambda target: -target.seconds)[:top_n]]
    report["blocked"] = [{**database_rules.Target(b, b.waiting_seconds).describe(), "blockedBy": list(b.blocked_by)}
                         for b in backends if b.waiting_seconds is not None and b.blocked_by][:top_n]
    report["topStatements"], report["notes"] = await _top_statements(session, top_n)
    return intents.done(database_rules.bound_report(report))


async def _top_statements(session: psycopg.AsyncConnection[dict[str, Any]],
                          top_n: int) -> tuple[list[dict[str, Any]], list[str]]:
    installed = await (await session.execute(
        "SELECT 1 FROM pg_extension WHERE extname = 'pg_stat_statements'")).fetchone()
    if not installed:
        return [], ["pg_stat_statements is not installed: no top statements"]
    try:
        rows = await (await session.execute(TOP_STATEMENTS, {"top_n": top_n})).fetchall()
    except psycopg.errors.ObjectNotInPrerequisiteState:
        return [], ["pg_stat_statements is installed but not in shared_preload_libraries: no top statements"]
    for row in rows:
        row["query"] = database_rules.bound_text(database_rules.redact_sql(row["query"] or ""),
                                                 database_rules.QUERY_TEXT_LIMIT)
    return rows, []


async def _health_check(session: psycopg.AsyncConnection[dict[str, Any]], step: DatabaseStep,
                        dry_run: bool) -> intents.Result:
    assert step.health_check is not None
    await session.execute("SELECT 1")
    row = await (await session.execute("""
        SELECT pg_is_in_recovery() AS in_recovery, current_setting('server_version') AS version,
               CASE WHEN pg_is_in_recovery()
                    THEN extract(epoch FROM now() - pg_last_xact_replay_timestamp())::float8 END AS lag""")).fetchone()
    assert row is not None
    limit = step.health_check.max_replication_lag
    problem = database_rules.replication_lag_problem(row["lag"], None if limit is None else _seconds(limit))
    if problem is not None:
        return intents.failed("ReplicationLagging", problem)
    return intents.done({"inRecovery": row["in_recovery"], "replicationLagSeconds": row["lag"],
                         "serverVersion": row["version"]})


SIGNALLING = {
    "terminate_long_running": _long_running,
    "cancel_long_running": _long_running,
    "terminate_idle": _terminate_idle,
    "kill_blockers": _kill_blockers,
}
OPERATIONS = {
    "vacuum_analyze": _vacuum_analyze,
    "analyze": _analyze,
    "reindex": _reindex,
    "report": _report,
    "health_check": _health_check,
}
