"""The endpoint controllers of one Service: its EndpointSlices and its legacy Endpoints.

Both read the same pods: those the Service's selector matches, found through the
`service_pods` index (never a scan of every pod). A Service without a selector, or of type
ExternalName, gets nothing from them, as in a cluster: its endpoints are managed by hand.
"""

from __future__ import annotations

from remediator.sandbox.controllers import cluster, endpoint_slices, legacy_endpoints, ownership, service_pods


def reconcile(world: cluster.Cluster, namespace: str, name: str) -> float | None:
    service = world.find(world.services, namespace, name)
    if service is None:
        world.service_pods.forget(namespace, name)
        legacy_endpoints.remove(world, namespace, name)  # the slices go with their owner
        return None
    selector = service_pods.selector_of(service)
    spec = service.get("spec") or {}
    if ownership.is_terminating(service) or not selector or spec.get("type") == "ExternalName":
        world.service_pods.forget(namespace, name)
        return None
    names = world.service_pods.selected(namespace, name, selector)
    if names is None:  # first seen, or its selector changed: index it from its namespace's pods
        names = {pod["metadata"]["name"] for pod in world.store.list(world.pods, namespace)
                 if service_pods.matches(selector, pod["metadata"].get("labels") or {})}
        world.service_pods.track(namespace, name, selector, names)
    selected = [pod for pod in (world.find(world.pods, namespace, n) for n in sorted(names)) if pod is not None]
    endpoint_slices.sync(world, service, selected)
    legacy_endpoints.sync(world, service, selected)
    return None
