"""HTTP checks and notifications through httpx. Nothing here logs URLs' secrets or message bodies."""

from __future__ import annotations

import base64
from typing import Any

import httpx
import kubernetes.client
from kubernetes.client.exceptions import ApiException

from remediator.actions import retries
from remediator.engine import intents

BODY_LIMIT = 64 * 1024


async def probe(intent: intents.ProbeHttp) -> intents.Result:
    """One request: the status and (the start of) the body, or why no answer came."""
    try:
        async with httpx.AsyncClient(timeout=intent.timeout_seconds, follow_redirects=False) as client:
            response = await client.request(intent.method, intent.url, headers=dict(intent.headers))
    except httpx.TimeoutException:
        return intents.failed("Timeout", f"{intent.method} {intent.url} did not answer within "
                              f"{intent.timeout_seconds:g}s")
    except httpx.HTTPError as e:
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


async def notify(api: kubernetes.client.ApiClient, namespace: str, intent: intents.Notify) -> intents.Result:
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
        async with httpx.AsyncClient(timeout=10) as client:
            response = await client.post(url.strip(), json={"text": intent.text},
                                         headers={"Idempotency-Key": intent.idempotency_key})
    except httpx.HTTPError as e:
        return intents.failed("NotificationFailed", f"the webhook in secret {intent.secret_name} failed: "
                              f"{type(e).__name__}")
    if response.is_error:
        return intents.failed("NotificationFailed", f"the webhook in secret {intent.secret_name} answered "
                              f"{response.status_code}")
    return intents.done()
