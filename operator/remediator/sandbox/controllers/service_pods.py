"""Which pods each Service selects: the endpoint controllers' index, kept current from pod events.

A pod's change concerns only the Services of its namespace whose selector matches it now or
matched it before; the controllers then read those Services' pods by name. Nothing here scans
every pod: a Service is (re)indexed from its namespace's pods only when it is first seen or its
selector changes.
"""

from __future__ import annotations

from collections.abc import Mapping

Selector = frozenset[tuple[str, str]]


def selector_of(service: Mapping[str, object]) -> Selector | None:
    """The Service's selector as a set of label pairs; None for a Service without one (its
    endpoints are managed by hand, as in a cluster)."""
    selector = (service.get("spec") or {}).get("selector")  # type: ignore[attr-defined]
    if not isinstance(selector, Mapping):
        return None
    return frozenset((str(k), str(v)) for k, v in selector.items())


def matches(selector: Selector, labels: Mapping[str, str]) -> bool:
    """A Service's selector is a set of equalities (never empty for a Service the controllers serve)."""
    return bool(selector) and all(labels.get(key) == value for key, value in selector)


class ServicePods:
    """(namespace, Service) → the selector it was indexed with and the names of the pods it selects."""

    def __init__(self) -> None:
        self._services: dict[str, dict[str, tuple[Selector, set[str]]]] = {}

    def selected(self, namespace: str, service: str, selector: Selector) -> set[str] | None:
        """The pods the Service selects, or None when it is not indexed under this selector."""
        entry = self._services.get(namespace, {}).get(service)
        return entry[1] if entry is not None and entry[0] == selector else None

    def track(self, namespace: str, service: str, selector: Selector, pods: set[str]) -> None:
        self._services.setdefault(namespace, {})[service] = (selector, pods)

    def forget(self, namespace: str, service: str) -> None:
        self._services.get(namespace, {}).pop(service, None)

    def pod_changed(self, namespace: str, pod: str, labels: Mapping[str, str], gone: bool) -> list[str]:
        """Record a pod's write; the Services whose endpoints it may change (they select it, or did)."""
        touched = []
        for service, (selector, members) in self._services.get(namespace, {}).items():
            if not gone and matches(selector, labels):
                members.add(pod)
                touched.append(service)
            elif pod in members:
                members.discard(pod)
                touched.append(service)
        return touched
