"""Who sends a request: bearer tokens, ServiceAccount tokens (TokenRequest) and impersonation.

As kube-apiserver with `--token-auth-file` and ServiceAccount token signing, and anonymous requests
disabled (`--anonymous-auth=false`): a request without a token, or with one the server did not
issue, is 401. ServiceAccount tokens are JWTs carrying kube-apiserver's claims, signed with a key
of this server (HS256 where kube-apiserver uses RS256: no client verifies them itself); one stops
authenticating when it expires or when its ServiceAccount is deleted (the uid is checked).
"""

from __future__ import annotations

import base64
import dataclasses
import hashlib
import hmac
import json
import secrets
from collections.abc import Callable, Mapping
from typing import Any

ISSUER = "https://kubernetes.default.svc.cluster.local"
AUTHENTICATED = "system:authenticated"
SERVICE_ACCOUNT_PREFIX = "system:serviceaccount:"
MASTERS = "system:masters"
DEFAULT_TOKEN_SECONDS = 3600
MIN_TOKEN_SECONDS = 600


@dataclasses.dataclass(frozen=True)
class UserInfo:
    """An authenticated identity, as `request.userInfo` and the reviews show it."""

    username: str
    groups: tuple[str, ...] = ()
    uid: str = ""
    extra: Mapping[str, tuple[str, ...]] = dataclasses.field(default_factory=dict)

    def as_json(self) -> dict[str, Any]:
        """The authentication.k8s.io UserInfo object (empty fields left out)."""
        shown: dict[str, Any] = {"username": self.username}
        if self.uid:
            shown["uid"] = self.uid
        if self.groups:
            shown["groups"] = list(self.groups)
        if self.extra:
            shown["extra"] = {k: list(v) for k, v in self.extra.items()}
        return shown


ADMIN = UserInfo("sandbox-admin", (MASTERS, AUTHENTICATED))


def service_account_user(namespace: str, name: str, uid: str = "") -> UserInfo:
    """The identity a ServiceAccount's token authenticates as."""
    return UserInfo(f"{SERVICE_ACCOUNT_PREFIX}{namespace}:{name}",
                    ("system:serviceaccounts", f"system:serviceaccounts:{namespace}", AUTHENTICATED), uid)


def parse_service_account(username: str) -> tuple[str, str] | None:
    """(namespace, name) of a `system:serviceaccount:<ns>:<name>` user name, else None."""
    if not username.startswith(SERVICE_ACCOUNT_PREFIX):
        return None
    namespace, _, name = username.removeprefix(SERVICE_ACCOUNT_PREFIX).partition(":")
    return (namespace, name) if namespace and name and ":" not in name else None


def with_authenticated(user: UserInfo) -> UserInfo:
    """The user with `system:authenticated` among its groups (every authenticated request has it)."""
    if AUTHENTICATED in user.groups or user.username == "system:anonymous":
        return user
    return dataclasses.replace(user, groups=(*user.groups, AUTHENTICATED))


# Looks a ServiceAccount up: its uid, or None when it does not exist.
ServiceAccountLookup = Callable[[str, str], str | None]


class Authenticator:
    """The tokens this server accepts: static ones (admin, tests) and the ServiceAccount tokens it signs."""

    def __init__(self, static_tokens: Mapping[str, UserInfo] | None = None) -> None:
        self.admin_token = secrets.token_urlsafe(32)
        self._static: dict[str, UserInfo] = {self.admin_token: ADMIN, **(static_tokens or {})}
        self._key = secrets.token_bytes(32)

    def add_token(self, token: str, user: UserInfo) -> None:
        """Accept `token` as `user` (kube-apiserver's `--token-auth-file`, one line)."""
        self._static[token] = with_authenticated(user)

    def token_for(self, username: str, groups: tuple[str, ...] = ()) -> str:
        """A new static token authenticating as `username` in `groups`."""
        token = secrets.token_urlsafe(24)
        self.add_token(token, UserInfo(username, groups))
        return token

    def issue(self, namespace: str, name: str, uid: str, *, now: int, expiration_seconds: int | None = None,
              audiences: tuple[str, ...] = ()) -> tuple[str, int]:
        """A signed ServiceAccount token and its expiry (epoch seconds), as TokenRequest answers."""
        lifetime = max(expiration_seconds or DEFAULT_TOKEN_SECONDS, MIN_TOKEN_SECONDS)
        expires = now + lifetime
        claims = {"aud": list(audiences) or [ISSUER], "exp": expires, "iat": now, "nbf": now, "iss": ISSUER,
                  "jti": secrets.token_hex(16),
                  "kubernetes.io": {"namespace": namespace, "serviceaccount": {"name": name, "uid": uid}},
                  "sub": f"{SERVICE_ACCOUNT_PREFIX}{namespace}:{name}"}
        header = {"alg": "HS256", "kid": "sandbox"}
        signing_input = f"{_b64(json.dumps(header).encode())}.{_b64(json.dumps(claims).encode())}"
        signature = hmac.new(self._key, signing_input.encode(), hashlib.sha256).digest()
        return f"{signing_input}.{_b64(signature)}", expires

    def authenticate(self, authorization: str | None, lookup: ServiceAccountLookup, now: int) -> UserInfo | None:
        """The user an `Authorization: Bearer <token>` header authenticates as; None means 401."""
        if not authorization:
            return None
        scheme, _, token = authorization.strip().partition(" ")
        token = token.strip()
        if scheme.lower() != "bearer" or not token:
            return None
        static = self._static.get(token)
        if static is not None:
            return static
        return self._service_account(token, lookup, now)

    def _service_account(self, token: str, lookup: ServiceAccountLookup, now: int) -> UserInfo | None:
        parts = token.split(".")
        if len(parts) != 3:
            return None
        expected = hmac.new(self._key, f"{parts[0]}.{parts[1]}".encode(), hashlib.sha256).digest()
        try:
            if not hmac.compare_digest(expected, _unb64(parts[2])):
                return None
            claims = json.loads(_unb64(parts[1]))
            account = claims["kubernetes.io"]
            namespace, name = account["namespace"], account["serviceaccount"]["name"]
            uid = account["serviceaccount"]["uid"]
            expires = int(claims["exp"])
        except (ValueError, KeyError, TypeError):
            return None
        if now >= expires or lookup(namespace, name) != uid:
            return None
        return service_account_user(namespace, name, uid)


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode().rstrip("=")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
