"""The bearer token Alertmanager must send (its `http_config.authorization`), read from a file or a Secret.

The token is read again after a short while, so a rotated Secret or file is honoured without a restart.
It never appears in a log line, an answer or an exception message.
"""

from __future__ import annotations

import asyncio
import base64
import dataclasses
import hashlib
import hmac
import pathlib
import time
from typing import Protocol

import aiohttp
from kubernetes.aio import client as aio
from kubernetes.aio.client.exceptions import ApiException

from remediator import api_requests

REREAD_AFTER = 10.0


# What a retry may fix: the API server throttled, failed or did not answer. Any other answer (the
# Secret or its key missing, no right to read it) is the configuration's: every request is refused.
TRANSIENT_STATUSES = frozenset({429, 500, 502, 503, 504})
READ_TIMEOUT = 10.0


class TokenUnavailable(Exception):
    """The token could not be read now, for a reason a retry may fix: the request is answered 503 (which
    Alertmanager retries), never 401 (which it does not: the notification would be lost)."""


class TokenSource(Protocol):
    async def read(self) -> bytes | None:
        """The current token, or None when there is none to read (every request is then refused).

        Raises TokenUnavailable when it cannot be read now but may be later."""


@dataclasses.dataclass
class FileToken:
    """A token in a file (e.g. a mounted Secret); surrounding whitespace is not part of it."""

    path: pathlib.Path

    async def read(self) -> bytes | None:
        try:
            return self.path.read_bytes().strip() or None
        except OSError:
            return None


@dataclasses.dataclass
class SecretToken:
    """A token in one key of a Secret, read through the API and kept for REREAD_AFTER seconds."""

    api: aio.ApiClient
    namespace: str
    name: str
    key: str = "token"
    _cached: tuple[float, bytes | None] | None = None

    async def read(self) -> bytes | None:
        if self._cached is not None and time.monotonic() - self._cached[0] < REREAD_AFTER:
            return self._cached[1]
        try:
            async with asyncio.timeout(READ_TIMEOUT):
                secret = await api_requests.send_json(
                    self.api, "GET", api_requests.path("/api/v1/namespaces", self.namespace, "secrets", self.name))
            encoded = (secret.get("data") or {}).get(self.key)
            token = base64.b64decode(encoded).strip() or None if encoded else None
        except ApiException as e:
            if e.status in TRANSIENT_STATUSES:
                raise TokenUnavailable(f"API error {e.status}") from None
            token = None
        except (aiohttp.ClientError, OSError, TimeoutError) as e:
            raise TokenUnavailable(type(e).__name__) from None  # nothing cached: the next request asks again
        except ValueError:
            token = None
        self._cached = (time.monotonic(), token)
        return token


def authorised(header: str | None, token: bytes | None) -> bool:
    """Whether an Authorization header carries the token, compared in constant time.

    The digests are compared, not the tokens: compare_digest is constant-time only for inputs of equal
    length, and the time would otherwise tell the token's length."""
    if token is None or header is None:
        return False
    scheme, _, presented = header.partition(" ")
    if scheme.lower() != "bearer":
        return False
    # aiohttp keeps bytes that are not UTF-8 as surrogates: encoded back as they came, never an error (a 500).
    presented_bytes = presented.strip().encode("utf-8", "surrogateescape")
    return hmac.compare_digest(hashlib.sha256(presented_bytes).digest(), hashlib.sha256(token).digest())
