"""Clients for tests against a sandbox started with authentication and RBAC (`--auth`)."""

from __future__ import annotations

import httpx

from remediator.sandbox import runner


def as_token(sandbox: runner.RunningSandbox, token: str | None) -> httpx.AsyncClient:
    """An HTTP client sending `token` as its bearer token (none when None), trusting the sandbox's CA."""
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    return httpx.AsyncClient(base_url=sandbox.url, headers=headers, timeout=10, verify=sandbox.client_ssl())


def as_user(sandbox: runner.RunningSandbox, username: str, *groups: str) -> httpx.AsyncClient:
    """An HTTP client authenticating as `username` in `groups`."""
    return as_token(sandbox, sandbox.token_for(username, groups))
