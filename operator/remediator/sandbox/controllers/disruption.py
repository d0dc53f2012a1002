"""The disruption controller: a PodDisruptionBudget's status from the pods its selector matches.

`currentHealthy` counts ready pods that are neither terminating nor just evicted (`disruptedPods`);
`desiredHealthy` and `expectedPods` follow `minAvailable` (an integer: of the matching pods; a
percentage: of the pods' controllers' scale, rounded up) or `maxUnavailable` (of the scale, rounded
up); `disruptionsAllowed` is what healthy pods exceed the desired number by. The Eviction API reads
this status and decrements it.
https://kubernetes.io/docs/tasks/run-application/configure-pdb/#think-about-how-your-application-reacts-to-disruptions
"""

from __future__ import annotations

import datetime
import math
from collections.abc import Mapping, Sequence
from typing import Any

from remediator.sandbox import selectors
from remediator.sandbox.controllers import cluster, conditions, ownership, pods, specs, timestamps

Object = dict[str, Any]
# How long an eviction's entry in disruptedPods holds a pod out of currentHealthy (DeletionTimeout).
DELETION_TIMEOUT = datetime.timedelta(minutes=2)
CONDITION = "DisruptionAllowed"


def scaled(value: int | str, total: int) -> int:
    """An int-or-percent of `total`, a percentage rounded up (intstr.GetScaledValueFromIntOrPercent)."""
    if isinstance(value, int):
        return value
    return math.ceil(int(str(value).rstrip("%")) * total / 100)


def desired(spec: Mapping[str, Any], matching: int, scale: int) -> tuple[int, int]:
    """(expectedPods, desiredHealthy) of a budget whose selector matches `matching` pods whose
    controllers want `scale` replicas."""
    if spec.get("maxUnavailable") is not None:
        return scale, max(0, scale - scaled(spec["maxUnavailable"], scale))
    min_available = spec.get("minAvailable")
    if isinstance(min_available, int):
        return matching, min_available
    if min_available is not None:
        return scale, scaled(min_available, scale)
    return matching, 0


def disrupted_still(disrupted: Mapping[str, str], matching: Sequence[Mapping[str, Any]],
                    now: datetime.datetime) -> dict[str, str]:
    """The evicted pods still held out of currentHealthy: present, not yet terminating, evicted recently."""
    live = {p["metadata"]["name"] for p in matching if not ownership.is_terminating(p)}
    kept = {}
    for name, stamp in disrupted.items():
        when = timestamps.parse_time(stamp)
        if name in live and when is not None and when + DELETION_TIMEOUT > now:
            kept[name] = stamp
    return kept


def budget_status(pdb: Mapping[str, Any], matching: Sequence[Mapping[str, Any]], scale: int,
                  now: datetime.datetime) -> dict[str, Any]:
    """The status the disruption controller writes (updatePdbStatus), its condition included."""
    previous = pdb.get("status") or {}
    disrupted = disrupted_still(previous.get("disruptedPods") or {}, matching, now)
    healthy = sum(1 for p in matching
                  if pods.is_ready(p) and not ownership.is_terminating(p) and p["metadata"]["name"] not in disrupted)
    expected, desired_healthy = desired(pdb.get("spec") or {}, len(matching), scale)
    allowed = max(0, healthy - desired_healthy) if expected > 0 else 0
    generation = specs.generation(pdb)
    status: dict[str, Any] = {
        "observedGeneration": generation,
        "disruptionsAllowed": allowed,
        "currentHealthy": healthy,
        "desiredHealthy": desired_healthy,
        "expectedPods": expected,
        "conditions": allowed_condition(previous.get("conditions") or [], allowed, generation,
                                        timestamps.format_time(now)),
    }
    if disrupted:
        status["disruptedPods"] = disrupted
    return status


def allowed_condition(current: Sequence[Mapping[str, Any]], allowed: int, generation: int,
                      stamp: str) -> list[dict[str, Any]]:
    """The conditions with DisruptionAllowed set (pdbhelper.UpdateDisruptionAllowedCondition)."""
    status, reason = ("True", "SufficientPods") if allowed > 0 else ("False", "InsufficientPods")
    new = {"type": CONDITION, "status": status, "observedGeneration": generation,
           "lastTransitionTime": stamp, "reason": reason, "message": ""}
    before = conditions.find_condition(current, CONDITION)
    if before is not None and before.get("status") == status and before.get("lastTransitionTime"):
        new["lastTransitionTime"] = before["lastTransitionTime"]
    return [dict(c) for c in current if c.get("type") != CONDITION] + [new]


def reconcile(world: cluster.Cluster, namespace: str, name: str) -> float | None:
    pdb = world.find(world.pdbs, namespace, name)
    if pdb is None or ownership.is_terminating(pdb):
        return None
    try:
        selector = selectors.label_selector_from_object((pdb.get("spec") or {}).get("selector") or {})
    except selectors.SelectorError:
        return None
    matching = world.store.list(world.pods, namespace, selector)
    now = world.now()
    status = budget_status(pdb, matching, _expected_scale(world, matching), now)
    world.update_status(world.pdbs, pdb, status)
    # Look again when the oldest eviction's hold on its pod expires.
    holds = [timestamps.parse_time(s) for s in (status.get("disruptedPods") or {}).values()]
    expiries = [(when + DELETION_TIMEOUT - now).total_seconds() for when in holds if when is not None]
    return max(0.0, min(expiries)) if expiries else None


def _expected_scale(world: cluster.Cluster, matching: Sequence[Mapping[str, Any]]) -> int:
    """The replicas the matching pods' controllers want: a Deployment's for its ReplicaSets' pods.

    Pods without a controller are left out (the controller's "unmanaged pods").
    """
    wanted: dict[str, int] = {}
    for pod in matching:
        ref = ownership.controller_ref(pod)
        owner = world.by_uid(str(ref.get("uid", ""))) if ref is not None else None
        if owner is None:
            continue
        top_ref = ownership.controller_ref(owner)
        top = world.by_uid(str(top_ref.get("uid", ""))) if top_ref is not None and owner.get("kind") == "ReplicaSet" \
            else None
        scaled_by = top if top is not None and top.get("kind") == "Deployment" else owner
        wanted[scaled_by["metadata"]["uid"]] = specs.spec_replicas(scaled_by)
    return sum(wanted.values())
