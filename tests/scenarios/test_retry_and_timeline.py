"""On-call commands with the operator process: `kubectl remediator retry` runs a failed Incident again from its
failed step once its cause is fixed, `kubectl remediator timeline -w` follows it until it is over, and
`kubectl remediator postmortem` writes its review."""

from __future__ import annotations

import asyncio
import os
import pathlib
import sys
from typing import Any

from tests.kubectl import KUBECTL, requires_kubectl

from remediator import manifests

from .support import deployment, wait_for

API = "remediator.dev/v1alpha1"


async def plugin(kubeconfig: pathlib.Path, *args: str) -> asyncio.subprocess.Process:
    env = {**os.environ, "KUBECONFIG": str(kubeconfig),
           "PATH": f"{pathlib.Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}"}
    return await asyncio.create_subprocess_exec(str(KUBECTL), "remediator", *args, env=env,
                                                stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT)


async def run_plugin(kubeconfig: pathlib.Path, *args: str) -> tuple[int, str]:
    process = await plugin(kubeconfig, *args)
    output, _ = await process.communicate()
    return process.returncode or 0, output.decode()


async def conditions(client: manifests.Client, name: str) -> dict[str, str]:
    found: dict[str, Any] = await client.get(API, "Incident", "default", name) or {}
    return {c["type"]: c["status"] for c in (found.get("status") or {}).get("conditions") or []}


@requires_kubectl
async def test_a_failed_incident_is_retried_from_its_failed_step_and_followed_to_the_end(
        client: manifests.Client, start_operator: Any, kubeconfig: pathlib.Path) -> None:
    await start_operator()
    scale_up = {"name": "up", "scale": {"target": {"kind": "Deployment", "name": "web"}, "replicas": 4}}
    await client.apply({"apiVersion": API, "kind": "Incident", "metadata": {"name": "web-down", "namespace": "default"},
                        "spec": {"severity": "P2", "summary": "web needs capacity", "steps": [scale_up]}})
    await wait_for(lambda: _is(client, "web-down", "Failed"))  # there is no Deployment web yet

    await client.apply(deployment("shop:1.0", replicas=2))  # the on-call person fixes the cause, then retries
    code, output = await run_plugin(kubeconfig, "retry", "web-down")
    assert code == 0 and "retried (retry 1) by" in output, output
    follower = await plugin(kubeconfig, "timeline", "web-down", "-w")
    output_bytes, _ = await asyncio.wait_for(follower.communicate(), timeout=30)
    followed = output_bytes.decode()

    assert follower.returncode == 0, followed
    assert "Retried: retry 1 requested by" in followed and "running again from step up" in followed
    assert "StepSucceeded [up]: scaled deployment/web from 2 to 4" in followed, followed
    assert (await conditions(client, "web-down")).get("Resolved") == "True"
    web = await client.get("apps/v1", "Deployment", "default", "web")
    assert web is not None and web["spec"]["replicas"] == 4

    code, review = await run_plugin(kubeconfig, "postmortem", "web-down")
    assert code == 0 and "web needs capacity" in review and "scaled deployment/web from 2 to 4" in review, review

    code, output = await run_plugin(kubeconfig, "retry", "web-down")
    assert code != 0 and "has not failed: nothing to retry" in output, output


async def _is(client: manifests.Client, name: str, condition: str) -> bool:
    return (await conditions(client, name)).get(condition) == "True"
