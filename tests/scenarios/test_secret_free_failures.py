"""A webhook that fails leaves no secret behind: neither its URL nor the credentials in it reach the
Incident's status, its Events or the operator's log, however the webhook fails.

A chat webhook's URL is a credential (Slack: "Keep it secret, keep it safe. Your webhook URL
contains a secret."), and URLs may carry userinfo (RFC 3986 section 3.2.1, deprecated for exactly
this reason), so a failure message may name the Secret, never what it holds.
"""

from __future__ import annotations

import asyncio
import base64
from collections.abc import AsyncIterator
from typing import Any

import aiohttp.web
import pytest
from tests.local_servers import serving

from remediator import manifests
from remediator.sandbox import runner

from .support import events_of, wait_for

API = "remediator.dev/v1alpha1"
USER, PASSWORD, TOKEN = "hookuser", "hunter2-webhook-pw", "T000/B111/XyZsecretToken"
SECRETS = (PASSWORD, TOKEN, f"{USER}:{PASSWORD}")


class Webhook:
    """A local chat webhook that answers 500, or takes requests and never answers."""

    def __init__(self) -> None:
        self.url = ""
        self.requests = 0
        self.release = asyncio.Event()

    async def broken(self, request: aiohttp.web.Request) -> aiohttp.web.Response:
        self.requests += 1
        return aiohttp.web.Response(status=500, text=f"internal error for {request.path}")

    async def hanging(self, request: aiohttp.web.Request) -> aiohttp.web.Response:
        self.requests += 1
        await self.release.wait()
        return aiohttp.web.Response(text="too late")


@pytest.fixture()
async def webhook() -> AsyncIterator[Webhook]:
    fake = Webhook()
    app = aiohttp.web.Application()
    app.router.add_post(f"/broken/{TOKEN}", fake.broken)
    app.router.add_post(f"/hanging/{TOKEN}", fake.hanging)
    async with serving(app) as url:
        fake.url = url.replace("http://", f"http://{USER}:{PASSWORD}@")
        yield fake
        fake.release.set()


def webhook_url(webhook: Webhook, failure: str) -> str:
    match failure:
        case "refused":  # port 1 on the loopback: nothing listens there
            return f"http://{USER}:{PASSWORD}@127.0.0.1:1/{TOKEN}"
        case "unresolvable":  # .example never resolves (RFC 2606): the brief's own example of a webhook
            return f"https://{USER}:{PASSWORD}@hooks.example/{TOKEN}"
        case "malformed":  # a port that is not a number: the URL itself is invalid
            return f"https://{USER}:{PASSWORD}@hooks.example:port/{TOKEN}"
        case "timeout":
            return f"{webhook.url}/hanging/{TOKEN}"
        case _:
            return f"{webhook.url}/broken/{TOKEN}"


async def notify_fails(client: manifests.Client, name: str) -> dict[str, Any] | None:
    incident = await client.get(API, "Incident", "default", name) or {}
    steps = (incident.get("status") or {}).get("steps") or []
    return incident if steps and steps[0]["state"] == "Failed" else None


@pytest.mark.parametrize(("failure", "message"), [
    ("refused", "the webhook in secret chat failed: ConnectError"),
    ("unresolvable", "the webhook in secret chat failed: ConnectError"),
    ("timeout", "the webhook in secret chat failed: ReadTimeout"),
    ("broken", "the webhook in secret chat answered 500"),
    ("malformed", "the webhook URL in secret chat is not a valid URL"),
])
@pytest.mark.timeout(60)
async def test_a_failing_webhook_leaves_neither_its_url_nor_its_credentials_anywhere(
        sandbox: runner.RunningSandbox, client: manifests.Client, start_operator: Any, webhook: Webhook,
        failure: str, message: str) -> None:
    url = webhook_url(webhook, failure)
    await client.apply({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "chat", "namespace": "default"},
                        "data": {"url": base64.b64encode(url.encode()).decode()}})
    operator = await start_operator("--verbose")
    await client.apply({"apiVersion": API, "kind": "Incident", "metadata": {"name": "page", "namespace": "default"},
                        "spec": {"severity": "P2", "summary": "checkout is down", "steps": [
                            {"name": "tell", "notify": {"webhookSecretRef": {"name": "chat", "key": "url"},
                                                        "message": "rolling back", "failOnError": True}}]}})

    incident = await wait_for(lambda: notify_fails(client, "page"), timeout=30)
    assert isinstance(incident, dict)
    assert incident["status"]["steps"][0]["message"] == message
    assert webhook.requests == (1 if failure in ("timeout", "broken") else 0)

    async def events_posted() -> list[dict[str, Any]] | None:
        events = await events_of(sandbox, "page")
        return events if any(message in e["message"] for e in events) else None

    events = await wait_for(events_posted, timeout=5)
    for where, text in (("status", str(incident)), ("events", str(events)), ("log", operator.log)):
        for secret in (url, *SECRETS):
            assert secret not in text, f"{secret!r} is in the {where}"
