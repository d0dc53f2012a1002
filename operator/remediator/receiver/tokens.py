"""The bearer token Alertmanager must send (its `http_config.authorization`), read from a file or a Secret.

The token is read again after a short while, so a rotated Secret or file is honoured without a restart.
It never appears in a log line, an answer or an exception message.
"""

from __future__ import annotations

import base64
import dataclasses
import hmac
import pathlib
import time
from typing import Protocol

from kubernetes.aio import client as aio
from kubernetes.aio.client.exceptions import ApiException

REREAD_AFTER = 10.0


class TokenSource(Protocol):
    async def read(self) -> bytes | None:
        """The current token, or None when it cannot be read (every request is then refused)."""


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
            secret = await aio.CoreV1Api(self.api).read_namespaced_secret(self.name, self.namespace)
            encoded = (secret.data or {}).get(self.key)
            token = base64.b64decode(encoded).strip() or None if encoded else None
        except (ApiException, OSError, ValueError):
            token = None
        self._cached = (time.monotonic(), token)
        return token


def authorised(header: str | None, token: bytes | None) -> bool:
    """Whether an Authorization header carries the token, compared in constant time."""
    if token is None or header is None:
        return False
    scheme, _, presented = header.partition(" ")
    if scheme.lower() != "bearer":
        return False
    return hmac.compare_digest(presented.strip().encode(), token)
