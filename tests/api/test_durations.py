from datetime import timedelta

import pydantic
import pytest

from remediator.api.durations import Duration, PositiveDuration, format_duration, parse_duration


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("30s", timedelta(seconds=30)),
        ("5m", timedelta(minutes=5)),
        ("1h30m", timedelta(minutes=90)),
        ("7d", timedelta(days=7)),
        ("250ms", timedelta(milliseconds=250)),
        ("1d2h3m4s5ms", timedelta(days=1, hours=2, minutes=3, seconds=4, milliseconds=5)),
        ("0s", timedelta()),
    ],
)
def test_a_duration_means_what_a_kubernetes_user_expects(text: str, expected: timedelta) -> None:
    assert parse_duration(text) == expected


@pytest.mark.parametrize("text", ["5x", "", "1.5h", "-1s", "1H", "h", "5", "1h 30m", " 5m", "5m\n", "٣s"])
def test_a_malformed_duration_is_refused_with_an_example_of_a_good_one(text: str) -> None:
    with pytest.raises(ValueError, match=r"is not a duration such as \"30s\""):
        parse_duration(text)


def test_a_duration_too_long_for_a_timedelta_is_a_value_error_not_an_overflow() -> None:
    with pytest.raises(ValueError, match="too long"):
        parse_duration("99999999999999999999d")


@pytest.mark.parametrize("text", ["1h30m", "7d", "250ms", "1d1ms", "0s"])
def test_formatting_a_parsed_duration_gives_the_shortest_spelling_back(text: str) -> None:
    assert format_duration(parse_duration(text)) == text


def test_ninety_minutes_are_written_as_hours_and_minutes() -> None:
    assert format_duration(timedelta(minutes=90)) == "1h30m"


def test_a_negative_duration_cannot_be_formatted() -> None:
    with pytest.raises(ValueError, match="negative"):
        format_duration(timedelta(seconds=-1))


def test_a_zero_timeout_is_refused_but_a_zero_cooldown_is_fine() -> None:
    assert pydantic.TypeAdapter(Duration).validate_python("0s") == "0s"
    with pytest.raises(pydantic.ValidationError, match="longer than zero"):
        pydantic.TypeAdapter(PositiveDuration).validate_python("0m")


def test_models_keep_the_duration_as_the_user_wrote_it() -> None:
    assert pydantic.TypeAdapter(PositiveDuration).validate_python("90m") == "90m"
