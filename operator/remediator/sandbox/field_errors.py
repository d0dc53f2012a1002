"""Field-level validation errors worded like k8s.io/apimachinery's `field.Error`.

A `FieldError` is one cause of a 422 Invalid: the field path, the cause type
(`FieldValueInvalid`, ...) and the body `field.Error.ErrorBody()` renders, e.g.
`Invalid value: -1: spec.replicas in body should be greater than or equal to 0`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from remediator.sandbox import go_format

# What a nil *field.Path prints as: kube-apiserver files CRD oneOf/anyOf/allOf/not failures here.
NIL_PATH = "<nil>"

_OMIT_VALUE = object()


@dataclass(frozen=True)
class FieldError:
    """One cause of an Invalid error, as `metav1.StatusCause` carries it."""

    field: str    # "spec.steps[0].scale.replicas"
    reason: str   # the cause type: "FieldValueInvalid", "FieldValueRequired", ...
    message: str  # the body without the field: 'Invalid value: -1: ... should be ...'

    def __str__(self) -> str:
        return f"{self.field}: {self.message}"


def child(path: str, name: str) -> str:
    """`field.Path.Child`: `spec` + `replicas` is `spec.replicas`; "" is the nil root."""
    return f"{path}.{name}" if path else name


def index(path: str, position: int) -> str:
    """`field.Path.Index`: `spec.steps[1]`."""
    return f"{path}[{position}]"


def key(path: str, map_key: str) -> str:
    """`field.Path.Key`: `spec.labels[app]`."""
    return f"{path}[{map_key}]"


def describe_value(value: Any) -> str:
    """How `ErrorBody` prints a bad value: `%v` for numbers and bools, `%q` for strings, `%#v` else."""
    if value is None:
        return go_format.quote("null")
    if isinstance(value, str):
        return go_format.quote(value)
    if isinstance(value, dict | list | tuple):
        return go_format.go_syntax(value)
    return go_format.value_v(value)


def _error(reason: str, words: str, field: str, value: Any, detail: str) -> FieldError:
    body = words if value is _OMIT_VALUE else f"{words}: {describe_value(value)}"
    if detail:
        body += f": {detail}"
    return FieldError(field=field or NIL_PATH, reason=reason, message=body)


def required(field: str, detail: str = "") -> FieldError:
    """`field.Required`: `Required value`, with the detail after a colon when given."""
    return _error("FieldValueRequired", "Required value", field, _OMIT_VALUE, detail)


def forbidden(field: str, detail: str) -> FieldError:
    """`field.Forbidden`: `Forbidden: <detail>`."""
    return _error("FieldValueForbidden", "Forbidden", field, _OMIT_VALUE, detail)


def invalid(field: str, value: Any, detail: str) -> FieldError:
    """`field.Invalid`: `Invalid value: <value>: <detail>`."""
    return _error("FieldValueInvalid", "Invalid value", field, value, detail)


def type_invalid(field: str, value: Any, detail: str) -> FieldError:
    """`field.TypeInvalid`: worded like Invalid, but the cause type is FieldValueTypeInvalid."""
    return _error("FieldValueTypeInvalid", "Invalid value", field, value, detail)


def duplicate(field: str, value: Any) -> FieldError:
    """`field.Duplicate`: `Duplicate value: <value>`."""
    return _error("FieldValueDuplicate", "Duplicate value", field, value, "")


def not_supported(field: str, value: Any, supported: Sequence[str]) -> FieldError:
    """`field.NotSupported`: `Unsupported value: "P9": supported values: "P0", "P1"`."""
    detail = ""
    if supported:
        detail = "supported values: " + ", ".join(go_format.quote(v) for v in supported)
    return _error("FieldValueNotSupported", "Unsupported value", field, value, detail)


def too_long(field: str, max_length: int) -> FieldError:
    """`field.TooLongMaxLength`: `Too long: may not be longer than 63` (the value is never shown).

    Kubernetes 1.32 reworded this for built-in types (`may not be more than 63 bytes`); CRD schema
    errors kept this wording through kube-openapi, and the sandbox uses it everywhere.
    """
    detail = f"may not be longer than {max_length}" if max_length >= 0 else "value is too long"
    return _error("FieldValueTooLong", "Too long", field, _OMIT_VALUE, detail)


def too_many(field: str, actual: int, max_quantity: int) -> FieldError:
    """`field.TooMany`: `Too many: 3: must have at most 2 items`."""
    if max_quantity >= 0:
        detail = f"must have at most {max_quantity} items"  # "items" even for 1, as before 1.32
    else:
        detail = "has too many items"
    return _error("FieldValueTooMany", "Too many", field, actual if actual >= 0 else _OMIT_VALUE, detail)


def summary(errors: Sequence[FieldError]) -> str:
    """What `ErrorList.ToAggregate().Error()` prints: one error bare, several in `[a, b]`, repeats once."""
    seen: list[str] = []
    for error in errors:
        text = str(error)
        if text not in seen:
            seen.append(text)
    if len(seen) == 1:
        return seen[0]
    return "[" + ", ".join(seen) + "]"
