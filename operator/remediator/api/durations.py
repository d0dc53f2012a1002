"""Durations written the Kubernetes/Go way: "30s", "5m", "1h30m", "7d", "250ms".

Models keep the string the user wrote (so what is stored round-trips unchanged);
`parse_duration` turns it into a timedelta where the engine needs one.
"""

import re
from datetime import timedelta
from typing import Annotated

from pydantic import AfterValidator

from remediator.api.patterns import Matches

DURATION_PATTERN = r"^([0-9]+(ms|s|m|h|d))+$"
_PART = re.compile(r"([0-9]+)(ms|s|m|h|d)")
_UNITS = {
    "ms": timedelta(milliseconds=1),
    "s": timedelta(seconds=1),
    "m": timedelta(minutes=1),
    "h": timedelta(hours=1),
    "d": timedelta(days=1),
}
_FORMAT = Matches(
    DURATION_PATTERN, 'a duration such as "30s", "5m", "1h30m" or "7d" (units ms, s, m, h, d)', max_length=32
)


def parse_duration(text: str) -> timedelta:
    """Return the timedelta that `text` ("1h30m", "250ms", "7d") denotes.

    Raises ValueError naming the text when it is not one or more <integer><unit>
    with unit ms, s, m, h or d, or when it is too long for a timedelta.
    """
    _FORMAT.check(text)
    total = timedelta()
    try:
        for number, unit in _PART.findall(text):
            total += int(number) * _UNITS[unit]
    except OverflowError:
        raise ValueError(f"duration {text!r} is too long") from None
    return total


def format_duration(duration: timedelta) -> str:
    """Return the shortest duration string for `duration` ("1h30m"); sub-millisecond parts are dropped.

    Raises ValueError for a negative duration.
    """
    if duration < timedelta():
        raise ValueError(f"a duration cannot be negative ({duration})")
    milliseconds = duration // timedelta(milliseconds=1)
    parts = []
    for unit, size in (("d", 86_400_000), ("h", 3_600_000), ("m", 60_000), ("s", 1000), ("ms", 1)):
        count, milliseconds = divmod(milliseconds, size)
        if count:
            parts.append(f"{count}{unit}")
    return "".join(parts) or "0s"


def _parses(text: str) -> str:
    parse_duration(text)
    return text


def _positive(text: str) -> str:
    if parse_duration(text) <= timedelta():
        raise ValueError(f"must be longer than zero ({text!r})")
    return text


Duration = Annotated[str, _FORMAT, AfterValidator(_parses)]
"""A duration string that is zero or longer."""

PositiveDuration = Annotated[Duration, AfterValidator(_positive)]
"""A duration string that is longer than zero (timeouts, intervals, age thresholds)."""
