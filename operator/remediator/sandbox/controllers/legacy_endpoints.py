"""The Endpoints controller: a Service's pods as the legacy v1 Endpoints object of the same name.

Ready pods are in `addresses`, the others in `notReadyAddresses`; with `publishNotReadyAddresses`
every pod is in `addresses`, terminating ones included, and without it terminating pods are left
out. Subsets group the addresses that share a set of ports (RepackSubsets). The object carries the
Service's labels and no ownerReference: the controller deletes it when the Service is gone.
https://kubernetes.io/docs/concepts/services-networking/service/#endpoints
"""

from __future__ import annotations

import ipaddress
from collections.abc import Mapping, Sequence
from typing import Any

from remediator.sandbox.controllers import cluster, pods, service_backends

Object = dict[str, Any]


def address(pod: Mapping[str, Any], service: Mapping[str, Any]) -> Object:
    entry: Object = {"ip": service_backends.pod_ip(pod)}
    name = service_backends.hostname(pod, service)
    if name is not None:
        entry["hostname"] = name
    node = (pod.get("spec") or {}).get("nodeName")
    if node:
        entry["nodeName"] = node
    entry["targetRef"] = service_backends.target_ref(pod)
    return entry


def subsets(service: Mapping[str, Any], selected: Sequence[Mapping[str, Any]]) -> list[Object]:
    """The Endpoints' subsets: one per distinct set of resolved ports, addresses sorted by IP."""
    publish = service_backends.publishes_not_ready(service)
    has_ports = bool((service.get("spec") or {}).get("ports"))
    grouped: dict[tuple[tuple[str, int, str], ...], tuple[list[Object], dict[str, Object], dict[str, Object]]] = {}
    for pod in selected:
        if not service_backends.should_be_in_endpoints(pod, include_terminating=publish):
            continue
        if has_ports:
            port_sets = [[port] for port in service_backends.resolved_ports(service, pod)]
        elif service_backends.is_headless(service):
            port_sets = [[]]  # a headless Service may have no ports: its addresses alone
        else:
            port_sets = []
        ready = publish or pods.is_ready(pod)
        for ports in port_sets:
            key = tuple((str(p["name"]), int(p["port"]), str(p["protocol"])) for p in ports)
            group = grouped.setdefault(key, (ports, {}, {}))
            entry = address(pod, service)
            (group[1] if ready else group[2])[entry["ip"]] = entry
    result = []
    for key in sorted(grouped):
        ports, ready_by_ip, not_ready_by_ip = grouped[key]
        subset: Object = {}
        if ready_by_ip:
            subset["addresses"] = _by_ip(ready_by_ip)
        # An address both ready and not ready in a subset is ready (RepackSubsets).
        not_ready = {ip: a for ip, a in not_ready_by_ip.items() if ip not in ready_by_ip}
        if not_ready:
            subset["notReadyAddresses"] = _by_ip(not_ready)
        if ports:
            subset["ports"] = ports
        result.append(subset)
    return result


def _by_ip(addresses: Mapping[str, Object]) -> list[Object]:
    return [addresses[ip] for ip in sorted(addresses, key=ipaddress.ip_address)]


def sync(world: cluster.Cluster, service: Mapping[str, Any], selected: Sequence[Mapping[str, Any]]) -> None:
    """Create or update the Endpoints; nothing is written when its subsets and labels are already right."""
    meta = service["metadata"]
    labels = service_backends.labels_with_headless(meta.get("labels") or {}, service)
    wanted = subsets(service, selected)
    current = world.find(world.endpoints, meta["namespace"], meta["name"])
    if current is None:
        body: Object = {"apiVersion": "v1", "kind": "Endpoints",
                        "metadata": {"name": meta["name"], "namespace": meta["namespace"], "labels": labels}}
        if wanted:
            body["subsets"] = wanted
        world.create(world.endpoints, body)
        return
    if (current.get("subsets") or []) == wanted and (current["metadata"].get("labels") or {}) == labels:
        return
    updated = {k: v for k, v in cluster.changed(current, metadata={"labels": labels}).items() if k != "subsets"}
    if wanted:
        updated["subsets"] = wanted
    world.update(world.endpoints, updated)


def remove(world: cluster.Cluster, namespace: str, name: str) -> None:
    """The Service is gone: so are its Endpoints."""
    current = world.find(world.endpoints, namespace, name)
    if current is not None:
        world.delete(world.endpoints, current)
