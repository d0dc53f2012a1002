"""Alertmanager notifications and Runbooks as the receiver's tests write them."""

from __future__ import annotations

from typing import Any

STARTS_AT = "2026-11-29T10:00:00.123456789Z"
LATER = "2026-11-29T11:00:00Z"


def alert(status: str = "firing", starts_at: str = STARTS_AT, fingerprint: str = "f1", **labels: str) -> dict[str, Any]:
    """One alert of a notification; labels default to a KubePodCrashLooping alert for web in default."""
    labels = {"alertname": "KubePodCrashLooping", "namespace": "default", "deployment": "web",
              "severity": "critical", **labels}
    return {"status": status, "labels": labels, "annotations": {"description": "web keeps restarting"},
            "startsAt": starts_at, "endsAt": "0001-01-01T00:00:00Z", "generatorURL": "http://prometheus/graph",
            "fingerprint": fingerprint}


def notification(*alerts: dict[str, Any], truncated: int = 0) -> dict[str, Any]:
    """A version 4 webhook body carrying the whole group."""
    firing = any(a["status"] == "firing" for a in alerts)
    return {"version": "4", "groupKey": '{}:{alertname="KubePodCrashLooping"}', "truncatedAlerts": truncated,
            "status": "firing" if firing else "resolved", "receiver": "remediator",
            "groupLabels": {"alertname": "KubePodCrashLooping"}, "commonLabels": {}, "commonAnnotations": {},
            "externalURL": "http://alertmanager:9093", "alerts": list(alerts)}


def crash_loop_runbook(**spec: Any) -> dict[str, Any]:
    """A Runbook rolling back the crash-looping Deployment its alert names, then waiting for the rollout."""
    return {
        "triggers": [{"alertname": "KubePodCrashLooping", "matchers": [{"name": "severity", "value": "critical"}]}],
        "incident": {
            "summary": "{{ labels.deployment }} is crash-looping: {{ annotations.description }}",
            "severities": {"critical": "P1", "warning": "P3"},
            "steps": [
                {"name": "restart", "restart": {"target": {"kind": "Deployment", "name": "{{ labels.deployment }}"}}},
            ],
        },
        **spec,
    }


def runbook_manifest(name: str = "crash-loop", namespace: str = "default", **spec: Any) -> dict[str, Any]:
    return {"apiVersion": "remediator.dev/v1alpha1", "kind": "Runbook",
            "metadata": {"name": name, "namespace": namespace}, "spec": crash_loop_runbook(**spec)}
