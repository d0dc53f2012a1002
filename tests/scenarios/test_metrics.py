"""What Prometheus scrapes from a running operator as an alert's Incident and a hand-made one go to
Resolved, and the probes a Deployment asks: every name the chart's dashboard and rules read is exported."""

from __future__ import annotations

import asyncio
import contextlib
import json
import pathlib
import re
from collections.abc import AsyncIterator, Iterable
from typing import Any

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families
from tests.chart.rendering import CHART, render, values
from tests.local_servers import free_port

from remediator import manifests, processes
from remediator.sandbox import controllers, runner

from .support import deploy_three_revisions, wait_for
from .test_alert_to_resolved import ALERT, TOKEN, crash_loop_runbook, health_url, notification  # noqa: F401
from .test_bad_deploy import approve

API = "remediator.dev/v1alpha1"
Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]
METRIC_NAME = re.compile(r"\bremediator_[a-z0-9_]+\b")


async def scrape(url: str) -> Samples:
    """Every sample of GET /metrics, by name (with its _total, _bucket, _sum, _count suffix) and labels."""
    async with httpx.AsyncClient(timeout=10) as http:
        response = await http.get(url)
    response.raise_for_status()
    return {(sample.name, frozenset(sample.labels.items())): sample.value
            for family in text_string_to_metric_families(response.text) for sample in family.samples}


def value(samples: Samples, name: str, **labels: str) -> float:
    return samples.get((name, frozenset(labels.items())), 0.0)


def by_label(samples: Samples, name: str, label: str) -> dict[str, float]:
    return {dict(labels)[label]: found for (sample, labels), found in samples.items() if sample == name}


def names_read(expressions: Iterable[str]) -> set[str]:
    """The remediator_* series names PromQL expressions read (kube-state-metrics' are not ours)."""
    return {name for expression in expressions for name in METRIC_NAME.findall(expression)}


def missing(read: set[str], samples: Samples) -> set[str]:
    """The names read that the scrape does not export."""
    return read - {name for name, _ in samples}


def chart_expressions() -> list[str]:
    """Every PromQL expression of the dashboard's panels and of the PrometheusRule's alerts."""
    dashboard = json.loads((CHART / "dashboards" / "remediator.json").read_text())
    panels = [target["expr"] for panel in dashboard["panels"] for target in panel["targets"]]
    (rule,) = render("prometheusrule.yaml", "remediator", "ops", values(prometheusRule={"enabled": True, "labels": {}}))
    alerts = [alert["expr"] for group in rule["spec"]["groups"] for alert in group["rules"]]
    assert panels and alerts
    return panels + alerts


async def incidents(sandbox: runner.RunningSandbox) -> list[dict[str, Any]]:
    async with httpx.AsyncClient(base_url=sandbox.url) as http:
        items: list[dict[str, Any]] = (await http.get(f"/apis/{API}/namespaces/default/incidents")).json()["items"]
        return items


async def phase(client: manifests.Client, name: str) -> str:
    found = await client.get(API, "Incident", "default", name) or {}
    return str((found.get("status") or {}).get("phase") or "")


async def test_the_scrape_follows_incidents_to_resolved_and_exports_every_name_the_dashboard_and_rules_read(
        sandbox: runner.RunningSandbox, client: manifests.Client, start_operator: Any, health_url: str,  # noqa: F811
        tmp_path: pathlib.Path) -> None:
    await deploy_three_revisions(client)
    await client.apply(crash_loop_runbook(health_url))
    token = tmp_path / "token"
    token.write_text(TOKEN)
    receiver, metrics = free_port(), free_port()
    await start_operator("--receiver-address", f"127.0.0.1:{receiver}", "--receiver-token-file", str(token),
                         "--metrics-address", f"127.0.0.1:{metrics}", "--approval-severities", "none",
                         "--rate-limit", "100/1h")
    url = f"http://127.0.0.1:{metrics}/metrics"
    before = await scrape(url)
    assert value(before, "remediator_leader") == 1
    assert value(before, "remediator_rate_limit_tokens") == 100

    # A hand-made Incident whose one step waits for a person: open, AwaitingApproval.
    await client.apply({"apiVersion": API, "kind": "Incident", "metadata": {"name": "by-hand", "namespace": "default"},
                        "spec": {"severity": "P3", "summary": "check the shop by hand", "steps": [
                            {"name": "check", "requiresApproval": True, "httpCheck": {"url": health_url}}]}})

    async def awaiting() -> bool:
        return by_label(await scrape(url), "remediator_incidents_open", "phase").get("AwaitingApproval") == 1
    await wait_for(awaiting)

    async with httpx.AsyncClient(timeout=30, headers={"Authorization": f"Bearer {TOKEN}"}) as http:
        for _ in range(2):  # Alertmanager resends: the second joins the first's Incident
            answer = await http.post(f"http://127.0.0.1:{receiver}/alertmanager", json=notification(ALERT))
            assert answer.status_code == 200, answer.text

    async def alert_incident_resolved() -> bool:
        return any(i["metadata"]["name"] != "by-hand" and (i.get("status") or {}).get("phase") == "Resolved"
                   for i in await incidents(sandbox))
    await wait_for(alert_incident_resolved, timeout=60)
    await approve(sandbox, "by-hand", "check")
    await wait_for(lambda: phase_is_resolved(client, "by-hand"), timeout=30)

    async def all_closed() -> Samples | None:
        samples = await scrape(url)
        return samples if set(by_label(samples, "remediator_incidents_open", "phase").values()) == {0} else None
    after = await wait_for(all_closed)
    assert isinstance(after, dict)
    assert value(after, "remediator_alerts_received_total") == 2
    assert value(after, "remediator_alerts_deduplicated_total") == 1
    assert value(after, "remediator_incidents_created_total", runbook="crash-looping", severity="P1") == 1
    assert value(after, "remediator_incidents_observed_total", runbook="crash-looping", severity="P1") == 1
    assert value(after, "remediator_incidents_observed_total", runbook="", severity="P3") == 1
    steps = {(kind, result): value(after, "remediator_step_duration_seconds_count", kind=kind, result=result)
             for kind, result in (("rollback", "Succeeded"), ("waitForRollout", "Succeeded"),
                                  ("httpCheck", "Succeeded"))}
    assert steps == {("rollback", "Succeeded"): 1, ("waitForRollout", "Succeeded"): 1, ("httpCheck", "Succeeded"): 2}
    assert value(after, "remediator_time_to_first_action_seconds_count") == 2
    mitigated = [i for i in await incidents(sandbox) if (i.get("status") or {}).get("mitigatedAt")]
    assert mitigated and value(after, "remediator_time_to_mitigate_seconds_count") == len(mitigated)
    assert value(after, "remediator_rate_limit_tokens") < 100, "the rollback took one of the rate limit's actions"
    assert value(after, "remediator_rate_limit_queued") == 0
    assert value(after, "remediator_receiver_request_duration_seconds_count", code="200") == 2
    assert value(after, "remediator_watch_up") == 1

    read = names_read(chart_expressions())
    assert missing(read, after) == set(), "the dashboard or the rules read names the operator does not export"
    # The check would see a misspelled name, or a counter read without its _total.
    assert missing({"remediator_alerts_recieved_total", "remediator_alerts_received"}, after) == {
        "remediator_alerts_recieved_total", "remediator_alerts_received"}


async def phase_is_resolved(client: manifests.Client, name: str) -> bool:
    return await phase(client, name) == "Resolved"


class StoppableSandbox(runner.RunningSandbox):
    stop: Any


@pytest.fixture()
async def sandbox(simulations: controllers.Simulations) -> AsyncIterator[runner.RunningSandbox]:
    """The tests' sandbox, which a test may stop early (`sandbox.stop()`): the API server goes away."""
    from tests.conftest import CRDS, IMAGES, TIME_SCALE

    async with contextlib.AsyncExitStack() as stack:
        running = await stack.enter_async_context(runner.running(
            crd_paths=CRDS, simulations=simulations, time_scale=TIME_SCALE, image_registry=IMAGES))
        running.stop = stack.aclose  # type: ignore[attr-defined]
        yield running


async def probe(url: str) -> int:
    async with httpx.AsyncClient(timeout=10) as http:
        return (await http.get(url)).status_code


async def test_readiness_and_the_leaders_liveness_fail_when_the_api_server_goes_away(
        sandbox: runner.RunningSandbox, start_operator: Any) -> None:
    metrics = free_port()
    await start_operator("--metrics-address", f"127.0.0.1:{metrics}", "--watch-down-grace", "1s")
    base = f"http://127.0.0.1:{metrics}"

    async def watching() -> bool:
        return value(await scrape(f"{base}/metrics"), "remediator_watch_up") == 1
    await wait_for(watching)
    assert await probe(f"{base}/readyz") == 200
    assert await probe(f"{base}/healthz") == 200

    await sandbox.stop()  # type: ignore[attr-defined]

    async def not_ready() -> bool:
        return await probe(f"{base}/readyz") == 503
    await wait_for(not_ready, timeout=10)

    async def not_alive() -> bool:
        return await probe(f"{base}/healthz") == 500
    await wait_for(not_alive, timeout=10)
    async with httpx.AsyncClient(timeout=10) as http:
        answer = (await http.get(f"{base}/healthz")).json()
    assert answer["alive"] is False and "watch of the Kubernetes API has been down" in answer["reason"]
    assert value(await scrape(f"{base}/metrics"), "remediator_watch_up") == 0


async def leader_label(client: manifests.Client, pod: str) -> str:
    found = await client.get("v1", "Pod", "default", pod) or {}
    return str((found.get("metadata", {}).get("labels") or {}).get("remediator.dev/leader", ""))


async def test_the_leader_and_its_follower_say_who_leads_in_their_metrics_and_their_pods_labels(
        client: manifests.Client, start_operator: Any) -> None:
    ports: dict[str, int] = {}
    # The production timings: on a loaded machine a 2 s renew deadline can end a leader mid-test.
    elected = ("--leader-elect", "--leader-elect-namespace", "default")

    async def start(pod: str) -> Any:
        await client.apply({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": pod, "namespace": "default"},
                            "spec": {"containers": [{"name": "operator", "image": "shop:1.0"}]}})
        ports[pod] = free_port()  # picked just before it is bound: no other process can have taken it meanwhile
        return await start_operator(*elected, "--metrics-address", f"127.0.0.1:{ports[pod]}", env={"POD_NAME": pod})
    first = await start("replica-a")
    await wait_for(lambda: asyncio.sleep(0, "leading: took the lease" in first.log))
    await start("replica-b")

    async def labelled() -> bool:
        return {pod: await leader_label(client, pod) for pod in ports} == {"replica-a": "true", "replica-b": "false"}
    await wait_for(labelled)
    leading = {pod: value(await scrape(f"http://127.0.0.1:{port}/metrics"), "remediator_leader")
               for pod, port in ports.items()}
    assert leading == {"replica-a": 1, "replica-b": 0}
    # Readiness is not leadership: the follower is ready (it serves the receiver) and alive while it waits.
    assert await probe(f"http://127.0.0.1:{ports['replica-b']}/readyz") == 200
    assert await probe(f"http://127.0.0.1:{ports['replica-b']}/healthz") == 200

    await processes.stop(first.process)  # a rolling update: the leader releases the Lease, the follower takes it

    async def follower_leads() -> bool:
        return (await leader_label(client, "replica-b") == "true"
                and value(await scrape(f"http://127.0.0.1:{ports['replica-b']}/metrics"), "remediator_leader") == 1)
    await wait_for(follower_leads, timeout=15)

