"""Crash points for crash-safety tests: the process dies (SIGKILL) at a named point, once.

Set REMEDIATOR_CRASH_AT to a point's name (``after-action``), or to the name and which time the
point is reached (``after-action@2``), and REMEDIATOR_CRASH_ONCE to a file path: when the point is
reached and the file does not exist yet, it is created and the process is killed. Unset: a no-op.
"""

from __future__ import annotations

import collections
import os
import pathlib
import signal

# Read once: crash_point is called on every step and must cost nothing in production.
_CRASH_AT, _, _NTH = os.environ.get("REMEDIATOR_CRASH_AT", "").partition("@")
_CRASH_ONCE = os.environ.get("REMEDIATOR_CRASH_ONCE", "")
_reached: collections.Counter[str] = collections.Counter()


def crash_point(name: str) -> None:
    """SIGKILL this process when REMEDIATOR_CRASH_AT names this point (and this time) and its once-file is absent."""
    if not _CRASH_AT or name != _CRASH_AT or not _CRASH_ONCE:
        return
    _reached[name] += 1
    if _reached[name] != int(_NTH or 1):
        return
    marker = pathlib.Path(_CRASH_ONCE)
    if marker.exists():
        return
    marker.touch()
    os.kill(os.getpid(), signal.SIGKILL)
