"""The README shows what works: its manifests pass `remediator validate`, the files it links exist and pass
too, its Alertmanager snippet is the one the chart prints, and its set-up commands are the two that CI runs."""

from __future__ import annotations

import pathlib
import re
import subprocess
import sys

import pytest
import yaml
from tests.chart import rendering

REPO = pathlib.Path(__file__).resolve().parents[1]
README = (REPO / "README.md").read_text()
YAML_BLOCKS = re.findall(r"```yaml\n(.*?)```", README, flags=re.DOTALL)
# Folders of a GitOps tool's own objects (they need that tool's CRDs; test_examples.py says the same).
TOOL_CONFIGS = {REPO / "examples" / "gitops" / "flux", REPO / "examples" / "gitops" / "argocd"}


def validate(*paths: pathlib.Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "remediator", "validate", *map(str, paths)], capture_output=True,
                          text=True)


def remediator_manifests() -> list[str]:
    return [block for block in YAML_BLOCKS if "apiVersion: remediator.dev/" in block]


def linked_examples() -> list[pathlib.Path]:
    return sorted({REPO / link for link in re.findall(r"\]\((examples/[^)#]*)\)", README)})


def test_the_two_set_up_commands_are_the_demo_and_the_tests() -> None:
    assert re.search(r"^make demo +# ", README, flags=re.MULTILINE)
    assert re.search(r"^make test +# ", README, flags=re.MULTILINE)


def test_every_manifest_in_the_readme_passes_remediator_validate(tmp_path: pathlib.Path) -> None:
    blocks = remediator_manifests()
    assert len(blocks) >= 4
    paths = []
    for number, block in enumerate(blocks):
        paths.append(tmp_path / f"readme-{number}.yaml")
        paths[-1].write_text(block)
    result = validate(*paths)
    assert result.returncode == 0, result.stdout + result.stderr


def test_a_broken_manifest_from_the_readme_is_refused(tmp_path: pathlib.Path) -> None:
    """The check above can fail: the README's first Incident with a replica count the API refuses."""
    [incident] = [b for b in remediator_manifests() if "kind: Incident" in b][:1]
    broken = tmp_path / "broken.yaml"
    broken.write_text(incident.replace("maxReplicas: 5", "maxReplicas: -5"))
    result = validate(broken)
    assert result.returncode == 1 and "maxReplicas" in result.stdout + result.stderr


def test_every_example_the_readme_links_exists_and_passes_remediator_validate() -> None:
    links = linked_examples()
    assert len(links) >= 15
    assert [str(p.relative_to(REPO)) for p in links if not p.exists()] == []
    files = sorted({f for p in links for f in ([p] if p.is_file() else p.rglob("*.yaml"))
                    if f.suffix == ".yaml" and f.parent not in TOOL_CONFIGS})
    result = validate(*files)
    assert result.returncode == 0, result.stdout + result.stderr


def test_the_alertmanager_snippet_is_the_one_the_chart_prints_for_the_readmes_install() -> None:
    """README installs release `remediator` in namespace `remediator`; NOTES.txt, rendered by the real Helm
    for that install, prints the same receiver URL, send_resolved and token file."""
    [snippet] = [yaml.safe_load(b) for b in YAML_BLOCKS if "webhook_configs" in b]
    [receiver] = snippet["receivers"]
    [webhook] = receiver["webhook_configs"]
    assert snippet["route"]["routes"][0]["receiver"] == receiver["name"]
    printed = rendering.notes("remediator", "remediator", rendering.values())
    assert f"url: {webhook['url']}" in printed
    assert webhook["send_resolved"] is True and "send_resolved: true" in printed
    assert f"credentials_file: {webhook['http_config']['authorization']['credentials_file']}" in printed
    assert "helm install remediator charts/remediator -n remediator" in README


@pytest.mark.parametrize("project", ["Robusta", "Keep", "Argo Rollouts", "Reloader", "external-secrets"])
def test_the_comparison_cites_each_projects_own_documentation(project: str) -> None:
    section = README.split("## How it compares", 1)[1].split("\n## ", 1)[0]
    [row] = [line for line in section.splitlines() if line.startswith(f"| [{project}](https://")]
    assert row.count("](https://") >= 1 and row.count(" | ") >= 2
