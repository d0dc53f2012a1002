"""Debian's prometheus-alertmanager (0.25) notifying the receiver: alerts fired through its API reach
exactly one Incident with the Runbook's steps, the resolve reaches it, grouping and repeat resends add
nothing, and two Alertmanagers peered in HA, both notifying, still give one Incident.

`.ci/run` installs the package; without the binary these tests are skipped, loudly.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import datetime
import pathlib
import shutil
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import aiohttp.web
import httpx
import pytest
import yaml
from kubernetes.aio import client as aio
from tests.local_servers import free_port, serving
from tests.scenarios.support import wait_for

from remediator import processes
from remediator.receiver import incident_writes, server, tokens
from remediator.sandbox import runner

from .alerts import runbook_manifest

BINARY = shutil.which("prometheus-alertmanager") or shutil.which("alertmanager")
pytestmark = pytest.mark.skipif(
    BINARY is None, reason="!!! prometheus-alertmanager is NOT INSTALLED: the real-Alertmanager tests are SKIPPED "
                           "(apt-get install prometheus-alertmanager; .ci/run installs it) !!!")

TOKEN = "am-token"
API = "/apis/remediator.dev/v1alpha1"
CRASH_LOOP = {"alertname": "KubePodCrashLooping", "namespace": "default", "deployment": "web", "severity": "critical"}



class Receiver:
    """The receiver in this process against the sandbox, counting the notifications each Alertmanager sends."""

    def __init__(self, sandbox: runner.RunningSandbox) -> None:
        self.sandbox = sandbox
        self.url = ""
        self.posts: collections.Counter[str] = collections.Counter()
        self.answers: list[int] = []
        self.handler: server.Receiver | None = None

    async def incidents(self) -> list[dict[str, Any]]:
        async with httpx.AsyncClient(base_url=self.sandbox.url) as http:
            items: list[dict[str, Any]] = (await http.get(f"{API}/namespaces/default/incidents")).json()["items"]
            return items


@pytest.fixture()
async def receiver(sandbox: runner.RunningSandbox, tmp_path: pathlib.Path) -> AsyncIterator[Receiver]:
    token = tmp_path / "token"
    token.write_text(TOKEN)
    running = Receiver(sandbox)
    async with httpx.AsyncClient(base_url=sandbox.url) as http:
        assert (await http.post(f"{API}/namespaces/default/runbooks", json=runbook_manifest())).status_code == 201
    async with aio.ApiClient(aio.Configuration(host=sandbox.url)) as api:
        handler = running.handler = server.Receiver(incident_writes.IncidentWrites(api), tokens.FileToken(token),
                                                    None)

        async def counted(request: aiohttp.web.Request) -> aiohttp.web.StreamResponse:
            running.posts[request.query.get("from", "")] += 1
            response = await handler.handle(request)
            running.answers.append(response.status)
            return response

        app = aiohttp.web.Application(client_max_size=server.MAX_BODY)
        app.router.add_post(server.PATH, counted)
        async with serving(app) as running.url:
            yield running


StartAlertmanager = Callable[..., Awaitable[str]]


@pytest.fixture()
async def alertmanager(receiver: Receiver, tmp_path: pathlib.Path) -> AsyncIterator[StartAlertmanager]:
    """Start an Alertmanager notifying the receiver (short group_wait, group_interval and repeat_interval);
    returns its URL. `peers` are the cluster addresses of others to gossip with (HA)."""
    started: list[asyncio.subprocess.Process] = []

    async def start(name: str = "am", cluster_port: int | None = None, peers: tuple[int, ...] = (),
                    max_alerts: int = 0) -> str:
        config = {
            "route": {"receiver": "remediator", "group_by": ["alertname", "namespace"], "group_wait": "200ms",
                      "group_interval": "1s", "repeat_interval": "2s"},
            "receivers": [{"name": "remediator", "webhook_configs": [{
                "url": f"{receiver.url}{server.PATH}?from={name}", "send_resolved": True, "max_alerts": max_alerts,
                "http_config": {"authorization": {"type": "Bearer", "credentials": TOKEN}}}]}],
        }
        directory = tmp_path / name
        directory.mkdir()
        (directory / "alertmanager.yml").write_text(yaml.safe_dump(config))
        port = free_port()
        cluster = [f"--cluster.listen-address=127.0.0.1:{cluster_port}", "--cluster.peer-timeout=100ms",
                   "--cluster.gossip-interval=50ms", "--cluster.pushpull-interval=1s",
                   *(f"--cluster.peer=127.0.0.1:{p}" for p in peers)] if cluster_port else [
            "--cluster.listen-address="]
        assert BINARY is not None
        log = (directory / "log").open("wb")
        process = await asyncio.create_subprocess_exec(
            BINARY, f"--config.file={directory / 'alertmanager.yml'}", f"--storage.path={directory}",
            f"--web.listen-address=127.0.0.1:{port}", *cluster, stdout=log, stderr=log)
        started.append(process)
        url = f"http://127.0.0.1:{port}"
        async with httpx.AsyncClient() as http:
            for _ in range(200):
                with contextlib.suppress(httpx.HTTPError):
                    if (await http.get(f"{url}/-/ready")).status_code == 200:
                        return url
                assert process.returncode is None, (directory / "log").read_text()
                await asyncio.sleep(0.05)
        raise AssertionError(f"Alertmanager did not become ready:\n{(directory / 'log').read_text()}")

    yield start
    for process in started:
        await processes.stop(process, grace=5)


async def fire(alertmanager_url: str, *alerts: dict[str, str], resolved: bool = False,
               starts_at: datetime.datetime | None = None) -> None:
    """POST /api/v2/alerts, as Prometheus does; `resolved` sends them with an end in the past."""
    now = datetime.datetime.now(datetime.UTC)
    start = starts_at or now - datetime.timedelta(minutes=1)
    body = [{"labels": labels, "annotations": {"description": "web keeps restarting"},
             "startsAt": start.isoformat(),
             **({"endsAt": (now - datetime.timedelta(seconds=1)).isoformat()} if resolved else {})}
            for labels in alerts]
    async with httpx.AsyncClient() as http:
        response = await http.post(f"{alertmanager_url}/api/v2/alerts", json=body)
        assert response.status_code == 200, response.text


async def test_an_alert_through_alertmanager_gives_one_incident_with_the_steps_and_its_resolve(
        receiver: Receiver, alertmanager: StartAlertmanager) -> None:
    url = await alertmanager()
    started = datetime.datetime.now(datetime.UTC) - datetime.timedelta(minutes=1)
    await fire(url, CRASH_LOOP, starts_at=started)
    await wait_for(receiver.incidents, timeout=20)
    [incident] = await receiver.incidents()
    assert [s["restart"]["target"] for s in incident["spec"]["steps"]] == [{"kind": "Deployment", "name": "web"}]
    assert incident["spec"]["severity"] == "P1"

    await fire(url, CRASH_LOOP, resolved=True, starts_at=started)

    async def alert_resolved() -> bool:
        [found] = await receiver.incidents()
        return any(c["type"] == "AlertResolved" and c["status"] == "True"
                   for c in (found.get("status") or {}).get("conditions", []))

    await wait_for(alert_resolved, timeout=20)
    assert set(receiver.answers) == {200}


async def test_several_alerts_in_one_group_and_repeat_resends_give_exactly_one_incident(
        receiver: Receiver, alertmanager: StartAlertmanager) -> None:
    url = await alertmanager()
    pods = [{**CRASH_LOOP, "pod": f"web-{i}"} for i in range(3)]
    await fire(url, *pods)
    await wait_for(receiver.incidents, timeout=20)
    await fire(url, *pods, {**CRASH_LOOP, "pod": "web-3"})  # a fourth pod joins the group

    async def resent() -> bool:
        return sum(receiver.posts.values()) >= 3  # the first notification, the group's change, a repeat

    await wait_for(resent, timeout=20)
    [incident] = await receiver.incidents()
    assert len(incident["status"]["alerts"]) == 4
    assert len({a["fingerprint"] for a in incident["status"]["alerts"]}) == 4
    assert set(receiver.answers) == {200}


async def test_two_alertmanagers_peered_in_ha_both_notifying_give_one_incident(
        receiver: Receiver, alertmanager: StartAlertmanager) -> None:
    first_cluster, second_cluster = free_port(), free_port()
    first = await alertmanager("am-1", first_cluster, (second_cluster,))
    second = await alertmanager("am-2", second_cluster, (first_cluster,))
    started = datetime.datetime.now(datetime.UTC) - datetime.timedelta(minutes=1)
    # Prometheus sends every alert to every Alertmanager of the pair.
    await asyncio.gather(fire(first, CRASH_LOOP, starts_at=started), fire(second, CRASH_LOOP, starts_at=started))

    async def both_notified() -> bool:
        return receiver.posts["am-1"] >= 1 and receiver.posts["am-2"] >= 1

    await wait_for(both_notified, timeout=30)
    [incident] = await receiver.incidents()
    assert len(incident["status"]["alerts"]) == 1
    assert set(receiver.answers) == {200}


async def test_the_alerts_a_truncated_notification_left_out_are_fetched_from_alertmanager(
        receiver: Receiver, alertmanager: StartAlertmanager) -> None:
    """max_alerts: 1 sends one alert of three (truncatedAlerts 2); --alertmanager-url fetches the other two."""
    url = await alertmanager(max_alerts=1)
    assert receiver.handler is not None
    receiver.handler.alertmanager_url = url
    await fire(url, *({**CRASH_LOOP, "pod": f"web-{i}"} for i in range(3)))

    async def all_three() -> bool:
        found = await receiver.incidents()
        return bool(found) and len((found[0].get("status") or {}).get("alerts", [])) == 3

    await wait_for(all_three, timeout=20)
    [incident] = await receiver.incidents()
    assert incident["status"]["truncatedAlerts"] == 2
