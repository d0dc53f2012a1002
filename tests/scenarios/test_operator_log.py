"""The operator's log can be trusted: text from an Incident never forges a log line, in either format.

A summary is free text from whoever created the Incident; the operator logs it (the Acknowledged
timeline entry). CWE-117 (improper output neutralisation for logs): every control character in a
logged value is escaped, so a line at the start of the log's column always begins a real record.
"""

from __future__ import annotations

import json
from typing import Any

import pytest

from remediator import manifests

from .support import wait_for

API = "remediator.dev/v1alpha1"
FAKE_LINE = "2026-01-01 00:00:00,000 INFO fake: injected"
# A step that changes nothing: its Secret does not exist.
TELL = {"name": "tell", "notify": {"webhookSecretRef": {"name": "absent", "key": "url"}, "message": "hello"}}
HOSTILE_SUMMARY = f"disk full\n{FAKE_LINE}\r{FAKE_LINE}\x1b[2K\x1b[1Goverwritten\x85next-line"


async def acknowledged(client: manifests.Client, name: str) -> bool:
    incident = await client.get(API, "Incident", "default", name) or {}
    return any(e["reason"] == "Acknowledged" for e in (incident.get("status") or {}).get("timeline") or [])


@pytest.mark.parametrize("flags", [(), ("--log-format", "text"), ("--log-format", "json")],
                         ids=["default", "text", "json"])
async def test_a_summary_with_a_forged_log_line_stays_inside_its_own_record(
        client: manifests.Client, start_operator: Any, flags: tuple[str, ...], scenario_namespace: str) -> None:
    operator = await start_operator(*flags)
    await client.apply({"apiVersion": API, "kind": "Incident", "metadata": {"name": "forged", "namespace": "default"},
                        "spec": {"severity": "P3", "summary": HOSTILE_SUMMARY, "steps": [TELL]}})

    await wait_for(lambda: acknowledged(client, "forged"))

    async def logged() -> bool:  # the log line follows the status write
        return f"incident {scenario_namespace}/forged: " in operator.log

    await wait_for(logged, timeout=5)

    lines = operator.log.splitlines()
    assert not [line for line in lines if line.startswith(FAKE_LINE)], operator.log
    for control in ("\r", "\x1b", "\x85"):
        assert control not in operator.log, f"{control!r} reached the log raw"
    if "json" in flags:
        records = [json.loads(line) for line in lines]  # every line is one JSON object
        [ack] = [r for r in records if "forged" in r["message"] and "acknowledged" in r["message"]]
        assert HOSTILE_SUMMARY in ack["message"], "JSON keeps the text exactly, escaped by its own rules"
        assert {"time", "level", "logger", "message"} <= set(ack)
    else:
        [ack] = [line for line in lines if "forged" in line and "acknowledged" in line]
        assert "disk full\\n2026-01-01 00:00:00,000 INFO fake: injected\\r" in ack, "escaped, still readable"
