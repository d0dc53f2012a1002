"""The protobuf wire format: a message as a sequence of (field number, wire type, value).

https://protobuf.dev/programming-guides/encoding/ — only what Kubernetes' messages use:
varints, 64- and 32-bit fixed values and length-delimited bytes (no groups).
"""

from __future__ import annotations

from collections.abc import Iterator

VARINT, FIXED64, LENGTH_DELIMITED, FIXED32 = 0, 1, 2, 5


class WireError(ValueError):
    """The bytes are not a well-formed protobuf message."""


def read_varint(data: bytes, position: int) -> tuple[int, int]:
    """The unsigned varint at `position` and the position after it."""
    result = shift = 0
    while True:
        if position >= len(data):
            raise WireError("unexpected end of data in a varint")
        byte = data[position]
        position += 1
        result |= (byte & 0x7F) << shift
        if byte < 0x80:
            return result, position
        shift += 7
        if shift >= 70:
            raise WireError("varint is too long")


def fields(data: bytes) -> Iterator[tuple[int, int, int | bytes]]:
    """Each field of a message in wire order: varints and fixed values as ints, the rest as bytes."""
    position = 0
    while position < len(data):
        key, position = read_varint(data, position)
        number, wire_type = key >> 3, key & 7
        if number == 0:
            raise WireError("field number 0")
        value: int | bytes
        if wire_type == VARINT:
            value, position = read_varint(data, position)
        elif wire_type == LENGTH_DELIMITED:
            length, position = read_varint(data, position)
            if position + length > len(data):
                raise WireError(f"field {number} runs past the end of the data")
            value, position = data[position:position + length], position + length
        elif wire_type in (FIXED64, FIXED32):
            size = 8 if wire_type == FIXED64 else 4
            if position + size > len(data):
                raise WireError(f"field {number} runs past the end of the data")
            value, position = int.from_bytes(data[position:position + size], "little"), position + size
        else:
            raise WireError(f"unsupported wire type {wire_type} in field {number}")
        yield number, wire_type, value


def signed(value: int, bits: int) -> int:
    """A varint read as a two's complement int32/int64 (negative int32s are sign-extended to 64 bits)."""
    value &= (1 << 64) - 1
    if value >= 1 << 63:
        value -= 1 << 64
    if bits == 32:
        value = (value + (1 << 31)) % (1 << 32) - (1 << 31)
    return value


def zigzag(value: int) -> int:
    return (value >> 1) ^ -(value & 1)
