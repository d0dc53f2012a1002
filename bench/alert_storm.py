"""Alert storm: 10,000 alerts in 100 groups posted to the operator's receiver as fast as a local client can.

Each group is one crash-looping Deployment (`web-NNN`) with 100 alerts (one per pod); Alertmanager sends
the whole group in every notification, so each group's body carries its 100 alerts. Every body is sent
twice (the two peers of an HA pair) and once more later (a `repeat_interval` resend): 300 POSTs, 30,000
alert deliveries. Measured: POST latency p50/p99 and throughput (unique alerts and deliveries per second),
then the end state: exactly 100 Incidents, each holding all 100 of its group's alerts (`status.alerts`
plus the folded count).

The operator runs as its own process (`remediator run --receiver-address ... --receiver-no-auth`) against
the sandbox in this process; 100 Deployments exist so the Incidents' restarts succeed.
"""

from __future__ import annotations

import asyncio
import contextlib
import pathlib
import sys
import time
from typing import Any

import aiohttp

from bench import sandboxes
from bench.incidents import cpu_seconds, log_tail, percentile
from bench.sandboxes import BENCH_AGENT
from remediator import processes
from remediator.sandbox import runner

GROUPS = 100
ALERTS_PER_GROUP = 100
CONCURRENCY = 16
INCIDENTS = "/apis/remediator.dev/v1alpha1/namespaces/default/incidents"
RUNBOOKS = "/apis/remediator.dev/v1alpha1/namespaces/default/runbooks"
DEPLOYMENTS = "/apis/apps/v1/namespaces/default/deployments"
STARTS_AT = "2026-11-29T10:00:00Z"


def runbook() -> dict[str, Any]:
    return {"apiVersion": "remediator.dev/v1alpha1", "kind": "Runbook",
            "metadata": {"name": "crash-loop", "namespace": "default"},
            "spec": {"triggers": [{"alertname": "KubePodCrashLooping"}],
                     "incident": {"summary": "{{ labels.deployment }} is crash-looping",
                                  "steps": [{"name": "restart", "restart": {
                                      "target": {"kind": "Deployment", "name": "{{ labels.deployment }}"}}}]}}}


def deployment(group: int) -> dict[str, Any]:
    name = f"web-{group:03d}"
    return {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": name},
            "spec": {"replicas": 1, "selector": {"matchLabels": {"app": name}},
                     "template": {"metadata": {"labels": {"app": name}},
                                  "spec": {"containers": [{"name": "web", "image": "web:1.0"}]}}}}


def notification(group: int, alerts: int) -> dict[str, Any]:
    deployment_name = f"web-{group:03d}"
    return {"version": "4", "groupKey": f'{{}}:{{deployment="{deployment_name}"}}', "truncatedAlerts": 0,
            "status": "firing", "receiver": "remediator", "groupLabels": {"deployment": deployment_name},
            "commonLabels": {"alertname": "KubePodCrashLooping", "namespace": "default"},
            "commonAnnotations": {}, "externalURL": "http://alertmanager:9093",
            "alerts": [{"status": "firing",
                        "labels": {"alertname": "KubePodCrashLooping", "namespace": "default",
                                   "deployment": deployment_name, "pod": f"{deployment_name}-{index:03d}"},
                        "annotations": {"description": "restarting"}, "startsAt": STARTS_AT,
                        "endsAt": "0001-01-01T00:00:00Z", "generatorURL": "http://prometheus/graph",
                        "fingerprint": f"{group:03d}{index:03d}"} for index in range(alerts)]}


async def _ready(url: str, process: asyncio.subprocess.Process, log: pathlib.Path) -> None:
    async with aiohttp.ClientSession() as session:
        for _ in range(1200):
            if process.returncode is not None:
                raise RuntimeError(f"the operator exited:\n{log_tail(log)}")
            with contextlib.suppress(aiohttp.ClientError):
                async with session.post(url, json=notification(999, 0)) as response:
                    if response.status == 200:
                        return
            await asyncio.sleep(0.05)
    raise RuntimeError(f"the receiver never answered:\n{log_tail(log)}")



async def main(groups: int = GROUPS, alerts: int = ALERTS_PER_GROUP) -> dict[str, Any]:
    objects = [(RUNBOOKS, runbook()), *((DEPLOYMENTS, deployment(g)) for g in range(groups))]
    async with sandboxes.prepared(objects) as sandbox:
        port = runner.free_port()
        log = sandbox.workdir / "operator.log"
        process = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "remediator", "run", "--kubeconfig", str(sandbox.kubeconfig), "--namespace",
            "default", "--receiver-address", f"127.0.0.1:{port}", "--receiver-no-auth",
            stdout=log.open("wb"), stderr=asyncio.subprocess.STDOUT)
        try:
            url = f"http://127.0.0.1:{port}/alertmanager"
            await _ready(url, process, log)
            cpu_before, own_before = cpu_seconds(process.pid), time.process_time()
            results = await _storm(url, groups, alerts)
            results["operator CPU s"] = cpu_seconds(process.pid) - cpu_before
            # This process: the sandbox API server, and the local client posting the storm.
            results["sandbox and client CPU s"] = time.process_time() - own_before
            async with aiohttp.ClientSession(sandbox.url, headers={"User-Agent": BENCH_AGENT}) as api:
                results.update(await _end_state(api, groups))
            return {**results, "groups": groups, "alerts per group": alerts}
        finally:
            await processes.stop(process)


async def _storm(url: str, groups: int, alerts: int) -> dict[str, Any]:
    bodies = [notification(g, alerts) for g in range(groups)]
    # Both HA peers send every group, then the resend comes: 3 deliveries of each body.
    queue: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
    for round_bodies in (bodies, bodies, bodies):
        for body in round_bodies:
            queue.put_nowait(body)
    latencies: list[float] = []
    statuses: dict[int, int] = {}

    async def sender(session: aiohttp.ClientSession) -> None:
        while not queue.empty():
            body = queue.get_nowait()
            sent = time.perf_counter()
            async with session.post(url, json=body) as response:
                await response.read()
                statuses[response.status] = statuses.get(response.status, 0) + 1
            latencies.append((time.perf_counter() - sent) * 1000)

    started = time.perf_counter()
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=CONCURRENCY)) as session:
        await asyncio.gather(*(sender(session) for _ in range(CONCURRENCY)))
    elapsed = time.perf_counter() - started
    return {"posts": len(latencies), "statuses": statuses, "seconds": elapsed,
            "unique alerts/s": groups * alerts / elapsed, "deliveries/s": 3 * groups * alerts / elapsed,
            "p50 ms": percentile(latencies, 0.5), "p99 ms": percentile(latencies, 0.99)}


async def _end_state(api: aiohttp.ClientSession, groups: int) -> dict[str, Any]:
    async with api.get(INCIDENTS) as response:
        items = (await response.json())["items"]
    held = sorted(len((i.get("status") or {}).get("alerts") or []) + int((i.get("status") or {}).get("alertsFolded")
                                                                          or 0) for i in items)
    return {"incidents": len(items), "alerts held per incident (min, max)": (held[0], held[-1]) if held else (0, 0)}


def report(results: dict[str, Any]) -> str:
    groups, alerts = results["groups"], results["alerts per group"]
    return (f"alert storm, {groups * alerts} alerts in {groups} groups, each body sent 3 times "
            f"({results['posts']} POSTs, answers {results['statuses']}): {results['seconds']:.1f} s, "
            f"{results['unique alerts/s']:.0f} unique alerts/s ({results['deliveries/s']:.0f} deliveries/s), "
            f"POST p50 {results['p50 ms']:.1f} ms p99 {results['p99 ms']:.1f} ms; operator CPU "
            f"{results['operator CPU s']:.1f} s, sandbox and client CPU {results['sandbox and client CPU s']:.1f} s; "
            f"{results['incidents']} Incidents holding "
            f"{results['alerts held per incident (min, max)']} alerts each (min, max)")


if __name__ == "__main__":
    sandboxes.command_line(__doc__ or "", main, report,
                           {"groups": (int, GROUPS, None), "alerts": (int, ALERTS_PER_GROUP, "alerts per group")})
