"""Contract: /healthz, /livez and /readyz answer as kube-apiserver's health endpoints do.

`ok` in text/plain; `?verbose` lists each check as `[+]<check> ok` and ends `<endpoint> check passed`;
`?exclude=<check>` skips one; `/<endpoint>/<check>` answers one check; a server shutting down is
not ready (`[-]shutdown failed: reason withheld`, 500).
https://kubernetes.io/docs/reference/using-api/health-checks/
"""

from __future__ import annotations

import httpx
import pytest

from remediator.sandbox import runner


@pytest.mark.parametrize("endpoint", ["/healthz", "/livez", "/readyz"])
async def test_a_health_endpoint_answers_ok_as_plain_text(api: httpx.AsyncClient, endpoint: str) -> None:
    response = await api.get(endpoint)
    assert response.status_code == 200
    assert response.text == "ok"
    assert response.headers["Content-Type"] == "text/plain; charset=utf-8"
    assert response.headers["X-Content-Type-Options"] == "nosniff"


async def test_verbose_readyz_lists_every_check_and_says_it_passed(api: httpx.AsyncClient) -> None:
    response = await api.get("/readyz", params={"verbose": ""})
    assert response.status_code == 200
    assert response.text == ("[+]ping ok\n[+]log ok\n[+]etcd ok\n[+]etcd-readiness ok\n[+]informer-sync ok\n"
                             "[+]shutdown ok\nreadyz check passed\n")


async def test_verbose_livez_with_an_excluded_check_marks_it_excluded(api: httpx.AsyncClient) -> None:
    response = await api.get("/livez?verbose&exclude=etcd&exclude=nonsense")
    assert response.status_code == 200
    assert response.text == ('[+]ping ok\n[+]log ok\n[+]etcd excluded: ok\n'
                             'warn: some health checks cannot be excluded: no matches for "nonsense"\n'
                             "livez check passed\n")


async def test_one_check_has_its_own_path(api: httpx.AsyncClient) -> None:
    assert (await api.get("/healthz/ping")).text == "ok"
    assert (await api.get("/readyz/informer-sync")).text == "ok"
    assert (await api.get("/livez/nonsense")).status_code == 404


async def test_a_sandbox_shutting_down_is_live_but_not_ready() -> None:
    """While the server closes, readyz fails its `shutdown` check (500, every line shown), livez still passes."""
    async with runner.running() as running:
        async with httpx.AsyncClient(base_url=running.url) as client:
            running.sandbox.closing = True
            ready = await client.get("/readyz")
            live = await client.get("/livez")
            running.sandbox.closing = False
    assert ready.status_code == 500
    assert ready.text.endswith("[+]informer-sync ok\n[-]shutdown failed: reason withheld\nreadyz check failed\n")
    assert live.status_code == 200
