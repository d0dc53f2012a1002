"""KeyRotation end to end: one key consumed by 20 Deployments, rotated by a trigger change, with the real operator.

Measured (issue "KeyRotation", bench): the time from the trigger change (the PATCH of spec.trigger
returning) to the KeyRotation's `Verified=True` (the status write that set it arriving at the
server), and the API requests the operator made in that window, writes by what they touched.

The operator runs as its own process with `--restart-coalesce 0s`: the default coalescing window
(30 s) is a deliberate wait for other rotations to share the restarts, and would be all this measures.
The verify check answers 200 from a local server. The sandbox runs in this process, behind a handler
that timestamps each request on arrival (the clock this side uses too).
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import collections
import contextlib
import pathlib
import sys
import tempfile
import time
from typing import Any

import aiohttp
import aiohttp.web

from bench.incidents import WRITES, cpu_seconds, log_tail
from bench.sandboxes import BENCH_AGENT, CRDS
from remediator import processes
from remediator.sandbox import runner, server, store

CONSUMERS = 20
ROTATIONS = "/apis/remediator.dev/v1alpha1/namespaces/default/keyrotations"


class Recorder:
    """Timestamps every operator request; notes when the KeyRotation's status first says Verified."""

    def __init__(self, sandbox: server.Sandbox) -> None:
        self.sandbox = sandbox
        self.requests: list[tuple[float, str, str]] = []
        self.verified: float | None = None
        self.changed = asyncio.Event()

    async def __call__(self, request: aiohttp.web.BaseRequest) -> aiohttp.web.StreamResponse:
        arrived = time.perf_counter()
        if request.headers.get("User-Agent") == BENCH_AGENT:
            return await self.sandbox.handle(request)
        self.requests.append((arrived, request.method, request.path))
        response = await self.sandbox.handle(request)
        if request.method in WRITES and request.path.startswith(ROTATIONS) and self.verified is None \
                and self._verified():
            self.verified = arrived
        self.changed.set()
        return response

    def _verified(self) -> bool:
        object_store: store.ObjectStore = self.sandbox.store
        kind = object_store.resource_type("remediator.dev", "v1alpha1", "keyrotations")
        found = object_store.find(kind, "default", "shop-keys") or {}
        return any(c.get("type") == "Verified" and c.get("status") == "True"
                   for c in (found.get("status") or {}).get("conditions") or [])



def category(method: str, path: str) -> str:
    if "/secrets" in path:
        return "secret"
    if "/deployments" in path:
        return "deployment (restart)"
    if "/keyrotations" in path:
        return "keyrotation status" if path.endswith("/status") else "keyrotation"
    if "/events" in path:
        return "event"
    return "other"


async def health_server() -> tuple[aiohttp.web.AppRunner, str]:
    app = aiohttp.web.Application()
    async def healthy(_: aiohttp.web.Request) -> aiohttp.web.Response:
        return aiohttp.web.Response(text="ok")

    app.router.add_get("/healthz", healthy)
    app_runner = aiohttp.web.AppRunner(app)
    await app_runner.setup()
    port = runner.free_port()
    await aiohttp.web.TCPSite(app_runner, "127.0.0.1", port).start()
    return app_runner, f"http://127.0.0.1:{port}/healthz"


def manifests(consumers: int, verify_url: str) -> list[tuple[str, dict[str, Any]]]:
    secret = {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "shop-keys"},
              "data": {"API_KEY": base64.b64encode(b"the-old-key-0001").decode()}}
    found: list[tuple[str, dict[str, Any]]] = [("/api/v1/namespaces/default/secrets", secret)]
    for index in range(consumers):
        name = f"shop-{index:02d}"
        found.append(("/apis/apps/v1/namespaces/default/deployments", {
            "apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": name},
            "spec": {"replicas": 2, "selector": {"matchLabels": {"app": name}}, "template": {
                "metadata": {"labels": {"app": name}},
                "spec": {"containers": [{"name": "app", "image": "shop:1.0", "env": [
                    {"name": "API_KEY", "valueFrom": {"secretKeyRef": {"name": "shop-keys", "key": "API_KEY"}}}]}]}}}}))
    found.append((ROTATIONS, {
        "apiVersion": "remediator.dev/v1alpha1", "kind": "KeyRotation", "metadata": {"name": "shop-keys"},
        "spec": {"secretRef": {"name": "shop-keys"}, "keys": [{"key": "API_KEY"}], "consumers": {"auto": True},
                 "maxConsumers": max(consumers, 20), "gracePeriod": "1h", "trigger": "before",
                 "verify": [{"url": verify_url, "interval": "100ms"}]}}))
    return found


async def main(consumers: int = CONSUMERS) -> dict[str, Any]:
    sandbox = server.Sandbox(store.ObjectStore())
    recorder = Recorder(sandbox)
    health, verify_url = await health_server()
    try:
        async with runner.running(sandbox=sandbox, handler=recorder, crd_paths=CRDS) as running:
            with tempfile.TemporaryDirectory() as workdir:
                kubeconfig = running.write_kubeconfig(pathlib.Path(workdir) / "kubeconfig")
                async with aiohttp.ClientSession(running.url, headers={"User-Agent": BENCH_AGENT}) as session:
                    for path, body in manifests(consumers, verify_url):
                        async with session.post(path, json=body) as response:
                            assert response.status == 201, await response.text()
                    log = pathlib.Path(workdir) / "operator.log"
                    process = await asyncio.create_subprocess_exec(
                        sys.executable, "-m", "remediator", "run", "--kubeconfig", str(kubeconfig), "--namespace",
                        "default", "--restart-coalesce", "0s", "--allow-http-host", "127.0.0.1",
                        stdout=log.open("wb"), stderr=asyncio.subprocess.STDOUT)
                    try:
                        return await _measure(session, recorder, process, log)
                    finally:
                        await processes.stop(process)
    finally:
        await health.cleanup()


async def _measure(session: aiohttp.ClientSession, recorder: Recorder, process: asyncio.subprocess.Process,
                   log: pathlib.Path) -> dict[str, Any]:
    # Ready first: the operator has seen the KeyRotation (creation rotates nothing).
    deadline = time.perf_counter() + 60
    while time.perf_counter() < deadline:
        async with session.get(f"{ROTATIONS}/shop-keys") as response:
            conditions = ((await response.json()).get("status") or {}).get("conditions") or []
        if any(c["type"] == "Ready" and c["status"] == "True" for c in conditions):
            break
        await asyncio.sleep(0.05)
    else:
        raise RuntimeError(f"the KeyRotation never became Ready:\n{log_tail(log)}")
    await asyncio.sleep(0.5)
    cpu_before = cpu_seconds(process.pid)
    async with session.patch(f"{ROTATIONS}/shop-keys", json={"spec": {"trigger": "after"}},
                             headers={"Content-Type": "application/merge-patch+json"}) as response:
        assert response.status == 200, await response.text()
    triggered = time.perf_counter()
    while recorder.verified is None and time.perf_counter() < triggered + 120:
        recorder.changed.clear()
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(recorder.changed.wait(), 0.5)
    if recorder.verified is None:
        raise RuntimeError(f"the rotation was never verified:\n{log_tail(log)}")
    window = [(method, path) for arrived, method, path in recorder.requests
              if triggered <= arrived <= recorder.verified]
    writes = collections.Counter(category(m, p) for m, p in window if m in WRITES)
    return {"trigger to Verified ms": (recorder.verified - triggered) * 1000,
            "requests": len(window), "writes": sum(writes.values()), "writes by kind": dict(writes),
            "operator CPU s": cpu_seconds(process.pid) - cpu_before}


def report(results: dict[str, Any], consumers: int = CONSUMERS) -> str:
    kinds = ", ".join(f"{kind} {count}" for kind, count in sorted(results["writes by kind"].items()))
    return (f"key rotation, 1 key consumed by {consumers} Deployments (restart-coalesce 0s): "
            f"trigger to Verified {results['trigger to Verified ms']:.0f} ms; {results['requests']} requests, "
            f"{results['writes']} writes ({kinds}); operator CPU {results['operator CPU s']:.2f} s")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--consumers", type=int, default=CONSUMERS)
    arguments = parser.parse_args()
    print(report(asyncio.run(main(arguments.consumers)), arguments.consumers))
