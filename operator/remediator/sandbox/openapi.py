"""OpenAPI documents served to kubectl (v3 index and per group-version documents)."""

from __future__ import annotations

from typing import Any

from remediator.sandbox import resources


def serve(registry: resources.ResourceRegistry, path: str) -> dict[str, Any] | None:
    """The OpenAPI document at a path under /openapi, or None when there is none."""
    if path == "/openapi/v3":
        return {"paths": {}}
    return None
