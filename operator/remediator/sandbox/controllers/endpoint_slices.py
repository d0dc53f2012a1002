"""The EndpointSlice controller: a Service's pods as discovery.k8s.io/v1 EndpointSlices.

Each endpoint's conditions are set as the real controller sets them (podToEndpoint):
`serving` is the pod's Ready condition, `terminating` is a set deletionTimestamp, and `ready` is
serving and not terminating — or always true with `publishNotReadyAddresses`. Terminating pods stay
in the slices for their grace period. Pods are grouped by the ports they resolve to, at most 100 per
slice; a Service that selects no pod keeps one empty placeholder slice. Slices are owned by their
Service, so the garbage collector deletes them with it.
https://kubernetes.io/docs/concepts/services-networking/endpoint-slices/#conditions
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from remediator.sandbox.controllers import cluster, ownership, pods, service_backends

Object = dict[str, Any]
SERVICE_NAME_LABEL = "kubernetes.io/service-name"
MANAGED_BY_LABEL = "endpointslice.kubernetes.io/managed-by"
MANAGED_BY = "endpointslice-controller.k8s.io"
MAX_ENDPOINTS_PER_SLICE = 100  # kube-controller-manager's --max-endpoints-per-slice default
PortsKey = tuple[tuple[str, int, str], ...]


def endpoint(pod: Mapping[str, Any], service: Mapping[str, Any]) -> Object:
    """The pod as an endpoint of the Service, with its ready/serving/terminating conditions."""
    serving = pods.is_ready(pod)
    terminating = ownership.is_terminating(pod)
    publish = service_backends.publishes_not_ready(service)
    ready = publish or (serving and not terminating)
    entry: Object = {"addresses": [service_backends.pod_ip(pod)],
                     "conditions": {"ready": ready, "serving": serving, "terminating": terminating}}
    name = service_backends.hostname(pod, service)
    if name is not None:
        entry["hostname"] = name
    entry["targetRef"] = service_backends.target_ref(pod)
    node = (pod.get("spec") or {}).get("nodeName")
    if node:
        entry["nodeName"] = node
    return entry


def slice_labels(service: Mapping[str, Any]) -> dict[str, str]:
    """The Service's labels (but the two the controller owns), its name and the manager's."""
    labels = {k: v for k, v in (service["metadata"].get("labels") or {}).items()
              if k not in (SERVICE_NAME_LABEL, MANAGED_BY_LABEL)}
    labels[SERVICE_NAME_LABEL] = service["metadata"]["name"]
    labels[MANAGED_BY_LABEL] = MANAGED_BY
    return service_backends.labels_with_headless(labels, service)


def desired_slices(service: Mapping[str, Any], selected: Sequence[Mapping[str, Any]]) -> list[tuple[PortsKey, Object]]:
    """(ports key, slice content: ports and endpoints) for the selected pods; a placeholder if none."""
    groups: dict[PortsKey, tuple[list[Object], list[Object]]] = {}
    for pod in selected:
        if not service_backends.should_be_in_endpoints(pod, include_terminating=True):
            continue
        ports = service_backends.resolved_ports(service, pod)
        key = _ports_key(ports)
        groups.setdefault(key, (ports, []))[1].append(endpoint(pod, service))
    if not groups:
        return [((), {"endpoints": []})]
    desired = []
    for key in sorted(groups):
        ports, endpoints = groups[key]
        for start in range(0, len(endpoints), MAX_ENDPOINTS_PER_SLICE):
            desired.append((key, {"ports": ports, "endpoints": endpoints[start:start + MAX_ENDPOINTS_PER_SLICE]}))
    return desired


def _ports_key(ports: Sequence[Mapping[str, Any]]) -> PortsKey:
    return tuple(sorted((str(p["name"]), int(p["port"]), str(p["protocol"])) for p in ports))


def sync(world: cluster.Cluster, service: Mapping[str, Any], selected: Sequence[Mapping[str, Any]]) -> None:
    """Create, update or delete the Service's managed slices until they hold the desired content."""
    labels = slice_labels(service)
    existing: dict[PortsKey, list[Object]] = {}
    for found in world.owned(world.endpointslices, service):
        if (found["metadata"].get("labels") or {}).get(MANAGED_BY_LABEL) == MANAGED_BY:
            existing.setdefault(_ports_key(found.get("ports") or ()), []).append(found)
    for key, content in desired_slices(service, selected):
        reusable = existing.get(key) or []
        if not reusable:
            _create(world, service, labels, content)
            continue
        current = reusable.pop(0)
        if (current.get("endpoints") or []) != content["endpoints"] or current.get("ports") != content.get("ports") \
                or current["metadata"].get("labels") != labels:
            kept = {k: v for k, v in current.items() if k not in ("ports", "endpoints")}
            world.update(world.endpointslices, {**cluster.changed(kept, metadata={"labels": labels}), **content})
    for leftovers in existing.values():
        for doomed in leftovers:
            world.delete(world.endpointslices, doomed)


def _create(world: cluster.Cluster, service: Mapping[str, Any], labels: Mapping[str, str],
            content: Mapping[str, Any]) -> None:
    meta = service["metadata"]
    body = {"apiVersion": "discovery.k8s.io/v1", "kind": "EndpointSlice", "addressType": "IPv4",
            "metadata": {"namespace": meta["namespace"], "labels": dict(labels),
                         "ownerReferences": [ownership.controller_reference(service)]},
            **content}
    world.create_with_random_name(world.endpointslices, body, f"{meta['name']}-")
