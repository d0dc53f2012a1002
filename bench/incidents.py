"""Incident engine end to end: 200 Incidents, each scaling its own Deployment, handled by the real operator.

Targets (issue "Incident engine", section 6): first workload action p50 < 100 ms after the
Incident is created, at most 4 API writes per step.

The operator runs as its own process (`remediator run --cooldown 0s`). The sandbox API server
runs in this process, behind a thin handler that timestamps every request on arrival
(`time.perf_counter`, the clock the client side uses too) and attributes it to an incident, so
every timing is taken where the API server sees it, not where the operator logs it.

Each incident `inc-NNN` has one step (`--steps N`: N steps), `scale` by 1 on its own Deployment
`web-NNN` (no waiting steps, no approval: scaling out is not destructive, cooldown 0s). They are created at a steady
rate (20/s by default, 10 s for 200) because that is what an alert source does and it measures
latency rather than the depth of a queue; `--rate 0` creates them all at once (a burst) instead.

Measured per incident:
- first action: the POST returning → the first write to `.../deployments/web-NNN` or its
  `/scale` arriving at the server (the lock claim, an annotation patch, comes before the scale);
- scale: the POST returning → the `/scale` write arriving;
- resolved: the POST returning → the response to the write that made `status.phase` Resolved;
- requests: every request the operator made that names the incident or its Deployment (events
  by their involvedObject), plus the operator's share of unattributed ones (lists, watches).
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import contextlib
import dataclasses
import json
import os
import pathlib
import re
import sys
import time
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import aiohttp.web

from bench import sandboxes
from bench.sandboxes import BENCH_AGENT
from remediator import processes
from remediator.sandbox import runner, server, store

COUNT = 200
RATE = 20.0
SETTLE_SECONDS = 3.0
# The benchmark gives up waiting when no Incident has been resolved for this long: a stalled operator, not a slow
# one (a fixed deadline cut the 5,000 burst short on a loaded machine while Incidents were still being resolved).
STALL_SECONDS = 60.0
INCIDENTS = "/apis/remediator.dev/v1alpha1/namespaces/default/incidents"
DEPLOYMENTS = "/apis/apps/v1/namespaces/default/deployments"
WRITES = frozenset({"POST", "PUT", "PATCH", "DELETE"})

_INCIDENT_PATH = re.compile(r"^/apis/remediator\.dev/v1alpha1/namespaces/[^/]+/incidents/(inc-\d+)(/status)?$")
_DEPLOYMENT_PATH = re.compile(r"^/apis/apps/v1/namespaces/[^/]+/deployments/web-(\d+)(/scale)?$")
_EVENTS_PATH = re.compile(r"^/api/v1/namespaces/[^/]+/events")


@dataclasses.dataclass
class Request:
    arrived: float
    method: str
    path: str
    category: str
    incident: str | None  # "inc-NNN" when the request concerns one incident or its Deployment
    watch: bool
    status: int = 0


class Recorder:
    """Wraps Sandbox.handle: timestamps each request on arrival, classifies it, notes resolutions."""

    def __init__(self, sandbox: server.Sandbox) -> None:
        self.sandbox = sandbox
        self.requests: list[Request] = []
        self.resolved: dict[str, float] = {}
        self._incident_type: Any = None
        self._progress = asyncio.Event()

    async def wait_resolved(self, count: int, stall: float = STALL_SECONDS) -> None:
        """Until `count` Incidents are resolved, or none has been for `stall` seconds."""
        progress_at, resolved = time.perf_counter(), len(self.resolved)
        while len(self.resolved) < count and time.perf_counter() - progress_at < stall:
            self._progress.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._progress.wait(), 0.5)
            if len(self.resolved) != resolved:
                progress_at, resolved = time.perf_counter(), len(self.resolved)

    async def __call__(self, request: aiohttp.web.BaseRequest) -> aiohttp.web.StreamResponse:
        arrived = time.perf_counter()
        if request.headers.get("User-Agent") == BENCH_AGENT:
            return await self.sandbox.handle(request)
        entry = Request(arrived, request.method, request.path, "", None,
                        request.query.get("watch") in ("true", "1"))
        entry.category, entry.incident = await _classify(request)
        self.requests.append(entry)
        response = await self.sandbox.handle(request)
        entry.status = response.status
        if entry.incident and entry.method in WRITES and entry.category.startswith("incident") \
                and entry.incident not in self.resolved and self._phase(entry.incident) == "Resolved":
            self.resolved[entry.incident] = time.perf_counter()
            self._progress.set()
        return response

    def _phase(self, name: str) -> str | None:
        object_store: store.ObjectStore = self.sandbox.store
        if self._incident_type is None:
            self._incident_type = object_store.resource_type("remediator.dev", "v1alpha1", "incidents")
        obj = object_store.find(self._incident_type, "default", name)
        return ((obj or {}).get("status") or {}).get("phase")


async def _classify(request: aiohttp.web.BaseRequest) -> tuple[str, str | None]:
    path, method = request.path, request.method
    if match := _INCIDENT_PATH.match(path):
        if match.group(2):
            return "incident status", match.group(1)
        return "incident", match.group(1)
    if match := _DEPLOYMENT_PATH.match(path):
        incident = f"inc-{match.group(1)}"
        if match.group(2):
            return "deployment /scale", incident
        return "deployment (claim / release annotations)", incident
    if _EVENTS_PATH.match(path):
        if method == "POST":
            with contextlib.suppress(ValueError, AttributeError):
                body = json.loads(await request.read())  # aiohttp keeps the body for the sandbox to read again
                name = (body.get("involvedObject") or {}).get("name", "")
                return "event", name if name.startswith("inc-") else None
        return "event", None
    return "other", None


def incident(index: int, steps: int = 1) -> dict[str, Any]:
    """`steps` scale steps, each `by: 1` on the incident's own Deployment (no waiting, no approval)."""
    target = {"kind": "Deployment", "name": f"web-{index:03d}"}
    return {"apiVersion": "remediator.dev/v1alpha1", "kind": "Incident",
            "metadata": {"name": f"inc-{index:03d}", "namespace": "default"},
            "spec": {"severity": "P2", "summary": f"web-{index:03d} saturated",
                     "steps": [{"name": f"scale-out-{n + 1}", "scale": {"target": target, "by": 1}}
                               for n in range(steps)]}}


def deployment(index: int) -> dict[str, Any]:
    labels = {"app": f"web-{index:03d}"}
    return {"apiVersion": "apps/v1", "kind": "Deployment",
            "metadata": {"name": f"web-{index:03d}", "namespace": "default", "labels": labels},
            "spec": {"replicas": 1, "selector": {"matchLabels": labels},
                     "template": {"metadata": {"labels": labels},
                                  "spec": {"containers": [{"name": "web", "image": "nginx:1.27"}]}}}}


def percentile(samples: list[float], fraction: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))]


def _free_port() -> int:
    return runner.free_port()


# The interpreter the operator runs in: this one, or an image-like environment's (`bench.memory
# --operator-python`), which has the operator's dependencies only, not the `sandbox` extra.
OPERATOR_PYTHON = sys.executable
# More `remediator run` flags for the operator (--operator-arg), e.g. --max-concurrent-reconciles 16.
OPERATOR_ARGS: list[str] = []


async def start_operator(kubeconfig: pathlib.Path, log: pathlib.Path
                         ) -> tuple[asyncio.subprocess.Process, int]:
    port = _free_port()
    process = await asyncio.create_subprocess_exec(
        OPERATOR_PYTHON, "-m", "remediator", "run", "--kubeconfig", str(kubeconfig), "--namespace", "default",
        "--cooldown", "0s", "--liveness", f"http://127.0.0.1:{port}/healthz", *OPERATOR_ARGS,
        stdout=log.open("wb"), stderr=asyncio.subprocess.STDOUT)
    return process, port


def add_operator_args(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--operator-arg", action="append", default=[], metavar="ARG",
                        help="one more `remediator run` argument (repeatable), e.g. "
                             "--operator-arg=--max-concurrent-reconciles=16")


def log_tail(log: pathlib.Path) -> str:
    """The end of the operator's log, for the error a benchmark raises when the operator fails."""
    return _read(log)[-4000:]


def _read(log: pathlib.Path) -> str:
    return log.read_text(errors="replace")


async def wait_until_ready(process: asyncio.subprocess.Process, port: int, recorder: Recorder,
                           log: pathlib.Path) -> None:
    """Liveness answers, and Kopf has listed incidents and opened its watch on them."""
    async with aiohttp.ClientSession() as session:
        for _ in range(600):
            if process.returncode is not None:
                raise RuntimeError(f"the operator exited early:\n{_read(log)}")
            with contextlib.suppress(aiohttp.ClientError):
                async with session.get(f"http://127.0.0.1:{port}/healthz") as response:
                    watching = any(r.watch and r.path == INCIDENTS for r in recorder.requests)
                    if response.status == 200 and watching:
                        return
            await asyncio.sleep(0.05)
    raise RuntimeError(f"the operator did not become ready:\n{_read(log)}")


async def warm_up(url: str, recorder: Recorder, index: int) -> dict[str, float]:
    """One incident before the window: the operator imports its kubernetes client API modules lazily,
    on the first incident. Returns that cold incident's first action and resolution times (ms)."""
    name = f"inc-{index:03d}"
    async with aiohttp.ClientSession(url, headers={"User-Agent": BENCH_AGENT}) as session:
        async with session.post(INCIDENTS, json=incident(index)) as response:
            assert response.status == 201, await response.text()
        created = time.perf_counter()
        await recorder.wait_resolved(1)
    first = next(r.arrived for r in recorder.requests
                 if r.incident == name and r.method in WRITES and r.category.startswith("deployment"))
    return {"first_action_ms": (first - created) * 1000, "resolved_ms": (recorder.resolved[name] - created) * 1000}


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process so far (Linux /proc)."""
    fields = pathlib.Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def rss_mb(pid: int) -> float:
    """Resident memory of a process now, in MB (Linux /proc)."""
    for line in pathlib.Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError(f"no VmRSS for process {pid}")


@dataclasses.dataclass
class MemoryPeaks:
    """The highest RSS of the operator and of this process (the sandbox and the client) while sampling."""

    operator_pid: int
    operator_mb: float = 0.0
    sandbox_mb: float = 0.0

    def sample(self) -> None:
        self.operator_mb = max(self.operator_mb, rss_mb(self.operator_pid))
        self.sandbox_mb = max(self.sandbox_mb, rss_mb(os.getpid()))

    async def run(self, period: float = 0.2) -> None:
        while True:
            self.sample()
            await asyncio.sleep(period)


async def loop_lag(samples: list[float], period: float = 0.01) -> None:
    """How late this process's event loop (the sandbox's) wakes up from a short sleep."""
    while True:
        started = time.perf_counter()
        await asyncio.sleep(period)
        samples.append(time.perf_counter() - started - period)


async def measure(url: str, recorder: Recorder, count: int, rate: float, steps: int,
                  operator_pid: int) -> dict[str, Any]:
    created: dict[str, float] = {}
    lags: list[float] = []
    lag_task = asyncio.create_task(loop_lag(lags))
    memory = {"operator_start_mb": rss_mb(operator_pid), "sandbox_start_mb": rss_mb(os.getpid())}
    peaks = MemoryPeaks(operator_pid)
    peaks_task = asyncio.create_task(peaks.run())
    operator_cpu, sandbox_cpu = cpu_seconds(operator_pid), time.process_time()
    async with aiohttp.ClientSession(url, headers={"User-Agent": BENCH_AGENT}) as session:

        async def create(index: int) -> None:
            async with session.post(INCIDENTS, json=incident(index, steps)) as response:
                assert response.status == 201, await response.text()
                await response.read()
            created[f"inc-{index:03d}"] = time.perf_counter()

        window_start = time.perf_counter()
        first_request = len(recorder.requests)
        if rate > 0:
            tasks = []
            for i in range(count):
                delay = window_start + i / rate - time.perf_counter()
                if delay > 0:
                    await asyncio.sleep(delay)
                tasks.append(asyncio.create_task(create(i)))
            await asyncio.gather(*tasks)
        else:
            await asyncio.gather(*(create(i) for i in range(count)))
        await recorder.wait_resolved(count + 1)  # + the warm-up incident
        # Trailing writes (events, Kopf's annotations after the handler) belong to the run too.
        await asyncio.sleep(SETTLE_SECONDS)
        window_end = time.perf_counter()
    operator_cpu, sandbox_cpu = cpu_seconds(operator_pid) - operator_cpu, time.process_time() - sandbox_cpu
    lag_task.cancel()
    peaks_task.cancel()
    peaks.sample()
    memory.update(operator_peak_mb=peaks.operator_mb, sandbox_peak_mb=peaks.sandbox_mb)
    requests = recorder.requests[first_request:]
    results = analyse(requests, created, recorder.resolved, count, window_end - window_start)
    results["steps"] = steps
    results["writes per step"] = results["writes per incident"] / steps
    results["cpu"] = {"operator_s": operator_cpu, "sandbox_s": sandbox_cpu,
                      "sandbox_loop_lag_p50_ms": percentile(lags, 0.5) * 1000,
                      "sandbox_loop_lag_p95_ms": percentile(lags, 0.95) * 1000,
                      "sandbox_loop_lag_max_ms": max(lags) * 1000}
    results["memory"] = memory
    return results


def analyse(requests: list[Request], created: dict[str, float], resolved: dict[str, float],
            count: int, seconds: float) -> dict[str, Any]:
    first_write: dict[str, float] = {}
    first_scale: dict[str, float] = {}
    per_incident: dict[str, collections.Counter[str]] = collections.defaultdict(collections.Counter)
    totals: collections.Counter[str] = collections.Counter()
    for r in requests:
        write = r.method in WRITES
        totals["all"] += 1
        totals["writes" if write else "reads"] += 1
        totals[f"{r.method} {r.category}"] += 1
        if r.incident is None:
            continue
        per_incident[r.incident]["all"] += 1
        if write:
            per_incident[r.incident]["writes"] += 1
        if write and r.category.startswith("deployment"):
            first_write.setdefault(r.incident, r.arrived)
            if r.category == "deployment /scale":
                first_scale.setdefault(r.incident, r.arrived)
    missing = [name for name in created if name not in resolved]

    def latency(stamps: dict[str, float]) -> dict[str, float]:
        samples = [stamps[name] - created[name] for name in created if name in stamps]
        return {"p50_ms": percentile(samples, 0.5) * 1000, "p95_ms": percentile(samples, 0.95) * 1000,
                "max_ms": max(samples) * 1000, "n": len(samples)} if samples else {"n": 0}

    def spread(key: str) -> dict[str, float]:
        samples = [float(per_incident[name][key]) for name in created]
        return {"p50": percentile(samples, 0.5), "p95": percentile(samples, 0.95), "max": max(samples)}

    return {
        "count": count, "seconds": seconds, "unresolved": missing,
        "first action": latency(first_write), "scale": latency(first_scale), "resolved": latency(resolved),
        "requests per incident": totals["all"] / count, "writes per incident": totals["writes"] / count,
        "attributed requests": spread("all"), "attributed writes": spread("writes"),
        "breakdown": {key: value / count for key, value in sorted(totals.items())
                      if key not in ("all", "reads", "writes")},
    }


@dataclasses.dataclass
class Setup:
    """The sandbox (in this process) with `count` + 1 Deployments, and the operator process, warmed up."""

    url: str
    recorder: Recorder
    process: asyncio.subprocess.Process
    log: pathlib.Path
    cold: dict[str, float]
    seconds: float  # to create the Deployments and let the sandbox make them available
    cpu_seconds: float  # of this process (the sandbox and its client) meanwhile
    ready_mb: float = 0.0  # the operator's RSS once ready, before the warm-up incident


async def available(sandbox: server.Sandbox, count: int, timeout: float = 600.0) -> None:
    """Until the sandbox's controllers have made `count` Deployments available, so that their ReplicaSets,
    pods and Events are made before the window opens and none of that set-up work is counted in it."""
    deployments = sandbox.store.resource_type("apps", "v1", "deployments")
    deadline, ready = time.perf_counter() + timeout, 0
    while time.perf_counter() < deadline:
        ready = sum(1 for d in sandbox.store.list(deployments, "default")
                    if (d.get("status") or {}).get("availableReplicas") == d["spec"]["replicas"])
        if ready >= count:
            return
        await asyncio.sleep(1.0)  # a look at 5,000 Deployments takes a few ms of the sandbox's loop
    raise RuntimeError(f"the sandbox made only {ready} of {count} Deployments available in {timeout:.0f} s")


@contextlib.asynccontextmanager
async def operator_and_sandbox(count: int) -> AsyncIterator[Setup]:
    sandbox = server.Sandbox(store.ObjectStore())
    recorder = Recorder(sandbox)
    started, cpu = time.perf_counter(), time.process_time()
    # The last Deployment is the warm-up incident's.
    async with sandboxes.prepared([(DEPLOYMENTS, deployment(i)) for i in range(count + 1)], sandbox,
                                  recorder) as running:
        await available(sandbox, count + 1)
        seconds, cpu = time.perf_counter() - started, time.process_time() - cpu
        log = running.workdir / "operator.log"
        process, port = await start_operator(running.kubeconfig, log)
        try:
            await wait_until_ready(process, port, recorder, log)
            ready_mb = rss_mb(process.pid)
            cold = await warm_up(running.url, recorder, count)
            await asyncio.sleep(0.5)  # let Kopf's start-up requests drain before the window opens
            yield Setup(running.url, recorder, process, log, cold, seconds, cpu, ready_mb)
        finally:
            await processes.stop(process)


async def main(count: int = COUNT, rate: float = RATE, steps: int = 1) -> dict[str, Any]:
    async with operator_and_sandbox(count) as setup:
        results = await measure(setup.url, setup.recorder, count, rate, steps, setup.process.pid)
        results["cold"] = setup.cold
        results["setup"] = {"seconds": setup.seconds, "cpu_s": setup.cpu_seconds}
        if results["unresolved"]:
            print(log_tail(setup.log), file=sys.stderr)
        return results


def report(results: dict[str, Any], rate: float = RATE) -> str:
    how = f"created at {rate:g}/s" if rate > 0 else "created all at once"
    lines = [f"Incident engine, {results['count']} Incidents ({how}), {results['steps']} scale step(s) each, "
             f"real operator process, {results['seconds']:.1f} s window:"]
    for name in ("first action", "scale", "resolved"):
        figures = results[name]
        if figures["n"]:
            lines.append(f"  {name:<13} p50 {figures['p50_ms']:7.1f} ms   p95 {figures['p95_ms']:7.1f} ms   "
                         f"max {figures['max_ms']:7.1f} ms   (n={figures['n']})")
        else:
            lines.append(f"  {name:<13} no samples")
    attributed_all, attributed_writes = results["attributed requests"], results["attributed writes"]
    lines.append(f"  API requests per incident {results['requests per incident']:.2f}, "
                 f"writes {results['writes per incident']:.2f} ({results['writes per step']:.2f} per step); "
                 f"attributed to one incident: "
                 f"requests p50 {attributed_all['p50']:g} p95 {attributed_all['p95']:g}, "
                 f"writes p50 {attributed_writes['p50']:g} p95 {attributed_writes['p95']:g}")
    lines.append("  per incident, by method and kind:")
    for key, value in results["breakdown"].items():
        lines.append(f"    {value:6.2f}  {key}")
    cold = results["cold"]
    lines.append(f"  warm-up incident before the window (cold operator): "
                 f"first action {cold['first_action_ms']:.0f} ms, resolved {cold['resolved_ms']:.0f} ms")
    cpu = results["cpu"]
    lines.append(f"  CPU in the window: operator {cpu['operator_s']:.1f} s, sandbox (+ this client) "
                 f"{cpu['sandbox_s']:.1f} s; sandbox loop lag p50 {cpu['sandbox_loop_lag_p50_ms']:.1f} ms "
                 f"p95 {cpu['sandbox_loop_lag_p95_ms']:.1f} ms max {cpu['sandbox_loop_lag_max_ms']:.1f} ms")
    memory = results["memory"]
    lines.append(f"  RSS: operator {memory['operator_start_mb']:.0f} MB at the start, "
                 f"{memory['operator_peak_mb']:.0f} MB at most; "
                 f"sandbox (+ this client) {memory['sandbox_start_mb']:.0f} MB, "
                 f"{memory['sandbox_peak_mb']:.0f} MB at most")
    if results["unresolved"]:
        lines.append(f"  NOT RESOLVED: {len(results['unresolved'])}: {', '.join(results['unresolved'][:10])}")
    lines.append("  (target: first action p50 < 100 ms, at most 4 API writes per step)")
    return "\n".join(lines)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=COUNT)
    parser.add_argument("--rate", type=float, default=RATE, help="incidents per second; 0: all at once")
    parser.add_argument("--steps", type=int, default=1, help="scale steps per incident")
    add_operator_args(parser)
    args = parser.parse_args()
    OPERATOR_ARGS[:] = args.operator_arg
    print(report(asyncio.run(main(args.count, args.rate, args.steps)), args.rate))
