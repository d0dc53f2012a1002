"""Alert to first action: alerts at 20/s through the operator's receiver, each opening a one-step Incident.

Target (issue "Alertmanager", benchmarks): p50 <= 50 ms from the POST to the first write on the target.
Each alert names its own Deployment (`web-NNN`), so each opens its own Incident, whose Runbook step
restarts that Deployment; the first write on the target is the lock claim (a PATCH of the Deployment),
timestamped where the sandbox receives it. The clock starts when the POST is sent.
"""

from __future__ import annotations

import asyncio
import pathlib
import sys
import time
from collections.abc import Callable
from typing import Any

import aiohttp

from bench import sandboxes
from bench.alert_storm import RUNBOOKS, notification, runbook
from bench.incidents import (
    DEPLOYMENTS,
    WRITES,
    Recorder,
    cpu_seconds,
    deployment,
    log_tail,
    percentile,
)
from remediator import processes
from remediator.sandbox import runner, server, store

COUNT = 200
RATE = 20.0


async def main(count: int = COUNT, rate: float = RATE) -> dict[str, Any]:
    sandbox = server.Sandbox(store.ObjectStore())
    recorder = Recorder(sandbox)
    # The last Deployment is the warm-up alert's.
    objects = [(RUNBOOKS, runbook()), *((DEPLOYMENTS, deployment(index)) for index in range(count + 1))]
    async with sandboxes.prepared(objects, sandbox, recorder) as running:
        port = runner.free_port()
        log = running.workdir / "operator.log"
        process = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "remediator", "run", "--kubeconfig", str(running.kubeconfig), "--namespace",
            "default", "--cooldown", "0s", "--receiver-address", f"127.0.0.1:{port}", "--receiver-no-auth",
            stdout=log.open("wb"), stderr=asyncio.subprocess.STDOUT)
        try:
            results = await _measure(f"http://127.0.0.1:{port}/alertmanager", recorder, count, rate, process, log)
            return {**results, "rate": rate}
        finally:
            await processes.stop(process)


async def _post(session: aiohttp.ClientSession, url: str, index: int, sent: dict[int, float]) -> None:
    sent[index] = time.perf_counter()
    async with session.post(url, json=notification(index, 1)) as response:
        assert response.status == 200, await response.text()



async def _until(done: Callable[[], bool], timeout: float = 60.0) -> None:
    """Poll `done` every 50 ms for at most `timeout` seconds (a slow operator shows as unacted alerts)."""
    for _ in range(int(timeout / 0.05)):
        if done():
            return
        await asyncio.sleep(0.05)


def _first_writes(recorder: Recorder) -> dict[int, float]:
    first: dict[int, float] = {}
    for request in recorder.requests:
        if request.incident and request.method in WRITES and request.category.startswith("deployment"):
            index = int(request.incident.removeprefix("inc-"))
            first.setdefault(index, request.arrived)
    return first


async def _measure(url: str, recorder: Recorder, count: int, rate: float, process: asyncio.subprocess.Process,
                   log: pathlib.Path) -> dict[str, Any]:
    sent: dict[int, float] = {}
    async with aiohttp.ClientSession() as session:
        for _ in range(1200):  # the receiver answers once the operator is up; the warm-up alert is the probe
            if process.returncode is not None:
                raise RuntimeError(f"the operator exited:\n{log_tail(log)}")
            try:
                await _post(session, url, count, sent)
                break
            except aiohttp.ClientError:
                await asyncio.sleep(0.05)
        await _until(lambda: count in _first_writes(recorder))
        await asyncio.sleep(0.5)
        cpu_before = cpu_seconds(process.pid)
        started = time.perf_counter()
        posts = []
        for index in range(count):
            await asyncio.sleep(max(0.0, started + index / rate - time.perf_counter()))
            posts.append(asyncio.create_task(_post(session, url, index, sent)))
        await asyncio.gather(*posts)
        await _until(lambda: len(_first_writes(recorder)) > count)
    first = _first_writes(recorder)
    latencies = [(first[i] - sent[i]) * 1000 for i in range(count) if i in first]
    return {"alerts": count, "acted": len(latencies), "p50 ms": percentile(latencies, 0.5),
            "p95 ms": percentile(latencies, 0.95), "max ms": max(latencies, default=0.0),
            "operator CPU s": cpu_seconds(process.pid) - cpu_before}


def report(results: dict[str, Any]) -> str:
    return (f"alert to first action, {results['alerts']} alerts at {results['rate']:g}/s, one one-step Incident each: "
            f"first write on the target p50 {results['p50 ms']:.1f} ms, p95 {results['p95 ms']:.1f} ms, "
            f"max {results['max ms']:.1f} ms ({results['acted']} acted on); operator CPU "
            f"{results['operator CPU s']:.1f} s (target: p50 <= 50 ms)")


if __name__ == "__main__":
    sandboxes.command_line(__doc__ or "", main, report,
                           {"count": (int, COUNT, None), "rate": (float, RATE, "alerts per second")})
