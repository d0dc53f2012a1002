"""kubectl against the sandbox: what a user types works as it does against a kind cluster.

Every test runs the real kubectl (see tests/kubectl.py) with the sandbox's
kubeconfig and no extra flags, and checks what the user would see: its output, its exit code,
and what ends up stored.
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import pathlib
import re
from collections.abc import AsyncIterator

import httpx
import pytest
import yaml
from tests.conftest import TIME_SCALE
from tests.kubectl import KUBECTL, MISSING
from tests.scenarios.support import wait_for

from remediator.sandbox import runner

REPO = pathlib.Path(__file__).resolve().parents[2]
CRDS = REPO / "crds"
EXAMPLES = REPO / "examples"
INCIDENTS = "/apis/remediator.dev/v1alpha1/namespaces/default/incidents"

if KUBECTL is None:
    pytest.skip(MISSING, allow_module_level=True)


@dataclasses.dataclass
class Run:
    """What one kubectl invocation printed and returned."""

    code: int
    stdout: str
    stderr: str


@dataclasses.dataclass
class Kubectl:
    """Runs kubectl with a kubeconfig and a private cache, without blocking the sandbox's event loop."""

    kubeconfig: pathlib.Path
    home: pathlib.Path
    binary: pathlib.Path = KUBECTL

    async def __call__(self, *args: str, check: bool = True, timeout: float = 20, stdin: bytes | None = None) -> Run:
        process = await asyncio.create_subprocess_exec(
            str(self.binary), *args, stdin=None if stdin is None else asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE, env=self.env())
        stdout, stderr = await asyncio.wait_for(process.communicate(stdin), timeout)
        run = Run(process.returncode or 0, stdout.decode(), stderr.decode())
        if check and run.code != 0:
            raise AssertionError(f"kubectl {' '.join(args)} failed ({run.code}):\n{run.stderr}{run.stdout}")
        return run

    async def watching(self, *args: str) -> asyncio.subprocess.Process:
        """Start a kubectl that watches (`wait`) and return it once its watch is open: at -v=6 kubectl
        logs each response, the watch request's (`watch=true`) too, after the server has taken its
        initial state."""
        process = await asyncio.create_subprocess_exec(
            str(self.binary), "-v=6", *args, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
            env=self.env())
        assert process.stderr is not None
        async with asyncio.timeout(10):
            while b"watch=true" not in (line := await process.stderr.readline()):
                assert line, f"kubectl {' '.join(args)} ended before it watched"
        return process

    def env(self) -> dict[str, str]:
        # HOME and KUBECACHEDIR keep kubectl's discovery and HTTP caches out of the user's ~/.kube.
        return {"KUBECONFIG": str(self.kubeconfig), "HOME": str(self.home),
                "KUBECACHEDIR": str(self.home / "cache")}


@pytest.fixture()
def kubectl(kubeconfig: pathlib.Path, tmp_path: pathlib.Path) -> Kubectl:
    return Kubectl(kubeconfig, tmp_path)


@pytest.fixture()
async def bare_kubectl(tmp_path: pathlib.Path) -> AsyncIterator[Kubectl]:
    """kubectl against a sandbox that has no CustomResourceDefinitions yet."""
    async with runner.running() as running:
        yield Kubectl(running.write_kubeconfig(tmp_path / "bare-kubeconfig"), tmp_path)


def manifest(tmp_path: pathlib.Path, name: str, document: dict[str, object]) -> pathlib.Path:
    path = tmp_path / name
    path.write_text(yaml.safe_dump(document))
    return path


def incident(name: str, *steps: dict[str, object], **spec: object) -> dict[str, object]:
    return {"apiVersion": "remediator.dev/v1alpha1", "kind": "Incident",
            "metadata": {"name": name, "namespace": "default"},
            "spec": {"severity": "P2", "summary": "a test incident", **spec, "steps": list(steps)}}


SCALE_WEB = {"name": "scale-web", "scale": {"target": {"kind": "Deployment", "name": "web"}, "replicas": 3}}


def table(output: str) -> list[list[str]]:
    """kubectl's table output as rows of cells (cells are separated by two or more spaces)."""
    return [re.split(r"\s{2,}", line.strip()) for line in output.splitlines() if line.strip()]


async def set_ready(api: httpx.AsyncClient, name: str) -> None:
    """What the operator does when an incident is resolved: Ready=True and a phase, on /status."""
    patch = {"status": {"phase": "Resolved", "conditions": [{
        "type": "Ready", "status": "True", "reason": "Resolved", "message": "all steps succeeded",
        "lastTransitionTime": "2026-01-01T00:00:00Z"}]}}
    response = await api.patch(f"{INCIDENTS}/{name}/status", content=json.dumps(patch),
                               headers={"Content-Type": "application/merge-patch+json"})
    assert response.status_code == 200, response.text


# -- 1. apply ---------------------------------------------------------------------------------------


async def test_the_repos_crds_then_examples_apply_on_a_fresh_cluster_and_reapply(
        bare_kubectl: Kubectl) -> None:
    """`kubectl apply -f crds/` then `-f examples/` creates everything; applying again changes nothing.

    kubectl validates through the server (fieldValidation=Strict, as the OpenAPI v3 document says
    the PATCH endpoint supports it), finds the new kinds by discovery right after their CRDs, and
    on re-apply GETs each object and PATCHes the difference to its last-applied configuration.
    https://kubernetes.io/docs/tasks/manage-kubernetes-objects/declarative-config/
    """
    crds = await bare_kubectl("apply", "-f", str(CRDS))
    assert crds.stdout.count("created") == 4, crds.stdout
    assert "customresourcedefinition.apiextensions.k8s.io/incidents.remediator.dev created" in crds.stdout

    examples = await bare_kubectl("apply", "-f", str(EXAMPLES))
    assert "deployment.apps/web created" in examples.stdout
    assert "incident.remediator.dev/web-capacity created" in examples.stdout
    assert examples.stderr == ""

    again = await bare_kubectl("apply", "-f", str(CRDS), "-f", str(EXAMPLES))
    assert "created" not in again.stdout
    assert "deployment.apps/web unchanged" in again.stdout
    assert again.stderr == ""


async def test_reapplying_a_modified_file_patches_the_stored_objects(
        kubectl: Kubectl, tmp_path: pathlib.Path) -> None:
    """A changed manifest re-applied updates the object: a merge patch for an Incident, a strategic
    merge patch for a Deployment (its container list merged by name).

    Applying over CRDs that were not created by `kubectl apply` works too, with kubectl's warning.
    https://kubernetes.io/docs/tasks/manage-kubernetes-objects/declarative-config/#how-to-update-objects
    """
    crds = await kubectl("apply", "-f", str(CRDS))
    assert "configured" in crds.stdout
    assert "missing the kubectl.kubernetes.io/last-applied-configuration annotation" in crds.stderr
    await kubectl("apply", "-f", str(EXAMPLES))

    workload = yaml.safe_load((EXAMPLES / "01-workload.yaml").read_text())
    workload["spec"]["template"]["spec"]["containers"][0]["image"] = "nginx:1.28"
    capacity = yaml.safe_load((EXAMPLES / "02-incident-capacity.yaml").read_text())
    capacity["spec"]["summary"] = "web p95 latency above 2s"
    changed = await kubectl("apply", "-f", str(manifest(tmp_path, "workload.yaml", workload)),
                            "-f", str(manifest(tmp_path, "capacity.yaml", capacity)))

    assert "deployment.apps/web configured" in changed.stdout
    assert "incident.remediator.dev/web-capacity configured" in changed.stdout
    image = await kubectl("get", "deploy", "web", "-o", "jsonpath={.spec.template.spec.containers[*].image}")
    assert image.stdout == "nginx:1.28"
    summary = await kubectl("get", "inc", "web-capacity", "-o", "jsonpath={.spec.summary}")
    assert summary.stdout == "web p95 latency above 2s"


async def test_an_unknown_field_is_refused_by_default_and_only_warned_about_with_validate_warn(
        kubectl: Kubectl, tmp_path: pathlib.Path) -> None:
    """kubectl's default --validate=strict makes the server refuse fields the CRD schema does not
    declare (400 on create, 422 on the patch of a re-apply: `strict decoding error: unknown field
    "spec.foo"`); with --validate=warn the object is stored without the field and kubectl prints
    the server's Warning; --validate=false (fieldValidation=Ignore) drops it silently.
    https://kubernetes.io/docs/reference/using-api/api-concepts/#field-validation
    """
    path = manifest(tmp_path, "unknown.yaml", incident("unknown-field", SCALE_WEB, foo="bar"))

    refused = await kubectl("apply", "-f", str(path), check=False)
    assert refused.code == 1
    assert ('Incident in version "v1alpha1" cannot be handled as a Incident: '
            'strict decoding error: unknown field "spec.foo"') in refused.stderr
    assert (await kubectl("get", "inc", "unknown-field", check=False)).code == 1

    warned = await kubectl("apply", "--validate=warn", "-f", str(path))
    assert 'Warning: unknown field "spec.foo"' in warned.stderr
    stored = json.loads((await kubectl("get", "inc", "unknown-field", "-o", "json")).stdout)
    assert "foo" not in stored["spec"]

    # Re-applied, the field is in kubectl's patch again, and the patched object is refused (422).
    reapplied = await kubectl("apply", "-f", str(path), check=False)
    assert reapplied.code == 1
    assert "The request is invalid: patch: Invalid value:" in reapplied.stderr
    assert reapplied.stderr.rstrip().endswith('strict decoding error: unknown field "spec.foo"')
    ignored = await kubectl("apply", "--validate=false", "-f", str(path))
    assert ignored.stderr == ""


# -- 2. get -----------------------------------------------------------------------------------------


async def test_get_incidents_shows_the_crds_printer_columns(
        kubectl: Kubectl, api: httpx.AsyncClient) -> None:
    """`kubectl get inc` prints the server's Table: NAME then the CRD's additionalPrinterColumns
    (Severity, Phase, the Ready condition's status, Age); -o wide has the same columns (none has a
    priority), -A adds NAMESPACE, and the `remediator` category lists incidents.
    https://kubernetes.io/docs/tasks/extend-kubernetes/custom-resources/custom-resource-definitions/#additional-printer-columns
    """
    await kubectl("apply", "-f", str(EXAMPLES))
    await set_ready(api, "web-capacity")

    rows = table((await kubectl("get", "inc")).stdout)
    assert rows[0] == ["NAME", "SEVERITY", "PHASE", "READY", "AGE"]
    assert rows[1][:4] == ["web-capacity", "P1", "Resolved", "True"]
    assert rows[1][4].endswith("s")
    assert table((await kubectl("get", "inc", "-o", "wide")).stdout)[0] == rows[0]

    everywhere = table((await kubectl("get", "inc", "-A")).stdout)
    assert everywhere[0] == ["NAMESPACE", "NAME", "SEVERITY", "PHASE", "READY", "AGE"]
    assert everywhere[1][:2] == ["default", "web-capacity"]

    category = table((await kubectl("get", "remediator")).stdout)
    assert category[1][:2] == ["incident.remediator.dev/web-capacity", "P1"]


async def test_get_as_yaml_and_json_gives_the_stored_objects(kubectl: Kubectl) -> None:
    """-o yaml / -o json print the full objects (as a v1 List for a kind), with server defaults.
    https://kubernetes.io/docs/reference/kubectl/#output-options
    """
    await kubectl("apply", "-f", str(EXAMPLES))

    listed = yaml.safe_load((await kubectl("get", "inc", "-o", "yaml")).stdout)
    assert listed["kind"] == "List"
    assert [i["metadata"]["name"] for i in listed["items"]] == ["web-capacity"]
    one = json.loads((await kubectl("get", "inc", "web-capacity", "-o", "json")).stdout)
    assert one["kind"] == "Incident"
    assert one["spec"]["steps"][0]["onFailure"] == "abort"  # defaulted by the CRD schema
    assert one["metadata"]["generation"] == 1


async def test_get_built_in_kinds_prints_their_usual_columns(kubectl: Kubectl) -> None:
    """`get deploy,pods`, `get all` and `get events` print kube-apiserver's columns for those kinds;
    `get all` covers the `all` category (pods, deployments, replica sets...).
    https://kubernetes.io/docs/reference/using-api/api-concepts/#receiving-resources-as-tables
    """
    await kubectl("apply", "-f", str(EXAMPLES / "01-workload.yaml"))
    await kubectl("rollout", "status", "deploy/web", "--timeout=10s")

    output = (await kubectl("get", "deploy,pods")).stdout
    deployments, pods = output.split("\n\n")
    assert table(deployments)[0] == ["NAME", "READY", "UP-TO-DATE", "AVAILABLE", "AGE"]
    assert table(deployments)[1][:4] == ["deployment.apps/web", "2/2", "2", "2"]
    assert table(pods)[0] == ["NAME", "READY", "STATUS", "RESTARTS", "AGE"]
    assert [row[1:4] for row in table(pods)[1:]] == [["1/1", "Running", "0"]] * 2

    wide = table((await kubectl("get", "deploy", "-o", "wide")).stdout)
    assert wide[0][-3:] == ["CONTAINERS", "IMAGES", "SELECTOR"]
    assert wide[1][-3:] == ["web", "nginx:1.27", "app=web"]

    everything = (await kubectl("get", "all")).stdout
    for name in ("pod/web-", "deployment.apps/web", "replicaset.apps/web-"):
        assert name in everything

    events = table((await kubectl("get", "events")).stdout)
    assert events[0] == ["LAST SEEN", "TYPE", "REASON", "OBJECT", "MESSAGE"]
    assert ["Normal", "ScalingReplicaSet", "deployment/web"] in [row[1:4] for row in events]


async def test_get_watch_prints_each_change_as_a_row(kubectl: Kubectl, api: httpx.AsyncClient) -> None:
    """`kubectl get inc --watch` prints the table, then one row with the same columns per change.
    https://kubernetes.io/docs/reference/using-api/api-concepts/#efficient-detection-of-changes
    """
    await kubectl("apply", "-f", str(EXAMPLES / "02-incident-capacity.yaml"))
    process = await asyncio.create_subprocess_exec(
        str(KUBECTL), "get", "inc", "--watch", stdout=asyncio.subprocess.PIPE, env=kubectl.env())
    assert process.stdout is not None
    try:
        header = await asyncio.wait_for(process.stdout.readline(), 10)
        first = await asyncio.wait_for(process.stdout.readline(), 10)
        await set_ready(api, "web-capacity")
        change = await asyncio.wait_for(process.stdout.readline(), 10)
    finally:
        process.kill()
        await process.wait()
    assert table(header.decode())[0] == ["NAME", "SEVERITY", "PHASE", "READY", "AGE"]
    assert table(first.decode())[0][:2] == ["web-capacity", "P1"]
    assert table(change.decode())[0][:4] == ["web-capacity", "P1", "Resolved", "True"]


# -- 3. describe ------------------------------------------------------------------------------------


async def test_describe_shows_the_object_and_its_events(kubectl: Kubectl, api: httpx.AsyncClient) -> None:
    """`kubectl describe` prints the object and the Events whose involvedObject is that object
    (listed with a field selector on involvedObject.name/namespace/kind/uid).
    https://kubernetes.io/docs/reference/kubectl/generated/kubectl_describe/
    """
    await kubectl("apply", "-f", str(EXAMPLES))
    stored = (await api.get(f"{INCIDENTS}/web-capacity")).json()
    event = {"metadata": {"name": "web-capacity.1", "namespace": "default"},
             "involvedObject": {"apiVersion": "remediator.dev/v1alpha1", "kind": "Incident",
                                "name": "web-capacity", "namespace": "default",
                                "uid": stored["metadata"]["uid"]},
             "reason": "StepSucceeded", "message": "scaled web to 4 replicas", "type": "Normal",
             "source": {"component": "remediator"}, "count": 1,
             "firstTimestamp": stored["metadata"]["creationTimestamp"],
             "lastTimestamp": stored["metadata"]["creationTimestamp"]}
    assert (await api.post("/api/v1/namespaces/default/events", json=event)).status_code == 201

    described = (await kubectl("describe", "inc", "web-capacity")).stdout
    assert "Name:         web-capacity" in described
    assert re.search(r"\n  Severity: +P1\n", described)  # aligned with the longest key of the spec
    assert "StepSucceeded" in described and "scaled web to 4 replicas" in described

    deployment = (await kubectl("describe", "deploy", "web")).stdout
    assert "Replicas:" in deployment
    assert "ScalingReplicaSet" in deployment


# -- 4. changing objects ------------------------------------------------------------------------------


async def test_patch_annotate_label_and_scale_change_what_is_stored(kubectl: Kubectl) -> None:
    """The imperative commands a runbook uses: merge and strategic patches, annotate, label, scale.
    https://kubernetes.io/docs/tasks/manage-kubernetes-objects/update-api-object-kubectl-patch/
    """
    await kubectl("apply", "-f", str(EXAMPLES))

    await kubectl("patch", "inc", "web-capacity", "--type", "merge", "-p", '{"spec":{"severity":"P0"}}')
    await kubectl("patch", "deploy", "web", "-p",
                  '{"spec":{"template":{"spec":{"containers":[{"name":"web","image":"nginx:1.28"}]}}}}')
    await kubectl("annotate", "inc", "web-capacity", "remediator.dev/approve=all")
    await kubectl("label", "inc", "web-capacity", "team=sre")
    scaled = await kubectl("scale", "deploy", "web", "--replicas=3")
    assert scaled.stdout.strip() == "deployment.apps/web scaled"

    stored = json.loads((await kubectl("get", "inc", "web-capacity", "-o", "json")).stdout)
    assert stored["spec"]["severity"] == "P0"
    assert stored["metadata"]["annotations"]["remediator.dev/approve"] == "all"
    assert stored["metadata"]["labels"] == {"team": "sre"}
    deployment = json.loads((await kubectl("get", "deploy", "web", "-o", "json")).stdout)
    assert deployment["spec"]["replicas"] == 3
    # The strategic patch merged the container by name: one container, new image, port kept.
    [container] = deployment["spec"]["template"]["spec"]["containers"]
    assert (container["name"], container["image"]) == ("web", "nginx:1.28")
    assert container["ports"][0]["containerPort"] == 80


async def test_delete_by_file_and_by_name_removes_the_objects(kubectl: Kubectl, tmp_path: pathlib.Path) -> None:
    """`kubectl delete -f` and `kubectl delete KIND NAME` delete and wait until the objects are gone.
    https://kubernetes.io/docs/reference/kubectl/generated/kubectl_delete/
    """
    extra = manifest(tmp_path, "extra.yaml", incident("extra", SCALE_WEB))
    await kubectl("apply", "-f", str(EXAMPLES), "-f", str(extra))

    by_name = await kubectl("delete", "inc", "extra")
    assert 'incident.remediator.dev "extra" deleted' in by_name.stdout
    by_file = await kubectl("delete", "-f", str(EXAMPLES))
    assert 'deployment.apps "web" deleted' in by_file.stdout
    assert 'incident.remediator.dev "web-capacity" deleted' in by_file.stdout

    left = await kubectl("get", "inc,deploy")
    assert left.stdout == ""
    assert "No resources found in default namespace." in left.stderr


# -- 5. wait ----------------------------------------------------------------------------------------


async def test_wait_returns_when_the_condition_becomes_true_or_the_object_is_gone(
        kubectl: Kubectl, api: httpx.AsyncClient) -> None:
    """`kubectl wait --for=condition=...` returns once the condition is True (it watches with
    sendInitialEvents and needs the server's initial-events-end bookmark); `--for=delete` returns
    once the object is deleted.
    https://kubernetes.io/docs/reference/kubectl/generated/kubectl_wait/
    https://kubernetes.io/docs/reference/using-api/api-concepts/#streaming-lists
    """
    established = await kubectl("wait", "--for=condition=established", "crd/incidents.remediator.dev",
                                "--timeout=10s")
    assert "condition met" in established.stdout
    await kubectl("apply", "-f", str(EXAMPLES / "02-incident-capacity.yaml"))
    not_yet = await kubectl("wait", "--for=condition=Ready", "inc/web-capacity", "--timeout=1s", check=False)
    assert (not_yet.code, not_yet.stderr.strip()) == (
        1, "error: timed out waiting for the condition on incidents/web-capacity")

    waiting = await kubectl.watching("wait", "--for=condition=Ready", "inc/web-capacity", "--timeout=10s")
    await set_ready(api, "web-capacity")
    stdout, _ = await asyncio.wait_for(waiting.communicate(), 10)
    assert (waiting.returncode, stdout.decode().strip()) == (0, "incident.remediator.dev/web-capacity condition met")

    gone = await kubectl.watching("wait", "--for=delete", "inc/web-capacity", "--timeout=10s")
    assert (await api.delete(f"{INCIDENTS}/web-capacity")).status_code == 200
    await asyncio.wait_for(gone.communicate(), 10)
    assert gone.returncode == 0


# -- 6. invalid incidents -----------------------------------------------------------------------------


@pytest.mark.parametrize(("step", "field"), [
    ({"name": "two-kinds", "scale": {"target": {"kind": "Deployment", "name": "web"}, "replicas": 3},
      "restart": {"target": {"kind": "Deployment", "name": "web"}}}, "spec.steps[0]"),
    ({"name": "negative", "scale": {"target": {"kind": "Deployment", "name": "web"}, "replicas": -1}},
     "spec.steps[0].scale.replicas"),
], ids=["two-step-kinds", "negative-replicas"])
async def test_an_invalid_incident_is_refused_with_the_field_and_not_stored(
        kubectl: Kubectl, tmp_path: pathlib.Path, step: dict[str, object], field: str) -> None:
    """The CRD schema refuses a step with two kinds (oneOf) and `replicas: -1` (minimum 0): kubectl
    prints the server's 422 with the field path, exits 1, and nothing is created.
    https://kubernetes.io/docs/tasks/extend-kubernetes/custom-resources/custom-resource-definitions/#validation
    """
    path = manifest(tmp_path, "invalid.yaml", incident("invalid", step))

    refused = await kubectl("apply", "-f", str(path), check=False)

    assert refused.code == 1
    assert 'The Incident "invalid" is invalid:' in refused.stderr
    assert field in refused.stderr
    missing = await kubectl("get", "inc", "invalid", check=False)
    assert 'incidents.remediator.dev "invalid" not found' in missing.stderr


# -- 7. rollouts ------------------------------------------------------------------------------------


async def test_rollout_restart_and_undo_finish_and_rollout_status_reports_it(kubectl: Kubectl) -> None:
    """`rollout restart` and `rollout undo` start new rollouts that `rollout status` follows to the end.
    https://kubernetes.io/docs/concepts/workloads/controllers/deployment/#rolling-back-a-deployment
    """
    await kubectl("apply", "-f", str(EXAMPLES / "01-workload.yaml"))
    await kubectl("rollout", "status", "deploy/web", "--timeout=10s")

    await kubectl("rollout", "restart", "deploy/web")
    status = await kubectl("rollout", "status", "deploy/web", "--timeout=10s")
    assert 'deployment "web" successfully rolled out' in status.stdout

    undone = await kubectl("rollout", "undo", "deploy/web")
    assert "deployment.apps/web rolled back" in undone.stdout
    await kubectl("rollout", "status", "deploy/web", "--timeout=10s")


async def test_set_image_to_an_image_that_does_not_exist_stalls_and_rollout_status_fails_at_the_deadline(
        kubectl: Kubectl, tmp_path: pathlib.Path) -> None:
    """The new pods sit in ErrImagePull/ImagePullBackOff, the old ReplicaSet keeps all but maxUnavailable
    of its pods serving, and after progressDeadlineSeconds (scaled) `rollout status` fails with kubectl's
    message. https://kubernetes.io/docs/concepts/workloads/controllers/deployment/#failed-deployment
    """
    workload = yaml.safe_load((EXAMPLES / "01-workload.yaml").read_text())
    workload["spec"].update(replicas=4, progressDeadlineSeconds=120)
    await kubectl("apply", "-f", str(manifest(tmp_path, "workload.yaml", workload)))
    await kubectl("rollout", "status", "deploy/web", "--timeout=10s")
    old_pods = set((await kubectl("get", "pods", "-o", "name")).stdout.split())

    await kubectl("set", "image", "deploy/web", "web=registry.example.com/web:doesnotexist")
    stuck = await kubectl("rollout", "status", "deploy/web", "--timeout=20s", check=False)

    assert (stuck.code, stuck.stderr.strip()) == (1, 'error: deployment "web" exceeded its progress deadline')
    rows = {row[0]: row for row in table((await kubectl("get", "pods")).stdout)[1:]}
    new = {name: row for name, row in rows.items() if f"pod/{name}" not in old_pods}
    assert len(new) == 2 and {row[2] for row in new.values()} <= {"ErrImagePull", "ImagePullBackOff"}
    kept = [row for name, row in rows.items() if f"pod/{name}" in old_pods]
    assert [(row[1], row[2]) for row in kept] == [("1/1", "Running")] * 3, "4 - maxUnavailable (25 %) keep serving"
    available = await kubectl("get", "deploy", "web", "-o",
                              'jsonpath={.status.conditions[?(@.type=="Available")].status}')
    assert available.stdout == "True"


async def pod_statuses_until(kubectl: Kubectl, tmp_path: pathlib.Path, pod: dict[str, object],
                             last: str) -> list[str]:
    """Create the pod and return the STATUS column of `kubectl get pod --watch`, every change once, up
    to and including the first `last`."""
    name = str(pod["metadata"]["name"])  # type: ignore[index]
    process = await kubectl.watching("get", "pods", "--field-selector", f"metadata.name={name}", "--watch")
    assert process.stdout is not None
    seen: list[str] = []
    try:
        await kubectl("apply", "-f", str(manifest(tmp_path, f"{name}.yaml", pod)))
        async with asyncio.timeout(60 * TIME_SCALE + 20):
            while not seen or seen[-1] != last:
                row = table((await process.stdout.readline()).decode())
                if row and row[0][0] == name and (not seen or seen[-1] != row[0][2]):
                    seen.append(row[0][2])
    finally:
        process.kill()
        await process.wait()
    return seen


def pod_with_init(name: str, *init_images: str, restart_policy: str = "Always") -> dict[str, object]:
    return {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name, "namespace": "default"},
            "spec": {"restartPolicy": restart_policy,
                     "initContainers": [{"name": f"init-{index}", "image": image}
                                        for index, image in enumerate(init_images)],
                     "containers": [{"name": "app", "image": "shop:1.0"}]}}


async def test_init_containers_run_in_order_before_the_app_container_as_get_pods_shows(
        kubectl: Kubectl, tmp_path: pathlib.Path) -> None:
    """Each init container runs to a successful exit before the next starts (tool:slow-start works for
    40 s, scaled), and the app container only after the last: Init:0/2, Init:1/2, Running.
    https://kubernetes.io/docs/concepts/workloads/pods/init-containers/"""
    seen = await pod_statuses_until(kubectl, tmp_path, pod_with_init("prepared", "tool:slow-start", "tool:1"),
                                    "Running")

    assert [s for s in seen if s.startswith("Init:") or s == "Running"] == ["Init:0/2", "Init:1/2", "Running"]
    pod = json.loads((await kubectl("get", "pod", "prepared", "-o", "json")).stdout)
    inits = pod["status"]["initContainerStatuses"]
    assert [(s["name"], s["state"]["terminated"]["reason"], s["ready"]) for s in inits] == [
        ("init-0", "Completed", True), ("init-1", "Completed", True)]
    first, second = (s["state"]["terminated"] for s in inits)
    assert first["finishedAt"] <= second["startedAt"], "the second init container started after the first ended"


@pytest.mark.parametrize(("restart_policy", "last"), [("Always", "Init:CrashLoopBackOff"), ("Never", "Init:Error")])
async def test_a_failing_init_container_holds_the_app_container_back_as_get_pods_shows(
        kubectl: Kubectl, tmp_path: pathlib.Path, restart_policy: str, last: str) -> None:
    """An init container that exits 2 (tool:crash, after 5 s) is restarted with kubelet's back-off
    (Init:CrashLoopBackOff), or with restartPolicy Never fails the pod (Init:Error, phase Failed); the app
    container never starts: PodInitializing, Initialized False."""
    pod = pod_with_init("blocked", "tool:crash", restart_policy=restart_policy)
    seen = await pod_statuses_until(kubectl, tmp_path, pod, last)

    assert "Running" not in seen and seen[-1] == last
    found = json.loads((await kubectl("get", "pod", "blocked", "-o", "json")).stdout)
    status = found["status"]
    assert status["phase"] == ("Pending" if restart_policy == "Always" else "Failed")
    assert status["containerStatuses"][0]["state"] == {"waiting": {"reason": "PodInitializing"}}
    initialized = next(c for c in status["conditions"] if c["type"] == "Initialized")
    assert (initialized["status"], initialized["reason"], initialized["message"]) == (
        "False", "ContainersNotInitialized", "containers with incomplete status: [init-0]")
    [row] = table((await kubectl("get", "pod", "blocked")).stdout)[1:]
    # A crash loop moves on between two kubectl calls (its scaled back-off is short): any of its states.
    assert row[1] == "0/1" and row[2] in ([last] if restart_policy == "Never" else
                                          [last, "Init:Error", "Init:0/1"]), row


WEB_SERVICE = {"apiVersion": "v1", "kind": "Service", "metadata": {"name": "web", "namespace": "default"},
               "spec": {"selector": {"app": "web"}, "ports": [{"name": "http", "port": 8080, "targetPort": 80}]}}


async def web_endpoint_conditions(kubectl: Kubectl) -> dict[str, dict[str, bool]]:
    """`kubectl get endpointslices -l kubernetes.io/service-name=web -o yaml`: pod name → conditions."""
    listed = yaml.safe_load((await kubectl("get", "endpointslices", "-l", "kubernetes.io/service-name=web",
                                           "-o", "yaml")).stdout)
    return {e["targetRef"]["name"]: e["conditions"] for s in listed["items"] for e in s.get("endpoints") or ()}


async def test_a_deleted_pod_is_a_terminating_endpoint_for_its_grace_period_then_gone_as_kubectl_shows(
        kubectl: Kubectl, tmp_path: pathlib.Path) -> None:
    """`kubectl get endpoints web` lists the ready pods' ip:port; after `kubectl delete pod --wait=false`
    the pod's endpoint in the EndpointSlice is terminating, not ready, still serving, for its grace
    period (300 s, scaled), and then it is gone while its replacement is ready.
    https://kubernetes.io/docs/concepts/services-networking/endpoint-slices/#terminating"""
    workload = yaml.safe_load((EXAMPLES / "01-workload.yaml").read_text())
    workload["spec"]["template"]["spec"]["terminationGracePeriodSeconds"] = 300
    await kubectl("apply", "-f", str(manifest(tmp_path, "web.yaml", workload)),
                  "-f", str(manifest(tmp_path, "svc.yaml", WEB_SERVICE)))
    await kubectl("rollout", "status", "deploy/web", "--timeout=10s")
    pods = json.loads((await kubectl("get", "pods", "-l", "app=web", "-o", "json")).stdout)["items"]
    ips = sorted(f"{p['status']['podIP']}:80" for p in pods)

    async def listed() -> list[str]:
        [row] = table((await kubectl("get", "endpoints", "web")).stdout)[1:]
        return row if sorted(row[1].split(",")) == ips[:3] else []
    assert (await wait_for(listed, timeout=10))[0] == "web"  # type: ignore[index]
    described = (await kubectl("describe", "service", "web")).stdout
    [endpoints_line] = [line for line in described.splitlines() if line.startswith("Endpoints:")]
    assert sorted(endpoints_line.split()[1].split(",")) == ips

    doomed = pods[0]["metadata"]["name"]
    await kubectl("delete", "pod", doomed, "--wait=false")

    async def terminating() -> dict[str, bool] | None:
        return (await web_endpoint_conditions(kubectl)).get(doomed, {}).get("terminating") and \
            (await web_endpoint_conditions(kubectl))[doomed]
    conditions = await wait_for(terminating, timeout=10)
    assert conditions == {"ready": False, "serving": True, "terminating": True}

    async def gone() -> dict[str, dict[str, bool]] | None:
        current = await web_endpoint_conditions(kubectl)
        return current if doomed not in current and len(current) == len(pods) else None
    after = await wait_for(gone, timeout=20)
    assert all(c == {"ready": True, "serving": True, "terminating": False}
               for c in after.values())  # type: ignore[attr-defined]
