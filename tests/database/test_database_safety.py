"""The database step's safety options with the operator process, the sandbox and a real PostgreSQL:
approval by default, dry runs (by the spec and by the flag), and the allow-lists. Each test starts a
long-running session and checks afterwards whether it is still alive."""

from __future__ import annotations

import asyncio
from typing import Any

import psycopg
import pytest

from remediator import manifests

from .conftest import Server, Sessions

API = "remediator.dev/v1alpha1"
KILL = {"olderThan": "200ms", "applicationNames": ["runaway"]}


async def status_of(client: manifests.Client, name: str) -> dict[str, Any]:
    return ((await client.get(API, "Incident", "default", name)) or {}).get("status") or {}


async def until_phase(client: manifests.Client, name: str, *phases: str) -> dict[str, Any]:
    for _ in range(300):
        status = await status_of(client, name)
        if status.get("phase") in phases:
            return status
        await asyncio.sleep(0.1)
    raise AssertionError(f"{name} never reached {phases}: {status}")


def alive(admin: psycopg.Connection[Any], pid: int) -> bool:
    return admin.execute("SELECT count(*) FROM pg_stat_activity WHERE pid = %s", (pid,)).fetchone() == (1,)


async def apply_incident(client: manifests.Client, postgres: Server, name: str, **spec: Any) -> None:
    await client.apply({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "orders-db", "namespace": "default"},
                        "stringData": {"uri": postgres.conninfo("firstaid")}})
    await client.apply({"apiVersion": API, "kind": "Incident", "metadata": {"name": name, "namespace": "default"},
                        "spec": {"severity": "P1", "summary": "runaway queries", **spec, "steps": [
                            {"name": "kill", "database": {"connectionSecretRef": {"name": "orders-db", "key": "uri"},
                                                          "terminateLongRunning": KILL}}]}})


@pytest.mark.timeout(90)
async def test_terminating_sessions_waits_for_approval_under_the_default_policy(
        postgres: Server, admin: psycopg.Connection[Any], sessions: Sessions, client: manifests.Client,
        start_operator: Any) -> None:
    runaway = await sessions.running("runaway")
    await start_operator()  # no --approval-severities: the default policy
    await apply_incident(client, postgres, "wait-for-me")
    status = await until_phase(client, "wait-for-me", "AwaitingApproval")
    assert status["steps"][0]["state"] == "AwaitingApproval"
    assert alive(admin, runaway), "nothing is terminated before a person approves"


@pytest.mark.timeout(90)
@pytest.mark.parametrize("how", ["spec", "flag"])
async def test_a_dry_run_lists_the_sessions_it_would_terminate_and_they_live_on(
        postgres: Server, admin: psycopg.Connection[Any], sessions: Sessions, client: manifests.Client,
        start_operator: Any, how: str) -> None:
    runaway = await sessions.running("runaway")
    await asyncio.sleep(0.3)  # older than 200ms
    await start_operator("--approval-severities", "none", *(["--dry-run"] if how == "flag" else []))
    await apply_incident(client, postgres, "rehearsal", **({"dryRun": True} if how == "spec" else {}))
    status = await until_phase(client, "rehearsal", "Planned")
    [kill] = status["steps"]
    assert kill["state"] == "Skipped" and kill["message"] == "dry run: would terminate 1 session(s) " \
                                                             "(terminate_long_running)"
    assert [t["pid"] for t in kill["result"]["targets"]] == [runaway]
    assert alive(admin, runaway)


@pytest.mark.timeout(90)
@pytest.mark.parametrize(("flags", "reason"), [
    (("--allow-namespace", "other"), "NamespaceNotAllowed"),
    (("--allow-database-host", "db.internal.example"), "HostNotAllowed"),
], ids=["namespace", "database-host"])
async def test_the_allow_lists_keep_the_database_step_away(
        postgres: Server, admin: psycopg.Connection[Any], sessions: Sessions, client: manifests.Client,
        start_operator: Any, flags: tuple[str, ...], reason: str) -> None:
    runaway = await sessions.running("runaway")
    await asyncio.sleep(0.3)
    await start_operator("--approval-severities", "none", *flags)
    await apply_incident(client, postgres, "kept-away")
    status = await until_phase(client, "kept-away", "Failed")
    assert [e["reason"] for e in status["timeline"] if e.get("step") == "kill"] == [reason]
    assert alive(admin, runaway)
