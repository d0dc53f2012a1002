"""`remediator validate FILE...`: offline validation for CI in GitOps repositories."""

from __future__ import annotations

import pathlib
import subprocess
import sys

import yaml

REPO = pathlib.Path(__file__).resolve().parents[1]
EXAMPLES = sorted((REPO / "examples").rglob("*.yaml"))


def validate(*paths: pathlib.Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "remediator", "validate", *map(str, paths)],
                          capture_output=True, text=True, timeout=60, check=False)


def test_every_example_is_valid() -> None:
    run = validate(*EXAMPLES)
    assert (run.returncode, run.stdout) == (0, ""), run.stdout + run.stderr


def test_broken_copies_of_the_examples_are_reported_with_file_and_field(tmp_path: pathlib.Path) -> None:
    broken: list[pathlib.Path] = []
    for example in EXAMPLES:
        documents = [d for d in yaml.safe_load_all(example.read_text()) if d]
        incidents = [d for d in documents if d.get("kind") == "Incident"]
        if not incidents:
            continue
        incidents[0]["spec"]["severity"] = "P9"
        copy = tmp_path / f"{example.parent.name}-{example.name}"
        copy.write_text(yaml.safe_dump_all(documents))
        broken.append(copy)
    assert len(broken) >= 5
    run = validate(*broken)
    assert run.returncode == 1
    reported = run.stdout.splitlines()
    assert len(reported) == len(broken)
    for line, path in zip(reported, broken, strict=True):
        assert line.startswith(str(path)) and ": spec.severity: 'P9' is not a severity" in line


def test_a_file_that_is_not_yaml_and_a_nameless_incident_are_reported(tmp_path: pathlib.Path) -> None:
    garbled = tmp_path / "garbled.yaml"
    garbled.write_text("kind: [unclosed\n")
    nameless = tmp_path / "nameless.yaml"
    nameless.write_text(yaml.safe_dump({"apiVersion": "remediator.dev/v1alpha1", "kind": "Incident", "metadata": {},
                                        "spec": {"severity": "P1", "summary": "s", "steps": [
                                            {"name": "up", "scale": {"target": {"kind": "Deployment", "name": "w"},
                                                                     "by": 1}}]}}))
    run = validate(garbled, nameless)
    assert run.returncode == 1
    assert run.stdout.splitlines() == [f"{garbled}: cannot read YAML: while parsing a flow sequence",
                                       f"{nameless}: metadata.name: Required value"]
