"""The sandbox's controller simulations converge workloads as a real cluster's controllers do.

The store is driven directly (no HTTP): create or change an object, let the controllers
settle, and look at what a user would see with kubectl.
"""

from __future__ import annotations

import copy
import dataclasses
import re
from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest
from tests.conftest import TIME_SCALE
from tests.scenarios.support import wait_for

from remediator.sandbox import resources, store
from remediator.sandbox.controllers import Controllers, Simulations, deployments, kubelet, naming

from .support import Clock

Object = dict[str, Any]


@dataclasses.dataclass
class Kinds:
    deployments: resources.ResourceType
    replicasets: resources.ResourceType
    pods: resources.ResourceType
    statefulsets: resources.ResourceType
    daemonsets: resources.ResourceType
    jobs: resources.ResourceType
    events: resources.ResourceType
    configmaps: resources.ResourceType


@pytest.fixture()
def clock() -> Clock:
    return Clock()


@pytest.fixture()
def object_store(clock: Clock) -> store.ObjectStore:
    return store.ObjectStore(clock=clock)


@pytest.fixture()
def kinds(object_store: store.ObjectStore) -> Kinds:
    def kind(group: str, plural: str) -> resources.ResourceType:
        return object_store.resource_type(group, "v1", plural)
    return Kinds(kind("apps", "deployments"), kind("apps", "replicasets"), kind("", "pods"),
                 kind("apps", "statefulsets"), kind("apps", "daemonsets"), kind("batch", "jobs"),
                 kind("", "events"), kind("", "configmaps"))


@pytest.fixture()
def simulations() -> Simulations:
    return Simulations()


@pytest.fixture()
async def controllers(object_store: store.ObjectStore,
                      simulations: Simulations) -> AsyncIterator[Controllers]:
    running = Controllers(object_store, simulations, time_scale=TIME_SCALE)
    running.start()
    yield running
    await running.stop()
    assert running.failures == []


def deployment(name: str = "web", replicas: int = 3, image: str = "nginx:1.25", **spec: Any) -> Object:
    return {
        "apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": name, "namespace": "default"},
        "spec": {"replicas": replicas, "selector": {"matchLabels": {"app": name}},
                 "template": {"metadata": {"labels": {"app": name}},
                              "spec": {"containers": [{"name": "app", "image": image}]}},
                 **spec},
    }


def job(name: str = "migrate", command: list[str] | None = None, annotations: dict[str, str] | None = None,
        **spec: Any) -> Object:
    metadata: Object = {"name": name, "namespace": "default"}
    if annotations:
        metadata["annotations"] = annotations
    return {
        "apiVersion": "batch/v1", "kind": "Job", "metadata": metadata,
        "spec": {"template": {"spec": {"restartPolicy": "Never", "containers": [
            {"name": "main", "image": "busybox", "command": command or ["sh", "-c", "echo done"]}]}},
                 **spec},
    }


def change(object_store: store.ObjectStore, kind: resources.ResourceType, name: str,
           edit: Callable[[Object], None]) -> Object:
    """What `kubectl edit/patch` does: read, change a copy, write it back with its resourceVersion."""
    changed = copy.deepcopy(object_store.get(kind, "default", name))
    edit(changed)
    return object_store.replace(kind, "default", name, changed)


def set_image(image: str) -> Callable[[Object], None]:
    def edit(obj: Object) -> None:
        obj["spec"]["template"]["spec"]["containers"][0]["image"] = image
    return edit


def owned_by(object_store: store.ObjectStore, kind: resources.ResourceType, owner: Object) -> list[Object]:
    uid = owner["metadata"]["uid"]
    return [obj for obj in object_store.list(kind, "default")
            if any(ref["uid"] == uid for ref in obj["metadata"].get("ownerReferences") or ())]


def revision(obj: Object) -> str | None:
    return (obj["metadata"].get("annotations") or {}).get("deployment.kubernetes.io/revision")


def condition(obj: Object, kind: str) -> Object:
    return next(c for c in obj["status"]["conditions"] if c["type"] == kind)


def rollout_complete(deploy: Object) -> bool:
    """`kubectl rollout status`'s test for a finished Deployment rollout."""
    status, wanted = deploy.get("status") or {}, deploy["spec"]["replicas"]
    return bool(status.get("observedGeneration", 0) >= deploy["metadata"]["generation"]
            and status.get("updatedReplicas", 0) == wanted
            and status.get("replicas", 0) == wanted
            and status.get("availableReplicas", 0) == wanted)


def replicasets_by_revision(object_store: store.ObjectStore, kinds: Kinds,
                            deploy: Object) -> dict[str, Object]:
    return {revision(rs) or "": rs for rs in owned_by(object_store, kinds.replicasets, deploy)}


def events_about(object_store: store.ObjectStore, kinds: Kinds, name: str) -> list[Object]:
    return [e for e in object_store.list(kinds.events, "default") if e["involvedObject"]["name"] == name]


# -- Deployments ------------------------------------------------------------------------------


async def test_a_new_deployment_gets_revision_1_with_ready_pods_and_a_complete_rollout(
        object_store: store.ObjectStore, kinds: Kinds, controllers: Controllers) -> None:
    """A Deployment creates a ReplicaSet `<deployment>-<pod-template-hash>`, labelled and selecting by
    that hash, with revision 1; its pods run and are ready; the rollout is complete.

    https://kubernetes.io/docs/concepts/workloads/controllers/deployment/#creating-a-deployment
    """
    object_store.create(kinds.deployments, deployment(replicas=3))
    await controllers.settle()

    deploy = object_store.get(kinds.deployments, "default", "web")
    [replica_set] = owned_by(object_store, kinds.replicasets, deploy)
    template_hash = naming.template_hash(deploy["spec"]["template"])
    assert replica_set["metadata"]["name"] == f"web-{template_hash}"
    assert replica_set["metadata"]["labels"] == {"app": "web", "pod-template-hash": template_hash}
    assert replica_set["spec"]["selector"]["matchLabels"] == replica_set["metadata"]["labels"]
    assert replica_set["spec"]["template"]["metadata"]["labels"]["pod-template-hash"] == template_hash
    assert revision(replica_set) == "1" and revision(deploy) == "1"
    assert replica_set["metadata"]["annotations"]["deployment.kubernetes.io/desired-replicas"] == "3"
    assert replica_set["metadata"]["annotations"]["deployment.kubernetes.io/max-replicas"] == "4"

    pods = owned_by(object_store, kinds.pods, replica_set)
    assert len(pods) == 3
    assert all(p["metadata"]["name"].startswith(f"web-{template_hash}-") for p in pods)
    assert all(p["status"]["phase"] == "Running" and condition(p, "Ready")["status"] == "True" for p in pods)

    assert rollout_complete(deploy)
    assert deploy["status"]["readyReplicas"] == 3 and "unavailableReplicas" not in deploy["status"]
    assert condition(deploy, "Available")["reason"] == "MinimumReplicasAvailable"
    progressing = condition(deploy, "Progressing")
    assert (progressing["status"], progressing["reason"]) == ("True", "NewReplicaSetAvailable")
    assert progressing["message"] == f'ReplicaSet "web-{template_hash}" has successfully progressed.'
    assert {"lastUpdateTime", "lastTransitionTime"} <= progressing.keys()


async def test_a_new_image_rolls_out_revision_2_and_scales_revision_1_to_zero(
        object_store: store.ObjectStore, kinds: Kinds, controllers: Controllers) -> None:
    """Changing the pod template creates a new ReplicaSet (revision 2) scaled up while the old one
    is scaled down to 0 and kept for rollback.

    https://kubernetes.io/docs/concepts/workloads/controllers/deployment/#updating-a-deployment
    """
    object_store.create(kinds.deployments, deployment(replicas=3))
    await controllers.settle()
    change(object_store, kinds.deployments, "web", set_image("nginx:1.26"))
    await controllers.settle()

    deploy = object_store.get(kinds.deployments, "default", "web")
    by_revision = replicasets_by_revision(object_store, kinds, deploy)
    assert set(by_revision) == {"1", "2"}
    assert by_revision["1"]["spec"]["replicas"] == 0 and by_revision["1"]["status"]["replicas"] == 0
    assert by_revision["2"]["spec"]["replicas"] == 3
    assert revision(deploy) == "2"
    assert rollout_complete(deploy) and deploy["status"]["observedGeneration"] == 2
    images = {p["spec"]["containers"][0]["image"] for p in object_store.list(kinds.pods, "default")}
    assert images == {"nginx:1.26"}


async def test_a_rolling_update_never_drops_below_the_available_minimum(
        object_store: store.ObjectStore, kinds: Kinds, controllers: Controllers) -> None:
    """With maxUnavailable 25% of 4 (1 pod) and maxSurge 25% (1 pod), a rollout scales the new
    ReplicaSet up and the old one down step by step, as the ScalingReplicaSet events show.

    https://kubernetes.io/docs/concepts/workloads/controllers/deployment/#rolling-update-deployment
    """
    object_store.create(kinds.deployments, deployment(replicas=4))
    await controllers.settle()
    change(object_store, kinds.deployments, "web", set_image("nginx:1.26"))
    await controllers.settle()

    scalings = [e["message"] for e in events_about(object_store, kinds, "web")
                if e["reason"] == "ScalingReplicaSet"]
    assert len(scalings) > 3  # stepwise, not one jump
    assert all(" from " in message for message in scalings)
    assert rollout_complete(object_store.get(kinds.deployments, "default", "web"))


async def test_restoring_an_old_template_makes_its_replicaset_current_as_the_next_revision(
        object_store: store.ObjectStore, kinds: Kinds, controllers: Controllers) -> None:
    """`kubectl rollout undo` writes revision 1's template back; the controller finds revision 1's
    ReplicaSet (no new one), scales it up and renumbers it revision 3, keeping "1" in its history.

    https://kubernetes.io/docs/concepts/workloads/controllers/deployment/#rolling-back-to-a-previous-revision
    and https://kubernetes.io/docs/reference/kubectl/generated/kubectl_rollout/kubectl_rollout_undo/
    """
    object_store.create(kinds.deployments, deployment(replicas=2))
    await controllers.settle()
    change(object_store, kinds.deployments, "web", set_image("nginx:1.26"))
    await controllers.settle()
    deploy = object_store.get(kinds.deployments, "default", "web")
    first = replicasets_by_revision(object_store, kinds, deploy)["1"]

    def undo(obj: Object) -> None:
        # What kubectl sends: the ReplicaSet's template without pod-template-hash, round-tripped
        # through Go structs (so with `creationTimestamp: null` and `resources: {}`).
        template = naming.without_hash_label(first["spec"]["template"])
        template["metadata"]["creationTimestamp"] = None
        template["spec"]["containers"][0]["resources"] = {}
        obj["spec"]["template"] = template
    change(object_store, kinds.deployments, "web", undo)
    await controllers.settle()

    deploy = object_store.get(kinds.deployments, "default", "web")
    by_revision = replicasets_by_revision(object_store, kinds, deploy)
    assert set(by_revision) == {"2", "3"}
    assert by_revision["3"]["metadata"]["name"] == first["metadata"]["name"]
    assert by_revision["3"]["metadata"]["annotations"]["deployment.kubernetes.io/revision-history"] == "1"
    assert by_revision["3"]["spec"]["replicas"] == 2 and by_revision["2"]["spec"]["replicas"] == 0
    assert revision(deploy) == "3"
    assert rollout_complete(deploy)
    images = {p["spec"]["containers"][0]["image"] for p in object_store.list(kinds.pods, "default")}
    assert images == {"nginx:1.25"}


async def test_rollout_restart_creates_a_new_revision_with_new_pods(
        object_store: store.ObjectStore, kinds: Kinds, controllers: Controllers) -> None:
    """`kubectl rollout restart` stamps the template with kubectl.kubernetes.io/restartedAt: a new
    template, so a new ReplicaSet and revision replace every pod.

    https://kubernetes.io/docs/reference/kubectl/generated/kubectl_rollout/kubectl_rollout_restart/
    """
    object_store.create(kinds.deployments, deployment(replicas=2))
    await controllers.settle()
    before = {p["metadata"]["name"] for p in object_store.list(kinds.pods, "default")}

    def restart(obj: Object) -> None:
        obj["spec"]["template"]["metadata"]["annotations"] = {
            "kubectl.kubernetes.io/restartedAt": "2025-01-01T12:00:00Z"}
    change(object_store, kinds.deployments, "web", restart)
    await controllers.settle()

    deploy = object_store.get(kinds.deployments, "default", "web")
    assert revision(deploy) == "2"
    pods = object_store.list(kinds.pods, "default")
    assert len(pods) == 2 and not before & {p["metadata"]["name"] for p in pods}
    assert all(p["metadata"]["annotations"]["kubectl.kubernetes.io/restartedAt"] for p in pods)
    assert rollout_complete(deploy)


async def test_scaling_a_deployment_adds_and_removes_pods_without_a_new_revision(
        object_store: store.ObjectStore, kinds: Kinds, controllers: Controllers) -> None:
    """Changing spec.replicas scales the current ReplicaSet; it is not a rollout (no new revision).

    https://kubernetes.io/docs/concepts/workloads/controllers/deployment/#scaling-a-deployment
    """
    object_store.create(kinds.deployments, deployment(replicas=2))
    await controllers.settle()

    def scale_to(replicas: int) -> Callable[[Object], None]:
        def edit(obj: Object) -> None:
            obj["spec"]["replicas"] = replicas
        return edit

    change(object_store, kinds.deployments, "web", scale_to(5))
    await controllers.settle()
    assert len(object_store.list(kinds.pods, "default")) == 5
    deploy = object_store.get(kinds.deployments, "default", "web")
    assert rollout_complete(deploy) and revision(deploy) == "1"

    change(object_store, kinds.deployments, "web", scale_to(1))
    await controllers.settle()
    assert len(object_store.list(kinds.pods, "default")) == 1
    deploy = object_store.get(kinds.deployments, "default", "web")
    [replica_set] = owned_by(object_store, kinds.replicasets, deploy)
    assert replica_set["metadata"]["annotations"]["deployment.kubernetes.io/desired-replicas"] == "1"
    assert rollout_complete(deploy)


async def test_a_deleted_pod_is_replaced_by_its_replicaset(
        object_store: store.ObjectStore, kinds: Kinds, controllers: Controllers) -> None:
    """A ReplicaSet keeps its replica count: a deleted pod is replaced by a new one.

    https://kubernetes.io/docs/concepts/workloads/controllers/replicaset/#how-a-replicaset-works
    """
    object_store.create(kinds.deployments, deployment(replicas=2))
    await controllers.settle()
    victim = object_store.list(kinds.pods, "default")[0]["metadata"]["name"]

    object_store.delete(kinds.pods, "default", victim)
    await controllers.settle()

    pods = object_store.list(kinds.pods, "default")
    assert len(pods) == 2 and victim not in {p["metadata"]["name"] for p in pods}
    assert all(p["status"]["phase"] == "Running" for p in pods)


async def test_a_replicaset_adopts_a_matching_orphan_pod(
        object_store: store.ObjectStore, kinds: Kinds, controllers: Controllers) -> None:
    """A ReplicaSet acquires pods its selector matches that have no controller, and counts them.

    https://kubernetes.io/docs/concepts/workloads/controllers/replicaset/#non-template-pod-acquisitions
    """
    object_store.create(kinds.pods, {"metadata": {"name": "stray", "labels": {"tier": "db"}},
                                     "spec": {"containers": [{"name": "db", "image": "postgres"}]}})
    object_store.create(kinds.replicasets, {
        "metadata": {"name": "db"},
        "spec": {"replicas": 2, "selector": {"matchLabels": {"tier": "db"}},
                 "template": {"metadata": {"labels": {"tier": "db"}},
                              "spec": {"containers": [{"name": "db", "image": "postgres"}]}}}})
    await controllers.settle()

    replica_set = object_store.get(kinds.replicasets, "default", "db")
    pods = owned_by(object_store, kinds.pods, replica_set)
    assert len(pods) == 2 and "stray" in {p["metadata"]["name"] for p in pods}
    assert replica_set["status"]["readyReplicas"] == 2


async def test_a_paused_deployment_does_not_roll_out_until_resumed(
        object_store: store.ObjectStore, kinds: Kinds, controllers: Controllers) -> None:
    """While spec.paused, template changes start no rollout and Progressing is Unknown
    (DeploymentPaused); resuming rolls the change out.

    https://kubernetes.io/docs/concepts/workloads/controllers/deployment/#pausing-and-resuming-a-deployment
    """
    object_store.create(kinds.deployments, deployment(replicas=2))
    await controllers.settle()

    def pause_and_change(obj: Object) -> None:
        obj["spec"]["paused"] = True
        set_image("nginx:1.26")(obj)
    change(object_store, kinds.deployments, "web", pause_and_change)
    await controllers.settle()
    deploy = object_store.get(kinds.deployments, "default", "web")
    assert len(owned_by(object_store, kinds.replicasets, deploy)) == 1
    progressing = condition(deploy, "Progressing")
    assert (progressing["status"], progressing["reason"]) == ("Unknown", "DeploymentPaused")

    change(object_store, kinds.deployments, "web", lambda obj: obj["spec"].update(paused=False))
    await controllers.settle()
    deploy = object_store.get(kinds.deployments, "default", "web")
    assert revision(deploy) == "2" and rollout_complete(deploy)
    assert condition(deploy, "Progressing")["reason"] == "NewReplicaSetAvailable"


async def test_old_replicasets_beyond_the_revision_history_limit_are_deleted(
        object_store: store.ObjectStore, kinds: Kinds, controllers: Controllers) -> None:
    """spec.revisionHistoryLimit old ReplicaSets are kept for rollback; older ones are deleted.

    https://kubernetes.io/docs/concepts/workloads/controllers/deployment/#clean-up-policy
    """
    object_store.create(kinds.deployments, deployment(replicas=1, revisionHistoryLimit=1))
    for image in ("nginx:1.26", "nginx:1.27", "nginx:1.28"):
        await controllers.settle()
        change(object_store, kinds.deployments, "web", set_image(image))
    await controllers.settle()

    deploy = object_store.get(kinds.deployments, "default", "web")
    assert set(replicasets_by_revision(object_store, kinds, deploy)) == {"3", "4"}


async def test_a_recreate_deployment_removes_old_pods_before_creating_new_ones(
        object_store: store.ObjectStore, kinds: Kinds, controllers: Controllers) -> None:
    """With strategy Recreate, all old pods are killed before new ones are created.

    https://kubernetes.io/docs/concepts/workloads/controllers/deployment/#recreate-deployment
    """
    object_store.create(kinds.deployments, deployment(replicas=2, strategy={"type": "Recreate"}))
    await controllers.settle()
    change(object_store, kinds.deployments, "web", set_image("nginx:1.26"))
    await controllers.settle()

    deploy = object_store.get(kinds.deployments, "default", "web")
    by_revision = replicasets_by_revision(object_store, kinds, deploy)
    scalings = [e["message"] for e in events_about(object_store, kinds, "web")
                if e["reason"] == "ScalingReplicaSet"]
    old_name, new_name = by_revision["1"]["metadata"]["name"], by_revision["2"]["metadata"]["name"]
    assert scalings[-2:] == [f"Scaled down replica set {old_name} from 2 to 0",
                             f"Scaled up replica set {new_name} from 0 to 2"]
    assert rollout_complete(deploy)


async def test_a_crash_looping_rollout_keeps_the_old_pods_and_exceeds_its_progress_deadline(
        object_store: store.ObjectStore, kinds: Kinds, controllers: Controllers, clock: Clock) -> None:
    """Pods that never become ready stall a rolling update (the old pods keep serving); after
    progressDeadlineSeconds without progress, Progressing turns False, ProgressDeadlineExceeded,
    which `kubectl rollout status` reports as a failed rollout.

    https://kubernetes.io/docs/concepts/workloads/controllers/deployment/#failed-deployment
    """
    object_store.create(kinds.deployments, deployment(replicas=2, progressDeadlineSeconds=60))
    await controllers.settle()

    def break_it(obj: Object) -> None:
        obj["spec"]["template"]["metadata"]["annotations"] = {kubelet.OUTCOME_ANNOTATION: "Failed"}
    change(object_store, kinds.deployments, "web", break_it)
    await controllers.settle()

    deploy = object_store.get(kinds.deployments, "default", "web")
    by_revision = replicasets_by_revision(object_store, kinds, deploy)
    assert by_revision["1"]["status"]["availableReplicas"] == 2
    [crashing] = owned_by(object_store, kinds.pods, by_revision["2"])
    waiting = crashing["status"]["containerStatuses"][0]["state"]["waiting"]
    assert waiting["reason"] == "CrashLoopBackOff" and condition(crashing, "Ready")["status"] == "False"
    assert condition(deploy, "Available")["status"] == "True"
    assert condition(deploy, "Progressing")["status"] == "True" and not rollout_complete(deploy)

    clock.advance(61)
    controllers.resync()
    await controllers.settle()
    progressing = condition(object_store.get(kinds.deployments, "default", "web"), "Progressing")
    assert (progressing["status"], progressing["reason"]) == ("False", "ProgressDeadlineExceeded")
    new_name = by_revision["2"]["metadata"]["name"]
    assert progressing["message"] == f'ReplicaSet "{new_name}" has timed out progressing.'


@pytest.mark.parametrize("simulations", [Simulations(deployments=False)])
async def test_with_the_deployment_controller_off_a_deployment_gets_no_replicaset(
        object_store: store.ObjectStore, kinds: Kinds, controllers: Controllers) -> None:
    """Without the Deployment controller nothing acts on a Deployment: no ReplicaSet, no status,
    as in a cluster whose kube-controller-manager is down.

    https://kubernetes.io/docs/concepts/overview/components/#kube-controller-manager
    """
    object_store.create(kinds.deployments, deployment())
    await controllers.settle()
    assert object_store.list(kinds.replicasets, "default") == []
    assert "status" not in object_store.get(kinds.deployments, "default", "web")


@pytest.mark.parametrize("simulations", [Simulations(pods=False)])
async def test_with_the_kubelet_off_pods_stay_pending_and_the_rollout_unavailable(
        object_store: store.ObjectStore, kinds: Kinds, controllers: Controllers) -> None:
    """Pods nobody runs never become ready, so the Deployment lacks minimum availability.

    https://kubernetes.io/docs/concepts/workloads/pods/pod-lifecycle/#pod-phase
    """
    object_store.create(kinds.deployments, deployment(replicas=2))
    await controllers.settle()
    pods = object_store.list(kinds.pods, "default")
    assert len(pods) == 2 and all("status" not in p or p["status"].get("phase") != "Running" for p in pods)
    deploy = object_store.get(kinds.deployments, "default", "web")
    assert condition(deploy, "Available")["status"] == "False" and not rollout_complete(deploy)


# -- Pods, StatefulSets, DaemonSets -------------------------------------------------------------


async def test_a_new_pod_is_scheduled_and_runs_with_container_statuses(
        object_store: store.ObjectStore, kinds: Kinds, controllers: Controllers) -> None:
    """A pod is bound to a node, then runs: phase Running, all conditions True, a pod IP, and a
    ready, started container status per container.

    https://kubernetes.io/docs/concepts/workloads/pods/pod-lifecycle/#pod-conditions
    """
    object_store.create(kinds.pods, {"metadata": {"name": "solo"}, "spec": {"containers": [
        {"name": "a", "image": "nginx"}, {"name": "b", "image": "redis:7"}]}})
    await controllers.settle()

    pod = object_store.get(kinds.pods, "default", "solo")
    assert pod["spec"]["nodeName"]
    status = pod["status"]
    assert status["phase"] == "Running"
    assert {c["type"]: c["status"] for c in status["conditions"]} == {
        "PodReadyToStartContainers": "True", "Initialized": "True", "Ready": "True",
        "ContainersReady": "True", "PodScheduled": "True"}
    assert status["podIP"].startswith("10.244.") and status["hostIP"] and status["startTime"]
    assert [(c["name"], c["image"], c["ready"], c["started"], c["restartCount"])
            for c in status["containerStatuses"]] == [("a", "nginx", True, True, 0),
                                                      ("b", "redis:7", True, True, 0)]
    assert all("startedAt" in c["state"]["running"] for c in status["containerStatuses"])


async def test_a_pod_with_restart_policy_never_runs_its_image_to_completion_or_serves(
        object_store: store.ObjectStore, kinds: Kinds, controllers: Controllers) -> None:
    """Containers of a restartPolicy Never pod are never restarted: one whose image exits leaves the pod
    Succeeded, one whose image runs a server keeps it Running (the registry says which is which).

    https://kubernetes.io/docs/concepts/workloads/pods/pod-lifecycle/#restart-policy
    """
    object_store.create(kinds.configmaps, {"metadata": {"name": "sandbox-images", "namespace": "kube-system"},
                                           "data": {"images.yaml": "images:\n- image: busybox\n"
                                                                   "  behaviour: exitImmediately\n"}})
    for name, image in (("once", "busybox"), ("server", "nginx")):
        object_store.create(kinds.pods, {"metadata": {"name": name}, "spec": {
            "restartPolicy": "Never", "containers": [{"name": "a", "image": image}]}})
    await controllers.settle()
    status = object_store.get(kinds.pods, "default", "once")["status"]
    assert status["phase"] == "Succeeded"
    assert status["containerStatuses"][0]["state"]["terminated"]["exitCode"] == 0
    assert status["containerStatuses"][0]["state"]["terminated"]["reason"] == "Completed"
    assert object_store.get(kinds.pods, "default", "server")["status"]["phase"] == "Running"


async def test_a_statefulset_runs_ordinal_pods_and_rolls_them_on_restart(
        object_store: store.ObjectStore, kinds: Kinds, controllers: Controllers) -> None:
    """A StatefulSet's pods are `<name>-0..N-1`; a template change (rollout restart) replaces them
    and the update revision becomes the current revision.

    https://kubernetes.io/docs/concepts/workloads/controllers/statefulset/#rolling-updates
    """
    body = deployment(name="db", replicas=3)
    body.update(kind="StatefulSet")
    body["spec"]["serviceName"] = "db"
    object_store.create(kinds.statefulsets, body)
    await controllers.settle()
    statefulset = object_store.get(kinds.statefulsets, "default", "db")
    names = sorted(p["metadata"]["name"] for p in object_store.list(kinds.pods, "default"))
    assert names == ["db-0", "db-1", "db-2"]
    status = statefulset["status"]
    assert (status["replicas"], status["readyReplicas"], status["currentReplicas"], status["updatedReplicas"],
            status["availableReplicas"]) == (3, 3, 3, 3, 3)
    first_revision = status["updateRevision"]
    assert status["currentRevision"] == first_revision

    def restart(obj: Object) -> None:
        obj["spec"]["template"]["metadata"]["annotations"] = {
            "kubectl.kubernetes.io/restartedAt": "2025-01-01T12:00:00Z"}
    change(object_store, kinds.statefulsets, "db", restart)
    await controllers.settle()

    status = object_store.get(kinds.statefulsets, "default", "db")["status"]
    assert status["updateRevision"] != first_revision
    assert status["currentRevision"] == status["updateRevision"]
    assert status["updatedReplicas"] == 3 and status["readyReplicas"] == 3
    pods = object_store.list(kinds.pods, "default")
    assert {p["metadata"]["labels"]["controller-revision-hash"] for p in pods} == {status["updateRevision"]}


async def test_a_daemonset_reports_its_one_node_ready(
        object_store: store.ObjectStore, kinds: Kinds, controllers: Controllers) -> None:
    """On the sandbox's one node, a DaemonSet is scheduled once and ready (status only).

    https://kubernetes.io/docs/concepts/workloads/controllers/daemonset/
    """
    body = deployment(name="agent")
    body.update(kind="DaemonSet")
    del body["spec"]["replicas"]
    object_store.create(kinds.daemonsets, body)
    await controllers.settle()
    status = object_store.get(kinds.daemonsets, "default", "agent")["status"]
    assert status["desiredNumberScheduled"] == status["numberReady"] == status["updatedNumberScheduled"] == 1
    assert status["observedGeneration"] == 1


# -- Jobs ---------------------------------------------------------------------------------------


async def test_a_job_runs_its_pod_to_completion(
        object_store: store.ObjectStore, kinds: Kinds, controllers: Controllers) -> None:
    """A Job creates a pod labelled with its name and uid; when the pod succeeds the Job has
    succeeded: 1, a completionTime, and conditions SuccessCriteriaMet and Complete.

    https://kubernetes.io/docs/concepts/workloads/controllers/job/#job-termination-and-cleanup
    """
    object_store.create(kinds.jobs, job())
    await controllers.settle()

    finished = object_store.get(kinds.jobs, "default", "migrate")
    [pod] = owned_by(object_store, kinds.pods, finished)
    assert re.fullmatch(r"migrate-[a-z0-9]{5}", pod["metadata"]["name"])
    assert pod["metadata"]["labels"]["job-name"] == "migrate"
    assert pod["metadata"]["labels"]["batch.kubernetes.io/job-name"] == "migrate"
    assert pod["metadata"]["labels"]["controller-uid"] == finished["metadata"]["uid"]
    assert pod["status"]["phase"] == "Succeeded"
    status = finished["status"]
    assert status["succeeded"] == 1 and "failed" not in status and "active" not in status
    assert status["startTime"] and status["completionTime"]
    assert [(c["type"], c["status"]) for c in status["conditions"]] == [
        ("SuccessCriteriaMet", "True"), ("Complete", "True")]


@pytest.mark.parametrize("failing_job", [
    job(command=["sh", "-c", "fail"],
        annotations={kubelet.MESSAGE_ANNOTATION: "relation \"users\" does not exist"}),
    job(annotations={kubelet.OUTCOME_ANNOTATION: "Failed",
                     kubelet.MESSAGE_ANNOTATION: "relation \"users\" does not exist"}),
], ids=["command-says-fail", "outcome-annotation"])
async def test_a_failing_job_fails_after_its_backoff_limit_with_the_termination_message(
        object_store: store.ObjectStore, kinds: Kinds, controllers: Controllers, failing_job: Object) -> None:
    """A Job retries failed pods (after the Job controller's back-off); after backoffLimit + 1
    failures it has failed: 3 and conditions FailureTarget and Failed, reason BackoffLimitExceeded.
    Each failed pod's container terminated with exit code 1 and the termination message.

    https://kubernetes.io/docs/concepts/workloads/controllers/job/#pod-backoff-failure-policy
    """
    object_store.create(kinds.jobs, {**failing_job, "spec": {**failing_job["spec"], "backoffLimit": 2}})

    async def job_failed() -> bool:
        await controllers.settle()
        return "Failed" in {c["type"] for c in object_store.get(kinds.jobs, "default", "migrate")
                            .get("status", {}).get("conditions", ())}
    await wait_for(job_failed, timeout=30 * TIME_SCALE + 10)

    failed = object_store.get(kinds.jobs, "default", "migrate")
    assert failed["status"]["failed"] == 3 and "succeeded" not in failed["status"]
    assert "completionTime" not in failed["status"]
    reasons = [(c["type"], c["status"], c["reason"]) for c in failed["status"]["conditions"]]
    assert reasons == [("FailureTarget", "True", "BackoffLimitExceeded"),
                       ("Failed", "True", "BackoffLimitExceeded")]
    pods = owned_by(object_store, kinds.pods, failed)
    assert len(pods) == 3 and all(p["status"]["phase"] == "Failed" for p in pods)
    terminated = pods[0]["status"]["containerStatuses"][0]["state"]["terminated"]
    assert (terminated["exitCode"], terminated["reason"]) == (1, "Error")
    assert terminated["message"] == 'relation "users" does not exist'


async def test_a_failing_job_without_a_message_reports_exit_status_1(
        object_store: store.ObjectStore, kinds: Kinds, controllers: Controllers) -> None:
    """With backoffLimit 0 the first failed pod fails the Job; its termination message defaults.

    https://kubernetes.io/docs/concepts/workloads/controllers/job/#pod-backoff-failure-policy
    """
    object_store.create(kinds.jobs, job(command=["false", "fail"], backoffLimit=0))
    await controllers.settle()
    failed = object_store.get(kinds.jobs, "default", "migrate")
    assert failed["status"]["failed"] == 1 and condition(failed, "Failed")["status"] == "True"
    [pod] = owned_by(object_store, kinds.pods, failed)
    assert pod["status"]["containerStatuses"][0]["state"]["terminated"]["message"] == "exit status 1"


# -- Events -------------------------------------------------------------------------------------


async def test_the_controllers_record_events_like_the_real_ones(
        object_store: store.ObjectStore, kinds: Kinds, controllers: Controllers) -> None:
    """Deployments get ScalingReplicaSet, ReplicaSets and Jobs SuccessfulCreate, Jobs Completed;
    each Event names its involved object with kind, uid, apiVersion and resourceVersion.

    https://kubernetes.io/docs/reference/kubernetes-api/cluster-resources/event-v1/
    """
    object_store.create(kinds.deployments, deployment(replicas=2))
    object_store.create(kinds.jobs, job())
    await controllers.settle()

    deploy = object_store.get(kinds.deployments, "default", "web")
    [replica_set] = owned_by(object_store, kinds.replicasets, deploy)
    rs_name = replica_set["metadata"]["name"]
    [scaled] = [e for e in events_about(object_store, kinds, "web") if e["reason"] == "ScalingReplicaSet"]
    assert scaled["message"] == f"Scaled up replica set {rs_name} from 0 to 2"
    assert scaled["type"] == "Normal" and scaled["source"]["component"] == "deployment-controller"
    involved = scaled["involvedObject"]
    assert (involved["kind"], involved["apiVersion"], involved["uid"]) == (
        "Deployment", "apps/v1", deploy["metadata"]["uid"])
    assert involved["resourceVersion"] and scaled["count"] == 1
    assert scaled["firstTimestamp"] and scaled["lastTimestamp"]
    assert scaled["metadata"]["name"].startswith("web.")

    created = [e["message"] for e in events_about(object_store, kinds, rs_name)
               if e["reason"] == "SuccessfulCreate"]
    assert sorted(created) == sorted(f"Created pod: {p['metadata']['name']}"
                                     for p in owned_by(object_store, kinds.pods, replica_set))
    job_reasons = {e["reason"] for e in events_about(object_store, kinds, "migrate")}
    assert {"SuccessfulCreate", "Completed"} <= job_reasons


@pytest.mark.parametrize("simulations", [Simulations(events=False)])
async def test_with_events_off_no_events_are_recorded(
        object_store: store.ObjectStore, kinds: Kinds, controllers: Controllers) -> None:
    """Switching event recording off keeps the store free of Events (the workloads still converge).

    https://kubernetes.io/docs/reference/kubernetes-api/cluster-resources/event-v1/
    """
    object_store.create(kinds.deployments, deployment(replicas=1))
    await controllers.settle()
    assert object_store.list(kinds.events, "default") == []
    assert rollout_complete(object_store.get(kinds.deployments, "default", "web"))


# -- pure decisions -----------------------------------------------------------------------------


def test_the_pod_template_hash_is_stable_ignores_its_own_label_and_follows_the_template() -> None:
    """The ReplicaSet's template (with pod-template-hash) hashes like the Deployment's; any
    template change gives another hash, in Kubernetes' safe alphabet and at most 10 characters.

    https://kubernetes.io/docs/concepts/workloads/controllers/deployment/#pod-template-hash-label
    """
    template = deployment()["spec"]["template"]
    template_hash = deployments.pod_template_hash(template)
    labelled = copy.deepcopy(template)
    labelled["metadata"]["labels"]["pod-template-hash"] = template_hash
    assert deployments.pod_template_hash(labelled) == template_hash
    assert deployments.pod_template_hash(copy.deepcopy(template)) == template_hash
    assert deployments.pod_template_hash(deployment(image="nginx:1.26")["spec"]["template"]) != template_hash
    assert deployments.pod_template_hash(template, collision_count=1) != template_hash
    assert 1 <= len(template_hash) <= 10 and set(template_hash) <= set(naming.SAFE_ALPHABET)


def test_the_next_revision_is_one_past_the_highest() -> None:
    """A new ReplicaSet's revision is the highest revision of the Deployment's other ReplicaSets + 1.

    https://kubernetes.io/docs/concepts/workloads/controllers/deployment/#checking-rollout-history-of-a-deployment
    """
    def replica_set(revision_text: str | None) -> Object:
        annotations = {} if revision_text is None else {"deployment.kubernetes.io/revision": revision_text}
        return {"metadata": {"name": "x", "annotations": annotations}}
    assert deployments.next_revision([]) == 1
    assert deployments.next_revision([replica_set("2"), replica_set("7"), replica_set(None)]) == 8


@pytest.mark.parametrize(("replicas", "surge", "unavailable"), [(3, 1, 0), (4, 1, 1), (10, 3, 2), (1, 1, 0)])
def test_max_surge_and_max_unavailable_default_to_25_percent_rounded_outwards(
        replicas: int, surge: int, unavailable: int) -> None:
    """maxSurge 25% rounds up, maxUnavailable 25% rounds down.

    https://kubernetes.io/docs/concepts/workloads/controllers/deployment/#max-surge
    """
    assert deployments.fenceposts(deployment(replicas=replicas)) == (surge, unavailable)


def test_old_replicasets_scale_down_only_as_far_as_availability_allows() -> None:
    """Old pods are removed only while spec.replicas - maxUnavailable pods stay available.

    https://kubernetes.io/docs/concepts/workloads/controllers/deployment/#max-unavailable
    """
    deploy = deployment(replicas=4)  # maxUnavailable 1, maxSurge 1

    def replica_set(name: str, replicas: int, available: int) -> Object:
        return {"metadata": {"name": name, "creationTimestamp": "2025-01-01T00:00:00Z"},
                "spec": {"replicas": replicas},
                "status": {"replicas": replicas, "availableReplicas": available}}

    new_not_ready = replica_set("new", 1, 0)
    assert deployments.old_replicaset_targets(deploy, new_not_ready, [replica_set("old", 4, 4)]) == {"old": 3}
    assert deployments.old_replicaset_targets(deploy, new_not_ready, [replica_set("old", 3, 3)]) == {}
    new_ready = replica_set("new", 2, 2)
    assert deployments.old_replicaset_targets(deploy, new_ready, [replica_set("old", 3, 3)]) == {"old": 1}
