"""A GitOps-driven rotation (examples/gitops/): the KeyRotation lives in Git, and changing its `trigger` there
rotates once. Each tool is played as it applies Git: Flux with server-side apply (field manager
kustomize-controller, forced, objects marked `ssa: IfNotPresent` only created), Argo CD with a client-side apply
whose ignored fields (the Application's ignoreDifferences, RespectIgnoreDifferences) keep their live values.
Re-syncing the same Git afterwards never undoes the rotation, and the operator never writes the spec."""

from __future__ import annotations

import asyncio
import base64
import copy
import os
import pathlib
import sys
from typing import Any

import pytest
import yaml
from tests.kubectl import KUBECTL, requires_kubectl

from remediator import manifests

from .key_rotation_support import NO_COALESCE, conditions, stage, status_of
from .support import MADE_UP_IMAGES, example, wait_for

REPO = pathlib.Path(__file__).resolve().parents[2]
GITOPS = REPO / "examples" / "gitops"
SECRET = "payments-keys"
FLUX_SKIP_EXISTING = ("kustomize.toolkit.fluxcd.io/ssa", "IfNotPresent")


def flux_config() -> dict[str, Any]:
    loaded: dict[str, Any] = yaml.safe_load((GITOPS / "flux" / "kustomization.yaml").read_text())
    return loaded


def argo_config() -> dict[str, Any]:
    loaded: dict[str, Any] = yaml.safe_load((GITOPS / "argocd" / "application.yaml").read_text())
    return loaded


async def kubectl(kubeconfig: pathlib.Path, *args: str, stdin: str) -> str:
    process = await asyncio.create_subprocess_exec(
        str(KUBECTL), "--kubeconfig", str(kubeconfig), *args, stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT,
        env={**os.environ, "PATH": f"{pathlib.Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}"})
    output, _ = await process.communicate(stdin.encode())
    assert process.returncode == 0, output.decode()
    return output.decode()


async def flux_sync(client: manifests.Client, kubeconfig: pathlib.Path, git: list[dict[str, Any]]) -> None:
    """What kustomize-controller does with the Kustomization's path: server-side apply, forced."""
    applied = []
    for document in git:
        annotations = document["metadata"].get("annotations") or {}
        exists = await client.get(document["apiVersion"], document["kind"], "default", document["metadata"]["name"])
        if annotations.get(FLUX_SKIP_EXISTING[0]) == FLUX_SKIP_EXISTING[1] and exists is not None:
            continue  # created once from Git, never overwritten
        applied.append(document)
    await kubectl(kubeconfig, "apply", "--server-side", "--field-manager=kustomize-controller", "--force-conflicts",
                  "-f", "-", stdin=yaml.safe_dump_all(applied))


async def argo_sync(client: manifests.Client, kubeconfig: pathlib.Path, git: list[dict[str, Any]]) -> None:
    """What Argo CD's sync does: kubectl apply of the desired state, ignored fields taken from the live object."""
    ignored = argo_config()["spec"]["ignoreDifferences"]
    desired = []
    for document in copy.deepcopy(git):
        live = await client.get(document["apiVersion"], document["kind"], "default", document["metadata"]["name"])
        for rule in ignored:
            if live is None or (rule["kind"], rule.get("name")) != (document["kind"], document["metadata"]["name"]):
                continue
            for pointer in rule["jsonPointers"]:
                section, _, field = pointer.strip("/").partition("/")
                holder, live_holder = (document, live) if not field else (document[section], live[section])
                key = section if not field else field
                if key in live_holder:
                    holder[key] = live_holder[key]
            document.pop("stringData", None)  # /data is the live one: Git's initial value must not win
        desired.append(document)
    await kubectl(kubeconfig, "apply", "-f", "-", stdin=yaml.safe_dump_all(desired))


SYNCS = {"flux": flux_sync, "argocd": argo_sync}


async def values(client: manifests.Client) -> dict[str, str]:
    found = await client.get("v1", "Secret", "default", SECRET)
    return {k: base64.b64decode(v).decode() for k, v in ((found or {}).get("data") or {}).items()}


def test_the_tools_are_configured_for_the_app_and_leave_the_rotated_secret_alone() -> None:
    flux, argo = flux_config(), argo_config()
    assert flux["spec"]["path"] == "./examples/gitops/app" and flux["spec"]["prune"] is True
    assert argo["spec"]["source"]["path"] == "examples/gitops/app"
    assert "RespectIgnoreDifferences=true" in argo["spec"]["syncPolicy"]["syncOptions"]
    [rule] = argo["spec"]["ignoreDifferences"]
    assert (rule["kind"], rule["name"], "/data" in rule["jsonPointers"]) == ("Secret", SECRET, True)
    [secret] = [d for d in example("gitops/app/payments.yaml") if d["kind"] == "Secret"]
    assert secret["metadata"]["annotations"][FLUX_SKIP_EXISTING[0]] == FLUX_SKIP_EXISTING[1]


@MADE_UP_IMAGES
@requires_kubectl
@pytest.mark.parametrize("tool", sorted(SYNCS))
async def test_changing_the_trigger_in_git_rotates_exactly_once_and_a_resync_undoes_nothing(
        tool: str, client: manifests.Client, start_operator: Any, kubeconfig: pathlib.Path) -> None:
    sync = SYNCS[tool]
    git = example("gitops/app/payments.yaml")
    await start_operator(*NO_COALESCE)
    await sync(client, kubeconfig, git)
    await wait_for(lambda: _ready(client))
    initial = await values(client)

    [rotation] = [d for d in git if d["kind"] == "KeyRotation"]
    rotation["spec"]["trigger"] = "2026-11-29-leak-drill"  # the commit that asks for a rotation
    await sync(client, kubeconfig, git)
    await wait_for(lambda: _rotated(client), timeout=30)
    rotated = await values(client)
    assert rotated["STRIPE_WEBHOOK_SECRET"] != initial["STRIPE_WEBHOOK_SECRET"]
    assert rotated["STRIPE_WEBHOOK_SECRET_previous"] == initial["STRIPE_WEBHOOK_SECRET"]

    for _ in range(2):  # the tool's periodic re-syncs of the same commit
        await sync(client, kubeconfig, git)
    await asyncio.sleep(1)
    assert await values(client) == rotated, f"{tool} put the old value back"
    status = await status_of(client, "payments-keys")
    assert (status["currentVersion"], status["lastTrigger"], status["rotation"]["id"]) == (
        1, "2026-11-29-leak-drill", "2026-11-29-leak-drill"), "one rotation, the trigger's"
    stored = await client.get("remediator.dev/v1alpha1", "KeyRotation", "default", "payments-keys")
    assert stored is not None
    assert stored["metadata"]["generation"] == 2, "only the tool wrote the spec: creation and one trigger change"


async def _ready(client: manifests.Client) -> bool:
    return conditions(await status_of(client, "payments-keys")).get("Ready", ("", ""))[0] == "True"


async def _rotated(client: manifests.Client) -> bool:
    return stage(await status_of(client, "payments-keys")) in ("Grace", "Done")
