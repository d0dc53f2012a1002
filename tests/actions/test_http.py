"""An httpCheck whose URL cannot be parsed, or whose host does not resolve, fails the probe, never the
reconciliation (which would otherwise fail again on every retry)."""

from __future__ import annotations

import pytest

from remediator.actions import http
from remediator.engine import intents


@pytest.mark.parametrize(("url", "error"), [
    # The CRD's pattern (http(s)://, no spaces) lets it through; httpx raises InvalidURL, not an HTTPError.
    ("https://checkout.example:port/healthz", "InvalidURL"),
    # .example names never resolve (RFC 2606); the egress backend's lookup fails before any connection.
    ("https://checkout.example/healthz", "ConnectError"),
])
async def test_a_url_that_leads_nowhere_is_a_failed_probe(url: str, error: str) -> None:
    probe = intents.ProbeHttp(step="verify", url=url, method="GET", headers=(), timeout_seconds=5, probe=1)
    result = await http.probe(probe)
    assert (result.succeeded, result.reason) == (False, "ConnectionFailed")
    assert result.message == f"GET {url} failed: {error}"
