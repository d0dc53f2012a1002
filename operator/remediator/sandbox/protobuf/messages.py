"""Kubernetes messages decoded to their JSON form, driven by the tables generated from the API's definitions.

The JSON is what Go's encoding/json prints for the struct the message decodes to (kube-apiserver decodes
into the same structs), so a protobuf body and its JSON rendering by kubectl reach the store alike:
- a field a Go struct holds by value is always on the wire; its zero value is left out under
  `omitempty` and printed otherwise (`"name": ""`), and an absent struct prints as its zero value;
- a pointer field is on the wire only when set: an explicit zero is kept (`replicas: 0`), and an
  absent one is left out (`omitempty`) or printed as null;
- empty lists and maps are left out under `omitempty` and printed as null otherwise;
- `,inline` structs (a Volume's VolumeSource) lend their fields to the enclosing object.

The tables come from tools/generate_protobuf_tables.py; kubernetes.json says from which commit.
"""

from __future__ import annotations

import base64
import dataclasses
import datetime
import functools
import importlib.resources
import json
import struct
from collections.abc import Mapping
from typing import Any

from remediator.sandbox.protobuf import wire

# The envelope (runtime.Unknown) every Kubernetes protobuf body starts with.
MAGIC = b"k8s\x00"
META_GROUP_VERSION = "meta.k8s.io/v1"

SCALAR_WIRE_TYPES = {
    "string": wire.LENGTH_DELIMITED, "bytes": wire.LENGTH_DELIMITED, "double": wire.FIXED64,
    "fixed64": wire.FIXED64, "sfixed64": wire.FIXED64, "float": wire.FIXED32, "fixed32": wire.FIXED32,
    "sfixed32": wire.FIXED32,
}
ZERO: dict[str, Any] = {"string": "", "bool": False, "double": 0.0, "float": 0.0}


class DecodeError(ValueError):
    """The body is not a protobuf encoding of a kind the tables know."""


@dataclasses.dataclass(frozen=True)
class Field:
    number: int
    json_name: str
    # A scalar type name, a message name, or ("map", key type, value type).
    type: str | tuple[str, str, str]
    repeated: bool
    pointer: bool
    omitempty: bool
    omitzero: bool
    inline: bool


@dataclasses.dataclass(frozen=True)
class Tables:
    origin: str
    kinds: Mapping[str, str]  # "group/version/Kind" ("v1/Kind" for the core group) → message
    special: Mapping[str, str]  # message → how it is decoded (time, quantity, ...)
    messages: Mapping[str, tuple[Field, ...]]
    skipped: tuple[str, ...]  # "message.jsonName" of the fields whose types the tables do not hold


@functools.cache
def tables() -> Tables:
    """The generated tables (read once, on the first protobuf body)."""
    document = json.loads(importlib.resources.files(__package__).joinpath("kubernetes.json").read_text())
    known = set(document["messages"]) | set(document["special"])

    def decodable(kind: str | list[str]) -> bool:  # fields of types from APIs not given are skipped
        return all(ref in known or "." not in ref for ref in (kind[1:] if isinstance(kind, list) else [kind]))

    messages = {
        name: tuple(Field(number, json_name, (kind[0], kind[1], kind[2]) if isinstance(kind, list) else kind,
                          "r" in flags, "p" in flags, "o" in flags, "z" in flags, "i" in flags)
                    for number, json_name, kind, flags in table if decodable(kind))
        for name, table in document["messages"].items()}
    skipped = tuple(line.partition(":")[0] for line in document["unresolved"])
    return Tables(document["origin"], document["kinds"], document["special"], messages, skipped)


def message_for(api_version: str, kind: str) -> str | None:
    """The message a kind is encoded as; the meta.k8s.io kinds (DeleteOptions...) come under any group."""
    known = tables().kinds
    return known.get(f"{api_version}/{kind}") or known.get(f"{META_GROUP_VERSION}/{kind}")


def decode_body(data: bytes) -> dict[str, Any]:
    """A request body (`k8s\\x00` + runtime.Unknown) as the JSON object it encodes, kind and apiVersion first."""
    if not data.startswith(MAGIC):
        raise DecodeError("the body does not start with the Kubernetes protobuf prefix")
    api_version, kind, raw, content_encoding = _envelope(data[len(MAGIC):])
    if content_encoding:
        raise DecodeError(f'unsupported content encoding "{content_encoding}"')
    name = message_for(api_version, kind)
    if name is None:
        raise DecodeError(f'no kind "{kind}" is registered for version "{api_version}"')
    return {"kind": kind, "apiVersion": api_version, **decode_message(name, raw)}


def _envelope(data: bytes) -> tuple[str, str, bytes, str]:
    """runtime.Unknown's typeMeta (apiVersion, kind), raw and contentEncoding.

    Read by field number: in Go's JSON form of Unknown the typeMeta is inlined and raw is hidden.
    """
    api_version = kind = content_encoding = ""
    raw = b""
    try:
        for number, _, value in wire.fields(data):
            if number == 1:
                for meta_number, _, meta_value in wire.fields(_bytes(value)):
                    if meta_number == 1:
                        api_version = _scalar("string", meta_value)
                    elif meta_number == 2:
                        kind = _scalar("string", meta_value)
            elif number == 2:
                raw = _bytes(value)
            elif number == 3:
                content_encoding = _scalar("string", value)
    except wire.WireError as e:
        raise DecodeError(f"the protobuf envelope: {e}") from None
    return api_version, kind, raw, content_encoding


def decode_message(name: str, data: bytes) -> Any:
    """One message's bytes as its JSON value (an object, or a string/number for the special types)."""
    special = tables().special.get(name)
    if special is not None:
        return _decode_special(special, data)
    table = tables().messages.get(name)
    if table is None:
        raise DecodeError(f"no table for message {name}")
    by_number = {field.number: field for field in table}
    found: dict[int, list[Any]] = {}
    try:
        for number, wire_type, value in wire.fields(data):
            field = by_number.get(number)
            if field is None:
                continue  # unknown fields are skipped, as Go's generated unmarshalling does
            found.setdefault(number, []).extend(_values(field, wire_type, value))
    except wire.WireError as e:
        raise DecodeError(f"{name}: {e}") from None
    result: dict[str, Any] = {}
    for field in table:
        _put(result, field, found.get(field.number))
    return result


def _put(result: dict[str, Any], field: Field, values: list[Any] | None) -> None:
    """Add one field to `result` as encoding/json would print the Go field it decodes to."""
    if field.repeated:
        if not values:
            if not field.omitempty:
                result[field.json_name] = None
            return
        if isinstance(field.type, tuple):
            result[field.json_name] = dict(values)
        else:
            result[field.json_name] = values
        return
    if values is None:
        if field.pointer or field.type == "bytes":  # nil: a []byte is a slice
            if not field.omitempty:
                result[field.json_name] = None
            return
        value = _zero(field.type)
    else:
        value = values[-1]
    if field.inline and isinstance(value, dict):
        result.update(value)
        return
    if not field.pointer and (field.omitempty or field.omitzero) and _is_empty(field, value):
        return
    result[field.json_name] = value


def _is_empty(field: Field, value: Any) -> bool:
    """encoding/json's omitempty (zero scalars, empty strings) and omitzero (a struct's zero value)."""
    if isinstance(field.type, str) and "." not in field.type:
        return value in ("", 0)  # "", 0, 0.0 and False
    return field.omitzero and value == _zero(field.type)  # omitempty never leaves a struct out


def _zero(type_name: str | tuple[str, str, str]) -> Any:
    if isinstance(type_name, tuple):
        return {}
    if "." in type_name:
        return decode_message(type_name, b"")
    return ZERO.get(type_name, 0)


def _values(field: Field, wire_type: int, value: int | bytes) -> list[Any]:
    """The decoded value(s) one occurrence of a field carries (packed repeated scalars carry several)."""
    if isinstance(field.type, tuple):
        _, key_type, value_type = field.type
        entry: dict[int, Any] = {}
        for number, entry_wire_type, entry_value in wire.fields(_bytes(value)):
            entry[number] = _scalar_or_message(key_type if number == 1 else value_type, entry_wire_type, entry_value)
        key = entry.get(1, _zero(key_type))
        return [(key, entry[2] if 2 in entry else _map_zero(value_type))]
    if field.repeated and wire_type == wire.LENGTH_DELIMITED and field.type not in ("string", "bytes") \
            and "." not in field.type:
        return _packed(field.type, _bytes(value))
    return [_scalar_or_message(field.type, wire_type, value)]


def _map_zero(type_name: str) -> Any:
    return "" if type_name == "bytes" else _zero(type_name)


def _packed(type_name: str, data: bytes) -> list[Any]:
    values: list[Any] = []
    position = 0
    while position < len(data):
        if type_name in SCALAR_WIRE_TYPES:
            size = 8 if SCALAR_WIRE_TYPES[type_name] == wire.FIXED64 else 4
            values.append(_scalar(type_name, int.from_bytes(data[position:position + size], "little")))
            position += size
        else:
            number, position = wire.read_varint(data, position)
            values.append(_scalar(type_name, number))
    return values


def _scalar_or_message(type_name: str, wire_type: int, value: int | bytes) -> Any:
    if "." in type_name:
        if wire_type != wire.LENGTH_DELIMITED:
            raise DecodeError(f"a {type_name} must be length-delimited")
        return decode_message(type_name, _bytes(value))
    expected = SCALAR_WIRE_TYPES.get(type_name, wire.VARINT)
    if wire_type != expected:
        raise DecodeError(f"a {type_name} cannot have wire type {wire_type}")
    return _scalar(type_name, value)


def _scalar(type_name: str, value: int | bytes) -> Any:
    if type_name == "string":
        try:
            return _bytes(value).decode()
        except UnicodeDecodeError:
            raise DecodeError("a string is not valid UTF-8") from None
    if type_name == "bytes":
        return base64.b64encode(_bytes(value)).decode()  # []byte is base64 in JSON (a Secret's data)
    number = value if isinstance(value, int) else 0
    if type_name == "bool":
        return number != 0
    if type_name in ("int32", "sfixed32"):
        return wire.signed(number, 32)
    if type_name in ("int64", "sfixed64"):
        return wire.signed(number, 64)
    if type_name in ("sint32", "sint64"):
        return wire.zigzag(number)
    if type_name == "double":
        return struct.unpack("<d", number.to_bytes(8, "little"))[0]
    if type_name == "float":
        return struct.unpack("<f", number.to_bytes(4, "little"))[0]
    return number  # uint32, uint64, fixed32, fixed64


def _bytes(value: int | bytes) -> bytes:
    if not isinstance(value, bytes):
        raise DecodeError("expected a length-delimited field")
    return value


# -- apimachinery's types with a JSON form of their own ------------------------------------------------


def _decode_special(special: str, data: bytes) -> Any:
    try:
        values: dict[int, list[int | bytes]] = {}
        for number, _, value in wire.fields(data):
            values.setdefault(number, []).append(value)
    except wire.WireError as e:
        raise DecodeError(f"{special}: {e}") from None

    def last(number: int, default: int | bytes) -> int | bytes:
        return values[number][-1] if number in values else default

    match special:
        case "time" | "microtime":
            if not data:
                return None  # the zero time, which Go prints as null
            seconds = wire.signed(_int(last(1, 0)), 64)
            moment = datetime.datetime.fromtimestamp(seconds, datetime.UTC)
            if special == "time":  # metav1.Time keeps whole seconds (its JSON form has no more)
                return moment.strftime("%Y-%m-%dT%H:%M:%SZ")
            micros = wire.signed(_int(last(2, 0)), 32) // 1000
            return moment.replace(microsecond=micros).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
        case "duration":
            return go_duration(wire.signed(_int(last(1, 0)), 64))
        case "quantity":
            return _scalar("string", last(1, b"")) or "0"
        case "intorstring":
            if _int(last(1, 0)) == 1:
                return _scalar("string", last(3, b""))
            return wire.signed(_int(last(2, 0)), 32)
        case "rawextension" | "fieldsv1":
            raw = _bytes(last(1, b""))
            if not raw:
                return None
            if raw.startswith(MAGIC):
                return decode_body(raw)  # a nested object in protobuf, as client-go encodes embedded objects
            try:
                return json.loads(raw)
            except ValueError:
                raise DecodeError(f"a {special} holds neither JSON nor a protobuf object") from None
        case "strings":
            return [_scalar("string", item) for item in values.get(1, [])]
    raise DecodeError(f"unknown special type {special}")


def _int(value: int | bytes) -> int:
    if not isinstance(value, int):
        raise DecodeError("expected a varint")
    return value


def go_duration(nanoseconds: int) -> str:
    """A duration as Go's time.Duration.String() prints it (metav1.Duration's JSON form): 1h0m0s, 1.5s, 300ms."""
    if nanoseconds == 0:
        return "0s"
    sign, left = ("-" if nanoseconds < 0 else ""), abs(nanoseconds)
    if left < 1_000_000_000:
        unit, scale = ("ns", 1) if left < 1_000 else ("µs", 1_000) if left < 1_000_000 else ("ms", 1_000_000)
        return sign + _decimal(left, scale) + unit
    hours, left = divmod(left, 3_600_000_000_000)
    minutes, left = divmod(left, 60_000_000_000)
    text = (f"{hours}h" if hours else "") + (f"{minutes}m" if hours or minutes else "")
    return sign + text + _decimal(left, 1_000_000_000) + "s"


def _decimal(value: int, scale: int) -> str:
    whole, fraction = divmod(value, scale)
    digits = str(fraction).rjust(len(str(scale)) - 1, "0").rstrip("0") if scale > 1 else ""
    return f"{whole}.{digits}" if digits else str(whole)
