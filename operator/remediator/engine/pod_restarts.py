"""Restarting pods by deleting them a few at a time, never more unavailable than allowed. Pure."""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping, Sequence
from typing import Any

from remediator.api.selectors import LabelSelector


def selector_string(selector: LabelSelector) -> str:
    """The label selector in the query-string form the API server parses."""
    parts = [f"{key}={value}" for key, value in sorted(selector.match_labels.items())]
    for requirement in selector.match_expressions:
        operator = requirement.operator.value
        values = ",".join(requirement.values)
        if operator == "In":
            parts.append(f"{requirement.key} in ({values})")
        elif operator == "NotIn":
            parts.append(f"{requirement.key} notin ({values})")
        elif operator == "Exists":
            parts.append(requirement.key)
        else:
            parts.append(f"!{requirement.key}")
    return ",".join(parts)


def selects(selector: Mapping[str, Any], labels: Mapping[str, str]) -> bool:
    """Whether a metav1.LabelSelector dict (as a PodDisruptionBudget holds it) selects these labels."""
    if not selector:
        return False  # a PDB with an empty selector selects nothing in policy/v1 semantics we rely on
    for key, value in (selector.get("matchLabels") or {}).items():
        if labels.get(key) != value:
            return False
    for requirement in selector.get("matchExpressions") or []:
        key, operator, values = requirement.get("key"), requirement.get("operator"), requirement.get("values") or []
        present = key in labels
        if (operator == "In" and labels.get(key) not in values) or (operator == "NotIn" and labels.get(key) in values) \
                or (operator == "Exists" and not present) or (operator == "DoesNotExist" and present):
            return False
    return True


def unavailable_budget(max_unavailable: int | str, total: int) -> int:
    """How many pods may be down at once: a count, or a percentage of `total` rounded down (at least 1)."""
    if isinstance(max_unavailable, int):
        return max(1, max_unavailable)
    return max(1, math.floor(total * int(max_unavailable.rstrip("%")) / 100))


@dataclasses.dataclass(frozen=True)
class Round:
    """What to do in this round: delete `batch` (names), or wait; done when every pod was replaced."""

    batch: tuple[str, ...] = ()
    done: bool = False
    message: str = ""


def next_round(snapshot: Sequence[str], pods: Sequence[Mapping[str, Any]], max_unavailable: int | str) -> Round:
    """Plan a round from the snapshot of pod uids to restart and the pods that match now.

    `pods` items: {name, uid, ready, terminating}. Pods down for any reason count against the budget.
    """
    remaining = [p for p in pods if p["uid"] in snapshot and not p["terminating"]]
    down = sum(1 for p in pods if p["terminating"] or not p["ready"])
    if not remaining and not any(p["uid"] in snapshot for p in pods):
        if down == 0:
            return Round(done=True, message=f"restarted {len(snapshot)} pod(s)")
        return Round(message=f"waiting for {down} replacement pod(s) to become ready")
    allowed = unavailable_budget(max_unavailable, len(snapshot)) - down
    if allowed <= 0:
        return Round(message=f"{down} pod(s) unavailable; waiting before deleting more")
    batch = tuple(sorted(p["name"] for p in remaining)[:allowed])
    return Round(batch=batch, message=f"deleting {len(batch)} of {len(remaining)} remaining pod(s)")
