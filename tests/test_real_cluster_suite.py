"""`pytest --kube-config PATH` runs the scenarios against whatever cluster the kubeconfig names. Proven here
against a cluster the suite does not own: `remediator sandbox` as its own process, reached only through the
kubeconfig it writes (with authentication and TLS, as a kind cluster's is)."""

from __future__ import annotations

import asyncio
import pathlib
import sys
import xml.etree.ElementTree as ElementTree

import yaml
from tests import real_cluster
from tests.test_commands import sandbox_command

REPO = pathlib.Path(__file__).resolve().parents[1]
# Scenarios a real cluster can run: the capacity example end to end, a spec the model refuses, the API's 422.
CAPABLE = ("tests/scenarios/test_incident_skeleton.py::test_a_scale_by_a_factor_is_clamped_at_max_replicas",
           "tests/scenarios/test_incident_skeleton.py::"
           "test_an_incident_that_breaks_a_model_rule_is_marked_invalid_and_nothing_acts",
           "tests/scenarios/test_incident_skeleton.py::test_the_api_refuses_an_invalid_incident_with_422_and_the_field_path")
# Two that need the sandbox's own hooks: one reads Events through the sandbox object, one is in a module
# marked sandbox_only (its images crash and stall as the sandbox's images registry says).
SANDBOX_ONLY = {
    "tests/scenarios/test_incident_skeleton.py::"
    "test_the_capacity_example_doubles_the_deployment_and_resolves_with_a_timeline":
        "sandbox only: the test uses the sandbox itself",
    "tests/scenarios/test_failing_workloads.py::"
    "test_a_bad_image_stalls_the_rollout_past_its_deadline_until_an_incident_rolls_it_back":
        "sandbox only: the images registry: made-up images that crash, stall or fail to pull",
}


async def run_pytest(kubeconfig: pathlib.Path, tmp_path: pathlib.Path) -> tuple[int, str, ElementTree.Element]:
    report = tmp_path / "report.xml"
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "pytest", "--kube-config", str(kubeconfig), "--basetemp", str(tmp_path / "bt"),
        "--junitxml", str(report), "-q", "-rs", *CAPABLE, *SANDBOX_ONLY,
        cwd=REPO, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT)
    output, _ = await asyncio.wait_for(process.communicate(), 240)
    assert process.returncode is not None
    return process.returncode, output.decode(errors="replace"), ElementTree.parse(report).getroot()


async def test_the_scenarios_run_against_the_cluster_of_a_kubeconfig_each_in_a_namespace_it_deletes(
        tmp_path: pathlib.Path) -> None:
    kubeconfig = tmp_path / "cluster.kubeconfig"
    async with sandbox_command(kubeconfig, "--auth", "--time-scale", "0.01") as (_, server):
        returncode, output, report = await run_pytest(kubeconfig, tmp_path)

        assert returncode == 0, output
        outcomes = {case.get("name"): [child.tag for child in case] for case in report.iter("testcase")}
        ran = {name: tags for name, tags in outcomes.items() if "skipped" not in tags}
        assert len(ran) == 4 and all(not tags for tags in ran.values()), output  # 3 tests, one with 2 cases
        skipped = {case.get("name"): (case.find("skipped").get("message") or "")  # type: ignore[union-attr]
                   for case in report.iter("testcase") if case.find("skipped") is not None}
        assert skipped == {test.rsplit("::", 1)[1]: reason for test, reason in SANDBOX_ONLY.items()}

        # The run applied the CRDs (the cluster had none), and left no namespace behind.
        cluster = real_cluster.load(kubeconfig, tmp_path / "certificates")
        with cluster.http() as http:
            crds = http.get("/apis/apiextensions.k8s.io/v1/customresourcedefinitions").json()["items"]
            assert "incidents.remediator.dev" in {crd["metadata"]["name"] for crd in crds}
            selector = ",".join(f"{key}={value}" for key, value in real_cluster.CREATED_BY.items())
            namespaces = http.get("/api/v1/namespaces", params={"labelSelector": selector}).json()["items"]
            assert [ns["metadata"]["name"] for ns in namespaces if "deletionTimestamp" not in ns["metadata"]] == []
        assert server.startswith("https://")


def test_the_kubeconfig_of_a_cluster_is_read_as_kubectl_reads_it(tmp_path: pathlib.Path) -> None:
    """Files a kubeconfig names are relative to it; inline client certificates are written for TLS to load."""
    (tmp_path / "conf").mkdir()
    (tmp_path / "conf" / "token").write_text("s3cret\n")
    path = tmp_path / "conf" / "config"
    path.write_text(yaml.safe_dump({
        "apiVersion": "v1", "kind": "Config", "current-context": "ci",
        "clusters": [{"name": "kind", "cluster": {"server": "http://127.0.0.1:6443"}}],
        "users": [{"name": "robot", "user": {"tokenFile": "token"}}],
        "contexts": [{"name": "ci", "context": {"cluster": "kind", "user": "robot"}}]}))
    cluster = real_cluster.load(path, tmp_path / "certificates")
    assert (cluster.url, cluster.token) == ("http://127.0.0.1:6443", "s3cret")
    written = yaml.safe_load(cluster.write_kubeconfig(tmp_path / "for-the-operator", "remediator-e2e-1").read_text())
    assert written["contexts"][0]["context"]["namespace"] == "remediator-e2e-1"
    assert written["users"][0]["user"]["tokenFile"] == str(tmp_path / "conf" / "token")
