"""Which Incidents a notification needs: each alert matched against the Runbooks, grouped into episodes
by incident key, each with the Incident to create for it. Pure: the caller lists the Runbooks.

Namespace rule: an alert's Incident goes to the alert's `namespace` label, or, without one, to the
Runbook's namespace; a Runbook serves only alerts of its own namespace (or without one), so whoever
may write Runbooks in one namespace cannot start remediations in another. The operator's namespace
allow-list applies on top.
"""

from __future__ import annotations

import dataclasses
import datetime
from collections.abc import Collection, Mapping, Sequence
from typing import Any

from remediator import GROUP, VERSION
from remediator.api import alert_templates
from remediator.api.incidents import AlertRecord, AlertSource, AlertState, IncidentSpec
from remediator.api.runbooks import RunbookSpec, render_step
from remediator.api.severities import Severity, normalise_severity
from remediator.engine import step_lists, windows
from remediator.engine.schedules import ScheduleError
from remediator.receiver import alert_lists, keys, loop_guards, maintenance, matching
from remediator.receiver.payloads import Alert, Notification

DEFAULT_SEVERITY = Severity.P3
MAX_SUMMARY = 1024
LABEL_VALUE_LIMIT = 63


@dataclasses.dataclass(frozen=True)
class Runbook:
    """A valid Runbook, as listed from the cluster."""

    namespace: str
    name: str
    spec: RunbookSpec


@dataclasses.dataclass(frozen=True)
class Rejection:
    """An alert a Runbook matched but could not turn into an Incident, and why."""

    runbook: str
    alertname: str
    fingerprint: str
    reason: str
    message: str


@dataclasses.dataclass
class Episode:
    """The alerts of one incident key in this notification, and the Incident that holds them."""

    namespace: str
    runbook: Runbook
    key_hash: str
    name: str
    """The Incident's name: from the first firing alert's startsAt (or the first alert's when all resolved)."""
    manifest: dict[str, Any] | None
    """The Incident to create when the key has none yet; None when every alert is resolved."""
    alerts: list[AlertRecord]
    truncated_alerts: int
    firing: list[Alert] = dataclasses.field(default_factory=list)
    """The firing alerts, first started first."""


@dataclasses.dataclass(frozen=True)
class Placement:
    """Where an episode's alerts go: an existing Incident of the key, or a new one (name, manifest)."""

    existing: Mapping[str, Any] | None = None
    create: dict[str, Any] | None = None


@dataclasses.dataclass
class Plan:
    episodes: list[Episode] = dataclasses.field(default_factory=list)
    rejections: list[Rejection] = dataclasses.field(default_factory=list)
    matched_alerts: int = 0


def plan(notification: Notification, runbooks: Sequence[Runbook],
         allowed_namespaces: Collection[str] | None) -> Plan:
    """The episodes and rejections of a notification (each alert on its own merits)."""
    result = Plan()
    grouped: dict[tuple[str, str, str], list[Alert]] = {}
    runbook_of: dict[tuple[str, str, str], Runbook] = {}
    # Read from the Runbook's templates once per notification, not once per alert (a storm's 100).
    key_labels = {(runbook.namespace, runbook.name): runbook.spec.key_labels() for runbook in runbooks}
    for alert in notification.alerts:
        matched = False
        for runbook in runbooks:
            namespace = alert.labels.get("namespace") or runbook.namespace
            if namespace != runbook.namespace or not matching.runbook_matches(runbook.spec, alert.labels):
                continue
            matched = True
            if allowed_namespaces is not None and namespace not in allowed_namespaces:
                result.rejections.append(_rejection(runbook, alert, "NamespaceNotAllowed",
                                                    f"namespace {namespace} is not on the operator's namespace "
                                                    f"allow-list"))
                continue
            key_hash = keys.incident_key(runbook.namespace, runbook.name, key_labels[(runbook.namespace, runbook.name)],
                                         alert.labels)
            group = (namespace, runbook.name, key_hash)
            grouped.setdefault(group, []).append(alert)
            runbook_of[group] = runbook
        result.matched_alerts += matched
    for (namespace, _, key_hash), alerts in grouped.items():
        episode = _episode(namespace, runbook_of[(namespace, _, key_hash)], key_hash, alerts,
                           notification.truncated_alerts, result.rejections)
        if episode is not None:
            result.episodes.append(episode)
    return result


def _episode(namespace: str, runbook: Runbook, key_hash: str, alerts: list[Alert], truncated: int,
             rejections: list[Rejection]) -> Episode | None:
    firing = sorted((a for a in alerts if a.status == AlertState.FIRING), key=lambda a: (a.starts_at, a.fingerprint))
    first = firing[0] if firing else min(alerts, key=lambda a: (a.starts_at, a.fingerprint))
    name = keys.incident_name(runbook.name, key_hash, first.starts_at)
    manifest = None
    if firing:
        try:
            windows.compile_windows(runbook.spec.defaults.maintenance_windows, runbook.spec.defaults.time_zone,
                                    field="defaults.maintenanceWindows")
        except ScheduleError as error:
            rejections.extend(_rejection(runbook, alert, "InvalidMaintenanceWindow", str(error)) for alert in alerts)
            return None
        try:
            manifest = incident_manifest(namespace, name, runbook, key_hash, first)
        except ValueError as error:
            rejections.extend(_rejection(runbook, alert, "InvalidIncident", str(error)) for alert in alerts)
            return None
    records = [AlertRecord(fingerprint=a.fingerprint, starts_at=a.starts_at, ends_at=a.ends_at, status=a.status)
               for a in alerts]
    return Episode(namespace, runbook, key_hash, name, manifest, records, truncated, firing)


def place(episode: Episode, incidents: Sequence[Mapping[str, Any]], now: datetime.datetime | None = None,
          guard: loop_guards.LoopGuard | None = None,
          maintenance_windows: Sequence[windows.Window] = ()) -> Placement:
    """Where the episode's alerts go, given the key's Incidents as stored (listed by its label).

    The oldest open Incident of the key takes them. With none open, an alert that started after the
    last one closed, and that no Incident has recorded, is a new firing: it opens a new Incident,
    named for its startsAt. Otherwise (a resend of an alert after its Incident closed, or a late
    resolve) the alerts join the most recently closed Incident, and nothing is created. A new Incident
    is held (every step waits for approval) when the key's earlier Incidents trip the loop guard, and
    waits for the maintenance windows open at `now` to close.
    """
    open_ones = sorted((i for i in incidents if alert_lists.is_open(i)), key=_created)
    if open_ones:
        return Placement(existing=open_ones[0])
    closed_at = max((_closed_at(i) for i in incidents), default=None)
    recorded = {(a.get("fingerprint", ""), _moment(a.get("startsAt"))) for i in incidents
                for a in (i.get("status") or {}).get("alerts", [])}
    fresh = [a for a in episode.firing if (closed_at is None or a.starts_at > closed_at)
             and (a.fingerprint, a.starts_at) not in recorded]
    if fresh:
        name = keys.incident_name(episode.runbook.name, episode.key_hash, fresh[0].starts_at)
        named = next((i for i in incidents if i["metadata"]["name"] == name), None)
        if named is not None:
            return Placement(existing=named)
        try:
            manifest = episode.manifest if name == episode.name and episode.manifest is not None else \
                incident_manifest(episode.namespace, name, episode.runbook, episode.key_hash, fresh[0])
        except ValueError:
            return Placement()  # the key's values fill the steps alike for every alert: rejected in plan()
        defaults = episode.runbook.spec.defaults
        hold = None if guard is None or now is None else loop_guards.judge(incidents, guard.for_runbook(defaults), now)
        if hold is not None:
            manifest = loop_guards.held(manifest, hold)
        try:
            closes = None if now is None else maintenance.until(defaults, maintenance_windows, now)
        except ScheduleError:
            return Placement()  # rejected in plan()
        return Placement(create=manifest if closes is None else maintenance.held(manifest, closes))
    latest = max(incidents, key=_closed_at, default=None)
    return Placement(existing=latest)


def _moment(value: Any) -> datetime.datetime | None:
    if not isinstance(value, str):
        return None
    try:
        return datetime.datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None


def _created(incident: Mapping[str, Any]) -> tuple[str, str]:
    meta = incident["metadata"]
    return str(meta.get("creationTimestamp", "")), str(meta["name"])


def _closed_at(incident: Mapping[str, Any]) -> datetime.datetime:
    """When the Incident closed: its Resolved or Failed condition (or the dry run's end); else its creation."""
    status = incident.get("status") or {}
    ends = [_moment(c.get("lastTransitionTime")) for c in status.get("conditions", [])
            if (c.get("type") in ("Resolved", "Failed") and c.get("status") == "True")
            or (c.get("type") == "Ready" and c.get("reason") == "DryRunComplete")]
    known = [moment for moment in ends if moment is not None]
    created = _moment(incident["metadata"].get("creationTimestamp")) or datetime.datetime.min.replace(
        tzinfo=datetime.UTC)
    return max(known, default=created)


def severity_of(spec: RunbookSpec, labels: dict[str, str]) -> Severity:
    """The table entry for the `severity` label, else the Runbook's default severity, else the label
    itself when it names one (P1, SEV2), else P3."""
    label = labels.get("severity", "")
    if label in spec.incident.severities:
        return spec.incident.severities[label]
    if spec.defaults.severity is not None:
        return spec.defaults.severity
    try:
        return normalise_severity(label)
    except ValueError:
        return DEFAULT_SEVERITY


def incident_manifest(namespace: str, name: str, runbook: Runbook, key_hash: str, alert: Alert) -> dict[str, Any]:
    """The Incident for an alert's episode: the Runbook's steps filled in for this alert, never pre-approved.

    Raises ValueError (with the reason) when a filled-in step is invalid.
    """
    spec = runbook.spec
    templates = spec.incident.steps or [s.model_dump(by_alias=True, exclude_none=True, mode="json")
                                        for s in spec.steps]
    steps = []
    for template in templates:
        try:
            steps.append(render_step(template, alert.labels, alert.annotations))
        except ValueError as error:
            raise ValueError(f"step {template.get('name', '?')}: {error}") from None
    summary = alert_templates.render(spec.incident.summary, alert.labels, alert.annotations)[:MAX_SUMMARY].strip()
    incident = IncidentSpec(
        severity=severity_of(spec, alert.labels),
        summary=summary or f"alert {alert.labels.get('alertname', '')} (Runbook {runbook.name})"[:MAX_SUMMARY],
        steps=step_lists.with_defaults(steps, spec.defaults),
        dry_run=spec.defaults.dry_run,
        cooldown=spec.defaults.cooldown,
        escalate_after=spec.defaults.escalate_after,
        on_resolve=spec.incident.on_resolve,
        source=AlertSource(alertname=alert.labels.get("alertname"), fingerprint=alert.fingerprint or None,
                           labels=alert.labels, annotations=alert.annotations, starts_at=alert.starts_at),
    )
    labels = {keys.KEY_LABEL: key_hash}
    if len(runbook.name) <= LABEL_VALUE_LIMIT:
        labels[keys.RUNBOOK_LABEL] = runbook.name
    return {
        "apiVersion": f"{GROUP}/{VERSION}",
        "kind": "Incident",
        # No annotations: an Incident the receiver creates is never pre-approved.
        "metadata": {"name": name, "namespace": namespace, "labels": labels},
        "spec": incident.model_dump(by_alias=True, exclude_none=True, mode="json"),
    }


# Every reason a Rejection gives (the metrics export each from the start, at 0).
REJECTION_REASONS = ("NamespaceNotAllowed", "InvalidMaintenanceWindow", "InvalidIncident", "RefusedByApiServer")


def _rejection(runbook: Runbook, alert: Alert, reason: str, message: str) -> Rejection:
    return Rejection(f"{runbook.namespace}/{runbook.name}", alert.labels.get("alertname", ""), alert.fingerprint,
                     reason, message)


def refused(episode: Episode, message: str) -> Rejection:
    """The rejection of an episode whose Incident the API server refused."""
    source = ((episode.manifest or {}).get("spec") or {}).get("source") or {}
    return Rejection(f"{episode.runbook.namespace}/{episode.runbook.name}", source.get("alertname") or "",
                     source.get("fingerprint") or "", "RefusedByApiServer", message)
