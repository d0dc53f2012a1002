"""What the engine asks the I/O layer to do: observe a target, or act on it (idempotently)."""

from __future__ import annotations

import dataclasses

from remediator.api.targets import ScalableTarget


@dataclasses.dataclass(frozen=True)
class ObserveReplicas:
    """Read a workload's desired replica count (scale.spec.replicas)."""

    step: str
    target: ScalableTarget


@dataclasses.dataclass(frozen=True)
class ScaleTo:
    """Set a workload's replicas to an absolute number: repeating it changes nothing."""

    step: str
    target: ScalableTarget
    replicas: int
    idempotency_key: str


Observation = ObserveReplicas
Action = ScaleTo
Intent = ObserveReplicas | ScaleTo


@dataclasses.dataclass(frozen=True)
class Observed:
    """What a read found: a value, or why there is none (e.g. the target does not exist)."""

    value: int | None = None
    reason: str | None = None
    message: str = ""


@dataclasses.dataclass(frozen=True)
class Outcome:
    """How an action went: succeeded, or failed with a CamelCase reason and a message."""

    succeeded: bool
    reason: str = ""
    message: str = ""
