"""Status conditions, set the way the workload controllers set them."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

Condition = dict[str, Any]


def find_condition(conditions: Sequence[Mapping[str, Any]] | None, kind: str) -> Mapping[str, Any] | None:
    """The condition of a type, or None."""
    for condition in conditions or ():
        if condition.get("type") == kind:
            return condition
    return None


def is_true(conditions: Sequence[Mapping[str, Any]] | None, kind: str) -> bool:
    condition = find_condition(conditions, kind)
    return condition is not None and condition.get("status") == "True"


def set_condition(conditions: Sequence[Mapping[str, Any]], new: Condition) -> list[Condition]:
    """The conditions with `new` set, like deploymentutil.SetDeploymentCondition.

    A condition with the same status and reason is left as it is (timestamps included); one with
    the same status keeps its lastTransitionTime; the replaced condition moves to the end.
    """
    current = find_condition(conditions, new["type"])
    if current is not None and current.get("status") == new["status"] \
            and current.get("reason") == new.get("reason"):
        return [dict(c) for c in conditions]
    if current is not None and current.get("status") == new["status"] \
            and "lastTransitionTime" in current:
        new = {**new, "lastTransitionTime": current["lastTransitionTime"]}
    return [dict(c) for c in conditions if c.get("type") != new["type"]] + [new]


def remove_condition(conditions: Sequence[Mapping[str, Any]], kind: str) -> list[Condition]:
    return [dict(c) for c in conditions if c.get("type") != kind]
