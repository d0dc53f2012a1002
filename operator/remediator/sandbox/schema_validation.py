"""OpenAPI v3 value validation of a custom object, as kube-apiserver runs it for a CRD schema.

A port of what kube-openapi's `validate.SchemaValidator` does with a CRD's `openAPIV3Schema`, and of
how apiextensions-apiserver turns its result into field errors (`kubeOpenAPIResultToFieldErrors`):
the same checks in the same order, the same messages, the same quirks (a oneOf failure is filed
under the `<nil>` field; a string with `format: date-time` given a number says
`must be of type date-time: "int64"`; integral floats pass `type: integer`).

Not here: `x-kubernetes-validations` (CEL) rules are ignored; string formats other than
`date-time` and `date` are accepted without checking; `pattern` runs on Python's `re`, which
agrees with Go's RE2 on the patterns CRDs use but not on every construct.
"""

from __future__ import annotations

import functools
import math
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from remediator.sandbox import field_errors, go_format
from remediator.sandbox.field_errors import FieldError

# String formats the apiextensions server keeps; any other format on a string is dropped.
_STRING_FORMATS = frozenset({
    "bsonobjectid", "uri", "email", "hostname", "ipv4", "ipv6", "cidr", "mac", "uuid", "uuid3", "uuid4",
    "uuid5", "isbn", "isbn10", "isbn13", "creditcard", "ssn", "hexcolor", "rgbcolor", "byte", "password",
    "date", "duration", "datetime", "quantity",
})
_MAX_JSON_INTEGER = float(2**53 - 1)
_DATE = re.compile(r"([0-9]{4})-([0-9]{2})-([0-9]{2})")
_TIME = re.compile(r"([0-9]{2}):([0-9]{2}):([0-9]{2})(.[0-9]+)?(z|([+-][0-9]{2}:[0-9]{2}))")


@dataclass(frozen=True)
class _Failure:
    """One kube-openapi error: its kind, its path (`spec.replicas`, `.spec` for required at the root)."""

    code: str
    name: str
    message: str
    value: Any = None
    limit: int | None = None
    allowed: tuple[Any, ...] = ()


class _Result:
    """kube-openapi's Result: failures (each message once) and the match count oneOf/anyOf rank by."""

    def __init__(self, *failures: _Failure) -> None:
        self.failures: list[_Failure] = []
        self.matches = 0
        for failure in failures:
            self.add(failure)

    @property
    def valid(self) -> bool:
        return not self.failures

    def add(self, failure: _Failure) -> None:
        if all(f.message != failure.message for f in self.failures):
            self.failures.append(failure)

    def merge(self, other: _Result | None) -> None:
        if other is None:
            return
        for failure in other.failures:
            self.add(failure)
        self.matches += other.matches


def validate_value(schema: Mapping[str, Any], obj: Any) -> list[FieldError]:
    """The field errors kube-apiserver reports for `obj` against a CRD's `openAPIV3Schema`.

    Covers the OpenAPI keywords only; list-type uniqueness and embedded resources are checked by
    `schemas.validate`. Never raises for decoded JSON values; an empty list means valid.
    """
    return [_field_error(failure) for failure in _validate(schema, obj, "").failures]


def _field_error(failure: _Failure) -> FieldError:
    if failure.code == "composite":
        return field_errors.invalid(field_errors.NIL_PATH, "", failure.message)
    path = failure.name.removeprefix(".") if failure.name not in ("", ".") else ""
    value = "" if failure.value is None else failure.value
    if failure.code == "required":
        return field_errors.required(path)
    if failure.code == "enum":
        supported = [v if isinstance(v, str) else go_format.to_json(v) for v in failure.allowed]
        return field_errors.not_supported(path, failure.value, supported)
    if failure.code == "too_long":
        return field_errors.too_long(path, failure.limit if failure.limit is not None else -1)
    if failure.code in ("max_items", "too_many_properties"):
        actual = failure.value if go_format.is_int64(failure.value) else -1
        return field_errors.too_many(path, actual, failure.limit if failure.limit is not None else -1)
    if failure.code == "type":
        return field_errors.type_invalid(path, value, failure.message)
    return field_errors.invalid(path, value, failure.message)


# -- the schema validator: type, junctors, string, format, number, array, enum, object ----------------


def _validate(schema: Mapping[str, Any], data: Any, path: str) -> _Result:
    result = _Result()
    types = _types(schema)
    fmt = _format(schema, types)
    if data is None:
        # kube-openapi checks only type (nullable) and enum for a null
        result.merge(_check_type(types, fmt, bool(schema.get("nullable")), None, path))
        result.merge(_check_enum(schema, None, path))
        return result
    kind, _ = _json_type(data)
    checks: list[_Result | None] = []
    if types or fmt:
        checks.append(_check_type(types, fmt, bool(schema.get("nullable")), data, path))
    has_junctors = "anyOf" in schema or "oneOf" in schema or "allOf" in schema or "not" in schema
    checks.append(_check_junctors(schema, data, path) if has_junctors else _NO_JUNCTORS)
    if kind == "string":
        checks.append(_check_string(schema, data, path))
        if fmt.replace("-", "") in _STRING_FORMATS:
            checks.append(_check_format(fmt, data, path))
    if kind in ("integer", "number"):
        checks.append(_check_number(schema, data, path))
    if kind == "array":
        checks.append(_check_array(schema, data, path))
    checks.append(_check_enum(schema, data, path))
    if kind == "object":
        checks.append(_check_object(schema, data, path))
    for check in checks:
        result.merge(check)
        result.matches += 1
    result.matches += 1
    return result


# What _check_junctors finds for a schema without anyOf, oneOf, allOf or not: one match, no failure
# (shared, never changed: results are only ever merged into others).
_NO_JUNCTORS = _Result()
_NO_JUNCTORS.matches = 1


def _check_type(types: Sequence[str], fmt: str, nullable: bool, data: Any, path: str) -> _Result:
    if data is None:
        if types and "null" not in types and not nullable:
            return _Result(_type_failure(path, ",".join(types), "null"))
        return _counted(_Result())
    json_type, go_type = _json_type(data)
    is_float_int = json_type == "number" and "integer" in types and _is_json_integer(go_format.as_float(data))
    is_int_float = json_type == "integer" and "number" in types
    if (json_type not in ("string", "array") and fmt
            and not (json_type in types or go_type == fmt or is_float_int or is_int_float)):
        return _Result(_type_failure(path, fmt, go_type))
    if not ("number" in types or "integer" in types) and fmt and json_type in ("string", "array"):
        return _counted(_Result())
    if not (json_type in types or is_float_int or is_int_float):
        return _Result(_type_failure(path, ",".join(types), json_type))
    return _counted(_Result())


def _type_failure(path: str, type_name: str, got: str) -> _Failure:
    return _Failure("type", path, f"{path} in body must be of type {type_name}: {go_format.quote(got)}",
                    value=got)


def _only_required(branches: list[Mapping[str, Any]]) -> bool:
    return all(set(branch) == {"required"} and isinstance(branch["required"], list) for branch in branches)


def _required_branch_matches(branches: list[Mapping[str, Any]], data: Any) -> int:
    return sum(1 for branch in branches if all(key in data for key in branch["required"]))


def _check_junctors(schema: Mapping[str, Any], data: Any, path: str) -> _Result:
    # Fast path for the common `oneOf: [{required: [a]}, {required: [b]}]` (one-of-these-fields) when it holds:
    # the full walk below builds every failing branch's messages, which only matter when it fails.
    one_of_fast = _subschemas(schema.get("oneOf"))
    if (one_of_fast and not schema.get("anyOf") and not schema.get("allOf") and "not" not in schema
            and isinstance(data, Mapping) and _only_required(one_of_fast)
            and _required_branch_matches(one_of_fast, data) == 1):
        return _counted(_Result())
    result = _Result()
    quoted = go_format.quote(path) if any(k in schema for k in ("anyOf", "oneOf", "allOf", "not")) else ""
    any_of = _subschemas(schema.get("anyOf"))
    if any_of:
        best: _Result | None = None
        first_success: _Result | None = None
        for branch in any_of:
            attempt = _validate(branch, data, path)
            if attempt.valid:
                best, first_success = None, attempt
                break
            if best is None or attempt.matches > best.matches:
                best = attempt
        if first_success is None:
            result.add(_Failure("composite", "", f"{quoted} must validate at least one schema (anyOf)"))
        result.merge(best if best is not None else first_success)

    one_of = _subschemas(schema.get("oneOf"))
    if one_of:
        best = None
        first_success = None
        validated = 0
        for branch in one_of:
            attempt = _validate(branch, data, path)
            if attempt.valid:
                validated += 1
                best = None
                first_success = first_success or attempt
                continue
            if validated == 0 and (best is None or attempt.matches > best.matches):
                best = attempt
        if validated != 1:
            found = "Found none valid" if validated == 0 else f"Found {validated} valid alternatives"
            result.add(_Failure("composite", "",
                                f"{quoted} must validate one and only one schema (oneOf). {found}"))
            result.merge(best)
        else:
            result.merge(first_success)

    all_of = _subschemas(schema.get("allOf"))
    if all_of:
        validated = 0
        for branch in all_of:
            attempt = _validate(branch, data, path)
            validated += attempt.valid
            result.merge(attempt)
        if validated != len(all_of):
            none = ". None validated" if validated == 0 else ""
            result.add(_Failure("composite", "", f"{quoted} must validate all the schemas (allOf){none}"))

    not_schema = schema.get("not")
    if isinstance(not_schema, Mapping) and _validate(not_schema, data, path).valid:
        result.add(_Failure("composite", "", f"{quoted} must not validate the schema (not)"))
    return _counted(result)


def _check_string(schema: Mapping[str, Any], data: str, path: str) -> _Result | None:
    # kube-openapi stops at the first failing string check
    max_length = _limit(schema.get("maxLength"))
    if max_length is not None and len(data) > max_length:
        return _Result(_Failure("too_long", path, f"{path} in body should be at most {max_length} chars long",
                                value=data, limit=max_length))
    min_length = _limit(schema.get("minLength"))
    if min_length is not None and len(data) < min_length:
        message = f"{path} in body should be at least {min_length} chars long"
        return _Result(_Failure("too_short", path, message, value=data))
    pattern = schema.get("pattern")
    if isinstance(pattern, str) and pattern:
        try:
            matched = _compiled(pattern).search(data) is not None
        except re.error as e:
            return _Result(_Failure("pattern", path,
                                    f"{path} in body should match '{pattern}, but pattern is invalid: {e}'",
                                    value=data))
        if not matched:
            return _Result(_Failure("pattern", path, f"{path} in body should match '{pattern}'", value=data))
    return None


def _check_format(fmt: str, data: str, path: str) -> _Result | None:
    checks: dict[str, Callable[[str], bool]] = {"datetime": _is_date_time, "date": _is_date}
    check = checks.get(fmt.replace("-", ""))
    if check is None or check(data):
        return None
    return _Result(_Failure("type", path, f"{path} in body must be of type {fmt}: {go_format.quote(data)}",
                            value=data))


def _check_number(schema: Mapping[str, Any], data: int | float, path: str) -> _Result:
    result = _Result()
    is_int = go_format.is_int64(data)
    number: int | float = data if is_int else go_format.as_float(data)
    multiple_of = _number(schema.get("multipleOf"))
    if multiple_of is not None:
        result.merge(_check_multiple_of(path, data, multiple_of, is_int))
    minimum = _number(schema.get("minimum"))
    if minimum is not None:
        exclusive = schema.get("exclusiveMinimum") is True
        bound: int | float = _go_int64(minimum) if is_int else minimum
        if (number <= bound) if exclusive else (number < bound):
            words = "greater than" if exclusive else "greater than or equal to"
            result.add(_Failure("min", path, f"{path} in body should be {words} {go_format.value_v(bound)}",
                                value=data))
    maximum = _number(schema.get("maximum"))
    if maximum is not None:
        exclusive = schema.get("exclusiveMaximum") is True
        bound = _go_int64(maximum) if is_int else maximum
        if (number >= bound) if exclusive else (number > bound):
            words = "less than" if exclusive else "less than or equal to"
            result.add(_Failure("max", path, f"{path} in body should be {words} {go_format.value_v(bound)}",
                                value=data))
    return _counted(result)


def _check_multiple_of(path: str, data: int | float, factor: float, is_int: bool) -> _Result | None:
    int_factor = _go_int64(factor)
    # for an int64 value kube-openapi divides by the factor truncated to int64 (Go would panic on 0)
    if is_int and int_factor != 0:
        if int_factor < 0:
            return _Result(_positive_factor_failure(path, int_factor))
        if int(data) % int_factor != 0:
            message = f"{path} in body should be a multiple of {int_factor}"
            return _Result(_Failure("multiple_of", path, message, value=data))
        return None
    if factor < 0:
        return _Result(_positive_factor_failure(path, factor))
    value = go_format.as_float(data)
    try:
        quotient = (1 / factor * value) if factor < 1 else (value / factor)
    except ZeroDivisionError:
        quotient = math.nan
    if not _is_json_integer(quotient):
        message = f"{path} in body should be a multiple of {go_format.value_v(factor)}"
        return _Result(_Failure("multiple_of", path, message, value=data))
    return None


def _positive_factor_failure(path: str, factor: int | float) -> _Failure:
    return _Failure("multiple_of_positive", path,
                    f"factor MultipleOf declared for {path} must be positive: {go_format.value_v(factor)}",
                    value=factor)


def _check_array(schema: Mapping[str, Any], data: list[Any], path: str) -> _Result:
    result = _Result()
    items = schema.get("items")
    if isinstance(items, Mapping):
        for position, item in enumerate(data):
            result.merge(_validate(items, item, f"{path}[{position}]"))
    size = len(data)
    min_items = _limit(schema.get("minItems"))
    if min_items is not None and size < min_items:
        result.add(_Failure("min_items", path, f"{path} in body should have at least {min_items} items",
                            value=size))
    max_items = _limit(schema.get("maxItems"))
    if max_items is not None and size > max_items:
        result.add(_Failure("max_items", path, f"{path} in body should have at most {max_items} items",
                            value=size, limit=max_items))
    if schema.get("uniqueItems") is True and _has_duplicates(data):
        result.add(_Failure("unique", path, f"{path} in body shouldn't contain duplicates"))
    return _counted(result)


def _check_enum(schema: Mapping[str, Any], data: Any, path: str) -> _Result | None:
    allowed = schema.get("enum")
    if not isinstance(allowed, list) or not allowed:
        return None
    if type(data) is str:
        # A string only ever matches an equal string entry: list membership is the whole test.
        if data in allowed:
            return None
    elif any(_enum_matches(data, candidate) for candidate in allowed):
        return None
    listed = "[" + " ".join(v if isinstance(v, str) else go_format.value_v(v) for v in allowed) + "]"
    return _Result(_Failure("enum", path, f"{path} in body should be one of {listed}", value=data,
                            allowed=tuple(allowed)))


def _check_object(schema: Mapping[str, Any], data: Mapping[str, Any], path: str) -> _Result:
    count = len(data)
    min_properties = _limit(schema.get("minProperties"))
    if min_properties is not None and count < min_properties:
        message = f"{path} in body should have at least {min_properties} properties"
        return _Result(_Failure("too_few_properties", path, message, value=count))
    max_properties = _limit(schema.get("maxProperties"))
    if max_properties is not None and count > max_properties:
        message = f"{path} in body should have at most {max_properties} properties"
        return _Result(_Failure("too_many_properties", path, message, value=count, limit=max_properties))
    result = _Result()
    declared = properties(schema)
    additional = schema.get("additionalProperties")
    for name, value in data.items():
        if name in declared:
            continue
        if additional is False:
            result.add(_Failure("unallowed_property", path, f"{path}.{name} in body is a forbidden property",
                                value=name))
        elif isinstance(additional, Mapping):
            result.merge(_validate(additional, value, f"{path}.{name}"))
    for name, property_schema in declared.items():
        if name in data:
            result.merge(_validate(property_schema, data[name], f"{path}.{name}" if path else name))
    required = schema.get("required")
    for name in required if isinstance(required, list) else []:
        if isinstance(name, str) and name not in data:
            result.add(_Failure("required", f"{path}.{name}", f"{path}.{name} in body is required"))
    return result


# -- helpers ------------------------------------------------------------------------------------------


def _counted(result: _Result) -> _Result:
    result.matches += 1
    return result


def _types(schema: Mapping[str, Any]) -> list[str]:
    if schema.get("x-kubernetes-int-or-string") is True:
        return ["integer", "string"]
    declared = schema.get("type")
    return [declared] if isinstance(declared, str) and declared else []


def _format(schema: Mapping[str, Any], types: Sequence[str]) -> str:
    """The format kube-apiserver keeps after dropping the ones it does not support for the type."""
    fmt = schema.get("format")
    if not isinstance(fmt, str) or not fmt:
        return ""
    single = types[0] if len(types) == 1 else ""
    if single in ("", "string"):
        return fmt if fmt.replace("-", "") in _STRING_FORMATS else ""
    if single == "integer":
        return fmt if fmt in ("int32", "int64") else ""
    if single == "number":
        return fmt if fmt in ("float", "double") else ""
    return ""


_EXACT_TYPES: dict[type, tuple[str, str]] = {str: ("string", ""), dict: ("object", ""), list: ("array", "")}


def _json_type(data: Any) -> tuple[str, str]:
    """The JSON type and Go format kube-openapi infers from a decoded value."""
    exact = _EXACT_TYPES.get(type(data))
    if exact is not None:
        return exact  # the common decoded types, without the ABC check a Mapping test costs
    if isinstance(data, bool):
        return "boolean", ""
    if go_format.is_int64(data):
        return "integer", "int64"
    if go_format.is_float64(data):
        return "number", "float64"
    if isinstance(data, str):
        return "string", ""
    if isinstance(data, list | tuple):
        return "array", ""
    if isinstance(data, Mapping):
        return "object", ""
    return "", ""


def _is_json_integer(number: float) -> bool:
    """go-openapi's swag.IsFloat64AJSONInteger: integral, or within a relative 1e-9 of one."""
    if not math.isfinite(number) or abs(number) > _MAX_JSON_INTEGER:
        return False
    truncated = float(math.trunc(number))
    if number == truncated:
        return True
    if number < 0 or truncated == 0:
        return False  # Go's uint64 conversion of a negative float is meaningless; tiny values never pass
    return abs(number - truncated) / (number + truncated) < 1e-9


def _go_int64(number: float) -> int:
    """Go's int64(float64) on amd64: truncation, and MinInt64 for what does not fit."""
    if math.isfinite(number) and go_format.INT64_MIN <= number < 2.0**63:
        return int(number)
    return go_format.INT64_MIN


def _number(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return go_format.as_float(value)


def _limit(value: Any) -> int | None:
    if isinstance(value, bool) or not isinstance(value, int):
        return None
    return value


# The property schemas of each `properties` seen, by its identity; the entry holds it, so its id stays its own.
# Schemas are never changed; checking every property anew on each node walked was a fifth of a validation.
_PROPERTIES: dict[int, tuple[Mapping[str, Any], Mapping[str, Mapping[str, Any]]]] = {}
PROPERTIES_MAX = 10_000


def properties(schema: Mapping[str, Any]) -> Mapping[str, Mapping[str, Any]]:
    """The property schemas of a schema node, without entries that are not schemas (shared with the schema:
    never to be changed)."""
    declared = schema.get("properties")
    if not isinstance(declared, Mapping):
        return {}
    known = _PROPERTIES.get(id(declared))
    if known is not None:
        return known[1]
    found = declared if all(type(sub) is dict for sub in declared.values()) \
        else {name: sub for name, sub in declared.items() if isinstance(sub, Mapping)}
    if len(_PROPERTIES) >= PROPERTIES_MAX:
        _PROPERTIES.clear()
    _PROPERTIES[id(declared)] = (declared, found)
    return found


def _subschemas(value: Any) -> list[Mapping[str, Any]]:
    return [s for s in value if isinstance(s, Mapping)] if isinstance(value, list) else []


@functools.lru_cache(maxsize=512)
def _compiled(pattern: str) -> re.Pattern[str]:
    return re.compile(pattern)


def go_equal(left: Any, right: Any) -> bool:
    """reflect.DeepEqual over decoded JSON: int64 1, float64 1.0 and true are three different values."""
    left_type, right_type = _json_type(left), _json_type(right)
    if left is None or right is None:
        return left is None and right is None
    if left_type != right_type:
        return False
    if isinstance(left, Mapping) and isinstance(right, Mapping):
        return left.keys() == right.keys() and all(go_equal(left[k], right[k]) for k in left)
    if isinstance(left, list | tuple) and isinstance(right, list | tuple):
        return len(left) == len(right) and all(go_equal(a, b) for a, b in zip(left, right, strict=True))
    return bool(left == right)


def _has_duplicates(items: Sequence[Any]) -> bool:
    return any(go_equal(items[i], items[j]) for i in range(len(items)) for j in range(i))


def _enum_matches(data: Any, candidate: Any) -> bool:
    """kube-openapi's enum test: convert the value to the enum entry's Go type, then DeepEqual."""
    if data is None or candidate is None:
        return False
    data_type, _ = _json_type(data)
    candidate_type, _ = _json_type(candidate)
    if data_type in ("integer", "number") and candidate_type == "integer":
        converted = _go_int64(go_format.as_float(data)) if data_type == "number" else int(data)
        return converted == int(candidate)
    if data_type in ("integer", "number") and candidate_type == "number":
        return go_format.as_float(data) == go_format.as_float(candidate)
    if data_type == "integer" and candidate_type == "string":
        # Go converts an int64 to the string of that code point
        valid = 0 <= data <= 0x10FFFF and not 0xD800 <= data <= 0xDFFF
        return (chr(data) if valid else "\ufffd") == str(candidate)
    return go_equal(data, candidate)


def _is_date(text: str) -> bool:
    """strfmt's `date`: time.Parse("2006-01-02"), which checks the day against the month."""
    match = _DATE.fullmatch(text)
    if match is None:
        return False
    year, month, day = (int(part) for part in match.groups())
    if not 1 <= month <= 12:
        return False
    leap = year % 4 == 0 and (year % 100 != 0 or year % 400 == 0)
    days = [31, 29 if leap else 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31][month - 1]
    return 1 <= day <= days


@functools.lru_cache(maxsize=1024)
def _is_date_time(text: str) -> bool:
    """strfmt's `date-time`: a date, a `T`, then hh:mm:ss[.frac] and `Z` or an offset (RFC 3339)."""
    if len(text) < 4:
        return False
    parts = text.lower().split("t")
    if len(parts) < 2 or not _is_date(parts[0]):
        return False
    match = _TIME.fullmatch(parts[1])
    if match is None:
        return False
    hour, minute, second = match.group(1), match.group(2), match.group(3)
    return hour <= "23" and minute <= "59" and second <= "59"
