"""The runbook's "High CPU usage" for the database, end to end: report, kill the runaway queries,
VACUUM ANALYZE the bloated table, verify — with the operator process, the sandbox and a real PostgreSQL."""

from __future__ import annotations

import asyncio
import logging
from typing import Any
from urllib.parse import quote

import httpx
import psycopg
import psycopg.conninfo
import pytest
from tests.scenarios.support import events_of, wait_for

from remediator import manifests
from remediator.sandbox import runner

from .conftest import PASSWORDS, Server, Sessions, wait_until

API = "remediator.dev/v1alpha1"


async def incident_status(client: manifests.Client, name: str) -> dict[str, Any]:
    return ((await client.get(API, "Incident", "default", name)) or {}).get("status") or {}


@pytest.mark.timeout(120)
async def test_database_cpu_high_is_reported_mitigated_and_verified(
        postgres: Server, admin: psycopg.Connection[Any], sessions: Sessions, sandbox: runner.RunningSandbox,
        client: manifests.Client, start_operator: Any, caplog: pytest.LogCaptureFixture) -> None:
    admin.execute("DROP TABLE IF EXISTS orders; CREATE TABLE orders (id int) WITH (autovacuum_enabled = false);"
                  "INSERT INTO orders SELECT generate_series(1, 20000); DELETE FROM orders WHERE id % 2 = 0;"
                  "SELECT pg_stat_force_next_flush()")
    # The DELETE's statistics must be in before the VACUUM, or they would land after it.
    wait_until(lambda: (admin.execute(
        "SELECT n_dead_tup FROM pg_stat_user_tables WHERE relname = 'orders'").fetchone() or (0,))[0] > 0)
    runaway = [await sessions.running("checkout", "SELECT pg_sleep(120) /* card 4111111111111111 */")
               for _ in range(2)]
    bystander = await sessions.running("reporting", "SELECT pg_sleep(120)")
    await client.apply({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "orders-db", "namespace": "default"},
                        "stringData": {"uri": postgres.conninfo("firstaid")}})
    operator = await start_operator("--approval-severities", "none")
    database = {"connectionSecretRef": {"name": "orders-db", "key": "uri"}}
    steps = [
        {"name": "report", "database": {**database, "report": {}}},
        {"name": "kill-runaway", "database": {**database, "terminateLongRunning": {
            "olderThan": "1s", "applicationNames": ["checkout"]}}},
        {"name": "vacuum", "database": {**database, "vacuumAnalyze": {"tables": ["public.orders"]}}},
        {"name": "verify", "database": {**database, "healthCheck": {}}},
    ]
    await client.apply({"apiVersion": API, "kind": "Incident",
                        "metadata": {"name": "db-cpu-high", "namespace": "default"},
                        "spec": {"severity": "P1", "summary": "database CPU above 90% for 10 minutes", "steps": steps}})

    for _ in range(400):
        status = await incident_status(client, "db-cpu-high")
        if status.get("phase") in ("Resolved", "Failed"):
            break
        await asyncio.sleep(0.1)
    assert status.get("phase") == "Resolved", status

    by_name = {s["name"]: s for s in status["steps"]}
    killed = {t["pid"] for t in by_name["kill-runaway"]["result"]["targets"]}
    assert killed == set(runaway)
    alive = {row[0] for row in admin.execute("SELECT pid FROM pg_stat_activity").fetchall()}
    assert bystander in alive and not (set(runaway) & alive)
    assert "4111111111111111" not in str(status), "query literals are redacted"
    assert by_name["report"]["result"]  # the report is recorded in the step result
    # The statistics are flushed asynchronously after the VACUUM.
    wait_until(lambda: (admin.execute(
        "SELECT n_dead_tup FROM pg_stat_user_tables WHERE relname = 'orders'").fetchone() or (1,))[0] == 0)
    story = [(e.get("step"), e["reason"]) for e in status["timeline"]]
    assert story == [(None, "Acknowledged"), ("report", "StepSucceeded"), ("kill-runaway", "StepSucceeded"),
                     ("vacuum", "StepSucceeded"), ("verify", "StepSucceeded"), (None, "Resolved")]
    assert "terminated 2 session(s)" in by_name["kill-runaway"]["message"]
    summary = next(e["message"] for e in status["timeline"] if e.get("step") == "report")
    assert summary.startswith("report: ") and " connections (" in summary and "longest query" in summary
    assert "pg_stat_statements" in summary
    async with httpx.AsyncClient(base_url=sandbox.url) as http:
        for _ in range(50):  # the last events are posted right after the final status write
            events = (await http.get("/api/v1/namespaces/default/events",
                                     params={"fieldSelector": "involvedObject.name=db-cpu-high"})).json()["items"]
            if len(events) == len(status["timeline"]):
                break
            await asyncio.sleep(0.1)
    assert len(events) == len(status["timeline"])
    for password in PASSWORDS.values():
        for where in (str(status), caplog.text, str(events), operator.log):
            assert password not in where
    logging.getLogger(__name__).debug("database incident resolved")


WRONG_PASSWORD = "s3cr3t/wr@ng:pw%"  # characters a URI must percent-encode: neither form may leak


def uri_for(postgres: Server, failure: str) -> str:
    """A libpq URI with a password in it that cannot connect: nothing listens on the port, or the
    password is wrong (the `locked` role proves its password, see conftest)."""
    if failure == "refused":
        return f"postgresql://firstaid:{quote(PASSWORDS['firstaid'], safe='')}@127.0.0.1:1/postgres"
    params = psycopg.conninfo.conninfo_to_dict(postgres.uri)
    where = "&".join(f"{key}={quote(str(params[key]), safe='')}" for key in ("host", "port") if key in params)
    return f"postgresql://locked:{quote(WRONG_PASSWORD, safe='')}@/postgres?{where}"


@pytest.mark.parametrize(("failure", "message"), [
    ("refused", "firstaid@127.0.0.1:1/postgres: cannot connect"),
    ("wrong-password", "locked@"),
])
@pytest.mark.timeout(60)
async def test_a_database_that_refuses_the_connection_leaves_no_password_anywhere(
        postgres: Server, sandbox: runner.RunningSandbox, client: manifests.Client, start_operator: Any,
        failure: str, message: str) -> None:
    uri = uri_for(postgres, failure)
    await client.apply({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "orders-db", "namespace": "default"},
                        "stringData": {"uri": uri}})
    operator = await start_operator("--verbose", "--approval-severities", "none")
    await client.apply({"apiVersion": API, "kind": "Incident", "metadata": {"name": "db-down", "namespace": "default"},
                        "spec": {"severity": "P1", "summary": "orders database unreachable", "steps": [
                            {"name": "verify", "database": {"connectionSecretRef": {"name": "orders-db", "key": "uri"},
                                                            "healthCheck": {}}}]}})

    async def failed_step() -> dict[str, Any] | None:
        status = await incident_status(client, "db-down")
        steps = status.get("steps") or []
        return status if steps and steps[0]["state"] == "Failed" else None

    status = await wait_for(failed_step, timeout=30)
    assert isinstance(status, dict)
    assert status["steps"][0]["message"].startswith(message), status["steps"][0]
    if failure == "wrong-password":
        assert "authentication failed" in status["steps"][0]["message"]

    async def events_posted() -> list[dict[str, Any]] | None:
        events = await events_of(sandbox, "db-down")
        return events if any("[verify]" in e["message"] for e in events) else None

    events = await wait_for(events_posted, timeout=5)
    secrets = (uri, *PASSWORDS.values(), WRONG_PASSWORD, quote(WRONG_PASSWORD, safe=""))
    for where, text in (("status", str(status)), ("events", str(events)), ("log", operator.log)):
        for secret in secrets:
            assert secret not in text, f"{secret!r} is in the {where}"
