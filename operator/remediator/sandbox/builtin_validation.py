"""Validation of built-in workloads' counts, as kube-apiserver decodes and validates them. Pure functions.

A Deployment's, ReplicaSet's or StatefulSet's `replicas` (and the other counts below) is a Go int32:
a value that is not one (a string, a fraction, 2147483648) fails decoding, answered 400 as
`Deployment in version "v1" cannot be handled as a Deployment: json: cannot unmarshal ...`; a
negative one fails validation, 422 `spec.replicas: Invalid value: -5: must be greater than or
equal to 0` (apps/validation ValidateNonnegativeField).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from remediator.sandbox import field_errors
from remediator.sandbox.field_errors import FieldError

INT32 = (-(2**31), 2**31 - 1)
NON_NEGATIVE = "must be greater than or equal to 0"
# (group, kind) → the spec's int32 fields that may not be negative.
COUNTS: dict[tuple[str, str], tuple[str, ...]] = {
    ("apps", "Deployment"): ("replicas", "minReadySeconds", "revisionHistoryLimit"),
    ("apps", "ReplicaSet"): ("replicas", "minReadySeconds"),
    ("apps", "StatefulSet"): ("replicas", "minReadySeconds", "revisionHistoryLimit"),
}


class DecodeError(ValueError):
    """A body that does not decode into the Go type: the message is the json error kube-apiserver quotes."""


def decode_problem(value: Any, struct: str, field: str) -> str | None:
    """The encoding/json error of `value` in an int32 field, or None when it decodes."""
    if isinstance(value, bool):
        described = "bool"
    elif isinstance(value, int):
        if INT32[0] <= value <= INT32[1]:
            return None
        described = f"number {value}"
    elif isinstance(value, float):
        described = f"number {value!r}"  # Go parses the literal as an integer: "3.0" fails too
    elif isinstance(value, str):
        described = "string"
    elif isinstance(value, list):
        described = "array"
    elif isinstance(value, dict):
        described = "object"
    else:
        return None  # null leaves the field unset
    return f"json: cannot unmarshal {described} into Go struct field {struct}.{field} of type int32"


def problems(group: str, kind: str, obj: Mapping[str, Any]) -> list[FieldError]:
    """The validation errors of the counts; raises DecodeError for one that is not an int32."""
    fields = COUNTS.get((group, kind))
    spec = obj.get("spec")
    if not fields or not isinstance(spec, Mapping):
        return []
    errors = []
    for name in fields:
        value = spec.get(name)
        decode = decode_problem(value, f"{kind}Spec", f"spec.{name}")
        if decode is not None:
            raise DecodeError(decode)
        if isinstance(value, int) and value < 0:
            errors.append(field_errors.invalid(f"spec.{name}", value, NON_NEGATIVE))
    return errors
