"""Status conditions following the Kubernetes API conventions, and pure helpers to update them."""

from collections.abc import Sequence
from datetime import datetime
from enum import StrEnum
from typing import Annotated

from pydantic import AwareDatetime, Field

from remediator.api.bases import StatusModel
from remediator.api.patterns import Matches, Reason

CONDITION_TYPE = (
    r"^([a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*/)?"
    r"(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])$"
)
ConditionType = Annotated[str, Matches(CONDITION_TYPE, "a condition type such as Ready", max_length=316)]


class ConditionStatus(StrEnum):
    """Whether a condition holds."""

    TRUE = "True"
    FALSE = "False"
    UNKNOWN = "Unknown"


class Condition(StatusModel):
    """One aspect of the object's state, e.g. Ready or Mitigated."""

    type: ConditionType
    """The aspect, in CamelCase (Ready, Mitigated, ...)."""
    status: ConditionStatus
    """True, False or Unknown."""
    reason: Reason
    """Why the condition last changed, in CamelCase."""
    message: str = Field(default="", max_length=32768)
    """What happened, for people."""
    last_transition_time: AwareDatetime
    """When the status last changed."""
    observed_generation: int | None = Field(default=None, ge=0)
    """The object's metadata.generation the condition was set for."""


def find_condition(conditions: Sequence[Condition], condition_type: str) -> Condition | None:
    """Return the condition of `condition_type`, or None when there is none."""
    return next((condition for condition in conditions if condition.type == condition_type), None)


def is_condition_true(conditions: Sequence[Condition], condition_type: str) -> bool:
    """Return whether the condition of `condition_type` exists and is True."""
    condition = find_condition(conditions, condition_type)
    return condition is not None and condition.status == ConditionStatus.TRUE


def set_condition(conditions: Sequence[Condition], new: Condition, now: datetime) -> list[Condition]:
    """Return `conditions` with `new` in place of the condition of the same type (appended if none).

    The lastTransitionTime of the result is the existing one when the status is
    unchanged, else `now`: it records when the status changed, not when we looked.
    The input is not modified.
    """
    old = find_condition(conditions, new.type)
    if old is not None and old.status == new.status:
        transition_time = old.last_transition_time
    else:
        transition_time = now
    updated = new.model_copy(update={"last_transition_time": transition_time})
    if old is None:
        return [*conditions, updated]
    return [updated if condition.type == new.type else condition for condition in conditions]
