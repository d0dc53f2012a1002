"""The operator's log formats on real records: Kopf's object logger, tracebacks, Python warnings.

(The operator process end to end: tests/scenarios/test_operator_log.py.)
"""

from __future__ import annotations

import io
import json
import logging
import warnings
from collections.abc import Iterator

import kopf
import pytest

from remediator import log_formats

FORGED = "\n2026-01-01 00:00:00,000 INFO fake: injected"


@pytest.fixture()
def log_stream() -> Iterator[io.StringIO]:
    """The root logger's one handler writing to a string, as `configure` sets it up; restored afterwards."""
    root = logging.getLogger()
    saved = (root.handlers[:], root.level)
    stream = io.StringIO()
    try:
        yield stream
    finally:
        logging.captureWarnings(False)
        root.handlers[:], root.level = saved


def configure(log_format: str, stream: io.StringIO) -> None:
    log_formats.configure(log_format, verbose=False)
    handler = logging.getLogger().handlers[0]
    assert isinstance(handler, logging.StreamHandler)
    handler.setStream(stream)


def object_logger() -> kopf.ObjectLogger:
    body = kopf.Body({"apiVersion": "remediator.dev/v1alpha1", "kind": "Incident",
                      "metadata": {"namespace": "default", "name": "disk-full", "uid": "u-1"}})
    return kopf.ObjectLogger(body=body, settings=kopf.OperatorSettings())


def test_kopf_object_records_carry_the_objects_namespace_and_name(log_stream: io.StringIO) -> None:
    configure("json", log_stream)
    object_logger().info(f"Handler 'x' failed:{FORGED}")
    [record] = [json.loads(line) for line in log_stream.getvalue().splitlines()]
    assert record["namespace"] == "default" and record["name"] == "disk-full"
    assert (record["level"], record["logger"]) == ("INFO", "kopf.objects")
    assert record["message"] == f"Handler 'x' failed:{FORGED}"


def test_text_prefixes_kopf_object_records_and_escapes_their_message(log_stream: io.StringIO) -> None:
    configure("text", log_stream)
    object_logger().warning(f"Handler 'x' failed:{FORGED}")
    [line] = log_stream.getvalue().splitlines()
    assert line.endswith(" WARNING kopf.objects: [default/disk-full] Handler 'x' failed:\\n2026-01-01 00:00:00,000 "
                         "INFO fake: injected")


@pytest.mark.parametrize("log_format", log_formats.FORMATS)
def test_a_traceback_with_a_forged_line_in_its_message_forges_no_record(
        log_stream: io.StringIO, log_format: str) -> None:
    configure(log_format, log_stream)
    try:
        raise ValueError(f"bad summary{FORGED}")
    except ValueError:
        logging.getLogger("remediator.incidents").exception("reconciling failed")
    lines = log_stream.getvalue().splitlines()
    assert not [line for line in lines if line.startswith(FORGED.strip())]
    if log_format == "json":
        [record] = [json.loads(line) for line in lines]
        assert record["exception"].startswith("Traceback") and record["exception"].endswith(f"bad summary{FORGED}")
    else:
        assert lines[0].endswith("ERROR remediator.incidents: reconciling failed")
        assert all(line.startswith(log_formats.TRACEBACK_INDENT) for line in lines[1:]) and len(lines) > 3


@pytest.mark.parametrize("log_format", log_formats.FORMATS)
def test_python_warnings_are_records_too(log_stream: io.StringIO, log_format: str) -> None:
    """A library's DeprecationWarning would otherwise print raw lines to stderr, between the records."""
    configure(log_format, log_stream)
    with warnings.catch_warnings():
        warnings.simplefilter("always")
        warnings.warn("old API", DeprecationWarning, stacklevel=1)
    lines = log_stream.getvalue().splitlines()
    assert len(lines) == 1 and "py.warnings" in lines[0] and "DeprecationWarning: old API" in lines[0]
    if log_format == "json":
        json.loads(lines[0])


def test_every_control_character_is_escaped_and_nothing_else() -> None:
    assert log_formats.escape_controls("a\nb\rc\td\x00e\x1b[31mf\x7fg\x85h\u2028i") == \
        "a\\nb\\rc\\td\\x00e\\x1b[31mf\\x7fg\\x85h\\u2028i"
    assert log_formats.escape_controls("plain ünïcode, fine") == "plain ünïcode, fine"
