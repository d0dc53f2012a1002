"""Sandbox API latency: GET, PATCH, watch delivery and LIST with 1,000 Incidents stored and 10 open watches.

Target (issue "Foundation"): GET and PATCH p50 ≤ 2 ms, watch delivery p50 ≤ 5 ms.
The sandbox runs as its own process (`remediator sandbox`), as it does for kubectl and the demo,
so the client's work is not counted against the server or vice versa.
"""

from __future__ import annotations

import asyncio
import json
import pathlib
import sys
import tempfile
import time
from typing import Any

import aiohttp

REPO = pathlib.Path(__file__).resolve().parents[1]
OBJECTS = 1000
WATCHES = 10
SAMPLES = 500
LIST_SAMPLES = 50
INCIDENTS = "/apis/remediator.dev/v1alpha1/namespaces/default/incidents"


def incident(name: str) -> dict[str, Any]:
    return {"apiVersion": "remediator.dev/v1alpha1", "kind": "Incident", "metadata": {"name": name},
            "spec": {"severity": "P2", "summary": f"incident {name}",
                     "steps": [{"name": "scale-out",
                                "scale": {"target": {"kind": "Deployment", "name": "web"}, "by": 1}},
                               {"name": "verify", "httpCheck": {"url": "http://web/healthz"}}]}}


def percentile(samples: list[float], fraction: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))]


async def start_sandbox(workdir: pathlib.Path) -> tuple[asyncio.subprocess.Process, str]:
    kubeconfig = workdir / "kubeconfig"
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "remediator", "sandbox", "--kubeconfig", str(kubeconfig), "--crds", str(REPO / "crds"),
        stdout=asyncio.subprocess.PIPE)
    assert process.stdout is not None
    line = (await asyncio.wait_for(process.stdout.readline(), 30)).decode()
    url = line.split(" on ", 1)[1].split(";", 1)[0]
    return process, url


async def watch(session: aiohttp.ClientSession, url: str, since: str, arrivals: dict[str, float],
                ready: asyncio.Event) -> None:
    async with session.get(url + INCIDENTS, params={"watch": "true", "resourceVersion": since}) as response:
        ready.set()
        async for line in response.content:
            event = json.loads(line)
            marker = event["object"]["metadata"].get("labels", {}).get("bench")
            if marker and marker not in arrivals:
                arrivals[marker] = time.perf_counter()


async def measure(url: str) -> dict[str, dict[str, float]]:
    async with aiohttp.ClientSession(url) as session:
        for i in range(OBJECTS):
            async with session.post(INCIDENTS, json=incident(f"inc-{i:04d}")) as response:
                assert response.status == 201, await response.text()
        async with session.get(INCIDENTS, params={"limit": "1"}) as response:
            since = (await response.json())["metadata"]["resourceVersion"]
        arrivals: dict[str, float] = {}
        watchers = []
        for _ in range(WATCHES):
            ready = asyncio.Event()
            watchers.append(asyncio.create_task(watch(session, url, since, arrivals, ready)))
            await ready.wait()

        gets, patches, deliveries = [], [], []
        for i in range(SAMPLES):
            name = f"inc-{(i * 7) % OBJECTS:04d}"
            started = time.perf_counter()
            async with session.get(f"{INCIDENTS}/{name}") as response:
                await response.read()
            gets.append(time.perf_counter() - started)

            marker = f"m{i}"
            started = time.perf_counter()
            async with session.patch(f"{INCIDENTS}/{name}", json={"metadata": {"labels": {"bench": marker}}},
                                     headers={"Content-Type": "application/merge-patch+json"}) as response:
                await response.read()
                assert response.status == 200
            patches.append(time.perf_counter() - started)
            for _ in range(1000):
                if marker in arrivals:
                    break
                await asyncio.sleep(0.0005)
            deliveries.append(arrivals[marker] - started)
        for task in watchers:
            task.cancel()
        lists = []
        for _ in range(LIST_SAMPLES):
            started = time.perf_counter()
            async with session.get(INCIDENTS) as response:
                assert len((await response.json())["items"]) == OBJECTS
            lists.append(time.perf_counter() - started)
    return {name: {"p50_ms": percentile(samples, 0.5) * 1000, "p95_ms": percentile(samples, 0.95) * 1000}
            for name, samples in (("GET", gets), ("PATCH", patches), ("watch delivery", deliveries),
                                  (f"LIST of {OBJECTS}", lists))}


async def main() -> dict[str, dict[str, float]]:
    with tempfile.TemporaryDirectory() as workdir:
        process, url = await start_sandbox(pathlib.Path(workdir))
        try:
            return await measure(url)
        finally:
            process.terminate()
            await process.wait()


def report(results: dict[str, dict[str, float]]) -> str:
    lines = [f"Sandbox API, {OBJECTS} Incidents stored, {WATCHES} open watches, {SAMPLES} samples each "
             f"({LIST_SAMPLES} of LIST):"]
    for name, figures in results.items():
        lines.append(f"  {name:<15} p50 {figures['p50_ms']:6.2f} ms   p95 {figures['p95_ms']:6.2f} ms")
    lines.append("  (target: GET/PATCH p50 ≤ 2 ms, watch delivery p50 ≤ 5 ms)")
    return "\n".join(lines)


if __name__ == "__main__":
    print(report(asyncio.run(main())))
