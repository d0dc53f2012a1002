"""A KeyRotation of a PostgreSQL role's password, end to end: the operator process against the sandbox and the
embedded PostgreSQL (alternatingUsers). The application's old login keeps working through the grace period and
is refused after it; the new user and password work; no password reaches the status, the Events, the
operator's log or the server's log; SIGKILL inside the database stages still rotates once.
"""

from __future__ import annotations

import base64
import json
import pathlib
from collections.abc import Iterator
from typing import Any

import psycopg
import pytest
from tests.database.conftest import Server
from tests.scenarios.support import events_of, wait_for
from tests.scenarios.test_crash_safety import crash_env, killed_at_the_crash_point

from remediator import manifests
from remediator.sandbox import runner

API = "remediator.dev/v1alpha1"
OPERATOR, OPERATOR_PASSWORD = "kr_operator", "op-Kr55-never-logged"
ROLE, OLD = "kr_orders", "old-Kr19-orders-password"
HBA_LINE = "local all /^kr_ scram-sha-256\n"

pytestmark = pytest.mark.timeout(120)


@pytest.fixture(scope="module")
def server(postgres: Server) -> Iterator[Server]:
    """The roles must prove their passwords (scram-sha-256 for kr_*); the operator's role may create roles and
    administers the rotated one, and is no superuser."""
    hba = postgres.pgdata / "pg_hba.conf"
    if HBA_LINE not in hba.read_text():
        hba.write_text(HBA_LINE + hba.read_text())
    with psycopg.connect(postgres.uri, autocommit=True) as admin:
        admin.execute("SELECT pg_reload_conf()")
        admin.execute(f"CREATE ROLE {OPERATOR} LOGIN CREATEROLE PASSWORD '{OPERATOR_PASSWORD}'")
        admin.execute(f"GRANT pg_signal_backend, pg_read_all_stats TO {OPERATOR}")
        admin.execute(f"ALTER ROLE {OPERATOR} SET log_statement = 'all'")
        admin.execute(f"CREATE ROLE {ROLE} LOGIN PASSWORD '{OLD}'")
        admin.execute(f"GRANT {ROLE} TO {OPERATOR} WITH ADMIN TRUE, INHERIT FALSE, SET FALSE")
    yield postgres


def can_log_in(server: Server, user: str, password: str) -> bool:
    try:
        with psycopg.connect(server.conninfo(user, password=password), autocommit=True) as connection:
            connection.execute("SELECT 1")
    except psycopg.OperationalError:
        return False
    return True


def secret(name: str, values: dict[str, str]) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": name, "namespace": "default"},
            "data": {key: base64.b64encode(value.encode()).decode() for key, value in values.items()}}


async def values_of(client: manifests.Client, name: str) -> dict[str, str]:
    found = await client.get("v1", "Secret", "default", name)
    return {key: base64.b64decode(value).decode() for key, value in ((found or {}).get("data") or {}).items()}


async def rotation(client: manifests.Client) -> dict[str, Any]:
    found = await client.get(API, "KeyRotation", "default", "orders-db")
    return dict((found or {}).get("status") or {})


async def at_stage(client: manifests.Client, stage: str) -> bool:
    return ((await rotation(client)).get("rotation") or {}).get("stage") == stage


async def deploy_orders(client: manifests.Client, server: Server, role: str) -> None:
    """The operator's connection Secret, the application's Secret (user and password), and the application."""
    await client.apply(secret("orders-admin", {"uri": server.conninfo(OPERATOR, password=OPERATOR_PASSWORD)}))
    await client.apply(secret("orders-db", {"username": role, "password": OLD}))
    await client.apply({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "orders",
                                                                                   "namespace": "default"},
                        "spec": {"replicas": 1, "selector": {"matchLabels": {"app": "orders"}}, "template": {
                            "metadata": {"labels": {"app": "orders"}}, "spec": {"containers": [{
                                "name": "orders", "image": "orders:1",
                                "envFrom": [{"secretRef": {"name": "orders-db"}}]}]}}}})


async def test_the_old_login_works_through_the_grace_period_and_is_refused_after_it(
        server: Server, sandbox: runner.RunningSandbox, client: manifests.Client, start_operator: Any,
        tmp_path: pathlib.Path) -> None:
    log = server.pgdata / "log"
    log_start = log.stat().st_size
    await deploy_orders(client, server, ROLE)
    operator = await start_operator("--restart-coalesce", "0s")
    key_rotation = {"apiVersion": API, "kind": "KeyRotation", "metadata": {"name": "orders-db", "namespace": "default"},
                    "spec": {"secretRef": {"name": "orders-db"}, "keys": [{"key": "password"}],
                             "consumers": {"auto": True}, "gracePeriod": "4s", "trigger": "1",
                             "databaseRole": {"connectionSecretRef": {"name": "orders-admin", "key": "uri"},
                                              "role": ROLE, "passwordKey": "password", "usernameKey": "username"}}}
    await client.apply(key_rotation)
    await wait_for(lambda: _idle(client))
    held = psycopg.connect(server.conninfo(ROLE, password=OLD), autocommit=True)  # the application's open session
    try:
        key_rotation["spec"]["trigger"] = "2"
        await client.apply(key_rotation)
        await wait_for(lambda: at_stage(client, "Grace"), timeout=30)

        during = await values_of(client, "orders-db")
        new = during["password"]
        assert during["username"] == f"{ROLE}_b" and during["username_previous"] == ROLE
        assert during["password_previous"] == OLD and new != OLD
        assert can_log_in(server, f"{ROLE}_b", new), "the new user and password work"
        assert can_log_in(server, ROLE, OLD), "the old login keeps working through the grace period"

        await wait_for(lambda: at_stage(client, "Done"), timeout=30)
        assert not can_log_in(server, ROLE, OLD), "refused after revocation"
        assert can_log_in(server, f"{ROLE}_b", new)
        held.execute("SELECT 1")  # open sessions are not terminated without terminateSessionsOnRevoke
        after = await values_of(client, "orders-db")
        assert after == {"username": f"{ROLE}_b", "password": new}
    finally:
        held.close()

    status = await rotation(client)
    assert status["currentDatabaseUser"] == f"{ROLE}_b"
    assert status["rotation"]["database"]["sessionsAtRevoke"] >= 1
    posted = await events_of(sandbox, "orders-db")
    assert "DatabaseUserRevoked" in {e["reason"] for e in posted}
    with log.open("rb") as server_log:
        server_log.seek(log_start)
        server_logged = server_log.read().decode(errors="replace")
    assert f'ALTER ROLE "{ROLE}_b" PASSWORD \'SCRAM-SHA-256$4096:' in server_logged, "statements are logged"
    told = json.dumps(status) + json.dumps(posted) + operator.log + server_logged
    for password in (OLD, new, OPERATOR_PASSWORD):
        assert password not in told


async def _idle(client: manifests.Client) -> bool:
    return any(c["type"] == "Ready" and c["status"] == "True" for c in (await rotation(client)).get("conditions", []))


# A database rotation acts 7 times: stage the values, make <role>_b, set and prove its password, promote,
# restart the consumer, revoke the old user, remove the previous keys.
CRASH_POINTS = ["keyrotation-after-action@2", "keyrotation-after-action@3", "keyrotation-before-action@4",
                "keyrotation-after-action@6"]


@pytest.mark.parametrize("point", CRASH_POINTS)
async def test_a_crash_inside_a_database_rotation_rotates_once_and_leaves_one_working_login(
        server: Server, client: manifests.Client, start_operator: Any, tmp_path: pathlib.Path, point: str) -> None:
    role = f"kr_crash{CRASH_POINTS.index(point)}"
    with psycopg.connect(server.uri, autocommit=True) as admin:
        admin.execute(f"CREATE ROLE {role} LOGIN PASSWORD '{OLD}'")
        admin.execute(f"GRANT {role} TO {OPERATOR} WITH ADMIN TRUE, INHERIT FALSE, SET FALSE")
    await deploy_orders(client, server, role)
    crashing = await start_operator("--restart-coalesce", "0s", env=crash_env(point, tmp_path))
    await client.apply({"apiVersion": API, "kind": "KeyRotation", "metadata": {
        "name": "orders-db", "namespace": "default", "annotations": {"remediator.dev/rotate": "leak"}},
        "spec": {"secretRef": {"name": "orders-db"}, "keys": [{"key": "password"}], "consumers": {"auto": True},
                 "gracePeriod": "0s", "databaseRole": {
                     "connectionSecretRef": {"name": "orders-admin", "key": "uri"}, "role": role,
                     "passwordKey": "password", "usernameKey": "username"}}})
    await killed_at_the_crash_point(crashing, tmp_path)
    await start_operator("--restart-coalesce", "0s")
    await wait_for(lambda: at_stage(client, "Done"), timeout=40)

    after = await values_of(client, "orders-db")
    assert after["username"] == f"{role}_b" and after["password"] != OLD
    assert can_log_in(server, f"{role}_b", after["password"]), "the login the Secret names works"
    assert not can_log_in(server, role, OLD), "the old login is revoked"
    status = await rotation(client)
    assert status["currentVersion"] == 1 and status["currentDatabaseUser"] == f"{role}_b"
    assert [e["reason"] for e in status["timeline"]].count("PasswordSet") == 1
