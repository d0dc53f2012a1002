"""RFC 3339 timestamps as Kubernetes writes them (whole seconds, UTC, "Z")."""

from __future__ import annotations

import datetime

from remediator.sandbox import store

format_time = store.format_time


def parse_time(text: object) -> datetime.datetime | None:
    """The moment a timestamp field holds, or None when it is absent or not a timestamp."""
    if not isinstance(text, str) or not text:
        return None
    try:
        moment = datetime.datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return None
    return moment if moment.tzinfo else moment.replace(tzinfo=datetime.UTC)
