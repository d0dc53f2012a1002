"""Decisions of the `database` step, without a database: which backends to act on, what to record.

Plain data in, plain data out: `actions/database.py` reads pg_stat_activity into `Backend`s,
asks these functions which ones to cancel or terminate, and records the (redacted) answer.
"""

from __future__ import annotations

import dataclasses
import datetime
import json
from collections.abc import Iterable, Sequence
from typing import Any

CLIENT_BACKEND = "client backend"
IDLE = "idle"
IDLE_IN_TRANSACTION = ("idle in transaction", "idle in transaction (aborted)")
# pg_stat_activity truncates query text anyway (track_activity_query_size); this bounds our copy.
QUERY_TEXT_LIMIT = 1000
# A report lives in the Incident's status: keep it far below what a Kubernetes object can hold.
REPORT_SIZE_LIMIT = 16_000


@dataclasses.dataclass(frozen=True)
class Backend:
    """One row of pg_stat_activity, with the facts that decide whether it may be touched."""

    pid: int
    backend_start: datetime.datetime | None
    user: str | None
    application: str
    state: str | None
    backend_type: str
    same_database: bool  # datname = current_database()
    superuser: bool
    own: bool  # pid = pg_backend_pid()
    query_seconds: float | None  # since query_start
    state_seconds: float | None  # since state_change
    transaction_seconds: float | None  # since xact_start
    query: str = ""
    blocked_by: tuple[int, ...] = ()  # pg_blocking_pids(pid)
    waiting_seconds: float | None = None  # waiting for a lock this long (None: not waiting)


@dataclasses.dataclass(frozen=True)
class Target:
    """A backend chosen for cancelling or terminating, and how long it has been at it."""

    backend: Backend
    seconds: float

    def describe(self) -> dict[str, Any]:
        """What the step result records: never the literals of the query."""
        return {
            "pid": self.backend.pid,
            "backendStart": self.backend.backend_start.isoformat() if self.backend.backend_start else None,
            "user": self.backend.user,
            "application": self.backend.application,
            "state": self.backend.state,
            "durationSeconds": round(self.seconds, 1),
            "query": bound_text(redact_sql(self.backend.query), QUERY_TEXT_LIMIT),
        }


def is_protected(backend: Backend) -> bool:
    """Whether first aid must leave this backend alone, whatever the step's filters say.

    Protected: the operator's own session, superusers, anything but a client backend
    (walsenders, autovacuum and other background workers), and sessions of other databases.
    """
    return backend.own or backend.superuser or backend.backend_type != CLIENT_BACKEND or not backend.same_database


def age_in_state(backend: Backend) -> float | None:
    """How long a backend has been doing what it does now: its query when active, its
    transaction when idle in one, its idleness when idle."""
    if backend.state == IDLE:
        return backend.state_seconds
    if backend.state in IDLE_IN_TRANSACTION:
        return backend.transaction_seconds
    return backend.query_seconds


def long_running(backends: Iterable[Backend], *, older_than: float, states: Sequence[str],
                 usernames: Sequence[str], application_names: Sequence[str]) -> list[Target]:
    """Unprotected backends in one of `states` at it for longer than `older_than` seconds,
    of one of `usernames` and `application_names` when those are given; longest first."""
    targets = []
    for backend in backends:
        age = age_in_state(backend)
        if (is_protected(backend) or backend.state not in states or age is None or age <= older_than
                or (usernames and backend.user not in usernames)
                or (application_names and backend.application not in application_names)):
            continue
        targets.append(Target(backend, age))
    return _longest_first(targets)


def idle(backends: Iterable[Backend], *, idle_for: float, include_idle_in_transaction: bool) -> list[Target]:
    """Unprotected sessions idle (optionally: idle in a transaction) for longer than `idle_for` seconds."""
    states = (IDLE, *IDLE_IN_TRANSACTION) if include_idle_in_transaction else (IDLE,)
    targets = [Target(backend, backend.state_seconds) for backend in backends
               if not is_protected(backend) and backend.state in states
               and backend.state_seconds is not None and backend.state_seconds > idle_for]
    return _longest_first(targets)


def blockers(backends: Iterable[Backend], *, blocked_for: float) -> list[Target]:
    """The heads of lock chains (blockers not blocked themselves) behind which some backend has
    waited longer than `blocked_for` seconds; each with the longest wait it causes.

    A protected head is never chosen, nor the backends queued behind it: killing those frees nothing.
    """
    by_pid = {backend.pid: backend for backend in backends}
    longest_wait: dict[int, float] = {}
    for victim in by_pid.values():
        if victim.waiting_seconds is None or victim.waiting_seconds <= blocked_for:
            continue
        for head in _heads(victim.pid, by_pid):
            longest_wait[head] = max(longest_wait.get(head, 0.0), victim.waiting_seconds)
    targets = [Target(by_pid[pid], wait) for pid, wait in longest_wait.items() if not is_protected(by_pid[pid])]
    return _longest_first(targets)


def _heads(pid: int, by_pid: dict[int, Backend]) -> set[int]:
    """The backends at the start of every chain that `pid` waits in (a deadlock cycle has none)."""
    heads, seen, pending = set(), {pid}, list(by_pid[pid].blocked_by)
    while pending:
        blocker = pending.pop()
        if blocker in seen:
            continue
        seen.add(blocker)
        upstream = by_pid[blocker].blocked_by if blocker in by_pid else ()
        if upstream:
            pending.extend(upstream)
        elif blocker in by_pid:
            heads.add(blocker)
    return heads


def _longest_first(targets: list[Target]) -> list[Target]:
    return sorted(targets, key=lambda target: (-target.seconds, target.backend.pid))


def too_many(targets: Sequence[Target], max_terminations: int) -> str | None:
    """Why the run must not act at all (a message), or None when the number of targets is fine."""
    if len(targets) <= max_terminations:
        return None
    return (f"{len(targets)} backends match, more than maxTerminations ({max_terminations}); "
            "nothing was cancelled or terminated")


def replication_lag_problem(lag_seconds: float | None, max_lag_seconds: float | None) -> str | None:
    """Why a replica is unhealthy (a message), or None when its lag is within bounds or unbounded."""
    if max_lag_seconds is None or lag_seconds is None or lag_seconds <= max_lag_seconds:
        return None
    return f"replication lag {lag_seconds:.1f}s exceeds maxReplicationLag ({max_lag_seconds:g}s)"


def split_name(name: str) -> tuple[str, ...]:
    """`schema.table` → ("schema", "table"); a name without a dot is one part (looked up on search_path)."""
    schema, dot, relation = name.partition(".")
    return (schema, relation) if dot and schema and relation else (name,)


def bound_text(text: str, limit: int) -> str:
    """`text`, cut to at most `limit` characters (marked with an ellipsis when cut)."""
    return text if len(text) <= limit else text[:max(limit - 1, 0)] + "…"


def bound_report(report: dict[str, Any], limit: int = REPORT_SIZE_LIMIT) -> dict[str, Any]:
    """The report, its lists shortened from the end (longest list first) until its JSON fits `limit`.

    Sets "truncated": true when anything was dropped.
    """
    bounded = {key: list(value) if isinstance(value, list) else value for key, value in report.items()}
    while len(json.dumps(bounded, default=str)) > limit:
        lists = [key for key, value in bounded.items() if isinstance(value, list) and value]
        if not lists:
            break
        longest = max(lists, key=lambda key: len(json.dumps(bounded[key], default=str)))
        bounded[longest].pop()
        bounded["truncated"] = True
    return bounded


def redact_sql(text: str) -> str:
    """`text` with every string and numeric literal replaced: 'secret' → '?', 42 → ?.

    Understands '' and E'' strings (with their escapes), $tag$ dollar quoting, "quoted identifiers"
    (kept), comments (emptied: they may hold anything) and $1 parameters (kept). A literal cut off
    by pg_stat_activity's truncation is redacted to the end.
    """
    out: list[str] = []
    i, n = 0, len(text)
    while i < n:
        char = text[i]
        if char == "'":
            i = _skip_string(text, i, backslashes=False)
            out.append("'?'")
        elif char in "eE" and i + 1 < n and text[i + 1] == "'" and not _continues_word(out):
            i = _skip_string(text, i + 1, backslashes=True)
            out.append("E'?'")
        elif char == '"':
            end = _skip_quoted(text, i, '"')
            out.append(text[i:end])
            i = end
        elif char == "$":
            tag_end = _dollar_tag_end(text, i)
            if tag_end is not None and not _continues_word(out):
                tag = text[i:tag_end]
                close = text.find(tag, tag_end)
                i = n if close < 0 else close + len(tag)
                out.append("'?'")
            else:
                end = i + 1
                while end < n and text[end].isdigit():
                    end += 1
                out.append(text[i:end])
                i = end
        elif text.startswith("--", i):
            end = text.find("\n", i)
            i = n if end < 0 else end
            out.append("--")
        elif text.startswith("/*", i):
            i = _skip_block_comment(text, i)
            out.append("/* */")
        elif char.isdigit() or (char == "." and i + 1 < n and text[i + 1].isdigit()):
            if _continues_word(out):  # a digit inside an identifier such as t1 was consumed as a word
                out.append(char)
                i += 1
                continue
            i = _skip_number(text, i)
            out.append("?")
        elif char.isalpha() or char == "_" or ord(char) > 127:
            end = i + 1
            while end < n and (text[end].isalnum() or text[end] in "_$" or ord(text[end]) > 127):
                end += 1
            out.append(text[i:end])
            i = end
        else:
            out.append(char)
            i += 1
    return "".join(out)


def _continues_word(out: list[str]) -> bool:
    """Whether the text emitted so far ends inside an identifier or keyword."""
    if not out or not out[-1]:
        return False
    last = out[-1][-1]
    return last.isalnum() or last in "_$" or ord(last) > 127


def _skip_string(text: str, start: int, *, backslashes: bool) -> int:
    """The index after the string literal whose opening quote is at `start` (or the end of text)."""
    i, n = start + 1, len(text)
    while i < n:
        if backslashes and text[i] == "\\":
            i += 2
        elif text[i] == "'":
            if i + 1 < n and text[i + 1] == "'":
                i += 2
            else:
                return i + 1
        else:
            i += 1
    return n


def _skip_quoted(text: str, start: int, quote: str) -> int:
    i, n = start + 1, len(text)
    while i < n:
        if text[i] == quote:
            if i + 1 < n and text[i + 1] == quote:
                i += 2
                continue
            return i + 1
        i += 1
    return n


def _dollar_tag_end(text: str, start: int) -> int | None:
    """The index after a dollar-quote opening tag ($$ or $tag$) at `start`, or None if there is none."""
    i, n = start + 1, len(text)
    if i < n and (text[i].isalpha() or text[i] == "_" or ord(text[i]) > 127):
        while i < n and (text[i].isalnum() or text[i] == "_" or ord(text[i]) > 127):
            i += 1
    return i + 1 if i < n and text[i] == "$" else None


def _skip_block_comment(text: str, start: int) -> int:
    depth, i, n = 0, start, len(text)
    while i < n:
        if text.startswith("/*", i):
            depth += 1
            i += 2
        elif text.startswith("*/", i):
            depth -= 1
            i += 2
            if depth == 0:
                return i
        else:
            i += 1
    return n


def _skip_number(text: str, start: int) -> int:
    """The index after a numeric literal: 42, 3.14, .5, 1e-9, 0x1F, 1_000."""
    i, n = start, len(text)
    if text.startswith(("0x", "0X", "0o", "0O", "0b", "0B"), i):
        i += 2
        while i < n and (text[i].isalnum() or text[i] == "_"):
            i += 1
        return i
    while i < n and (text[i].isdigit() or text[i] in "._"):
        i += 1
    if i < n and text[i] in "eE":
        j = i + 1
        if j < n and text[j] in "+-":
            j += 1
        if j < n and text[j].isdigit():
            i = j
            while i < n and text[i].isdigit():
                i += 1
    return i
