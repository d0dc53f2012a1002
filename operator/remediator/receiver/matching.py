"""Which Runbook triggers an alert matches, with Alertmanager's matcher semantics (pkg/labels):
a missing label reads as "", and regular expressions are anchored at both ends (`^(?:re)$`)."""

from __future__ import annotations

import functools
import re
from collections.abc import Callable, Mapping

from remediator.api.runbooks import AlertMatcher, MatchOperator, RunbookSpec, RunbookTrigger

# Leading inline flags, e.g. (?i): Go accepts them inside the anchoring group, Python only at the start.
_LEADING_FLAGS = re.compile(r"^\(\?[ims]+\)")


@functools.lru_cache(maxsize=1024)
def _anchored(expression: str) -> re.Pattern[str]:
    flags = _LEADING_FLAGS.match(expression)
    if flags is None:
        return re.compile(f"(?:{expression})")
    return re.compile(f"{flags[0]}(?:{expression[flags.end():]})")


_HOLDS: dict[MatchOperator, Callable[[str, str], bool]] = {
    MatchOperator.EQUAL: lambda value, wanted: value == wanted,
    MatchOperator.NOT_EQUAL: lambda value, wanted: value != wanted,
    MatchOperator.REGEX: lambda value, wanted: _anchored(wanted).fullmatch(value) is not None,
    MatchOperator.NOT_REGEX: lambda value, wanted: _anchored(wanted).fullmatch(value) is None,
}


def matcher_holds(matcher: AlertMatcher, labels: Mapping[str, str]) -> bool:
    """Whether the alert's labels satisfy one matcher."""
    return _HOLDS[matcher.op](labels.get(matcher.name, ""), matcher.value)


def trigger_matches(trigger: RunbookTrigger, labels: Mapping[str, str]) -> bool:
    """Whether the alert has the trigger's alertname (when set) and satisfies all its matchers."""
    if trigger.alertname is not None and labels.get("alertname", "") != trigger.alertname:
        return False
    return all(matcher_holds(matcher, labels) for matcher in trigger.matchers)


def runbook_matches(runbook: RunbookSpec, labels: Mapping[str, str]) -> bool:
    """Whether any of the Runbook's triggers matches the alert."""
    return any(trigger_matches(trigger, labels) for trigger in runbook.triggers)
