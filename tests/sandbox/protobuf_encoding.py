"""A protobuf encoder for the tests, driven by the sandbox's decoding tables, that writes what Go writes.

Kubernetes' generated marshalling writes every field a struct holds by value, zero or not, and a
pointer field only when it is set; an object encoded here therefore carries the same zero values
kubectl's bodies carry, and decoding it must leave out exactly those encoding/json leaves out.
"""

from __future__ import annotations

import base64
import datetime
import json
import struct
from typing import Any

from remediator.sandbox.protobuf import messages, wire


def body(obj: dict[str, Any]) -> bytes:
    """`k8s\\x00` + runtime.Unknown{typeMeta, raw}: a request body as client-go sends it."""
    name = messages.message_for(obj["apiVersion"], obj["kind"])
    assert name is not None, f"no message for {obj['apiVersion']} {obj['kind']}"
    type_meta = _string(1, obj["apiVersion"]) + _string(2, obj["kind"])
    raw = message(name, {k: v for k, v in obj.items() if k not in ("kind", "apiVersion")})
    return messages.MAGIC + _delimited(1, type_meta) + _delimited(2, raw) + _string(3, "") + _string(4, "")


def message(name: str, value: Any) -> bytes:
    special = messages.tables().special.get(name)
    if special is not None:
        return _special(special, value)
    out = b""
    for field in messages.tables().messages[name]:
        source = value if field.inline else value.get(field.json_name)
        present = field.inline or (field.json_name in value and source is not None)
        if field.repeated:
            items = (source or {}).items() if isinstance(field.type, tuple) else (source or [])
            for item in items:
                out += _repeated_item(field, item)
            continue
        assert isinstance(field.type, str)  # maps are repeated
        if present:
            out += _single(field.number, field.type, source)
        elif not field.pointer and field.type != "bytes":
            # Go writes what a struct holds by value even when it is the zero value.
            zero = None if "." in field.type else messages.ZERO.get(field.type, 0)
            out += _single(field.number, field.type, zero)
    return out


def _repeated_item(field: messages.Field, item: Any) -> bytes:
    if isinstance(field.type, tuple):
        _, key_type, value_type = field.type
        key, value = item
        entry = _single(1, key_type, key) + _single(2, value_type, value)
        return _delimited(field.number, entry)
    assert isinstance(field.type, str)
    return _single(field.number, field.type, item)


def _single(number: int, type_name: str, value: Any) -> bytes:
    if "." in type_name:
        return _delimited(number, b"" if value is None else message(type_name, value))
    if type_name == "string":
        return _string(number, value)
    if type_name == "bytes":
        return _delimited(number, base64.b64decode(value))
    if type_name == "bool":
        return _key(number, wire.VARINT) + _varint(int(value))
    if type_name == "double":
        return _key(number, wire.FIXED64) + struct.pack("<d", value)
    return _key(number, wire.VARINT) + _varint(value)


def _special(special: str, value: Any) -> bytes:
    if special in ("time", "microtime"):
        if value is None:
            return b""
        moment = datetime.datetime.fromisoformat(value.replace("Z", "+00:00"))
        seconds = int(moment.timestamp())
        return _key(1, wire.VARINT) + _varint(seconds) + _key(2, wire.VARINT) + _varint(moment.microsecond * 1000)
    if special == "quantity":
        return _string(1, value)
    if special == "intorstring":
        if isinstance(value, str):
            return _key(1, wire.VARINT) + _varint(1) + _key(2, wire.VARINT) + _varint(0) + _string(3, value)
        return _key(1, wire.VARINT) + _varint(0) + _key(2, wire.VARINT) + _varint(value) + _string(3, "")
    if special in ("rawextension", "fieldsv1"):
        return b"" if value is None else _delimited(1, json.dumps(value).encode())
    if special == "strings":
        return b"".join(_string(1, item) for item in value)
    if special == "duration":
        raise NotImplementedError("no test encodes a duration")
    raise AssertionError(special)


def _varint(value: int) -> bytes:
    value &= (1 << 64) - 1  # negative numbers are sent as 64-bit two's complement
    out = bytearray()
    while True:
        byte, value = value & 0x7F, value >> 7
        out.append(byte | (0x80 if value else 0))
        if not value:
            return bytes(out)


def _key(number: int, wire_type: int) -> bytes:
    return _varint(number << 3 | wire_type)


def _delimited(number: int, data: bytes) -> bytes:
    return _key(number, wire.LENGTH_DELIMITED) + _varint(len(data)) + data


def _string(number: int, text: str) -> bytes:
    return _delimited(number, text.encode())
