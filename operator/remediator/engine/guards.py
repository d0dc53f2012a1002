"""Safety guards: whether a step may act now, and if not, why and until when. Pure policy functions.

Each guard answers with a Verdict: `proceed`, `wait` (with a CamelCase reason and a time to look
again) or `refuse` (the step fails with the reason). The engine applies them in order before acting.
"""

from __future__ import annotations

import array
import dataclasses
import datetime
import enum
from collections.abc import Collection, Mapping, Sequence
from typing import TYPE_CHECKING

from remediator import GROUP
from remediator.api.severities import Severity
from remediator.api.steps import Step

if TYPE_CHECKING:  # plans imports the allow-lists, which use the Verdict defined here
    from remediator.engine.plans import Plan

APPROVE_ANNOTATION = f"{GROUP}/approve"
APPROVED_BY_ANNOTATION = f"{GROUP}/approved-by"
REQUESTED_BY_ANNOTATION = f"{GROUP}/requested-by"
RETRIED_BY_ANNOTATION = f"{GROUP}/retried-by"
LOCK_ANNOTATION = f"{GROUP}/lock"
COOLDOWN_ANNOTATION_PREFIX = f"{GROUP}/cooldown."
DEFAULT_COOLDOWN = datetime.timedelta(minutes=10)
DEFAULT_MAX_COOLDOWN = datetime.timedelta(hours=1)
RATE_LIMITED = "RateLimited"  # the reason of the operator-wide rate limit's wait (a metric counts the Incidents held)


class Outcome(enum.Enum):
    PROCEED = "proceed"
    WAIT = "wait"
    REFUSE = "refuse"


@dataclasses.dataclass(frozen=True)
class Verdict:
    outcome: Outcome
    reason: str = ""
    message: str = ""
    retry_at: datetime.datetime | None = None

    @property
    def proceeds(self) -> bool:
        return self.outcome == Outcome.PROCEED


PROCEED = Verdict(Outcome.PROCEED)


@dataclasses.dataclass(frozen=True)
class ApprovalPolicy:
    """Which destructive steps wait for approval at which severities (besides `requiresApproval`).

    Default: at every severity, a destructive plan (see engine/plans.py: a rollback, a job, a database
    terminate/cancel/kill, a scale to 0, deleting every pod at once) waits for a person. An empty set of
    severities switches the policy off.
    """

    severities: frozenset[Severity] = frozenset(Severity)
    self_approval: bool = False  # whether the requester may approve their own incident (four-eyes when not)


def approval(step: Step, plan: Plan, severity: Severity, policy: ApprovalPolicy,
             annotations: Mapping[str, str]) -> tuple[Verdict, str | None]:
    """Wait for `remediator.dev/approve: "<step>"` (or "all", or a comma list) when approval is needed.

    Whether a step is destructive is the plan's verdict (what will happen), never the spec's
    spelling. Returns the verdict and, when approved, who approved (the `remediator.dev/approved-by`
    annotation, or "unknown" when nobody signed).
    """
    needed = step.requires_approval or (severity in policy.severities and plan.destructive)
    if not needed:
        return PROCEED, None
    approved = {name.strip() for name in annotations.get(APPROVE_ANNOTATION, "").split(",") if name.strip()}
    approver = annotations.get(APPROVED_BY_ANNOTATION) or "unknown"
    own = approver == annotations.get(REQUESTED_BY_ANNOTATION) and not policy.self_approval
    if ("all" in approved or step.name in approved) and not own:
        return PROCEED, approver
    why = "it is marked requiresApproval" if step.requires_approval else f"it is destructive at {severity.value}"
    if own and ("all" in approved or step.name in approved):
        why += f"; {approver} requested this incident and cannot approve it too"
    return Verdict(Outcome.WAIT, "AwaitingApproval",
                   f"waiting for approval to {plan.text} ({why}): annotate the Incident "
                   f"{APPROVE_ANNOTATION}={step.name} or =all"), None


def allowed(namespace: str, kind: str | None, namespaces: Collection[str] | None,
            kinds: Collection[str] | None) -> Verdict:
    """Refuse steps outside the operator's namespace and kind allow-lists (None: everything allowed).

    `kind`: the kind of object the step acts on or creates (None: a step that touches no object kind,
    such as an httpCheck; the namespace list still applies).
    """
    if namespaces is not None and namespace not in namespaces:
        return Verdict(Outcome.REFUSE, "NamespaceNotAllowed",
                       f"namespace {namespace} is not on the operator's namespace allow-list")
    if kinds is not None and kind is not None and kind not in kinds:
        return Verdict(Outcome.REFUSE, "KindNotAllowed", f"kind {kind} is not on the operator's kind allow-list")
    return PROCEED


def lock(holder: str, annotations: Mapping[str, str], target: str, retry_at: datetime.datetime, *,
         stale: bool = False) -> Verdict:
    """One remediation per target: wait while another incident holds the target's lock annotation.

    `stale`: the holder is known to be gone or finished, so its lock no longer counts.
    """
    current = annotations.get(LOCK_ANNOTATION)
    if current in (None, "", holder) or stale:
        return PROCEED
    return Verdict(Outcome.WAIT, "TargetLocked", f"{target} is being remediated by incident {current}",
                   retry_at=retry_at)


def cooldown_annotation(action: str) -> str:
    return f"{COOLDOWN_ANNOTATION_PREFIX}{action}"


def format_cooldown(until: datetime.datetime, holder: str) -> str:
    return f"{until.strftime('%Y-%m-%dT%H:%M:%SZ')} {holder}"


def cooldown(action: str, holder: str, annotations: Mapping[str, str], target: str,
             now: datetime.datetime, longest: datetime.timedelta = DEFAULT_MAX_COOLDOWN,
             seen_since: datetime.datetime | None = None) -> Verdict:
    """No second `action` on a target inside the cooldown another incident started there.

    A stamp is only an annotation anyone may write: it never holds longer than `longest` (the longest
    cooldown the policy allows) from when this step first saw it (`seen_since`, else now), so a stamp
    dated 9999 cannot block a target for ever.
    """
    value = annotations.get(cooldown_annotation(action), "")
    until_text, _, by = value.partition(" ")
    if not until_text or by == holder:
        return PROCEED
    try:
        until = datetime.datetime.fromisoformat(until_text.replace("Z", "+00:00"))
    except ValueError:
        return PROCEED
    if until.tzinfo is None:
        until = until.replace(tzinfo=datetime.UTC)
    until = min(until, (seen_since or now) + longest)
    if now >= until:
        return PROCEED
    return Verdict(Outcome.WAIT, "CoolingDown",
                   f"{target} had a {action} by incident {by}; cooling down until "
                   f"{until.strftime('%Y-%m-%dT%H:%M:%SZ')}", retry_at=until)


@dataclasses.dataclass(frozen=True)
class RateLimit:
    """At most `actions` actions in any `per` window, operator-wide: the circuit breaker for alert storms."""

    actions: int
    per: datetime.timedelta = datetime.timedelta(minutes=1)


def rate_limit(limit: RateLimit | None, recent: Sequence[datetime.datetime], now: datetime.datetime) -> Verdict:
    """Wait when `limit.actions` actions already happened within the window before `now`."""
    if limit is None:
        return PROCEED
    window = [t for t in recent if now - t < limit.per]
    if len(window) < limit.actions:
        return PROCEED
    retry_at = min(window) + limit.per
    return Verdict(Outcome.WAIT, RATE_LIMITED,
                   f"operator-wide rate limit of {limit.actions} actions per {int(limit.per.total_seconds())}s "
                   "reached", retry_at=retry_at)


class ActionLog:
    """When the operator's recent actions happened: the memory the rate limit judges by.

    Kept as one array of POSIX seconds, not a datetime object each: thousands of actions in a storm
    would each leave a small object scattered among the storm's, and the allocator keeps every arena
    holding one (docs/benchmarks.md)."""

    def __init__(self, keep: int = 10_000) -> None:
        if keep < 1:
            raise ValueError(f"keep must be at least 1, not {keep}")
        self.keep = keep
        self._times = array.array("d")

    def record(self, moment: datetime.datetime) -> None:
        self._times.append(moment.timestamp())
        if len(self._times) >= self.keep + self.keep // 4 + 1:  # trimmed now and then, not at every action
            del self._times[:len(self._times) - self.keep]

    def verdict(self, limit: RateLimit | None, now: datetime.datetime) -> Verdict:
        if limit is None:
            return PROCEED
        return rate_limit(limit, self._within(limit, now), now)

    def remaining(self, limit: RateLimit | None, now: datetime.datetime) -> float:
        """How many more actions the limit allows now (infinity without a limit)."""
        if limit is None:
            return float("inf")
        return float(max(limit.actions - len(self._within(limit, now)), 0))

    def _within(self, limit: RateLimit, now: datetime.datetime) -> list[datetime.datetime]:
        """The last `keep` actions within the limit's window before `now`; a limit of more actions than
        that makes the log keep as many from now on (else `--rate-limit 20000` could never trip). Asked
        before every action, so it grows before the first one it would have lost."""
        self.keep = max(self.keep, limit.actions)
        start = now.timestamp() - limit.per.total_seconds()
        recent = self._times[-self.keep:]
        return [datetime.datetime.fromtimestamp(t, now.tzinfo) for t in recent if t > start]
