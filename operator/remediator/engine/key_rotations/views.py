"""The engine's view of a KeyRotation, the operator-wide policy, and what the I/O layer answered."""

from __future__ import annotations

import dataclasses
import datetime
from collections.abc import Mapping
from typing import Any

from remediator.engine import guards, intents
from remediator.engine.key_rotations import moves

DEFAULT_RESTART_COALESCE = datetime.timedelta(seconds=30)


@dataclasses.dataclass(frozen=True)
class KeyRotation:
    """One KeyRotation object."""

    uid: str
    name: str
    namespace: str
    generation: int
    created_at: str
    spec: Mapping[str, Any]
    status: Mapping[str, Any]
    annotations: Mapping[str, str] = dataclasses.field(default_factory=dict)

    @property
    def staging_secret(self) -> str:
        """The Secret that holds new values until they are promoted."""
        return f"{self.name}-pending"


@dataclasses.dataclass(frozen=True)
class Policy:
    """Operator-wide rules: the namespace and kind allow-lists hold for rotations as for Incidents.

    `restart_coalesce`: a consumer is restarted no earlier than this after the values were promoted
    (except in an emergency), so rotations promoted within it share one restart per workload.
    `dry_run`: a rotation asked for is recorded as seen and said, never carried out.
    """

    namespaces: frozenset[str] | None = None
    kinds: frozenset[str] | None = None
    restart_coalesce: datetime.timedelta = DEFAULT_RESTART_COALESCE
    max_cooldown: datetime.timedelta = guards.DEFAULT_MAX_COOLDOWN  # no cooldown stamp holds a restart longer
    dry_run: bool = False  # `remediator run --dry-run`: say what a rotation would do, change nothing


@dataclasses.dataclass(frozen=True)
class World:
    """The answers to the intents carried out since the last action (reads) and by it (its outcome)."""

    results: moves.Results = dataclasses.field(default_factory=dict)
    rate_limit: guards.Verdict = guards.PROCEED  # the operator-wide rate limit's verdict now

    def answer(self, intent: moves.Intent) -> intents.Result | None:
        return self.results.get(intent)
