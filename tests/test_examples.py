"""Every manifest under examples/ is accepted by the API server as written (a user can apply it)."""

from __future__ import annotations

import pathlib

import pytest
import yaml

from remediator import manifests
from remediator.api.incidents import IncidentSpec
from remediator.api.keyrotations import KeyRotationSpec
from remediator.api.rollbacks import RollbackRequestSpec
from remediator.api.runbooks import RunbookSpec
from remediator.sandbox import runner

REPO = pathlib.Path(__file__).resolve().parents[1]
# A GitOps tool's own objects (a Flux Kustomization, an Argo CD Application) need that tool's CRDs:
# tests/scenarios/test_gitops_rotation.py reads them instead.
TOOL_CONFIGS = {REPO / "examples" / "gitops" / "flux", REPO / "examples" / "gitops" / "argocd"}
EXAMPLES = sorted(p for p in (REPO / "examples").rglob("*.yaml") if p.parent not in TOOL_CONFIGS)
SPEC_MODELS = {"Incident": IncidentSpec, "Runbook": RunbookSpec, "RollbackRequest": RollbackRequestSpec,
               "KeyRotation": KeyRotationSpec}


@pytest.mark.parametrize("path", EXAMPLES, ids=[str(p.relative_to(REPO / "examples")) for p in EXAMPLES])
async def test_the_example_is_accepted_by_the_api_server(sandbox: runner.RunningSandbox, path: pathlib.Path) -> None:
    documents = list(yaml.safe_load_all(path.read_text()))  # noqa: ASYNC240 - a small local file
    async with manifests.Client(sandbox.url) as client:
        applied = await client.apply_file(path)
        for document in documents:
            stored = await client.get(document["apiVersion"], document["kind"],
                                      document["metadata"].get("namespace"), document["metadata"]["name"])
            assert stored is not None
            assert stored.get("spec", {}).keys() >= document.get("spec", {}).keys(), "nothing was pruned"
            model = SPEC_MODELS.get(document["kind"])
            if model is not None:
                model.model_validate(stored["spec"])  # and the operator's own rules accept it too
    assert applied
