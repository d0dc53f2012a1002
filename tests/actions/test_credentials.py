"""The operator's API client keeps using renewed credentials, without re-reading them for every request."""

from __future__ import annotations

import time
from collections.abc import Iterator

import kubernetes.client
import pytest

from remediator import kube


@pytest.fixture
def renewed_tokens(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[str]]:
    """A default configuration whose credentials hook (as the kubeconfig and in-cluster loaders set one)
    hands out a new token each time it runs; yields the tokens handed out."""
    tokens: list[str] = []

    def renew(configuration: kubernetes.client.Configuration) -> None:
        tokens.append(f"token-{len(tokens) + 1}")
        configuration.api_key["BearerToken"] = tokens[-1]
        configuration.refresh_api_key_hook = renew  # as the loaders' hooks do: they install themselves again

    configuration = kubernetes.client.Configuration(host="https://api.example")
    configuration.api_key["BearerToken"] = "token-0"  # as loaded, before the hook first runs
    configuration.api_key_prefix["BearerToken"] = "Bearer"
    configuration.refresh_api_key_hook = renew
    monkeypatch.setattr(kubernetes.client.Configuration, "_default", configuration)
    monkeypatch.setattr(kube, "TOKEN_CHECK_SECONDS", 0.2)
    kube.api_client.cache_clear()
    yield tokens
    kube.api_client.cache_clear()


def authorization(api: kubernetes.client.ApiClient) -> str:
    """The Authorization header of the next request `api` builds."""
    _, _, headers, _, _ = api.param_serialize("GET", "/api/v1/namespaces", auth_settings=["BearerToken"])
    return str(headers["authorization"])


def test_a_burst_of_requests_asks_for_credentials_once_and_a_renewed_token_is_used_soon_after(
        renewed_tokens: list[str]) -> None:
    api = kube.api_client()
    burst = [authorization(api) for _ in range(200)]
    assert set(burst) == {"Bearer token-1"}
    assert renewed_tokens == ["token-1"]
    time.sleep(kube.TOKEN_CHECK_SECONDS)
    assert authorization(api) == "Bearer token-2"
