"""Judging an httpCheck probe: expected status and optional body substring."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from remediator.api.http_steps import HttpCheck


def judge(check: HttpCheck, response: Mapping[str, Any]) -> tuple[bool, str]:
    """(passed, message) for one probe response {status, body} against the check's expectations."""
    status = response.get("status")
    if status != check.expected_status:
        return False, f"{check.method} {check.url} answered {status}, expected {check.expected_status}"
    if check.body_contains is not None and check.body_contains not in str(response.get("body", "")):
        return False, f"{check.method} {check.url} answered {status} without {check.body_contains!r} in the body"
    return True, f"{check.method} {check.url} answered {status}"
