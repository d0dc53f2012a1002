"""What both endpoint controllers read from a Service's pods: which count, their ports, their address.

Follows kube-controller-manager's shared helpers (endpointslice util ShouldPodBeInEndpoints,
podutil.FindPort, ShouldSetHostname).
https://kubernetes.io/docs/concepts/services-networking/endpoint-slices/
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

from remediator.sandbox.controllers import ownership, pods

Object = dict[str, Any]
HEADLESS_LABEL = "service.kubernetes.io/headless"


def should_be_in_endpoints(pod: Mapping[str, Any], include_terminating: bool) -> bool:
    """A finished pod or one without an IP serves nothing; a terminating one only when asked for."""
    if pods.phase(pod) in pods.FINISHED_PHASES or not pod_ip(pod):
        return False
    return include_terminating or not ownership.is_terminating(pod)


def pod_ip(pod: Mapping[str, Any]) -> str:
    return str((pod.get("status") or {}).get("podIP") or "")


def publishes_not_ready(service: Mapping[str, Any]) -> bool:
    return bool((service.get("spec") or {}).get("publishNotReadyAddresses"))


def is_headless(service: Mapping[str, Any]) -> bool:
    return (service.get("spec") or {}).get("clusterIP") == "None"


def _container_ports(pod: Mapping[str, Any]) -> Iterator[Mapping[str, Any]]:
    # Regular containers, then sidecars (init containers that keep running), as FindPort looks.
    spec = pod.get("spec") or {}
    sidecars = [c for c in spec.get("initContainers") or () if c.get("restartPolicy") == "Always"]
    for container in list(spec.get("containers") or ()) + sidecars:
        yield from container.get("ports") or ()


def find_port(pod: Mapping[str, Any], service_port: Mapping[str, Any]) -> int | None:
    """The pod's port for a Service port: a numeric targetPort as is, a named one by the container
    port of that name and protocol; None when the pod has no such port (it then gets no entry for it)."""
    target = service_port.get("targetPort", service_port.get("port"))
    if isinstance(target, int):
        return target
    protocol = service_port.get("protocol", "TCP")
    for port in _container_ports(pod):
        if port.get("name") == target and port.get("protocol", "TCP") == protocol:
            return int(port["containerPort"])
    return None


def endpoint_port(service_port: Mapping[str, Any], number: int) -> Object:
    """The EndpointPort of a resolved Service port: its name ("" when unnamed), number and protocol."""
    port: Object = {"name": str(service_port.get("name") or ""), "port": number,
                    "protocol": service_port.get("protocol", "TCP")}
    if service_port.get("appProtocol"):
        port["appProtocol"] = service_port["appProtocol"]
    return port


def resolved_ports(service: Mapping[str, Any], pod: Mapping[str, Any]) -> list[Object]:
    """The Service's ports the pod has, in the Service's order."""
    ports = []
    for service_port in (service.get("spec") or {}).get("ports") or ():
        number = find_port(pod, service_port)
        if number is not None:
            ports.append(endpoint_port(service_port, number))
    return ports


def target_ref(pod: Mapping[str, Any]) -> Object:
    meta = pod["metadata"]
    return {"kind": "Pod", "namespace": meta.get("namespace", ""), "name": meta["name"], "uid": meta["uid"]}


def hostname(pod: Mapping[str, Any], service: Mapping[str, Any]) -> str | None:
    """The pod's hostname when its subdomain is this Service (a StatefulSet's governing Service)."""
    spec = pod.get("spec") or {}
    if spec.get("hostname") and spec.get("subdomain") == service["metadata"]["name"]:
        return str(spec["hostname"])
    return None


def labels_with_headless(labels: Mapping[str, str], service: Mapping[str, Any]) -> dict[str, str]:
    """Labels plus `service.kubernetes.io/headless` for a headless Service (without it otherwise)."""
    result = {k: v for k, v in labels.items() if k != HEADLESS_LABEL}
    if is_headless(service):
        result[HEADLESS_LABEL] = ""
    return result
