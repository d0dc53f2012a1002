"""Defaulting of built-in kinds: the fields kube-apiserver fills in when a client leaves them out.

Mirrors the generated defaulters (`pkg/apis/*/v1/defaults.go`) plus the create-time parts of the
registry strategies (a Job's generated selector, a Pod's initial status), so that objects read
back from the sandbox look like those read back from a cluster: `kubectl get -o yaml`, diffs and
`kubectl apply` see the same fields.
https://kubernetes.io/docs/reference/using-api/api-concepts/#defaulting
"""

from __future__ import annotations

import base64
from collections.abc import Callable, MutableMapping
from typing import Any

Object = MutableMapping[str, Any]

JOB_CONTROLLER_UID = "batch.kubernetes.io/controller-uid"
JOB_NAME = "batch.kubernetes.io/job-name"
LEGACY_JOB_CONTROLLER_UID = "controller-uid"
LEGACY_JOB_NAME = "job-name"
NAMESPACE_NAME_LABEL = "kubernetes.io/metadata.name"


def _spec(obj: Object) -> Object:
    spec = obj.get("spec")
    if not isinstance(spec, dict):
        spec = obj["spec"] = {}
    return spec


def _child(parent: Object, name: str) -> Object | None:
    """A nested object to default into, created when absent; None when the client sent a non-object."""
    value = parent.setdefault(name, {})
    return value if isinstance(value, dict) else None


def _image_pull_policy(image: str) -> str:
    """Always for `:latest` or an untagged image without a digest, else IfNotPresent (SetDefaults_Container)."""
    name, _, digest = image.partition("@")
    last = name.rsplit("/", 1)[-1]
    tag = last.partition(":")[2] if ":" in last else ("" if digest else "latest")
    return "Always" if tag == "latest" else "IfNotPresent"


def _probe(probe: Any) -> None:
    if not isinstance(probe, dict):
        return
    for field, value in (("timeoutSeconds", 1), ("periodSeconds", 10), ("successThreshold", 1),
                         ("failureThreshold", 3)):
        probe.setdefault(field, value)
    http_get = probe.get("httpGet")
    if isinstance(http_get, dict):
        http_get.setdefault("path", "/")
        http_get.setdefault("scheme", "HTTP")


def _container(container: Any) -> None:
    if not isinstance(container, dict):
        return
    if not container.get("imagePullPolicy"):
        container["imagePullPolicy"] = _image_pull_policy(str(container.get("image") or ""))
    container.setdefault("terminationMessagePath", "/dev/termination-log")
    container.setdefault("terminationMessagePolicy", "File")
    for port in container.get("ports") or ():
        if isinstance(port, dict):
            port.setdefault("protocol", "TCP")
    for probe in ("livenessProbe", "readinessProbe", "startupProbe"):
        _probe(container.get(probe))


def _pod_spec(spec: Object) -> None:
    """SetDefaults_PodSpec and the container defaulters: shared by pods and pod templates."""
    spec.setdefault("restartPolicy", "Always")
    spec.setdefault("terminationGracePeriodSeconds", 30)
    spec.setdefault("dnsPolicy", "ClusterFirst")
    spec.setdefault("schedulerName", "default-scheduler")
    spec.setdefault("securityContext", {})
    for group in ("initContainers", "containers"):
        for container in spec.get(group) or ():
            _container(container)
    for volume in spec.get("volumes") or ():
        if not isinstance(volume, dict):
            continue
        for source in ("secret", "configMap"):
            if isinstance(volume.get(source), dict):
                volume[source].setdefault("defaultMode", 0o644)


def _template(spec: Object) -> None:
    template = _child(spec, "template")
    if template is not None:
        pod_spec = _child(template, "spec")
        if pod_spec is not None:
            _pod_spec(pod_spec)


def _pod(pod: Object) -> None:
    spec = _spec(pod)
    _pod_spec(spec)
    spec.setdefault("enableServiceLinks", True)
    # Requests default to the limits a container sets (SetDefaults_Pod).
    for group in ("initContainers", "containers"):
        for container in spec.get(group) or ():
            resources = container.get("resources") if isinstance(container, dict) else None
            if isinstance(resources, dict) and isinstance(resources.get("limits"), dict):
                requests = resources.setdefault("requests", {})
                for name, limit in resources["limits"].items():
                    requests.setdefault(name, limit)


def _rolling_update(spec: Object, field: str, *, max_unavailable: int | str, max_surge: int | str) -> None:
    """A Deployment's or DaemonSet's strategy: RollingUpdate unless set, then its maxUnavailable and maxSurge."""
    strategy = _child(spec, field)
    if strategy is None:
        return
    strategy.setdefault("type", "RollingUpdate")
    if strategy["type"] == "RollingUpdate":
        rolling = _child(strategy, "rollingUpdate")
        if rolling is not None:
            rolling.setdefault("maxUnavailable", max_unavailable)
            rolling.setdefault("maxSurge", max_surge)


def _deployment(deployment: Object) -> None:
    spec = _spec(deployment)
    spec.setdefault("replicas", 1)
    _rolling_update(spec, "strategy", max_unavailable="25%", max_surge="25%")
    spec.setdefault("revisionHistoryLimit", 10)
    spec.setdefault("progressDeadlineSeconds", 600)
    _template(spec)


def _replicaset(replicaset: Object) -> None:
    spec = _spec(replicaset)
    spec.setdefault("replicas", 1)
    _template(spec)


def _statefulset(statefulset: Object) -> None:
    spec = _spec(statefulset)
    spec.setdefault("podManagementPolicy", "OrderedReady")
    strategy = _child(spec, "updateStrategy")
    if strategy is not None:
        if not strategy.get("type"):
            strategy["type"] = "RollingUpdate"
            strategy.setdefault("rollingUpdate", {})
        rolling = strategy.get("rollingUpdate")
        if strategy["type"] == "RollingUpdate" and isinstance(rolling, dict):
            rolling.setdefault("partition", 0)
    spec.setdefault("persistentVolumeClaimRetentionPolicy", {"whenDeleted": "Retain", "whenScaled": "Retain"})
    spec.setdefault("replicas", 1)
    spec.setdefault("revisionHistoryLimit", 10)
    _template(spec)


def _daemonset(daemonset: Object) -> None:
    spec = _spec(daemonset)
    _rolling_update(spec, "updateStrategy", max_unavailable=1, max_surge=0)
    spec.setdefault("revisionHistoryLimit", 10)
    _template(spec)


def _job(job: Object) -> None:
    spec = _spec(job)
    if spec.get("completions") is None and spec.get("parallelism") is None:
        spec["completions"] = 1
    spec.setdefault("parallelism", 1)
    spec.setdefault("backoffLimit", 2_147_483_647 if spec.get("backoffLimitPerIndex") is not None else 6)
    spec.setdefault("completionMode", "NonIndexed")
    spec.setdefault("suspend", False)
    spec.setdefault("podReplacementPolicy", "Failed" if spec.get("podFailurePolicy") else "TerminatingOrFailed")
    template_labels = ((spec.get("template") or {}).get("metadata") or {}).get("labels")
    meta = job["metadata"]
    if template_labels and not meta.get("labels"):
        meta["labels"] = dict(template_labels)
    _template(spec)


def _service(service: Object) -> None:
    spec = _spec(service)
    spec.setdefault("type", "ClusterIP")
    spec.setdefault("sessionAffinity", "None")
    if spec["type"] in ("ClusterIP", "NodePort", "LoadBalancer"):
        spec.setdefault("internalTrafficPolicy", "Cluster")
    for port in spec.get("ports") or ():
        if isinstance(port, dict):
            port.setdefault("protocol", "TCP")
            if "port" in port:
                port.setdefault("targetPort", port["port"])


def _secret(secret: Object) -> None:
    secret.setdefault("type", "Opaque")
    # stringData is write-only: the conversion into the internal Secret merges it into data.
    string_data = secret.pop("stringData", None)
    if isinstance(string_data, dict) and string_data:
        data = secret.get("data")
        if not isinstance(data, dict):
            data = secret["data"] = {}
        for key, value in string_data.items():
            data[key] = base64.b64encode(str(value).encode()).decode()


def _namespace(namespace: Object) -> None:
    labels = namespace["metadata"].setdefault("labels", {})
    if isinstance(labels, dict):
        labels[NAMESPACE_NAME_LABEL] = namespace["metadata"].get("name", "")


DEFAULTERS: dict[tuple[str, str], Callable[[Object], None]] = {
    ("", "Pod"): _pod,
    ("", "Service"): _service,
    ("", "Secret"): _secret,
    ("", "Namespace"): _namespace,
    ("apps", "Deployment"): _deployment,
    ("apps", "ReplicaSet"): _replicaset,
    ("apps", "StatefulSet"): _statefulset,
    ("apps", "DaemonSet"): _daemonset,
    ("batch", "Job"): _job,
}


def apply(group: str, kind: str, obj: Object) -> None:
    """Fill in the defaults of a built-in kind in place; other kinds are left alone.

    Only absent fields are set. Values of the wrong type are left for validation to reject.
    """
    defaulter = DEFAULTERS.get((group, kind))
    if defaulter is not None and isinstance(obj.get("metadata"), dict):
        defaulter(obj)


def prepare_job_for_create(job: Object) -> None:
    """The selector and pod labels the Job registry generates from the new Job's uid.

    Skipped with `spec.manualSelector: true`, where the client owns the selector.
    https://kubernetes.io/docs/concepts/workloads/controllers/job/#specifying-your-own-pod-selector
    """
    spec = _spec(job)
    if spec.get("manualSelector") is True:
        return
    meta = job["metadata"]
    template = _child(spec, "template")
    template_meta = _child(template, "metadata") if template is not None else None
    if template_meta is None:
        return
    labels = template_meta.setdefault("labels", {})
    if not isinstance(labels, dict):
        return
    for label in (LEGACY_JOB_NAME, JOB_NAME):
        labels.setdefault(label, meta.get("name", ""))
    for label in (LEGACY_JOB_CONTROLLER_UID, JOB_CONTROLLER_UID):
        labels.setdefault(label, meta["uid"])
    selector = _child(spec, "selector")
    if selector is not None:
        match_labels = _child(selector, "matchLabels")
        if match_labels is not None:
            match_labels.setdefault(JOB_CONTROLLER_UID, meta["uid"])


def initial_pod_status(pod: Object) -> dict[str, Any]:
    """A new Pod's status: Pending, with its QoS class (the Pod registry's PrepareForCreate)."""
    return {"phase": "Pending", "qosClass": qos_class(pod)}


def qos_class(pod: Object) -> str:
    """Guaranteed when every container's cpu and memory requests equal its limits, BestEffort with
    no requests or limits at all, Burstable otherwise (pkg/apis/core/helper/qos).
    https://kubernetes.io/docs/concepts/workloads/pods/pod-qos/
    """
    containers = [c for group in ("initContainers", "containers")
                  for c in (pod.get("spec") or {}).get(group) or () if isinstance(c, dict)]
    any_set = False
    guaranteed = bool(containers)
    for container in containers:
        resources = container.get("resources") or {}
        requests = resources.get("requests") or {}
        limits = resources.get("limits") or {}
        if requests or limits:
            any_set = True
        for name in ("cpu", "memory"):
            if name not in limits or str(requests.get(name, limits[name])) != str(limits[name]):
                guaranteed = False
    if not any_set:
        return "BestEffort"
    return "Guaranteed" if guaranteed else "Burstable"
