"""The operator's log formats, `text` and `json`: one record per line, whatever the logged values hold.

Logged values carry text from Incidents (summaries, messages), so a newline, carriage return or
terminal escape in them could forge a log line or rewrite the screen (CWE-117). The formatters
neutralise that for every logger at once, Kopf's own included: `text` escapes control characters
and indents a traceback's lines, `json` leaves it to JSON's string escaping.
"""

from __future__ import annotations

import datetime
import json
import logging

FORMATS = ("text", "json")
TEXT_LAYOUT = "%(asctime)s %(levelname)s %(name)s: %(message)s"
TRACEBACK_INDENT = "    "

# C0 and C1 controls, DEL, and the Unicode line and paragraph separators: all break or rewrite a line.
_CONTROLS = [*range(0x00, 0x20), 0x7F, *range(0x80, 0xA0), 0x2028, 0x2029]
_NAMED = {"\n": "\\n", "\r": "\\r", "\t": "\\t"}
_ESCAPES = {code: _NAMED.get(chr(code), f"\\x{code:02x}" if code <= 0xFF else f"\\u{code:04x}")
            for code in _CONTROLS}


def escape_controls(text: str) -> str:
    """`text` with every control character written as a visible escape (\\n, \\r, \\x1b, \\u2028)."""
    return text.translate(_ESCAPES)


def object_reference(record: logging.LogRecord) -> dict[str, str]:
    """The namespace and name of the object a Kopf object logger's record is about (empty for other records)."""
    ref = getattr(record, "k8s_ref", None)
    if not isinstance(ref, dict):
        return {}
    return {key: str(ref[key]) for key in ("namespace", "name") if ref.get(key)}


class TextFormatter(logging.Formatter):
    """`time LEVEL logger: message` on one line; Kopf's object records prefixed with [namespace/name]."""

    def __init__(self) -> None:
        super().__init__(TEXT_LAYOUT)

    def formatMessage(self, record: logging.LogRecord) -> str:
        ref = object_reference(record)
        prefix = f"[{ref['namespace']}/{ref['name']}] " if len(ref) == 2 else ""
        # Safe to overwrite: every Formatter sets record.message afresh from getMessage().
        record.message = escape_controls(prefix + record.message)
        return super().formatMessage(record)

    def formatException(self, ei: logging._SysExcInfoType) -> str:
        return _indented(super().formatException(ei))

    def formatStack(self, stack_info: str) -> str:
        return _indented(super().formatStack(stack_info))


def _indented(text: str) -> str:
    """A multi-line text (a traceback) with each line escaped and indented: it cannot pass for a record."""
    return "\n".join(TRACEBACK_INDENT + escape_controls(line) for line in text.split("\n"))


class JsonFormatter(logging.Formatter):
    """One JSON object per line: time (UTC, ISO 8601), level, logger, message, and for Kopf's object
    records the object's namespace and name; a traceback under `exception`."""

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, object] = {
            "time": datetime.datetime.fromtimestamp(record.created, datetime.UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
            **object_reference(record),
        }
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        if record.stack_info:
            entry["stack"] = self.formatStack(record.stack_info)
        # ensure_ascii: C1 controls and U+2028 become \\u escapes too, not only what JSON requires.
        return json.dumps(entry, default=str, ensure_ascii=True)


def configure(log_format: str, *, verbose: bool) -> None:
    """Send every log record (Python warnings included) to stderr in `log_format`, one of FORMATS."""
    handler = logging.StreamHandler()
    handler.setFormatter(JsonFormatter() if log_format == "json" else TextFormatter())
    logging.basicConfig(level=logging.DEBUG if verbose else logging.INFO, handlers=[handler], force=True)
    logging.captureWarnings(True)
