"""A KeyRotation's database side: the connection from its Secret (within the operator's database allow-list),
and the role actions of actions/database_roles.py with the password read from a Secret, never from the
engine or the status."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Collection

import kubernetes.client

from remediator.actions import database, database_roles, secrets
from remediator.engine import allow_lists, intents
from remediator.engine.key_rotations import moves


async def _connected(api: kubernetes.client.ApiClient, namespace: str, where: moves.Database,
                     allowed_hosts: Collection[str] | None,
                     act: Callable[[database.Connection], Awaitable[intents.Result]]) -> intents.Result:
    """`act` on the connection the Secret describes; failed(...) when it holds none or its host is not allowed."""
    connection = await database.connection_from_secret(api, namespace, where.secret, where.key)
    if isinstance(connection, intents.Result):
        return connection
    verdict = allow_lists.database_hosts_allowed(connection.hosts, allowed_hosts)
    if not verdict.proceeds:
        return intents.failed(verdict.reason, verdict.message)
    return await act(connection)


async def observe(api: kubernetes.client.ApiClient, namespace: str, intent: moves.ObserveRole,
                  allowed_hosts: Collection[str] | None) -> intents.Result:
    """done(RoleFacts) of the role and <role>_b, or why the database could not be asked."""
    return await _connected(api, namespace, intent.database, allowed_hosts,
                            lambda connection: database_roles.observe(connection, intent.role))


async def ensure_alternate(api: kubernetes.client.ApiClient, namespace: str, intent: moves.EnsureAlternateUser,
                           allowed_hosts: Collection[str] | None) -> intents.Result:
    return await _connected(api, namespace, intent.database, allowed_hosts,
                            lambda connection: database_roles.ensure_alternate(connection, intent.role))


async def set_password(api: kubernetes.client.ApiClient, namespace: str, intent: moves.SetRolePassword,
                       allowed_hosts: Collection[str] | None) -> intents.Result:
    """Set the user's password to the Secret's value, then prove it by logging in with it."""

    async def apply(connection: database.Connection) -> intents.Result:
        password = await secrets.read_value(api, namespace, intent.secret, intent.key, intent.mark)
        if isinstance(password, intents.Result):
            return password
        applied = await database_roles.set_password(connection, intent.role, intent.user, password, intent.strategy)
        if not applied.succeeded:
            return applied
        return await database_roles.prove_login(connection, intent.user, password)

    return await _connected(api, namespace, intent.database, allowed_hosts, apply)


async def revoke(api: kubernetes.client.ApiClient, namespace: str, intent: moves.RevokeRoleUser,
                 allowed_hosts: Collection[str] | None) -> intents.Result:
    return await _connected(api, namespace, intent.database, allowed_hosts,
                            lambda connection: database_roles.revoke(connection, intent.role, intent.user,
                                                                     intent.strategy,
                                                                     terminate_sessions=intent.terminate_sessions))
