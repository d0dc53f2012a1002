"""A Deployment's revision history, read from its ReplicaSets, and the `kubectl rollout undo` plan.

Kubernetes keeps one ReplicaSet per pod template a Deployment has had, each annotated with the
revision it was (`deployment.kubernetes.io/revision`) and labelled with its `pod-template-hash`.
Rolling back copies an old ReplicaSet's template into the Deployment; the controller then makes
that ReplicaSet current again and renumbers it (revision 2 becomes 4), so a revision number names
a template only until the next rollout, and the template hash is what identifies it for good.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from typing import Any

POD_TEMPLATE_HASH = "pod-template-hash"
REVISION = "deployment.kubernetes.io/revision"


@dataclasses.dataclass(frozen=True)
class Revision:
    """One ReplicaSet of a Deployment: its revision, template hash and pod template (without the hash label)."""

    number: int
    template_hash: str
    replica_set: str
    template: Mapping[str, Any]


@dataclasses.dataclass(frozen=True)
class DeploymentState:
    """What a read of a Deployment and its ReplicaSets found."""

    name: str
    generation: int
    replicas: int
    template: Mapping[str, Any]
    revisions: tuple[Revision, ...]
    annotated_revision: int = 0
    observed_generation: int = 0
    status_replicas: int = 0
    updated_replicas: int = 0
    available_replicas: int = 0

    @property
    def current(self) -> Revision | None:
        """The revision whose template the Deployment has now (None while its ReplicaSet is not yet created)."""
        matching = [r for r in self.revisions if same_template(r.template, self.template)]
        return max(matching, key=lambda r: r.number, default=None)

    @property
    def current_number(self) -> int:
        current = self.current
        return current.number if current is not None else self.annotated_revision

    def revision(self, number: int) -> Revision | None:
        return next((r for r in self.revisions if r.number == number), None)

    def with_hash(self, template_hash: str) -> Revision | None:
        return next((r for r in self.revisions if r.template_hash == template_hash), None)

    def runs(self, template_hash: str) -> bool:
        """Whether the Deployment's template is that of the ReplicaSet with this hash."""
        revision = self.with_hash(template_hash)
        return revision is not None and same_template(revision.template, self.template)

    @property
    def rollout_complete(self) -> bool:
        """The controller has seen the latest spec and every replica is updated and available.

        The test `kubectl rollout status` makes: observedGeneration ≥ generation and
        updated == available == replicas == spec.replicas.
        """
        return (self.observed_generation >= self.generation
                and self.updated_replicas == self.available_replicas == self.status_replicas == self.replicas)

    def describe_rollout(self) -> str:
        return (f"{self.updated_replicas} updated, {self.available_replicas} available of "
                f"{self.replicas} desired ({self.status_replicas} running)")


@dataclasses.dataclass(frozen=True)
class Plan:
    """Roll back from the current revision to `target`."""

    from_revision: int
    target: Revision


@dataclasses.dataclass(frozen=True)
class Refusal:
    """Why there is nothing to roll back to: a CamelCase reason and a message for people."""

    reason: str
    message: str


def deployment_state(deployment: Mapping[str, Any], replica_sets: Sequence[Mapping[str, Any]]) -> DeploymentState:
    """The state of a Deployment (as the API returns it) with the ReplicaSets it controls.

    ReplicaSets not controlled by this Deployment (by ownerReference uid) are ignored, as kubectl does.
    """
    meta = deployment.get("metadata") or {}
    spec = deployment.get("spec") or {}
    status = deployment.get("status") or {}
    uid = meta.get("uid")
    revisions = sorted(
        (_revision_of(rs) for rs in replica_sets if _controller_uid(rs) == uid),
        key=lambda r: (r.number, r.replica_set))
    return DeploymentState(
        name=str(meta.get("name", "")),
        generation=int(meta.get("generation") or 1),
        replicas=int(1 if spec.get("replicas") is None else spec["replicas"]),
        template=without_hash_label(spec.get("template") or {}),
        revisions=tuple(revisions),
        annotated_revision=_number(meta),
        observed_generation=int(status.get("observedGeneration") or 0),
        status_replicas=int(status.get("replicas") or 0),
        updated_replicas=int(status.get("updatedReplicas") or 0),
        available_replicas=int(status.get("availableReplicas") or 0),
    )


def plan_rollback(state: DeploymentState, to_revision: int | None) -> Plan | Refusal:
    """The revision to return to: `to_revision`, or the one before the current one (`kubectl rollout undo`).

    Refused with RevisionNotFound when there is no such revision (or no earlier one), and with
    AlreadyCurrent when its template is the one the Deployment already has.
    """
    subject = f"deployment/{state.name}"
    numbers = ", ".join(str(r.number) for r in state.revisions) or "none"
    from_revision = state.current_number
    if to_revision is None:
        earlier = [r for r in state.revisions
                   if r.number < from_revision and not same_template(r.template, state.template)]
        if not earlier:
            return Refusal("RevisionNotFound",
                           f"{subject} has no revision before {from_revision} to roll back to "
                           f"(revisions: {numbers})")
        target = earlier[-1]
    else:
        found = state.revision(to_revision)
        if found is None:
            return Refusal("RevisionNotFound",
                           f"{subject} has no revision {to_revision} (revisions: {numbers})")
        target = found
    if same_template(target.template, state.template):
        return Refusal("AlreadyCurrent",
                       f"{subject} already runs the template of revision {target.number}: nothing to roll back")
    return Plan(from_revision=from_revision, target=target)


def without_hash_label(template: Mapping[str, Any]) -> dict[str, Any]:
    """A copy of a pod template without the `pod-template-hash` label (what a Deployment's template holds)."""
    result = dict(template)
    metadata = dict(result.get("metadata") or {})
    labels = {k: v for k, v in (metadata.get("labels") or {}).items() if k != POD_TEMPLATE_HASH}
    if labels:
        metadata["labels"] = labels
    else:
        metadata.pop("labels", None)
    result["metadata"] = metadata
    return result


def same_template(a: Mapping[str, Any], b: Mapping[str, Any]) -> bool:
    """Whether two pod templates are equal as Kubernetes compares them (EqualIgnoreHash).

    The hash label is ignored, and so are null, empty-map and empty-list fields: a template that
    went through a typed client comes back with `creationTimestamp: null` and `resources: {}`.
    """
    return bool(_pruned(without_hash_label(a)) == _pruned(without_hash_label(b)))


def _pruned(value: Any) -> Any:
    if isinstance(value, Mapping):
        pruned = {key: _pruned(item) for key, item in value.items()}
        return {key: item for key, item in pruned.items() if item is not None and item != {} and item != []}
    if isinstance(value, list):
        return [_pruned(item) for item in value]
    return value


def _revision_of(replica_set: Mapping[str, Any]) -> Revision:
    meta = replica_set.get("metadata") or {}
    template = (replica_set.get("spec") or {}).get("template") or {}
    labels = (template.get("metadata") or {}).get("labels") or meta.get("labels") or {}
    return Revision(number=_number(meta), template_hash=str(labels.get(POD_TEMPLATE_HASH, "")),
                    replica_set=str(meta.get("name", "")), template=without_hash_label(template))


def _number(meta: Mapping[str, Any]) -> int:
    try:
        return int((meta.get("annotations") or {}).get(REVISION, "0"))
    except (TypeError, ValueError):
        return 0


def _controller_uid(obj: Mapping[str, Any]) -> str | None:
    for ref in (obj.get("metadata") or {}).get("ownerReferences") or ():
        if ref.get("controller"):
            return str(ref.get("uid"))
    return None
