"""Contract: built-in kinds read back with the defaults kube-apiserver fills in.

https://kubernetes.io/docs/reference/using-api/api-concepts/#defaulting
"""

from __future__ import annotations

import httpx
import pytest

from remediator.sandbox import controllers

from .support import NO_CONTROLLERS, created, template

NS = "/namespaces/default"


@pytest.fixture()
def simulations() -> controllers.Simulations:
    return NO_CONTROLLERS


async def test_a_deployment_gets_its_rollout_defaults(api: httpx.AsyncClient) -> None:
    """replicas 1, RollingUpdate with maxSurge and maxUnavailable 25%, revisionHistoryLimit 10,
    progressDeadlineSeconds 600.

    https://kubernetes.io/docs/concepts/workloads/controllers/deployment/#writing-a-deployment-spec
    """
    obj = await created(api, f"/apis/apps/v1{NS}/deployments", {
        "metadata": {"name": "shop"}, "spec": {"selector": {"matchLabels": {"app": "shop"}}, "template": template()}})
    spec = obj["spec"]
    assert spec["replicas"] == 1
    assert spec["strategy"] == {"type": "RollingUpdate", "rollingUpdate": {"maxSurge": "25%", "maxUnavailable": "25%"}}
    assert (spec["revisionHistoryLimit"], spec["progressDeadlineSeconds"]) == (10, 600)


async def test_a_recreate_deployment_gets_no_rolling_update_parameters(api: httpx.AsyncClient) -> None:
    """https://kubernetes.io/docs/concepts/workloads/controllers/deployment/#recreate-deployment"""
    obj = await created(api, f"/apis/apps/v1{NS}/deployments", {
        "metadata": {"name": "shop"}, "spec": {"strategy": {"type": "Recreate"},
                                               "selector": {"matchLabels": {"app": "shop"}}, "template": template()}})
    assert obj["spec"]["strategy"] == {"type": "Recreate"}


async def test_a_statefulset_and_a_daemonset_get_their_update_strategies(api: httpx.AsyncClient) -> None:
    """https://kubernetes.io/docs/concepts/workloads/controllers/statefulset/#update-strategies
    https://kubernetes.io/docs/concepts/workloads/controllers/statefulset/#pod-management-policies
    https://kubernetes.io/docs/tasks/manage-daemon/update-daemon-set/#daemonset-update-strategy
    """
    selector = {"matchLabels": {"app": "shop"}}
    sts = await created(api, f"/apis/apps/v1{NS}/statefulsets", {
        "metadata": {"name": "db"}, "spec": {"serviceName": "db", "selector": selector, "template": template()}})
    assert sts["spec"]["updateStrategy"] == {"type": "RollingUpdate", "rollingUpdate": {"partition": 0}}
    assert (sts["spec"]["podManagementPolicy"], sts["spec"]["replicas"], sts["spec"]["revisionHistoryLimit"]) == (
        "OrderedReady", 1, 10)
    ds = await created(api, f"/apis/apps/v1{NS}/daemonsets", {
        "metadata": {"name": "agent"}, "spec": {"selector": selector, "template": template()}})
    assert ds["spec"]["updateStrategy"] == {"type": "RollingUpdate",
                                            "rollingUpdate": {"maxUnavailable": 1, "maxSurge": 0}}


async def test_a_job_gets_counts_and_a_selector_made_of_its_own_uid(api: httpx.AsyncClient) -> None:
    """completions and parallelism 1, backoffLimit 6; the server generates the selector
    (batch.kubernetes.io/controller-uid) and labels the pod template with the Job's uid and name.

    https://kubernetes.io/docs/concepts/workloads/controllers/job/#pod-backoff-failure-policy
    https://kubernetes.io/docs/reference/labels-annotations-taints/#batchkubernetesiocontroller-uid
    """
    job = await created(api, f"/apis/batch/v1{NS}/jobs", {
        "metadata": {"name": "migrate"}, "spec": {"template": template(restartPolicy="Never")}})
    spec, uid = job["spec"], job["metadata"]["uid"]
    assert (spec["completions"], spec["parallelism"], spec["backoffLimit"]) == (1, 1, 6)
    assert spec["selector"] == {"matchLabels": {"batch.kubernetes.io/controller-uid": uid}}
    assert spec["template"]["metadata"]["labels"] == {
        "app": "shop", "batch.kubernetes.io/controller-uid": uid, "batch.kubernetes.io/job-name": "migrate",
        "controller-uid": uid, "job-name": "migrate"}
    assert spec["template"]["spec"]["restartPolicy"] == "Never"
    assert job["metadata"]["labels"] == {"app": "shop"}  # a Job without labels takes its template's


async def test_a_pod_gets_its_spec_and_container_defaults(api: httpx.AsyncClient) -> None:
    """https://kubernetes.io/docs/concepts/workloads/pods/pod-lifecycle/#restart-policy
    https://kubernetes.io/docs/concepts/containers/images/#imagepullpolicy-defaulting
    https://kubernetes.io/docs/concepts/services-networking/dns-pod-service/#pod-s-dns-policy
    https://kubernetes.io/docs/concepts/workloads/pods/pod-qos/#besteffort
    """
    pod = await created(api, f"/api/v1{NS}/pods", {"metadata": {"name": "p"}, "spec": {"containers": [
        {"name": "a", "image": "shop:1.0"}, {"name": "b", "image": "shop"}, {"name": "c", "image": "shop:latest"},
        {"name": "d", "image": "registry:5000/shop@sha256:" + "0" * 64}]}})
    spec = pod["spec"]
    assert (spec["restartPolicy"], spec["terminationGracePeriodSeconds"]) == ("Always", 30)
    assert (spec["dnsPolicy"], spec["schedulerName"]) == ("ClusterFirst", "default-scheduler")
    assert [c["imagePullPolicy"] for c in spec["containers"]] == ["IfNotPresent", "Always", "Always", "IfNotPresent"]
    assert {(c["terminationMessagePath"], c["terminationMessagePolicy"]) for c in spec["containers"]} == {
        ("/dev/termination-log", "File")}
    assert pod["status"] == {"phase": "Pending", "qosClass": "BestEffort"}


async def test_restart_policy_and_pull_policy_set_by_the_client_are_kept(api: httpx.AsyncClient) -> None:
    """https://kubernetes.io/docs/concepts/workloads/pods/pod-lifecycle/#restart-policy"""
    pod = await created(api, f"/api/v1{NS}/pods", {"metadata": {"name": "p"}, "spec": {
        "restartPolicy": "OnFailure", "containers": [{"name": "a", "image": "shop", "imagePullPolicy": "Never"}]}})
    assert pod["spec"]["restartPolicy"] == "OnFailure"
    assert pod["spec"]["containers"][0]["imagePullPolicy"] == "Never"


async def test_a_service_a_secret_and_a_namespace_get_their_defaults(api: httpx.AsyncClient) -> None:
    """https://kubernetes.io/docs/concepts/services-networking/service/#publishing-services-service-types
    https://kubernetes.io/docs/concepts/configuration/secret/#opaque-secrets
    https://kubernetes.io/docs/reference/kubernetes-api/config-and-storage-resources/secret-v1/
    https://kubernetes.io/docs/concepts/overview/working-with-objects/namespaces/#automatic-labelling
    """
    service = await created(api, f"/api/v1{NS}/services", {"metadata": {"name": "web"},
                                                           "spec": {"ports": [{"port": 80}]}})
    assert service["spec"]["type"] == "ClusterIP"
    assert service["spec"]["ports"] == [{"port": 80, "protocol": "TCP", "targetPort": 80}]
    secret = await created(api, f"/api/v1{NS}/secrets", {"metadata": {"name": "s"}, "data": {"a": "YQ=="},
                                                         "stringData": {"a": "b", "k": "v"}})
    assert secret["type"] == "Opaque"
    # stringData is merged into data (base64, winning over data) and never read back.
    assert secret["data"] == {"a": "Yg==", "k": "dg=="} and "stringData" not in secret
    namespace = await created(api, "/api/v1/namespaces", {"metadata": {"name": "team"}})
    assert namespace["metadata"]["labels"] == {"kubernetes.io/metadata.name": "team"}


async def test_defaults_apply_on_update_and_do_not_count_as_a_change(api: httpx.AsyncClient) -> None:
    """A PUT of the object as the client first wrote it (without defaults) changes nothing.

    https://kubernetes.io/docs/reference/using-api/api-concepts/#defaulting
    """
    body = {"metadata": {"name": "shop"}, "spec": {"selector": {"matchLabels": {"app": "shop"}},
                                                   "template": template()}}
    obj = await created(api, f"/apis/apps/v1{NS}/deployments", body)
    again = await api.put(f"/apis/apps/v1{NS}/deployments/shop", json=body)
    assert again.status_code == 200
    assert again.json()["metadata"]["resourceVersion"] == obj["metadata"]["resourceVersion"]
    assert again.json()["metadata"]["generation"] == 1

