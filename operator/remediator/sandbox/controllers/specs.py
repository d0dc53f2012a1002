"""Workload fields as controllers read them, with the API server's defaults applied."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any


def spec_replicas(obj: Mapping[str, Any] | None) -> int:
    """spec.replicas, which the API server defaults to 1."""
    value = ((obj or {}).get("spec") or {}).get("replicas")
    return 1 if value is None else int(value)


def status_count(obj: Mapping[str, Any] | None, field: str) -> int:
    """A status counter; absent (omitempty) means 0."""
    return int(((obj or {}).get("status") or {}).get(field) or 0)


def generation(obj: Mapping[str, Any]) -> int:
    return int(obj["metadata"].get("generation", 1))


def min_ready_seconds(obj: Mapping[str, Any]) -> int:
    return int((obj.get("spec") or {}).get("minReadySeconds") or 0)


def template_labels(obj: Mapping[str, Any]) -> dict[str, str]:
    template = (obj.get("spec") or {}).get("template") or {}
    return dict((template.get("metadata") or {}).get("labels") or {})
