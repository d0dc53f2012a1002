"""Transient API failures are retried with backoff; everything else reaches the caller at once."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
import urllib3.exceptions
import urllib3.response
from kubernetes.client.exceptions import ApiException

from remediator.actions import retries


def api_error(status: int, headers: dict[str, str] | None = None) -> ApiException:
    response = urllib3.response.HTTPResponse(body=b"{}", status=status, headers=headers or {}, reason="Injected")
    return ApiException(http_resp=response)


def flaky(*failures: BaseException) -> Callable[[], str]:
    """A client method that fails with each of `failures` in turn, then answers "ok"."""
    remaining = list(failures)

    def method(**options: Any) -> str:
        if remaining:
            raise remaining.pop(0)
        return "ok"

    return method


@pytest.fixture(autouse=True)
def waits(monkeypatch: pytest.MonkeyPatch) -> list[float]:
    """The backoff waits, recorded instead of slept."""
    slept: list[float] = []

    async def sleep(seconds: float) -> None:
        slept.append(seconds)

    monkeypatch.setattr(retries.asyncio, "sleep", sleep)
    return slept


@pytest.mark.parametrize("error", [
    api_error(500), api_error(502), api_error(503), api_error(504), api_error(429),
    urllib3.exceptions.ProtocolError("Connection aborted."), ConnectionResetError(),
    urllib3.exceptions.MaxRetryError(None, "/", "refused"),  # type: ignore[arg-type]
], ids=repr)
async def test_a_transient_failure_is_retried_after_a_short_wait(error: BaseException, waits: list[float]) -> None:
    assert await retries.call(flaky(error)) == "ok"
    assert waits == [retries.DELAYS[0]]


async def test_the_backoff_grows_and_the_last_failure_is_raised(waits: list[float]) -> None:
    with pytest.raises(ApiException) as raised:
        await retries.call(flaky(*(api_error(503) for _ in range(len(retries.DELAYS) + 1))))
    assert raised.value.status == 503
    assert waits == list(retries.DELAYS)


async def test_retry_after_is_honoured(waits: list[float]) -> None:
    assert await retries.call(flaky(api_error(429, {"Retry-After": "1"}))) == "ok"
    assert waits == [1.0]


@pytest.mark.parametrize("status", [400, 403, 404, 409, 422])
async def test_a_definite_answer_is_raised_at_once(status: int, waits: list[float]) -> None:
    with pytest.raises(ApiException):
        await retries.call(flaky(api_error(status)))
    assert waits == []


async def test_arguments_reach_the_method() -> None:
    def method(*args: Any, **kwargs: Any) -> tuple[Any, ...]:
        return args, kwargs

    assert await retries.call(method, "web", "default", _preload_content=False) == (
        ("web", "default"), {"_preload_content": False, "_request_timeout": retries.REQUEST_TIMEOUT})


async def test_every_call_has_connect_and_read_timeouts_unless_the_caller_sets_its_own() -> None:
    def method(**kwargs: Any) -> Any:
        return kwargs["_request_timeout"]

    assert await retries.call(method) == (5.0, 30.0)
    assert await retries.call(method, _request_timeout=(1, 2)) == (1, 2)
