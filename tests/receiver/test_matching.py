"""Runbook triggers match alerts as Alertmanager's own matchers do (prometheus/alertmanager pkg/labels):
`=`/`!=` compare the value, a missing label reads as "", and regexes are anchored: `^(?:re)$`."""

from __future__ import annotations

import pytest

from remediator.api.runbooks import AlertMatcher, RunbookSpec, RunbookTrigger
from remediator.receiver import matching

LABELS = {"alertname": "HighLatency", "service": "web-api", "env": "prod"}


@pytest.mark.parametrize(("name", "op", "value", "holds"), [
    ("service", "=", "web-api", True),
    ("service", "=", "web", False),
    ("service", "!=", "web", True),
    ("service", "!=", "web-api", False),
    ("missing", "=", "", True),  # an absent label is ""
    ("missing", "!=", "", False),
    ("service", "=~", "web", False),  # anchored: a prefix is not a match
    ("service", "=~", "api", False),
    ("service", "=~", "web.*", True),
    ("service", "=~", "web-api|db", True),  # the alternation is inside the anchors
    ("service", "=~", "db|web", False),
    ("service", "!~", "web", True),
    ("service", "!~", "web.*", False),
    ("missing", "=~", ".*", True),
    ("missing", "=~", ".+", False),
    ("missing", "!~", ".+", True),
    ("env", "=~", "prod\n", False),  # no end-of-line slack, as in Go's RE2
    ("env", "=~", "(?i)PROD", True),
])
def test_a_matcher_holds_as_alertmanager_decides(name: str, op: str, value: str, holds: bool) -> None:
    matcher = AlertMatcher.model_validate({"name": name, "op": op, "value": value})
    assert matching.matcher_holds(matcher, LABELS) is holds


def test_a_trigger_needs_its_alertname_and_every_matcher() -> None:
    trigger = RunbookTrigger.model_validate(
        {"alertname": "HighLatency",
         "matchers": [{"name": "env", "value": "prod"}, {"name": "service", "value": "web-api"}]})
    assert matching.trigger_matches(trigger, LABELS)
    assert not matching.trigger_matches(trigger, {**LABELS, "env": "staging"})
    assert not matching.trigger_matches(trigger, {**LABELS, "alertname": "HighLatencyWarning"})


def test_a_runbook_matches_when_any_trigger_does() -> None:
    spec = RunbookSpec.model_validate({
        "triggers": [{"alertname": "Other"}, {"matchers": [{"name": "service", "op": "=~", "value": "web-.*"}]}],
        "steps": [{"name": "restart", "restart": {"target": {"kind": "Deployment", "name": "web"}}}]})
    assert matching.runbook_matches(spec, LABELS)
    assert not matching.runbook_matches(spec, {"alertname": "HighLatency", "service": "db"})
