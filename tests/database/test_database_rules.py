"""Choosing backends and redacting queries, without a database."""

from __future__ import annotations

import datetime
import json
from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from remediator.engine import database_rules
from remediator.engine.database_rules import Backend

STARTED = datetime.datetime(2026, 1, 1, tzinfo=datetime.UTC)


def backend(pid: int, **facts: Any) -> Backend:
    defaults: dict[str, Any] = dict(
        backend_start=STARTED, user="app", application="web", state="active", backend_type="client backend",
        same_database=True, superuser=False, own=False, query_seconds=100.0, state_seconds=100.0,
        transaction_seconds=100.0, query="SELECT 1")
    return Backend(pid=pid, **{**defaults, **facts})


def pids(targets: list[database_rules.Target]) -> list[int]:
    return [target.backend.pid for target in targets]


def test_long_running_queries_spare_ourselves_superusers_background_workers_and_other_databases() -> None:
    backends = [
        backend(1), backend(2, own=True), backend(3, superuser=True), backend(4, backend_type="autovacuum worker"),
        backend(5, backend_type="walsender"), backend(6, same_database=False), backend(7, query_seconds=5.0),
        backend(8, state="idle"), backend(9, user="batch"), backend(10, application="cron"),
        backend(11, query_seconds=500.0),
    ]
    chosen = database_rules.long_running(backends, older_than=60, states=["active"], usernames=["app"],
                                         application_names=["web"])
    assert pids(chosen) == [11, 1]  # longest first


def test_idle_sessions_include_idle_in_transaction_only_when_asked() -> None:
    backends = [backend(1, state="idle"), backend(2, state="idle in transaction"),
                backend(3, state="idle", state_seconds=1.0), backend(4, state="active"),
                backend(5, state="idle", superuser=True)]
    assert pids(database_rules.idle(backends, idle_for=60, include_idle_in_transaction=False)) == [1]
    assert pids(database_rules.idle(backends, idle_for=60, include_idle_in_transaction=True)) == [1, 2]


def test_only_the_head_of_a_lock_chain_is_a_blocker() -> None:
    backends = [
        backend(1, state="idle in transaction"),  # holds the row lock
        backend(2, blocked_by=(1,), waiting_seconds=30.0),
        backend(3, blocked_by=(1, 2), waiting_seconds=20.0),
        backend(4, superuser=True, state="idle in transaction"),  # a protected head
        backend(5, blocked_by=(4,), waiting_seconds=90.0),
        backend(6, state="idle in transaction"),
        backend(7, blocked_by=(6,), waiting_seconds=2.0),  # not waiting long enough
    ]
    chosen = database_rules.blockers(backends, blocked_for=10)
    assert pids(chosen) == [1] and chosen[0].seconds == 30.0


def test_a_deadlock_cycle_has_no_head() -> None:
    backends = [backend(1, blocked_by=(2,), waiting_seconds=30.0), backend(2, blocked_by=(1,), waiting_seconds=30.0)]
    assert database_rules.blockers(backends, blocked_for=10) == []


def test_more_targets_than_allowed_is_refused_with_a_reason() -> None:
    targets = database_rules.idle([backend(i, state="idle") for i in range(3)], idle_for=1,
                                  include_idle_in_transaction=False)
    assert database_rules.too_many(targets, 3) is None
    assert "3 backends match, more than maxTerminations (2)" in (database_rules.too_many(targets, 2) or "")


def test_replication_lag_is_a_problem_only_beyond_the_limit() -> None:
    assert database_rules.replication_lag_problem(None, 10) is None
    assert database_rules.replication_lag_problem(5, None) is None
    assert database_rules.replication_lag_problem(5, 10) is None
    assert "exceeds maxReplicationLag" in (database_rules.replication_lag_problem(11, 10) or "")


def test_schema_qualified_names_split_into_identifiers() -> None:
    assert database_rules.split_name("public.orders") == ("public", "orders")
    assert database_rules.split_name("orders") == ("orders",)
    assert database_rules.split_name('x"; DROP TABLE y; --') == ('x"; DROP TABLE y; --',)


def test_a_report_is_cut_to_size_from_its_longest_list() -> None:
    report = {"maxConnections": 100, "longestRunning": [{"query": "x" * 500}] * 100, "notes": ["kept"]}
    bounded = database_rules.bound_report(report, limit=5000)
    assert len(json.dumps(bounded)) <= 5000 and bounded["truncated"] is True
    assert bounded["notes"] == ["kept"] and 0 < len(bounded["longestRunning"]) < 100
    assert len(report["longestRunning"]) == 100  # the input is not changed


def test_a_target_records_its_query_redacted_and_bounded() -> None:
    described = database_rules.Target(backend(1, query="SELECT '" + "s" * 5000 + "'"), 12.345).describe()
    assert described["query"] == "SELECT '?'" and described["durationSeconds"] == 12.3
    long = database_rules.Target(backend(1, query="SELECT " + "a, " * 1000), 1).describe()
    assert len(long["query"]) == database_rules.QUERY_TEXT_LIMIT


def test_literals_are_redacted_and_the_rest_is_kept() -> None:
    cases = {
        "SELECT * FROM users WHERE password = 'hunter2' AND id = 42": "SELECT * FROM users WHERE password = '?' "
                                                                      "AND id = ?",
        "SELECT 'it''s', E'a\\'b', $$x$y$$, $tag$ $$ $tag$": "SELECT '?', E'?', '?', '?'",
        'SELECT "col""1", t1.c2 FROM "t 3" WHERE x = $1': 'SELECT "col""1", t1.c2 FROM "t 3" WHERE x = $1',
        "SELECT 3.14, .5, 1e-9, 0x1F, 1_000, -7": "SELECT ?, ?, ?, ?, ?, -?",
        "SELECT 1 -- card 4111\n/* key 'k' /* nested */ */ FROM t": "SELECT ? --\n/* */ FROM t",
        "SELECT b'0101', x'1f', U&'d\\0061'": "SELECT b'?', x'?', U&'?'",
        "UPDATE t SET s = 'truncated by track_activity_query_si": "UPDATE t SET s = '?'",
        "SELECT E'\\\\'": "SELECT E'?'",
    }
    for query, redacted in cases.items():
        assert database_rules.redact_sql(query) == redacted, query


def _standard(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def _escape(text: str) -> str:
    return "E'" + text.replace("\\", "\\\\").replace("'", "\\'") + "'"


def _dollar(text: str) -> str:
    tag = "$q$"
    while tag in text:
        tag = tag[:-1] + "q$"
    return tag + text + tag


LITERALS = st.one_of(
    st.builds(_standard, st.text()).map(lambda quoted: (quoted, "'?'")),
    st.builds(_escape, st.text()).map(lambda quoted: (quoted, "E'?'")),
    st.builds(_dollar, st.text()).map(lambda quoted: (quoted, "'?'")),
    st.integers(min_value=0).map(lambda number: (str(number), "?")),
    st.floats(min_value=0, allow_nan=False, allow_infinity=False).map(lambda number: (repr(number), "?")),
)


@given(st.lists(LITERALS, min_size=1, max_size=5))
def test_no_literal_survives_redaction(literals: list[tuple[str, str]]) -> None:
    query = "SELECT * FROM t1 WHERE " + " AND ".join(f"c{i} = {lit}" for i, (lit, _) in enumerate(literals))
    expected = "SELECT * FROM t1 WHERE " + " AND ".join(f"c{i} = {red}" for i, (_, red) in enumerate(literals))
    assert database_rules.redact_sql(query) == expected


@given(st.text())
def test_redaction_never_fails_and_keeps_nothing_quoted(text: str) -> None:
    redacted = database_rules.redact_sql(text)
    assert database_rules.redact_sql(redacted) == redacted  # nothing left to redact
