"""Parsing of Kubernetes API request paths into what they address."""

from __future__ import annotations

import dataclasses

NAMESPACE_SUBRESOURCES = frozenset({"status", "finalize"})


@dataclasses.dataclass(frozen=True)
class ApiPath:
    """What a resource request path names. plural=None means the group-version discovery."""

    group: str
    version: str
    namespace: str | None = None
    plural: str | None = None
    name: str | None = None
    subresource: str | None = None


def parse(path: str) -> ApiPath | None:
    """The addressed resource of /api/... and /apis/... paths; None for any other path.

    Raises ValueError for a path under /api(s) that no Kubernetes route has.
    """
    parts = [p for p in path.split("/") if p]
    if not parts:
        return None
    if parts[0] == "api" and len(parts) >= 2:
        group, version, rest = "", parts[1], parts[2:]
    elif parts[0] == "apis" and len(parts) >= 3:
        group, version, rest = parts[1], parts[2], parts[3:]
    else:
        return None
    if not rest:
        return ApiPath(group, version)
    if rest[0] == "namespaces" and len(rest) >= 3 and rest[2] not in NAMESPACE_SUBRESOURCES:
        namespace, rest = rest[1], rest[2:]
        if len(rest) > 3:
            raise ValueError(path)
        return ApiPath(group, version, namespace, rest[0],
                       rest[1] if len(rest) > 1 else None, rest[2] if len(rest) > 2 else None)
    if len(rest) > 3:
        raise ValueError(path)
    return ApiPath(group, version, None, rest[0],
                   rest[1] if len(rest) > 1 else None, rest[2] if len(rest) > 2 else None)
