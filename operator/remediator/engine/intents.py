"""What the engine asks the I/O layer to do: observe something, or act (idempotently).

Intents are frozen and hashable: the I/O layer answers each one in `World.results`, keyed by
the intent itself, so the engine can tell "done, and this is what happened" from "not yet".
Actions carry absolute values (replicas to set, a restart timestamp): repeating one after a
crash changes nothing more.
"""

from __future__ import annotations

import dataclasses
import datetime
import enum
from typing import Any


@dataclasses.dataclass(frozen=True)
class ObserveTarget:
    """Read a workload (Deployment, StatefulSet, DaemonSet) as a whole object."""

    step: str
    kind: str
    name: str


@dataclasses.dataclass(frozen=True)
class ObserveHolder:
    """Read the Incident named by a target's lock (the value is None when it no longer exists)."""

    namespace: str
    name: str


@dataclasses.dataclass(frozen=True)
class ObserveRunbook:
    """Read a Runbook (the value is None when it does not exist)."""

    namespace: str
    name: str


@dataclasses.dataclass(frozen=True)
class ClaimTarget:
    """Annotate a workload with this incident's lock and the action's cooldown stamp.

    Written on condition that the workload is still at `resource_version` (the version the
    lock was judged on), so of two concurrent claims one fails with Conflict.
    """

    step: str
    kind: str
    name: str
    holder: str
    cooldown_action: str
    # Not part of the identity: the claim is the same claim whenever it was computed.
    cooldown_until: datetime.datetime = dataclasses.field(compare=False)
    resource_version: str = dataclasses.field(default="", compare=False)
    # The claim of a step about to act (not a re-claim after a crash) takes a slot of the rate limit.
    takes_rate_slot: bool = dataclasses.field(default=False, compare=False)


@dataclasses.dataclass(frozen=True)
class ReleaseTargets:
    """Remove this incident's lock annotation from the workloads it claimed."""

    holder: str
    targets: tuple[tuple[str, str], ...]  # (kind, name)


@dataclasses.dataclass(frozen=True)
class ScaleTo:
    """Set a workload's replicas to an absolute number through the scale subresource."""

    step: str
    kind: str
    name: str
    replicas: int
    # Tells one attempt of an Incident step from the next; a RollbackRequest scales once per step.
    idempotency_key: str = ""


# The pod-template annotation `kubectl rollout restart` sets; the restart step sets it the same way.
RESTARTED_AT_ANNOTATION = "kubectl.kubernetes.io/restartedAt"
# Written with it by every remediator restart: a KeyRotation shares any restart made after its values
# were promoted (kubectl's stamp is not ours to parse, and may be written by anyone).
PRECISE_RESTART_ANNOTATION = "remediator.dev/restarted-at"


@dataclasses.dataclass(frozen=True)
class RolloutRestart:
    """`kubectl rollout restart`: stamp the pod template with a (recorded) restart time."""

    step: str
    kind: str
    name: str
    restarted_at: str
    # When set, the patch is conditional on it (a KeyRotation's restart, judged on that version).
    resource_version: str = dataclasses.field(default="", compare=False)


@dataclasses.dataclass(frozen=True)
class ObservePods:
    """List the pods a label selector matches."""

    step: str
    selector: str


@dataclasses.dataclass(frozen=True)
class DeletePods:
    """Delete (or evict, where a PodDisruptionBudget covers them) these pods; gone ones are fine."""

    step: str
    names: tuple[str, ...]
    labels: tuple[tuple[tuple[str, str], ...], ...]


@dataclasses.dataclass(frozen=True)
class RunJob:
    """Create the step's Job (deterministic name, owned by the Incident) unless it exists."""

    step: str
    name: str
    template_json: str


@dataclasses.dataclass(frozen=True)
class Owner:
    """The object a created Job belongs to (its ownerReference): deleting it deletes the Job."""

    api_version: str
    kind: str
    name: str
    uid: str


@dataclasses.dataclass(frozen=True)
class ObserveJob:
    """Read a Job's outcome: {phase: Running|Succeeded|Failed|Missing, reason, message}."""

    step: str
    name: str


class JobPhase(enum.StrEnum):
    MISSING = "Missing"
    RUNNING = "Running"
    SUCCEEDED = "Succeeded"
    FAILED = "Failed"


@dataclasses.dataclass(frozen=True)
class JobObserved:
    """How a Job is doing; for a failed one, why (e.g. BackoffLimitExceeded) and the pod's termination message."""

    phase: JobPhase
    reason: str = ""
    message: str = ""


@dataclasses.dataclass(frozen=True)
class RunDatabaseOperation:
    """Run a database step's one operation in a session of its own (dry run: list targets, change nothing)."""

    step: str
    step_json: str
    dry_run: bool
    attempt: int
    # Sessions to signal: only these (pid, backend start) of the planned list, never a newer match.
    only: tuple[tuple[int, str], ...] | None = None


@dataclasses.dataclass(frozen=True)
class EnsureRollbackRequest:
    """Create the step's RollbackRequest (deterministic name, owned by the Incident) if absent."""

    step: str
    name: str
    spec_json: str


@dataclasses.dataclass(frozen=True)
class ObserveRollbackRequest:
    step: str
    name: str


@dataclasses.dataclass(frozen=True)
class ProbeHttp:
    """One HTTP request of an httpCheck; `probe` numbers them so each is a new observation."""

    step: str
    url: str
    method: str
    headers: tuple[tuple[str, str], ...]
    timeout_seconds: float
    probe: int


@dataclasses.dataclass(frozen=True)
class Notify:
    """POST a Slack-compatible message to the webhook URL held in a Secret."""

    step: str
    secret_name: str
    secret_key: str
    text: str
    idempotency_key: str


@dataclasses.dataclass(frozen=True)
class EnsureKeyRotation:
    """Create the step's inline KeyRotation (deterministic name, owned by the Incident, with the rotation
    request already on it) if absent."""

    step: str
    name: str
    spec_json: str
    request_id: str
    emergency: bool


@dataclasses.dataclass(frozen=True)
class RequestRotation:
    """Ask a KeyRotation for one rotation with this id (its rotate annotation); repeating it asks nothing more."""

    step: str
    name: str
    request_id: str
    emergency: bool
    # Written on condition that the KeyRotation is still as read: a request written meanwhile is not lost.
    resource_version: str = dataclasses.field(default="", compare=False)


@dataclasses.dataclass(frozen=True)
class ObserveKeyRotation:
    """Read a KeyRotation as a whole object."""

    step: str
    name: str


Observation = (ObserveTarget | ObserveHolder | ObserveRunbook | ObservePods | ObserveRollbackRequest | ObserveJob
               | ProbeHttp | ObserveKeyRotation)
Action = (ClaimTarget | ReleaseTargets | ScaleTo | RolloutRestart | DeletePods | RunJob | EnsureRollbackRequest
          | Notify | RunDatabaseOperation | EnsureKeyRotation | RequestRotation)
Intent = Observation | Action
OBSERVATIONS = (ObserveTarget, ObserveHolder, ObserveRunbook, ObservePods, ObserveRollbackRequest, ObserveJob,
                ProbeHttp, ObserveKeyRotation)


def is_observation(intent: Intent) -> bool:
    return isinstance(intent, OBSERVATIONS)


def needs_intent_on_record(intent: Intent) -> bool:
    """Whether the status must be written before this intent is carried out.

    Lock claims and releases name their holder on the target itself, so repeating one after a
    crash finds its own mark; everything else that acts must have its absolute intent recorded.
    """
    return not isinstance(intent, (*OBSERVATIONS, ClaimTarget, ReleaseTargets))


def takes_rate_slot(intent: Intent) -> bool:
    """Whether carrying out this intent uses one of the operator-wide rate limit's slots.

    A slot is taken when a step commits to act (its target's claim, or a Job's creation), before
    anything is awaited: concurrent incidents judged by the same verdict could all act otherwise.
    """
    return isinstance(intent, RunJob) or (isinstance(intent, ClaimTarget) and intent.takes_rate_slot)


@dataclasses.dataclass(frozen=True)
class Result:
    """What an intent found or did: success with an optional value, or a CamelCase reason and message."""

    succeeded: bool
    value: Any = None
    reason: str = ""
    message: str = ""


def done(value: Any = None) -> Result:
    return Result(succeeded=True, value=value)


def failed(reason: str, message: str) -> Result:
    return Result(succeeded=False, reason=reason, message=message)
