"""The demo's second act, "alert to resolved": a KubePodCrashLooping alert for web reaches the operator's
receiver, through a real Alertmanager when one is installed (Debian's prometheus-alertmanager) and
straight otherwise; the crash-looping Runbook's Incident restarts web and waits for the rollout; then
the alert resolves and the Incident records it."""

from __future__ import annotations

import asyncio
import contextlib
import datetime
import json
import pathlib
import shutil
import socket
import time
from collections.abc import AsyncIterator, Callable
from typing import Any

import httpx

from remediator import processes

TOKEN = "demo-receiver-token"
LABELS = {"alertname": "KubePodCrashLooping", "namespace": "default", "deployment": "web", "severity": "warning",
          "pod": "web-0"}
INCIDENTS = "/apis/remediator.dev/v1alpha1/namespaces/default/incidents"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


class DirectSender:
    """Posts Alertmanager's webhook body to the receiver itself (no Alertmanager installed)."""

    description = "straight to the receiver (prometheus-alertmanager is not installed)"

    def __init__(self, receiver_url: str) -> None:
        self.receiver_url = receiver_url

    async def send(self, starts_at: datetime.datetime, resolved: bool) -> None:
        alert = {"status": "resolved" if resolved else "firing", "labels": LABELS,
                 "annotations": {"description": "web-0 is restarting"}, "startsAt": starts_at.isoformat(),
                 "fingerprint": "d3m0"}
        body = {"version": "4", "status": alert["status"], "receiver": "remediator", "groupKey": "{}:{}",
                "groupLabels": {"alertname": LABELS["alertname"]}, "alerts": [alert]}
        async with httpx.AsyncClient(timeout=30, headers={"Authorization": f"Bearer {TOKEN}"}) as http:
            (await http.post(self.receiver_url, json=body)).raise_for_status()


class AlertmanagerSender:
    """Fires alerts into a real Alertmanager (POST /api/v2/alerts) that notifies the receiver."""

    description = "through Alertmanager"

    def __init__(self, url: str) -> None:
        self.url = url

    async def send(self, starts_at: datetime.datetime, resolved: bool) -> None:
        alert: dict[str, Any] = {"labels": LABELS, "annotations": {"description": "web-0 is restarting"},
                                 "startsAt": starts_at.isoformat()}
        if resolved:
            # In the past, so Alertmanager takes it as resolved; never before startsAt (whole seconds),
            # which Alertmanager refuses (400): the demo may resolve in the second it fired.
            ends_at = datetime.datetime.now(datetime.UTC) - datetime.timedelta(seconds=1)
            alert["endsAt"] = max(ends_at, starts_at).isoformat()
        async with httpx.AsyncClient(timeout=30) as http:
            (await http.post(f"{self.url}/api/v2/alerts", json=[alert])).raise_for_status()


@contextlib.asynccontextmanager
async def sender(receiver_url: str, workdir: pathlib.Path) -> AsyncIterator[DirectSender | AlertmanagerSender]:
    """A real Alertmanager notifying the receiver when the binary is installed; else posting directly."""
    binary = shutil.which("prometheus-alertmanager") or shutil.which("alertmanager")
    if binary is None:
        yield DirectSender(receiver_url)
        return
    config = {"route": {"receiver": "remediator", "group_wait": "500ms", "group_interval": "1s",
                        "repeat_interval": "1h"},
              "receivers": [{"name": "remediator", "webhook_configs": [{
                  "url": receiver_url, "send_resolved": True,
                  "http_config": {"authorization": {"type": "Bearer", "credentials": TOKEN}}}]}]}
    directory = workdir / "alertmanager"
    directory.mkdir(exist_ok=True)
    (directory / "alertmanager.yml").write_text(json.dumps(config))  # YAML is a superset of JSON
    port = free_port()
    with (directory / "log").open("wb") as log:
        process = await asyncio.create_subprocess_exec(
            binary, f"--config.file={directory / 'alertmanager.yml'}", f"--storage.path={directory}",
            f"--web.listen-address=127.0.0.1:{port}", "--cluster.listen-address=", stdout=log, stderr=log)
    try:
        url = f"http://127.0.0.1:{port}"
        async with httpx.AsyncClient() as http:
            for _ in range(200):
                with contextlib.suppress(httpx.HTTPError):
                    if (await http.get(f"{url}/-/ready")).status_code == 200:
                        break
                await asyncio.sleep(0.05)
        yield AlertmanagerSender(url)
    finally:
        await processes.stop(process, grace=5)


async def alert_to_resolved(sandbox_url: str, receiver_url: str, workdir: pathlib.Path,
                            say: Callable[[str], None], format_entry: Callable[[dict[str, Any]], str],
                            timeout: float) -> int:
    """Fire the alert, follow its Incident until Resolved, resolve the alert; 0 on success."""
    starts_at = datetime.datetime.now(datetime.UTC).replace(microsecond=0)
    async with sender(receiver_url, workdir) as alerts, httpx.AsyncClient(base_url=sandbox_url) as api:
        say(f"— KubePodCrashLooping for deployment/web, sent {alerts.description} —")
        await alerts.send(starts_at, resolved=False)
        printed, deadline, resolved_sent = 0, time.monotonic() + timeout, False
        while time.monotonic() < deadline:
            items = (await api.get(INCIDENTS, params={"labelSelector": "remediator.dev/runbook=crash-looping"}))
            found = items.json().get("items", [])
            status = (found[0].get("status") or {}) if found else {}
            timeline = status.get("timeline") or []
            for entry in timeline[printed:]:
                say(format_entry(entry))
            printed = len(timeline)
            if status.get("phase") == "Resolved" and not resolved_sent:
                say("— the alert resolves —")
                await alerts.send(starts_at, resolved=True)
                resolved_sent = True
            if any(c.get("type") == "AlertResolved" and c.get("status") == "True"
                   for c in status.get("conditions", [])):
                say(f"✓ incident {found[0]['metadata']['name']} resolved and its alert too")
                return 0
            if status.get("phase") in ("Failed", "Invalid"):
                break
            await asyncio.sleep(0.2)
    say("✗ the alert's incident did not resolve")
    return 1
