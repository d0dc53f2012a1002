"""Requests by path through the asyncio client (kubernetes.aio).

Its `CoreV1Api` loads the core group's 250 model modules (23 MB of RSS) for what the operator sends to
the core group: a Secret read, an Event, a pod's label. The client's credentials, User-Agent and
connection pool are used as its API classes use them.
"""

from __future__ import annotations

import json
from typing import Any

from kubernetes.aio import client as aio
from kubernetes.aio.client.exceptions import ApiException

MERGE_PATCH = "application/merge-patch+json"


async def request_json(api: aio.ApiClient, verb: str, api_path: str, body: Any = None, *,
                       content_type: str = "application/json", timeout: float | None = None) -> dict[str, Any]:
    """Send one request and return the server's JSON; raises ApiException (status, reason) on an error answer."""
    headers = {"Accept": "application/json", "Content-Type": content_type}
    method, url, headers, body, _ = await api.param_serialize(verb, api_path, header_params=headers, body=body,
                                                              auth_settings=["BearerToken"])
    response = await api.call_api(method, url, headers, body, _request_timeout=timeout)
    data = await response.read()  # type: ignore[no-untyped-call]
    if not 200 <= response.status <= 299:
        raise ApiException(status=response.status, reason=response.reason)
    result: dict[str, Any] = json.loads(data) if data else {}
    return result
