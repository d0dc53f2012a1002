"""Requests to the Kubernetes API by path: paths, media types, and sending one JSON request through the
asyncio client (kubernetes.aio): the operator's hot path (actions/retries.request_json, through
`kube.hot_path_client`), the receiver and the leader's pod label.

The API classes load hundreds of model modules and validate every call, which costs more memory and CPU
than the requests the operator sends: its hot path (actions/retries.py) and the receiver's Secret read,
Events and the leader's pod label are built here instead, on an ApiClient's credentials, User-Agent and
connection pool.
"""

from __future__ import annotations

import json
import urllib.parse
from collections.abc import Mapping
from typing import Any

import aiohttp
import kubernetes.client.exceptions
import urllib3
from kubernetes.aio import client as aio
from kubernetes.aio.client import exceptions as aio_exceptions

# A patch's media type says how the server merges it; a list of operations is a JSON patch.
JSON_PATCH = "application/json-patch+json"
MERGE_PATCH = "application/merge-patch+json"  # custom resources know no strategic merge
STRATEGIC_MERGE_PATCH = "application/strategic-merge-patch+json"  # what the API classes send for a dict
# The API classes' one way of sending credentials: a bearer token (a kubeconfig's, the service account's).
_BEARER_TOKEN = "BearerToken"


class ApiError(kubernetes.client.exceptions.ApiException, aio_exceptions.ApiException):
    """An error answer from the API server: status, reason, headers (Retry-After) and body (the server's
    Status), as either client's ApiException carries them. It is both, so code that catches the synchronous
    client's (the actions) or the asyncio client's (the receiver) catches it as it catches that client's own."""


def path(prefix: str, *segments: str) -> str:
    """An API path: the prefix (`/apis/apps/v1/namespaces`) as it is, then each segment (a namespace,
    a name) quoted as the client quotes path parameters."""
    return prefix + "".join("/" + urllib.parse.quote(segment, safe="") for segment in segments)


async def send_json(api: aio.ApiClient, verb: str, api_path: str, body: Any = None, *,
                    content_type: str = "application/json",
                    timeout: aiohttp.ClientTimeout | float | None = None) -> dict[str, Any]:
    """Send one request to `api_path`, `body` (JSON values: dicts, lists, strings, numbers) as JSON with
    `content_type`, and return the server's JSON (an empty dict for an empty answer) without the object's
    `metadata.managedFields`; no retry.

    Raises ApiError on an error answer, aiohttp's ClientError or TimeoutError when there is no answer.
    `timeout` is aiohttp's (a number is the whole request's seconds).
    """
    # Built here rather than by `param_serialize`, whose walk over the body (for the client's models and
    # dates) took 9 % of the operator's CPU in a storm: the body is JSON already.
    headers = {**api.default_headers, "Accept": "application/json", "Content-Type": content_type}
    # The credentials as the API classes send them (the client's hook renews them first).
    token = await api.configuration.get_api_key_with_prefix(_BEARER_TOKEN)
    if token:
        headers["authorization"] = token
    response = await api.rest_client.request(  # type: ignore[no-untyped-call]
        verb, api.configuration.host + api_path, headers=headers, body=body, _request_timeout=timeout)
    # Read even when unwanted: an unread response keeps its connection out of the pool.
    data: bytes = await response.read()
    if not 200 <= response.status <= 299:
        # Not held in a local of this frame: the error's traceback holds the frame, and that cycle kept
        # each failed request's response until a full collection (a storm's deletions answer 422 by the
        # thousand, their lock already released; docs/benchmarks.md).
        raise _error(response.status, response.reason, response.headers, data)
    result: dict[str, Any] = json.loads(data) if data else {}
    if isinstance(meta := result.get("metadata"), dict):
        # The server's record of field owners: nothing here reads it, and an observed target's is most of
        # what a reconciliation holds of it (sent back without it, the server keeps its own).
        meta.pop("managedFields", None)
    return result


def _error(status: int, reason: str | None, headers: Mapping[str, str], data: bytes) -> ApiError:
    answer = urllib3.HTTPHeaderDict()
    for name, value in headers.items():
        answer.add(name, value)
    error = ApiError(status=status, reason=reason, body=data.decode("utf-8", errors="replace"))
    error.headers = answer
    return error
