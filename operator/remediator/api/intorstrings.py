"""Values Kubernetes writes as an integer or a string: quantities and counts-or-percentages."""

import re
from typing import Annotated, Any

from pydantic import PlainValidator, WithJsonSchema

from remediator.api.bases import INT32_MAX

QUANTITY = (
    r"^(([0-9]+(\.[0-9]*)?)|(\.[0-9]+))"
    r"(([KMGTPE]i)|[numkMGTPE]|([eE](\+|-)?(([0-9]+(\.[0-9]*)?)|(\.[0-9]+))))?$"
)
PERCENT = r"^(100|[1-9][0-9]?)%$"
_QUANTITY = re.compile(QUANTITY)
_PERCENT = re.compile(PERCENT)


def _quantity(value: Any) -> int | str:
    if isinstance(value, int) and not isinstance(value, bool):
        if value < 0:
            raise ValueError(f"must not be negative ({value})")
        return value
    if isinstance(value, str) and len(value) <= 64 and _QUANTITY.fullmatch(value):
        return value
    raise ValueError(f"{value!r} is not a quantity such as 500m, 2, 256Mi or 1Gi")


def _count_or_percent(value: Any) -> int | str:
    if isinstance(value, int) and not isinstance(value, bool):
        if not 1 <= value <= INT32_MAX:
            raise ValueError(f"must be at least 1 and at most {INT32_MAX} ({value})")
        return value
    if isinstance(value, str) and _PERCENT.fullmatch(value):
        return value
    raise ValueError(f"{value!r} is neither a count (at least 1) nor a percentage from 1% to 100%")


Quantity = Annotated[
    int | str,
    PlainValidator(_quantity),
    WithJsonSchema({"x-kubernetes-int-or-string": True, "minimum": 0, "pattern": QUANTITY}),
]
"""A resource quantity: a non-negative integer or a string such as "500m" or "1Gi"."""

CountOrPercent = Annotated[
    int | str,
    PlainValidator(_count_or_percent),
    WithJsonSchema({"x-kubernetes-int-or-string": True, "minimum": 1, "maximum": INT32_MAX, "pattern": PERCENT}),
]
"""A count of at least 1, or a percentage from "1%" to "100%"."""
