"""`.github/workflows/kind.yaml` cannot run here (no Docker engine, no kind): it is checked by reading it.
Every action is pinned to a commit and every tool to a version, and its steps name what this repository
has: the Dockerfile, the chart and the values it sets (rendered with the real Helm), the suite's flag."""

from __future__ import annotations

import itertools
import os
import pathlib
import re
import subprocess
import sys
from typing import Any

import yaml
from tests.chart import rendering

REPO = pathlib.Path(__file__).resolve().parents[1]
WORKFLOW = REPO / ".github" / "workflows" / "kind.yaml"
PINNED_ACTION = re.compile(r"^[\w.-]+/[\w./-]+@[0-9a-f]{40}  # v\d+\.\d+\.\d+$")
EXACT_VERSION = re.compile(r"v\d+\.\d+\.\d+")


def workflow() -> dict[Any, Any]:
    loaded: dict[Any, Any] = yaml.safe_load(WORKFLOW.read_text())
    return loaded


def steps() -> list[dict[str, Any]]:
    [job] = workflow()["jobs"].values()
    found: list[dict[str, Any]] = job["steps"]
    return found


def step(name: str) -> dict[str, Any]:
    [found] = [s for s in steps() if s["name"].startswith(name)]
    return found


def test_the_workflow_is_valid_yaml_with_a_job_on_pushes_and_pull_requests() -> None:
    loaded = workflow()
    triggers = loaded.get("on", loaded.get(True))  # YAML 1.1 reads a bare `on` key as True
    assert {"push", "pull_request"} <= set(triggers)
    assert loaded["permissions"] == {"contents": "read"}
    assert all("run" in s or "uses" in s for s in steps())


def test_every_action_is_pinned_to_a_full_commit_sha_with_its_tag_beside_it() -> None:
    uses_lines = [line.strip().removeprefix("uses: ") for line in WORKFLOW.read_text().splitlines()
                  if line.strip().startswith("uses:")]
    assert len(uses_lines) == len([s for s in steps() if "uses" in s]) == 4
    assert [line for line in uses_lines if not PINNED_ACTION.match(line)] == []


def test_every_tool_is_pinned_to_an_exact_version() -> None:
    kind = step("Create the kind cluster")["with"]
    assert EXACT_VERSION.fullmatch(kind["version"]) and EXACT_VERSION.fullmatch(kind["kubectl_version"])
    assert re.fullmatch(r"kindest/node:v\d+\.\d+\.\d+", kind["node_image"])
    assert EXACT_VERSION.fullmatch(step("Set up Helm")["with"]["version"])
    assert step("Set up Python")["with"]["python-version"] == "3.11"  # the project's Python (pyproject.toml)


def test_the_image_is_built_from_the_dockerfile_and_fails_over_200_mb() -> None:
    assert "--file Dockerfile" in step("Build the image")["run"] and (REPO / "Dockerfile").is_file()
    size = step("Image size")["run"]
    assert "docker image inspect --format '{{.Size}}'" in size
    assert int(workflow()["env"]["IMAGE_SIZE_LIMIT"]) == 200_000_000
    assert '-gt "$IMAGE_SIZE_LIMIT"' in size and "exit 1" in size


def helm_arguments(script: str) -> list[str]:
    """The arguments the install step passes to helm: the step's own shell script run with helm, kubectl and
    openssl replaced by functions that record (or ignore) their calls."""
    stubs = ('helm() { if [ "$1" = install ]; then printf "%s\\n" "$@"; fi; }\n'
             "kubectl() { :; }\nopenssl() { echo 0; }\n")
    env = {**os.environ, **{key: str(value) for key, value in workflow()["env"].items()}}
    result = subprocess.run(["bash", "-euo", "pipefail", "-c", stubs + script], env=env, capture_output=True,
                            text=True, check=True)
    return result.stdout.splitlines()


def helm_set_values(arguments: list[str]) -> dict[str, Any]:
    """values.yaml with the `--set key.path=value` of the arguments applied (lists written `{a,b}`)."""
    chart_values = rendering.values()
    for flag, assignment in itertools.pairwise(arguments):
        if flag != "--set":
            continue
        path, value = assignment.split("=", 1)
        *parents, leaf = path.split(".")
        node = chart_values
        for key in parents:
            assert key in node, f"--set {path}: the chart has no value {key!r}"
            node = node[key]
        assert leaf in node, f"--set {path}: the chart has no value {leaf!r}"
        node[leaf] = value.strip("{}").split(",") if value.startswith("{") else value
    return chart_values


def test_the_chart_is_installed_with_the_built_image_serving_only_its_own_namespace() -> None:
    """Rendered with the real Helm and the workflow's own --set flags: the Deployment runs the image the
    workflow built and loaded (never pulled), and its operator leaves the tests' namespaces alone."""
    env = workflow()["env"]
    arguments = helm_arguments(step("Install the chart")["run"])
    assert arguments[:3] == ["install", env["RELEASE"], "charts/remediator"]
    assert (REPO / arguments[2] / "Chart.yaml").is_file()
    chart_values = helm_set_values(arguments)
    assert rendering.lint(chart_values) == []
    documents = rendering.manifests(env["RELEASE"], env["RELEASE_NAMESPACE"], chart_values)
    [deployment] = [d for d in documents if d["kind"] == "Deployment"]
    [container] = deployment["spec"]["template"]["spec"]["containers"]
    assert (container["image"], container["imagePullPolicy"]) == (env["IMAGE"], "Never")
    assert f"--namespace={env['RELEASE_NAMESPACE']}" in container["args"]
    assert "--all-namespaces" not in container["args"]
    # The receiver's token Secret the step creates is the one the Deployment mounts.
    secrets = {v["secret"]["secretName"] for v in deployment["spec"]["template"]["spec"]["volumes"] if "secret" in v}
    assert f"{env['RELEASE']}-receiver-token" in secrets
    assert "deployment/$RELEASE" in step("Install the chart")["run"]
    assert deployment["metadata"]["name"] == env["RELEASE"]


def test_the_suite_runs_the_scenarios_with_the_kube_config_flag_after_installing_the_dependencies() -> None:
    assert "make .venv/.installed" in step("Install the test dependencies")["run"]
    known = subprocess.run(["make", "--dry-run", "--question", ".venv/.installed"], cwd=REPO, capture_output=True,
                           text=True)
    assert known.returncode in (0, 1), known.stderr  # 2: make has no such target
    run = step("Run the scenarios")["run"]
    assert re.search(r"pytest tests/scenarios --kube-config \S+", run) and (REPO / "tests" / "scenarios").is_dir()


def test_the_flag_the_workflow_passes_is_one_pytest_knows() -> None:
    result = subprocess.run([sys.executable, "-m", "pytest", "--help"], cwd=REPO, capture_output=True, text=True,
                            check=True)
    assert "--kube-config=PATH" in result.stdout
