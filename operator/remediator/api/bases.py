"""Base classes and schema helpers shared by every spec and status model.

Specs are what users write: unknown fields are refused and the model is frozen,
since the operator never changes a spec. Statuses are what the operator writes:
unknown fields are ignored so an older operator can read a newer status.
"""

from collections.abc import Iterable
from typing import Any

from pydantic import BaseModel, ConfigDict
from pydantic.alias_generators import to_camel

from remediator.api.errors import FieldRuleError

# Kubernetes counts (replicas, limits) are int32: larger numbers are refused by the API server.
INT32_MAX = 2**31 - 1
INT32_MIN = -(2**31)


class SpecModel(BaseModel):
    """A part of a spec: camelCase JSON, snake_case Python, unknown fields refused."""

    model_config = ConfigDict(
        alias_generator=to_camel,
        populate_by_name=True,
        extra="forbid",
        frozen=True,
        use_attribute_docstrings=True,
    )


class StatusModel(BaseModel):
    """A part of a status: camelCase JSON, snake_case Python, unknown fields ignored."""

    model_config = ConfigDict(
        alias_generator=to_camel,
        populate_by_name=True,
        extra="ignore",
        use_attribute_docstrings=True,
    )


def one_of_required(field_names: Iterable[str]) -> dict[str, Any]:
    """Return the schema fragment saying exactly one of these (snake_case) fields is set.

    The branches carry only `required`, which a structural schema allows.
    """
    return {"oneOf": [{"required": [to_camel(name)]} for name in field_names]}


def list_map(*keys: str) -> dict[str, Any]:
    """Return the schema markers of a list whose items are unique by these (camelCase) keys."""
    return {"x-kubernetes-list-type": "map", "x-kubernetes-list-map-keys": list(keys)}


def require_exactly_one(model: BaseModel, field_names: Iterable[str]) -> str:
    """Return the one (snake_case) field of `field_names` that is set on `model`.

    Raises FieldRuleError (a ValueError) naming the camelCase fields when none or
    several are set.
    """
    names = list(field_names)
    chosen = [name for name in names if getattr(model, name) is not None]
    if len(chosen) == 1:
        return chosen[0]
    allowed = ", ".join(to_camel(name) for name in names)
    if not chosen:
        raise FieldRuleError("", f"must set exactly one of {allowed}; none is set")
    found = " and ".join(to_camel(name) for name in chosen)
    raise FieldRuleError("", f"must set exactly one of {allowed}; found {found}")
