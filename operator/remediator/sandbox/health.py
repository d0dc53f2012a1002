"""`/healthz`, `/livez` and `/readyz`, answered as kube-apiserver's healthz handler answers them.

`ok` in text/plain; with `?verbose` one `[+]<check> ok` line per check and `<endpoint> check passed`;
`?exclude=<check>` marks a check excluded. A failing check (readyz's `shutdown` while the server
closes) answers 500 with every line and `<endpoint> check failed`, verbose or not.
`/<endpoint>/<check>` answers one check. https://kubernetes.io/docs/reference/using-api/health-checks/
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

import aiohttp.web

# The checks kube-apiserver registers that stand for something here (the store stands in for etcd).
LIVE_CHECKS = ("ping", "log", "etcd")
CHECKS: Mapping[str, Sequence[str]] = {
    "healthz": LIVE_CHECKS,
    "livez": LIVE_CHECKS,
    "readyz": (*LIVE_CHECKS, "etcd-readiness", "informer-sync", "shutdown"),
}
HEADERS = {"X-Content-Type-Options": "nosniff"}


def serve(path: str, query: Mapping[str, Any], shutting_down: Callable[[], bool]) -> aiohttp.web.Response | None:
    """The answer for a health endpoint, or None when `path` is not one."""
    endpoint, _, single = path.strip("/").partition("/")
    checks = CHECKS.get(endpoint)
    if checks is None:
        return None
    failed = {"shutdown"} & set(checks) if shutting_down() else set()
    if single:
        if single not in checks:
            return aiohttp.web.Response(status=404, text="404 page not found\n", headers=HEADERS)
        if single in failed:
            return _text(500, "internal server error: reason withheld\n")
        return _text(200, "ok")
    excluded = set(query.getall("exclude", [])) if hasattr(query, "getall") else set()
    lines = []
    for check in checks:
        if check in excluded:
            lines.append(f"[+]{check} excluded: ok")
        elif check in failed:
            lines.append(f"[-]{check} failed: reason withheld")
        else:
            lines.append(f"[+]{check} ok")
    unknown = sorted(excluded - set(checks))
    if unknown:
        quoted = ", ".join(f'"{name}"' for name in unknown)
        lines.append(f"warn: some health checks cannot be excluded: no matches for {quoted}")
    body = "".join(line + "\n" for line in lines)
    if failed - excluded:
        return _text(500, f"{body}{endpoint} check failed\n")  # http.Error adds the newline
    if "verbose" not in query:
        return _text(200, "ok")
    return _text(200, f"{body}{endpoint} check passed\n")


def _text(status: int, text: str) -> aiohttp.web.Response:
    return aiohttp.web.Response(status=status, text=text, charset="utf-8", content_type="text/plain",
                                headers=HEADERS)
