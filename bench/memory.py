"""The operator's memory through a churn of Incidents (issue 13).

1,000 one-step Incidents (each scaling its own Deployment) are created at once, resolved, and
deleted; ten times, 10,000 in all, on one operator process. Measured: the operator's RSS after the
warm-up (its starting level), at most while a batch is open, and at the end, once every Incident
is deleted and the operator has let go of them; and the sandbox's RSS holding the 1,000 Deployments with
their ReplicaSets, pods and events (this process: the sandbox and the client).

Targets: operator ≤ 120 MB with 1,000 open Incidents, back within 10 MB of its starting level after
10,000; the sandbox ≤ 250 MB through the first batch (its 1,000 Deployments with their ReplicaSets,
pods and Events; each later batch adds Events, kept for an hour as kube-apiserver keeps them). The
starting level is the RSS after the warm-up incident (the first Incident an operator handles takes code
paths, caches and pooled connections that it keeps whatever follows: start-up, not a storm's residue);
its RSS once ready, before that, is printed too.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import os
import time
from typing import Any

import aiohttp

from bench import incidents, sandboxes

BATCH = 1000
TOTAL = 10_000
# Kopf ends an object's worker once it is quiet (operator_main.WORKER_IDLE_SECONDS; Kopf's default, 5 s, before
# that): wait well past it at the end, so that runs of older operators compare.
SETTLE_SECONDS = 10.0


async def churn(setup: incidents.Setup, batch: int, rounds: int) -> dict[str, Any]:
    pid = setup.process.pid
    gc.collect()
    figures: dict[str, Any] = {"operator_ready_mb": setup.ready_mb, "operator_start_mb": incidents.rss_mb(pid),
                               "sandbox_start_mb": incidents.rss_mb(os.getpid()), "after_round_mb": []}
    peaks = incidents.MemoryPeaks(pid)
    sampling = asyncio.create_task(peaks.run())
    cpu = incidents.cpu_seconds(pid)
    started = time.perf_counter()
    names = [f"inc-{i:03d}" for i in range(batch)]
    async with aiohttp.ClientSession(setup.url, headers={"User-Agent": sandboxes.BENCH_AGENT}) as session:

        async def create(index: int) -> None:
            async with session.post(incidents.INCIDENTS, json=incidents.incident(index)) as response:
                assert response.status == 201, await response.text()

        async def delete(name: str) -> None:
            async with session.delete(f"{incidents.INCIDENTS}/{name}") as response:
                assert response.status in (200, 202), await response.text()

        for round_ in range(rounds):
            setup.recorder.resolved.clear()
            setup.recorder.requests.clear()  # the recorder's own memory is not the sandbox's
            await asyncio.gather(*(create(i) for i in range(batch)))
            await setup.recorder.wait_resolved(batch)
            if len(setup.recorder.resolved) < batch:
                raise RuntimeError(f"round {round_}: {batch - len(setup.recorder.resolved)} not resolved\n"
                                   f"{incidents.log_tail(setup.log)}")
            if round_ == 0:  # the sandbox's target: the first 1,000 Deployments with theirs (later batches add Events)
                peaks.sample()
                figures["sandbox_first_batch_mb"] = peaks.sandbox_mb
            await asyncio.gather(*(delete(name) for name in names))
            figures["after_round_mb"].append(incidents.rss_mb(pid))
    await asyncio.sleep(SETTLE_SECONDS)
    sampling.cancel()
    gc.collect()
    figures.update(operator_peak_mb=peaks.operator_mb, sandbox_peak_mb=peaks.sandbox_mb,
                   operator_end_mb=incidents.rss_mb(pid), sandbox_end_mb=incidents.rss_mb(os.getpid()),
                   incidents=batch * rounds, seconds=time.perf_counter() - started,
                   operator_cpu_s=incidents.cpu_seconds(pid) - cpu)
    return figures


async def main(total: int = TOTAL, batch: int = BATCH) -> dict[str, Any]:
    async with incidents.operator_and_sandbox(batch) as setup:
        return await churn(setup, batch, total // batch)


# The targets (MB).
OPEN_TARGET_MB = 120.0
BACK_WITHIN_MB = 10.0
SANDBOX_TARGET_MB = 250.0


def _verdict(met: bool) -> str:
    return "met" if met else "NOT met"


def targets(figures: dict[str, Any]) -> list[str]:
    """Each target, the figure it is judged on, and whether it is met."""
    start, peak, end = figures["operator_start_mb"], figures["operator_peak_mb"], figures["operator_end_mb"]
    grown = end - start
    return [
        f"  target: operator ≤ {OPEN_TARGET_MB:.0f} MB with {figures['incidents'] // len(figures['after_round_mb']):,} "
        f"open: {peak:.0f} MB at most: {_verdict(peak <= OPEN_TARGET_MB)} "
        f"({peak - start:+.0f} MB over its start, {start:.0f} MB)",
        f"  target: back within {BACK_WITHIN_MB:.0f} MB of the start after {figures['incidents']:,}: "
        f"{end:.0f} MB against {start:.0f} MB, {grown:+.0f} MB: {_verdict(grown <= BACK_WITHIN_MB)}",
        f"  target: sandbox ≤ {SANDBOX_TARGET_MB:.0f} MB with the first batch's Deployments and theirs: "
        f"{figures['sandbox_first_batch_mb']:.0f} MB at most: "
        f"{_verdict(figures['sandbox_first_batch_mb'] <= SANDBOX_TARGET_MB)} (later batches add the Events of "
        f"the last hour, as kube-apiserver keeps them: {figures['sandbox_peak_mb']:.0f} MB at most)"]


def report(figures: dict[str, Any]) -> str:
    rounds = ", ".join(f"{mb:.0f}" for mb in figures["after_round_mb"])
    return "\n".join([
        f"Operator memory through {figures['incidents']:,} one-step Incidents, created, resolved and deleted "
        f"{figures['incidents'] // len(figures['after_round_mb']):,} at a time, in {figures['seconds']:.0f} s "
        f"(operator CPU {figures['operator_cpu_s']:.1f} s):",
        f"  operator RSS: {figures['operator_ready_mb']:.0f} MB once ready, "
        f"{figures['operator_start_mb']:.0f} MB at the start (after the warm-up incident), "
        f"{figures['operator_peak_mb']:.0f} MB "
        f"at most (a batch open), {figures['operator_end_mb']:.0f} MB at the end "
        f"({figures['operator_end_mb'] - figures['operator_start_mb']:+.0f} MB)",
        f"  operator RSS after each batch was deleted: {rounds} MB",
        f"  sandbox (+ this client) RSS: {figures['sandbox_start_mb']:.0f} MB holding the Deployments, "
        f"{figures['sandbox_peak_mb']:.0f} MB at most, {figures['sandbox_end_mb']:.0f} MB at the end",
        *targets(figures)])


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--total", type=int, default=TOTAL)
    parser.add_argument("--batch", type=int, default=BATCH)
    parser.add_argument("--operator-python", default=incidents.OPERATOR_PYTHON,
                        help="run the operator with this interpreter, e.g. a venv with `pip install .` only "
                             "(as the image has), not the development environment's")
    incidents.add_operator_args(parser)
    args = parser.parse_args()
    incidents.OPERATOR_PYTHON = args.operator_python
    incidents.OPERATOR_ARGS[:] = args.operator_arg
    print(report(asyncio.run(main(args.total, args.batch))))
