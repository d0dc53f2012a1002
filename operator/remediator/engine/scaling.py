"""Scale planning: from the current replica count and a scale step to the count to set."""

from __future__ import annotations

import dataclasses
import math

from remediator.api.workload_steps import ScaleStep


@dataclasses.dataclass(frozen=True)
class ScalePlan:
    """The replica change a scale step makes, and why it differs from the request if it does."""

    current: int
    requested: int
    desired: int
    limited_by: str | None = None

    def describe(self, kind: str, name: str) -> str:
        text = f"{kind.lower()}/{name} from {self.current} to {self.desired}"
        if self.limited_by:
            text += f" (requested {self.requested}, limited by {self.limited_by})"
        return text


def plan_scale(step: ScaleStep, current: int) -> ScalePlan:
    """The replicas to set: `replicas`, `current + by` or `ceil(current * factor)`, within the bounds.

    Bounds apply in order: maxFactor (the largest ratio between new and current, either way),
    then minReplicas/maxReplicas, which always win. Never negative.
    """
    if step.replicas is not None:
        requested = step.replicas
    elif step.by is not None:
        requested = current + step.by
    else:
        assert step.factor is not None
        requested = math.ceil(current * step.factor)
    desired, limited_by = max(0, requested), None
    if step.max_factor is not None and current > 0:
        upper = math.floor(current * step.max_factor)
        lower = math.ceil(current / step.max_factor)
        if desired > upper:
            desired, limited_by = upper, "maxFactor"
        elif desired < lower:
            desired, limited_by = lower, "maxFactor"
    if step.max_replicas is not None and desired > step.max_replicas:
        desired, limited_by = step.max_replicas, "maxReplicas"
    if step.min_replicas is not None and desired < step.min_replicas:
        desired, limited_by = step.min_replicas, "minReplicas"
    return ScalePlan(current=current, requested=requested, desired=desired, limited_by=limited_by)
