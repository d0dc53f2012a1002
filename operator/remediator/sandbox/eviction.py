"""The Eviction API's decision: delete the pod, or refuse because of its PodDisruptionBudget. Pure.

As kube-apiserver's eviction REST handler: a pod that is pending, finished or already terminating
goes at once; else the one budget that covers it must allow a disruption, which the eviction uses
up (`disruptionsAllowed` - 1, the pod in `disruptedPods`) before the pod is deleted gracefully.
https://kubernetes.io/docs/concepts/scheduling-eviction/api-eviction/
"""

from __future__ import annotations

import copy
import dataclasses
from collections.abc import Mapping, Sequence
from typing import Any

from remediator.sandbox import errors, selectors
from remediator.sandbox.controllers import disruption

Object = dict[str, Any]
REFUSED = "Cannot evict pod as it would violate the pod's disruption budget."
SEVERAL_BUDGETS = "This pod has more than one PodDisruptionBudget, which the eviction subresource does not support."


@dataclasses.dataclass(frozen=True)
class Verdict:
    """Evict: delete the pod, first storing `budget` (the decremented PDB) when there is one, and
    guarding the delete by the pod's resourceVersion when `guard` (a not-ready pod let go)."""

    budget: Object | None = None
    guard: bool = False


def covering(pod: Mapping[str, Any], budgets: Sequence[Mapping[str, Any]]) -> list[Mapping[str, Any]]:
    """The budgets whose selector matches the pod; an empty or invalid selector matches nothing."""
    labels = pod["metadata"].get("labels") or {}
    matched = []
    for pdb in budgets:
        selector = (pdb.get("spec") or {}).get("selector")
        if not selector or not (selector.get("matchLabels") or selector.get("matchExpressions")):
            continue
        try:
            if selectors.label_selector_from_object(selector).matches(labels):
                matched.append(pdb)
        except selectors.SelectorError:
            continue
    return matched


def decide(pod: Mapping[str, Any], budgets: Sequence[Mapping[str, Any]], evicted_at: str) -> Verdict:
    """Whether the pod may be evicted now; raises the ApiError kube-apiserver answers when not."""
    phase = (pod.get("status") or {}).get("phase") or "Pending"
    if phase in ("Pending", "Succeeded", "Failed") or pod["metadata"].get("deletionTimestamp"):
        return Verdict()  # it disrupts nothing that is not disrupted already
    matched = covering(pod, budgets)
    if len(matched) > 1:
        raise errors.ApiError(500, SEVERAL_BUDGETS)
    if not matched:
        return Verdict()
    pdb = matched[0]
    status = pdb.get("status") or {}
    healthy, desired = int(status.get("currentHealthy") or 0), int(status.get("desiredHealthy") or 0)
    if not _ready(pod):
        policy = (pdb.get("spec") or {}).get("unhealthyPodEvictionPolicy") or "IfHealthyBudget"
        if policy == "AlwaysAllow" or (healthy >= desired and desired > 0):
            return Verdict(guard=True)
    name = pdb["metadata"]["name"]
    if int(status.get("observedGeneration") or 0) < int(pdb["metadata"].get("generation") or 1):
        raise _too_many_requests(f"The disruption budget {name} is still being processed by the server.", 10)
    allowed = int(status.get("disruptionsAllowed") or 0)
    if allowed < 0:
        raise errors.ApiError(403, f'poddisruptionbudgets.policy "{name}" is forbidden: '
                              "pdb disruptions allowed is negative",
                              details={"name": name, "group": "policy", "kind": "poddisruptionbudgets"})
    if allowed == 0:
        raise _too_many_requests(f"The disruption budget {name} needs {desired} healthy pods and has "
                                 f"{healthy} currently", 0)
    budget = copy.deepcopy(dict(pdb))
    budget["status"] = {**copy.deepcopy(dict(status)), "disruptionsAllowed": allowed - 1,
                        "disruptedPods": {**(status.get("disruptedPods") or {}), pod["metadata"]["name"]: evicted_at}}
    if allowed == 1:
        # The eviction that uses up the last disruption turns DisruptionAllowed False itself.
        budget["status"]["conditions"] = disruption.allowed_condition(
            status.get("conditions") or [], 0, int(status.get("observedGeneration") or 0), evicted_at)
    return Verdict(budget=budget)


def _ready(pod: Mapping[str, Any]) -> bool:
    return any(c.get("type") == "Ready" and c.get("status") == "True"
               for c in (pod.get("status") or {}).get("conditions") or ())


def _too_many_requests(cause: str, retry_after: int) -> errors.ApiError:
    details: dict[str, Any] = {"causes": [{"reason": "DisruptionBudget", "message": cause}]}
    if retry_after:
        details["retryAfterSeconds"] = retry_after
    return errors.ApiError(429, REFUSED, details=details)
