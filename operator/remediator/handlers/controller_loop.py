"""The reconcile loop that RollbackRequests and KeyRotations share: decide (pure) → observe, or write the
status (the intent and the lease epoch on record first) → act → record the outcome, until nothing is left
to do now.

The status is the object's write-ahead log: it is written, on condition that the object is still at the
version decided on, before every action, so after a crash the same action is re-issued, never planned
again. A kind brings its `Controller` (how to decide, observe and act); the loop is the same for all.
Crash points are named `<kind>-before-status-write`, `-after-status-write`, `-before-action`, `-after-action`.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Any, ClassVar, Generic, Protocol, TypeVar

import kubernetes.client
from kubernetes.client.exceptions import ApiException

from remediator import faults
from remediator.actions import events, fences, statuses
from remediator.api.timelines import TimelineEntry
from remediator.engine import drafts
from remediator.typedefs import Logger

WorldT = TypeVar("WorldT")
IntentT = TypeVar("IntentT")
Decision = drafts.Decision[Any, IntentT]


class View(Protocol):
    """The engine's view of one object: a frozen dataclass with the status the loop replaces as it decides."""

    __dataclass_fields__: ClassVar[dict[str, dataclasses.Field[Any]]]

    @property
    def status(self) -> Mapping[str, Any]: ...


ViewT = TypeVar("ViewT", bound=View)
ViewT_contra = TypeVar("ViewT_contra", bound=View, contravariant=True)


class Controller(Protocol[ViewT_contra, WorldT, IntentT]):
    """What one kind brings to the loop: its pure decision and how its intents are carried out."""

    def decide(self, view: ViewT_contra, world: WorldT) -> Decision[IntentT]:
        """The engine's next move for `view`, given what was observed (and done) since the last action."""

    def is_observation(self, intent: IntentT) -> bool:
        """True for a read: carried out at once, nothing recorded first."""

    async def observe(self, intent: IntentT, world: WorldT) -> WorldT:
        """Carry out a read; the world with its answer added."""

    async def act(self, intent: IntentT, world: WorldT) -> WorldT:
        """Carry out an action (its intent is on record); the world after it: what was read before an
        action is stale after it, so that is dropped and its outcome is added."""


@dataclasses.dataclass(frozen=True)
class Where:
    """The object the loop works on: its kind's plural (and crash-point prefix), and the body it was read as."""

    api: kubernetes.client.ApiClient
    plural: str
    crash_prefix: str
    body: Mapping[str, Any]


@dataclasses.dataclass(frozen=True)
class Settled(Generic[IntentT]):
    """Nothing more to do now: the last decision (its requeue_after says when to look again)."""

    decision: Decision[IntentT]


@dataclasses.dataclass(frozen=True)
class WriteRefused:
    """The conditional status write was refused: the object changed meanwhile (409) or is gone (404)."""

    error: ApiException


@dataclasses.dataclass(frozen=True)
class Exhausted:
    """`max_moves` decisions without a conclusion: a bug, not progress."""

    moves: int


Outcome = Settled[IntentT] | WriteRefused | Exhausted


async def run(where: Where, controller: Controller[ViewT, WorldT, IntentT], view: ViewT, world: WorldT,
              max_moves: int, logger: Logger) -> Outcome[IntentT]:
    """Advance the object as far as it can go now.

    Status changes are written just before an action and at the end; timeline entries are posted as
    Events once their status is written. API errors other than a refused status write propagate.
    """
    meta = where.body["metadata"]
    version = str(meta["resourceVersion"])
    unsaved: list[TimelineEntry] = []
    dirty = False
    for _ in range(max_moves):
        decision = controller.decide(view, world)
        status = decision.status.model_dump(by_alias=True, mode="json", exclude_none=True)
        view = dataclasses.replace(view, status=status)
        unsaved.extend(decision.entries)
        dirty = dirty or decision.changed
        intent = decision.intent
        if intent is not None and controller.is_observation(intent):
            world = await controller.observe(intent, world)
            continue
        if dirty:
            faults.crash_point(f"{where.crash_prefix}-before-status-write")
            try:
                written = await statuses.write_status(where.api, where.plural, meta["namespace"], meta["name"],
                                                      fences.stamped(status), resource_version=version)
            except ApiException as e:
                if e.status in (404, 409):
                    return WriteRefused(e)
                raise
            faults.crash_point(f"{where.crash_prefix}-after-status-write")
            version = str(written["metadata"]["resourceVersion"])
            await events.post(where.api, where.body, unsaved, logger)
            unsaved, dirty = [], False
        if intent is None:
            return Settled(decision)
        faults.crash_point(f"{where.crash_prefix}-before-action")
        world = await controller.act(intent, world)
        faults.crash_point(f"{where.crash_prefix}-after-action")
    return Exhausted(max_moves)
