"""The README's commands work as documented: the sandbox as a process for kubectl, and the demo."""

from __future__ import annotations

import asyncio
import contextlib
import pathlib
import sys
from collections.abc import AsyncIterator

import httpx
import pytest
import yaml
from tests.kubectl import KUBECTL

REPO = pathlib.Path(__file__).resolve().parents[1]


@contextlib.asynccontextmanager
async def sandbox_command(kubeconfig: pathlib.Path, *flags: str) -> AsyncIterator[tuple[str, str]]:
    """`remediator sandbox --kubeconfig PATH FLAGS...` as a process: yields its first line and its server URL."""
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "remediator", "sandbox", "--kubeconfig", str(kubeconfig), *flags,
        stdout=asyncio.subprocess.PIPE)
    try:
        assert process.stdout is not None
        line = (await asyncio.wait_for(process.stdout.readline(), 30)).decode()
        written = await asyncio.to_thread(kubeconfig.read_text)
        yield line, yaml.safe_load(written)["clusters"][0]["cluster"]["server"]
    finally:
        process.terminate()
        await process.wait()


async def test_remediator_sandbox_serves_the_crds_and_writes_a_kubeconfig_kubectl_can_use(
        tmp_path: pathlib.Path) -> None:
    kubeconfig = tmp_path / "kubeconfig"
    async with sandbox_command(kubeconfig, "--crds", str(REPO / "crds")) as (line, server):
        assert "sandbox listening on http://127.0.0.1:" in line
        async with httpx.AsyncClient(base_url=server) as client:
            crds = (await client.get("/apis/apiextensions.k8s.io/v1/customresourcedefinitions")).json()
        assert {c["metadata"]["name"] for c in crds["items"]} >= {"incidents.remediator.dev", "runbooks.remediator.dev"}
        if KUBECTL is not None:
            kubectl = await asyncio.create_subprocess_exec(
                str(KUBECTL), "--kubeconfig", str(kubeconfig), "get", "inc", stdout=asyncio.subprocess.PIPE,
                stderr=asyncio.subprocess.STDOUT, env={"HOME": str(tmp_path)})
            output, _ = await asyncio.wait_for(kubectl.communicate(), 30)
            assert kubectl.returncode == 0, output.decode()
            assert b"No resources found" in output


@pytest.mark.skipif(KUBECTL is None, reason="kubectl is not installed")
async def test_remediator_sandbox_auth_serves_https_and_the_kubeconfig_is_the_admin(tmp_path: pathlib.Path) -> None:
    """`remediator sandbox --auth`: kubectl with the written kubeconfig is sandbox-admin; without a token, 401."""
    kubeconfig = tmp_path / "kubeconfig"
    async with sandbox_command(kubeconfig, "--auth") as (line, server):
        assert "sandbox listening on https://127.0.0.1:" in line
        async with httpx.AsyncClient(base_url=server, verify=False) as client:
            assert (await client.get("/api/v1/namespaces")).status_code == 401
        kubectl = await asyncio.create_subprocess_exec(
            str(KUBECTL), "--kubeconfig", str(kubeconfig), "auth", "whoami", stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.STDOUT, env={"HOME": str(tmp_path)})
        output, _ = await asyncio.wait_for(kubectl.communicate(), 30)
        assert kubectl.returncode == 0, output.decode()
        assert b"sandbox-admin" in output


async def test_remediator_sandbox_time_scale_compresses_a_pods_termination_grace_period(
        tmp_path: pathlib.Path) -> None:
    """`remediator sandbox --time-scale 0.01`: a deleted pod's 30 s grace period passes in about 0.3 s."""
    kubeconfig = tmp_path / "kubeconfig"
    async with sandbox_command(kubeconfig, "--time-scale", "0.01") as (_, server):
        pods = "/api/v1/namespaces/default/pods"
        async with httpx.AsyncClient(base_url=server) as client:
            await client.post(pods, json={"metadata": {"name": "web"},
                                          "spec": {"containers": [{"name": "web", "image": "nginx"}]}})
            for _ in range(500):
                if (await client.get(f"{pods}/web")).json().get("status", {}).get("phase") == "Running":
                    break
                await asyncio.sleep(0.01)
            marked = (await client.delete(f"{pods}/web")).json()
            assert marked["metadata"]["deletionGracePeriodSeconds"] == 30
            for _ in range(500):  # at most 5 s; at the default scale it would take 30 s
                if (await client.get(f"{pods}/web")).status_code == 404:
                    break
                await asyncio.sleep(0.01)
            assert (await client.get(f"{pods}/web")).status_code == 404


async def test_remediator_sandbox_images_runs_only_the_images_the_file_declares(tmp_path: pathlib.Path) -> None:
    """`remediator sandbox --images FILE`: a declared image runs; one declared nowhere fails to pull."""
    kubeconfig, images = tmp_path / "kubeconfig", tmp_path / "images.yaml"
    images.write_text("images:\n- image: nginx:1.27\n")
    async with sandbox_command(kubeconfig, "--images", str(images), "--time-scale", "0.01") as (_, server):
        pods = "/api/v1/namespaces/default/pods"
        async with httpx.AsyncClient(base_url=server) as client:
            for name, image in (("declared", "nginx:1.27"), ("undeclared", "nginx:1.28")):
                await client.post(pods, json={"metadata": {"name": name},
                                              "spec": {"containers": [{"name": "web", "image": image}]}})

            async def states() -> dict[str, str]:
                found = {}
                for name in ("declared", "undeclared"):
                    status = (await client.get(f"{pods}/{name}")).json().get("status") or {}
                    state = ((status.get("containerStatuses") or [{}])[0]).get("state") or {}
                    found[name] = state["waiting"]["reason"] if "waiting" in state else "/".join(state)
                return found
            wanted = {"declared": "running", "undeclared": "ImagePullBackOff"}
            for _ in range(500):
                if (seen := await states()) == wanted:
                    break
                await asyncio.sleep(0.01)
            assert seen == wanted


@pytest.mark.timeout(180)
async def test_the_demo_remediates_the_example_incident_and_exits_zero() -> None:
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "remediator", "demo", "--timeout", "60", cwd=REPO,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT)
    output, _ = await asyncio.wait_for(process.communicate(), 170)
    text = output.decode()
    assert process.returncode == 0, text
    assert "scaled deployment/web from 2 to 4" in text
    assert "✓ incident resolved" in text
    # The second act: an alert (through Alertmanager where installed) to a resolved Incident.
    assert "[restart] restarted deployment/web" in text
    assert "resolved and its alert too" in text
