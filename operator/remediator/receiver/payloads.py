"""The Alertmanager webhook payload, version 4. Unknown fields are ignored, as Alertmanager may add some."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field
from pydantic.alias_generators import to_camel

from remediator.api.incidents import AlertState

# A bound far above Alertmanager's own notifications; the body is limited to 1 MiB anyway.
MAX_ALERTS = 10_000


class _Payload(BaseModel):
    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True, extra="ignore", frozen=True)


class Alert(_Payload):
    """One alert of the notification."""

    status: AlertState
    labels: dict[str, str]
    annotations: dict[str, str] = Field(default_factory=dict)
    starts_at: AwareDatetime
    ends_at: AwareDatetime | None = None
    generator_url: str = Field(default="", alias="generatorURL")
    fingerprint: str = Field(default="", max_length=64)


class Notification(_Payload):
    """What Alertmanager POSTs: the whole group, not a delta."""

    version: Literal["4"]
    group_key: str = ""
    truncated_alerts: int = Field(default=0, ge=0)
    status: AlertState
    receiver: str = ""
    group_labels: dict[str, str] = Field(default_factory=dict)
    common_labels: dict[str, str] = Field(default_factory=dict)
    common_annotations: dict[str, str] = Field(default_factory=dict)
    external_url: str = Field(default="", alias="externalURL")
    alerts: list[Alert] = Field(max_length=MAX_ALERTS)


def with_missing_alerts(notification: Notification, listed: list[dict[str, Any]]) -> Notification:
    """The notification with the group's alerts Alertmanager left out (truncatedAlerts) added, from its
    /api/v2/alerts answer (active alerts, by fingerprint); an entry that does not parse, or that does not
    carry the group's labels (not of this group, whatever the answer), is ignored."""
    known = {alert.fingerprint for alert in notification.alerts}
    group = notification.group_labels.items()
    added = []
    for entry in listed:
        try:
            alert = Alert.model_validate({**entry, "status": AlertState.FIRING.value})
        except ValueError:
            continue
        if alert.fingerprint not in known and group <= alert.labels.items():
            known.add(alert.fingerprint)
            added.append(alert)
    return notification.model_copy(update={"alerts": [*notification.alerts, *added]})
