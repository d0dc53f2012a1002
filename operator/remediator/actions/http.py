"""HTTP checks and notifications through httpx. Nothing here logs URLs' secrets or message bodies."""

from __future__ import annotations

import base64
from collections.abc import Collection
from typing import Any

import httpx
import kubernetes.client
from kubernetes.client.exceptions import ApiException

from remediator.actions import egress, retries
from remediator.engine import allow_lists, intents

BODY_LIMIT = 64 * 1024


async def probe(intent: intents.ProbeHttp, allowed_hosts: Collection[str] | None = None) -> intents.Result:
    """One request: the status and (the start of) the body, or why no answer came.

    Only to hosts on the egress allow-list (`allowed_hosts`, None: any), never to a metadata address.
    """
    try:
        async with egress.client(allowed_hosts, timeout=intent.timeout_seconds) as client:
            response = await client.request(intent.method, intent.url, headers=dict(intent.headers))
    except egress.EgressRefused as e:
        return intents.failed(e.reason, e.message)
    except httpx.TimeoutException:
        return intents.failed("Timeout", f"{intent.method} {intent.url} did not answer within "
                              f"{intent.timeout_seconds:g}s")
    except (httpx.HTTPError, httpx.InvalidURL) as e:
        return intents.failed("ConnectionFailed", f"{intent.method} {intent.url} failed: {type(e).__name__}")
    return intents.done({"status": response.status_code, "body": response.text[:BODY_LIMIT]})


async def read_secret_value(api: kubernetes.client.ApiClient, namespace: str, name: str, key: str) -> str | None:
    """The decoded value of one Secret key, or None when the Secret or key is missing."""
    core = kubernetes.client.CoreV1Api(api)
    try:
        secret: Any = await retries.call(core.read_namespaced_secret, name, namespace)
    except ApiException as e:
        if e.status == 404:
            return None
        raise
    encoded = (secret.data or {}).get(key)
    return None if encoded is None else base64.b64decode(encoded).decode()


async def notify(api: kubernetes.client.ApiClient, namespace: str, intent: intents.Notify,
                 allowed_hosts: Collection[str] | None = None) -> intents.Result:
    """POST {"text": ...} (Slack-compatible) to the webhook URL held in the Secret.

    Failure messages name the Secret, never the URL: a webhook URL is a credential.
    """
    try:
        url = await read_secret_value(api, namespace, intent.secret_name, intent.secret_key)
    except ApiException as e:
        return intents.failed("SecretUnreadable", f"secret {intent.secret_name}: API error {e.status}")
    if url is None:
        return intents.failed("SecretNotFound", f"secret {intent.secret_name} or its key {intent.secret_key} "
                              "does not exist")
    try:
        async with egress.client(allowed_hosts, timeout=10) as client:
            response = await client.post(url.strip(), json={"text": intent.text},
                                         headers={"Idempotency-Key": intent.idempotency_key})
    except egress.EgressRefused:
        # The webhook's host is part of a credential: the message names the Secret only.
        return intents.failed(allow_lists.HOST_NOT_ALLOWED, f"the webhook in secret {intent.secret_name} points "
                              "to a host that is not on the operator's egress allow-list")
    except httpx.InvalidURL:  # not an HTTPError: left alone, it would fail the reconciliation again and again
        return intents.failed("InvalidWebhookURL", f"the webhook URL in secret {intent.secret_name} is not a valid URL")
    except httpx.HTTPError as e:
        return intents.failed("NotificationFailed", f"the webhook in secret {intent.secret_name} failed: "
                              f"{type(e).__name__}")
    if response.is_error:
        return intents.failed("NotificationFailed", f"the webhook in secret {intent.secret_name} answered "
                              f"{response.status_code}")
    return intents.done()
