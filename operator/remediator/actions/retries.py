"""Calling the Kubernetes API through the official client, retrying what is worth retrying.

Transient failures (429, 500, 502, 503, 504, a dropped or refused connection) are retried a few
times with a short exponential backoff (honouring Retry-After); everything else, and the last
transient failure, is raised to the caller, who decides what it means (404, 409, ...).
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import functools
import json
import logging
import weakref
from collections.abc import Awaitable, Callable
from typing import Any

import aiohttp
import kubernetes.client
import urllib3
import urllib3.exceptions
from kubernetes.client.exceptions import ApiException

from remediator import api_requests, kube
from remediator.actions import fences

TRANSIENT_STATUSES = frozenset({429, 500, 502, 503, 504})
# What a failed client call raises: an answer from the API server, or no answer at all (from the synchronous
# client's urllib3 or the asyncio client's aiohttp: a refused or dropped connection, a timeout).
API_ERRORS: tuple[type[Exception], ...] = (ApiException, urllib3.exceptions.HTTPError, aiohttp.ClientError,
                                           ConnectionError, TimeoutError)
DELAYS = (0.1, 0.3, 1.0, 2.0)
# (connect, read) seconds for every API call: a hung connection fails the call instead of the incident.
REQUEST_TIMEOUT = (5.0, 30.0)


def set_request_timeout(read_seconds: float) -> None:
    """Set the read timeout of every later API call (`remediator run --api-timeout`)."""
    global REQUEST_TIMEOUT
    REQUEST_TIMEOUT = (min(5.0, read_seconds), read_seconds)
# A Retry-After beyond this is the server asking for more patience than one step should show.
MAX_RETRY_AFTER = 10.0

logger = logging.getLogger(__name__)


def is_transient(error: BaseException) -> bool:
    """Whether the same request may well succeed if sent again shortly."""
    if isinstance(error, ApiException):
        return error.status in TRANSIENT_STATUSES
    if isinstance(error, aiohttp.SocketTimeoutError):
        # No answer within the read timeout: the server may have carried the request out, and may well be
        # as slow again. The caller decides (the step fails transiently), as for urllib3's ReadTimeoutError.
        return False
    return isinstance(error, (urllib3.exceptions.ProtocolError, urllib3.exceptions.MaxRetryError,
                              aiohttp.ClientConnectionError, aiohttp.ClientPayloadError, ConnectionError))


def retry_after(error: BaseException) -> float | None:
    """The server's Retry-After (seconds, capped) on a 429/503, or None when it gave none."""
    headers = getattr(error, "headers", None) or {}
    value = headers.get("Retry-After")
    try:
        return None if value is None else min(max(float(value), 0.0), MAX_RETRY_AFTER)
    except ValueError:
        return None  # An HTTP date: rare from an API server; the usual backoff will do.


# The synchronous client blocks a thread per request in flight. asyncio's default pool has cpu+4
# threads (6 on two cores), which capped a storm of incidents at 6 requests in flight whatever the API
# server could take: the calls get their own, larger pool (and the client as many pooled connections).
API_CONCURRENCY = 32
_API_THREADS = concurrent.futures.ThreadPoolExecutor(max_workers=API_CONCURRENCY, thread_name_prefix="kube-api")


async def in_api_thread(method: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
    """Call the client method once in one of the API threads, through the fence; no retry."""
    return await asyncio.get_running_loop().run_in_executor(
        _API_THREADS, functools.partial(fenced, method, *args, **kwargs))


async def call(method: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
    """Run a client method off the event loop and return its result, retrying transient failures.

    Raises ApiException (or the connection error) when the failure is not transient or persists.
    Every call has connect and read timeouts (REQUEST_TIMEOUT unless the caller sets its own), and
    passes the fence (leader election) in its thread, just before it is sent.
    """
    kwargs.setdefault("_request_timeout", REQUEST_TIMEOUT)
    return await _retrying(getattr(method, "__name__", "API call"),
                           functools.partial(in_api_thread, method, *args, **kwargs))


async def _retrying(what: str, send: Callable[[], Awaitable[Any]]) -> Any:
    for delay in DELAYS:
        try:
            return await send()
        except Exception as e:
            if not is_transient(e):
                raise
            wait = retry_after(e) or delay
            logger.warning(f"{what} failed transiently ({describe(e)}); retrying in {wait:g}s")
            await asyncio.sleep(wait)
    return await send()


def fenced(method: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
    """Call the client method once, in this thread, if the fence lets this process act (see actions/fences.py)."""
    fences.check()
    result = method(*args, **kwargs)
    if isinstance(result, urllib3.BaseHTTPResponse):  # asked for with _preload_content=False
        # Read the body here, not on the event loop: an unread response keeps its connection out of the
        # pool, and the next call then opens (and the server accepts) a new one.
        result.read(cache_content=True)
    return result


async def call_json(method: Callable[..., Any], *args: Any, **kwargs: Any) -> dict[str, Any]:
    """`call`, returning the server's JSON as it was sent: the client's model classes cost more CPU
    than the whole request, and callers want API field names anyway."""
    response = await call(method, *args, _preload_content=False, **kwargs)
    result: dict[str, Any] = json.loads(response.data)
    return result


# Semaphores bounding the requests by path in flight, one per event loop (a semaphore belongs to its loop).
_in_flight: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, asyncio.Semaphore] = weakref.WeakKeyDictionary()


async def request_json(api: kubernetes.client.ApiClient, verb: str, api_path: str, body: Any = None, *,
                       content_type: str = "application/json") -> dict[str, Any]:
    """Send one request to `api_path` (fence, timeouts, retries as `call`) and return the server's JSON.

    The API classes' per-call validation and model machinery cost more CPU than the request itself,
    and the synchronous client a thread per request in flight: the hot path sends its requests here, on
    the event loop through the asyncio client (`kube.hot_path_client`: the host, TLS settings, credentials
    and User-Agent of `api`, usually `kube.api_client()`), `body` as JSON with `content_type`, at most
    API_CONCURRENCY at a time. Raises ApiException on an error answer, as the API classes do (and
    aiohttp's ClientError or TimeoutError when there is none).
    """
    result: dict[str, Any] = await _retrying(f"{verb} {api_path}", functools.partial(
        _send_fenced, api, verb, api_path, body, content_type))
    return result


async def _send_fenced(api: kubernetes.client.ApiClient, verb: str, api_path: str, body: Any,
                       content_type: str) -> dict[str, Any]:
    loop = asyncio.get_running_loop()
    in_flight = _in_flight.get(loop) or _in_flight.setdefault(loop, asyncio.Semaphore(API_CONCURRENCY))
    async with in_flight:
        connect, read = REQUEST_TIMEOUT
        timeout = aiohttp.ClientTimeout(sock_connect=connect, sock_read=read)
        # The fence is checked after the wait for a place, and nothing waits between it and the sending: a
        # replica deposed while its request waited does not send it (as in an API thread, see `fenced`).
        fences.check()
        return await api_requests.send_json(kube.hot_path_client(api), verb, api_path, body,
                                            content_type=content_type, timeout=timeout)


def describe(error: BaseException) -> str:
    """A failed call in a few words, for logs and messages: never the request or its body."""
    if isinstance(error, ApiException):
        return f"API error {error.status} {error.reason}"
    return type(error).__name__
