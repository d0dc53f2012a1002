"""How Go's fmt and encoding/json print decoded JSON values, for kube-apiserver's messages.

kube-apiserver words its errors with `%v`, `%q` and `%#v` over values decoded from JSON
(`int64`, `float64`, `string`, `bool`, `nil`, `map[string]interface{}`, `[]interface{}`), so a
sandbox that must read like the real server has to print them the same way.
"""

from __future__ import annotations

import json
import math
from decimal import Decimal
from typing import Any

INT64_MIN = -(2**63)
INT64_MAX = 2**63 - 1

_ESCAPES = {"\a": "\\a", "\b": "\\b", "\f": "\\f", "\n": "\\n", "\r": "\\r", "\t": "\\t", "\v": "\\v",
            "\\": "\\\\", '"': '\\"'}


def is_int64(value: Any) -> bool:
    """Whether a decoded JSON value is what Go decodes to int64 (bool is not; ints past int64 are float64)."""
    return isinstance(value, int) and not isinstance(value, bool) and INT64_MIN <= value <= INT64_MAX


def is_float64(value: Any) -> bool:
    """Whether a decoded JSON value is what Go decodes to float64."""
    return isinstance(value, float) or (isinstance(value, int) and not isinstance(value, bool)
                                        and not is_int64(value))


def as_float(value: Any) -> float:
    """A number as float64; ints too large for a float become ±Inf like Go's conversion would."""
    try:
        return float(value)
    except OverflowError:
        return math.inf if value > 0 else -math.inf


def quote(text: str) -> str:
    """Go's strconv.Quote / `%q`: double-quoted, printable Unicode kept, the rest escaped."""
    out = ['"']
    for char in text:
        if char in _ESCAPES:
            out.append(_ESCAPES[char])
        elif char.isprintable():
            out.append(char)
        elif ord(char) < 0x80:
            out.append(f"\\x{ord(char):02x}")
        elif ord(char) < 0x10000:
            out.append(f"\\u{ord(char):04x}")
        else:
            out.append(f"\\U{ord(char):08x}")
    out.append('"')
    return "".join(out)


def _digits(number: float) -> tuple[str, int]:
    """Shortest round-trip decimal digits of a positive finite float and its decimal-point position."""
    _, digit_tuple, exponent = Decimal(repr(number)).normalize().as_tuple()
    digits = "".join(str(d) for d in digit_tuple)
    assert isinstance(exponent, int)
    return digits, len(digits) + exponent


def _positional(digits: str, point: int) -> str:
    """The digits with the decimal point at `point`, padded with zeros on either side; no exponent."""
    if point <= 0:
        return f"0.{'0' * -point}{digits}"
    if point >= len(digits):
        return digits + "0" * (point - len(digits))
    return f"{digits[:point]}.{digits[point:]}"


def float_v(number: float) -> str:
    """Go's `%v` for a float64: shortest digits, exponent form below 1e-4 and from 1e6 (`1e+06`)."""
    if math.isnan(number):
        return "NaN"
    if math.isinf(number):
        return "+Inf" if number > 0 else "-Inf"
    if number == 0:
        return "-0" if math.copysign(1.0, number) < 0 else "0"
    sign = "-" if number < 0 else ""
    digits, point = _digits(abs(number))
    exponent = point - 1
    # strconv 'g' with shortest precision switches to %e when exp < -4 || exp >= 6 (eprec = 6).
    if exponent < -4 or exponent >= 6:
        mantissa = digits[0] + ("." + digits[1:] if len(digits) > 1 else "")
        return f"{sign}{mantissa}e{'-' if exponent < 0 else '+'}{abs(exponent):02d}"
    return sign + _positional(digits, point)


def value_v(value: Any) -> str:
    """Go's `%v` for a simple decoded value (number or bool); others fall back to `%#v`."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if is_int64(value):
        return str(value)
    if is_float64(value):
        return float_v(as_float(value))
    return go_syntax(value)


def go_syntax(value: Any) -> str:
    """Go's `%#v` for a value decoded into interface{}: `map[string]interface {}{"a":1}` and so on."""
    if value is None:
        return "interface {}(nil)"
    if isinstance(value, str):
        return quote(value)
    if isinstance(value, dict):
        items = ", ".join(f"{quote(str(k))}:{go_syntax(v)}" for k, v in sorted(value.items()))
        return "map[string]interface {}{" + items + "}"
    if isinstance(value, list | tuple):
        return "[]interface {}{" + ", ".join(go_syntax(v) for v in value) + "}"
    return value_v(value)


def _json_float(number: float) -> str:
    """encoding/json's float64: plain decimal, exponent form only below 1e-6 or from 1e21."""
    if not math.isfinite(number):
        return "null"  # Go refuses to marshal these; never reached for decoded JSON
    if number == 0:
        return "0"
    magnitude = abs(number)
    if magnitude < 1e-6 or magnitude >= 1e21:
        text = float_v(number)
        # encoding/json trims the exponent's leading zero: fmt's 1e-07 becomes 1e-7
        mantissa, _, exponent = text.partition("e")
        sign, digits = exponent[0], exponent[1:].lstrip("0") or "0"
        return f"{mantissa}e{sign}{digits}"
    digits, point = _digits(magnitude)
    sign = "-" if number < 0 else ""
    return sign + _positional(digits, point)


def to_json(value: Any) -> str:
    """encoding/json.Marshal of a decoded value: sorted keys, no spaces, HTML characters escaped."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if is_int64(value):
        return str(value)
    if is_float64(value):
        return _json_float(as_float(value))
    if isinstance(value, str):
        text = json.dumps(value, ensure_ascii=False)
        return (text.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")
                .replace("\u2028", "\\u2028").replace("\u2029", "\\u2029"))
    if isinstance(value, dict):
        return "{" + ",".join(f"{to_json(str(k))}:{to_json(v)}" for k, v in sorted(value.items())) + "}"
    if isinstance(value, list | tuple):
        return "[" + ",".join(to_json(v) for v in value) + "]"
    return to_json(str(value))
