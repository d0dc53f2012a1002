"""The resource types the sandbox serves: built-in kinds and those registered by CRDs."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Mapping
from typing import Any

from remediator.sandbox import cel_rules

ALL_VERBS = ("create", "delete", "deletecollection", "get", "list", "patch", "update", "watch")


@dataclasses.dataclass(frozen=True)
class ResourceType:
    """One served resource (group, version, plural) and what the server knows about it."""

    group: str
    version: str
    plural: str
    singular: str
    kind: str
    namespaced: bool
    short_names: tuple[str, ...] = ()
    categories: tuple[str, ...] = ()
    subresources: frozenset[str] = frozenset()
    # The openAPIV3Schema of a custom resource; None for built-ins (not validated here).
    schema: Mapping[str, Any] | None = None
    printer_columns: tuple[Mapping[str, Any], ...] = ()
    # Generation is bumped on spec changes only for kinds that have it (not ConfigMaps, Events...).
    has_generation: bool = True
    custom: bool = False
    # The schema's x-kubernetes-validations, compiled once when the CRD is stored.
    rules: cel_rules.Node | None = dataclasses.field(default=None, compare=False)
    # What can be done with it: reviews and TokenRequest-like kinds are only created, never stored.
    verbs: tuple[str, ...] = ALL_VERBS

    @property
    def api_version(self) -> str:
        return f"{self.group}/{self.version}" if self.group else self.version

    @property
    def key(self) -> tuple[str, str]:
        """What identifies the resource across versions: (group, plural)."""
        return (self.group, self.plural)

    @property
    def group_resource(self) -> str:
        return f"{self.plural}.{self.group}" if self.group else self.plural

    @property
    def list_kind(self) -> str:
        return f"{self.kind}List"

    def url(self, namespace: str | None = None, name: str | None = None) -> str:
        prefix = f"/apis/{self.group}/{self.version}" if self.group else f"/api/{self.version}"
        parts = [prefix]
        if self.namespaced and namespace:
            parts.append(f"namespaces/{namespace}")
        parts.append(self.plural)
        if name:
            parts.append(name)
        return "/".join(parts)


def _builtin(
    group: str,
    version: str,
    plural: str,
    kind: str,
    *,
    namespaced: bool = True,
    short: tuple[str, ...] = (),
    subresources: Iterable[str] = (),
    categories: tuple[str, ...] = (),
    has_generation: bool = True,
    verbs: tuple[str, ...] = ALL_VERBS,
) -> ResourceType:
    return ResourceType(
        group=group,
        version=version,
        plural=plural,
        singular=kind.lower(),
        kind=kind,
        namespaced=namespaced,
        short_names=short,
        categories=categories,
        subresources=frozenset(subresources),
        has_generation=has_generation,
        verbs=verbs,
    )


BUILTINS: tuple[ResourceType, ...] = (
    _builtin("", "v1", "namespaces", "Namespace", namespaced=False, short=("ns",),
             subresources=("status",), has_generation=False),
    _builtin("", "v1", "nodes", "Node", namespaced=False, short=("no",), subresources=("status",),
             has_generation=False),
    _builtin("", "v1", "pods", "Pod", short=("po",), subresources=("status", "eviction"),
             categories=("all",)),
    _builtin("", "v1", "events", "Event", short=("ev",), has_generation=False),
    _builtin("", "v1", "secrets", "Secret", has_generation=False),
    _builtin("", "v1", "configmaps", "ConfigMap", short=("cm",), has_generation=False),
    _builtin("", "v1", "services", "Service", short=("svc",), subresources=("status",),
             categories=("all",), has_generation=False),
    _builtin("", "v1", "endpoints", "Endpoints", short=("ep",), has_generation=False),
    _builtin("discovery.k8s.io", "v1", "endpointslices", "EndpointSlice"),
    _builtin("", "v1", "serviceaccounts", "ServiceAccount", short=("sa",), subresources=("token",),
             has_generation=False),
    _builtin("apps", "v1", "deployments", "Deployment", short=("deploy",),
             subresources=("status", "scale"), categories=("all",)),
    _builtin("apps", "v1", "replicasets", "ReplicaSet", short=("rs",),
             subresources=("status", "scale"), categories=("all",)),
    _builtin("apps", "v1", "statefulsets", "StatefulSet", short=("sts",),
             subresources=("status", "scale"), categories=("all",)),
    _builtin("apps", "v1", "daemonsets", "DaemonSet", short=("ds",), subresources=("status",),
             categories=("all",)),
    _builtin("batch", "v1", "jobs", "Job", subresources=("status",), categories=("all",)),
    _builtin("policy", "v1", "poddisruptionbudgets", "PodDisruptionBudget", short=("pdb",),
             subresources=("status",)),
    _builtin("coordination.k8s.io", "v1", "leases", "Lease", has_generation=False),
    # Served over the core Events (store.VIEWS).
    _builtin("events.k8s.io", "v1", "events", "Event", short=("ev",), has_generation=False),
    _builtin("apiextensions.k8s.io", "v1", "customresourcedefinitions", "CustomResourceDefinition",
             namespaced=False, short=("crd", "crds"), subresources=("status",)),
    _builtin("admissionregistration.k8s.io", "v1", "validatingadmissionpolicies", "ValidatingAdmissionPolicy",
             namespaced=False, subresources=("status",)),
    _builtin("admissionregistration.k8s.io", "v1", "validatingadmissionpolicybindings",
             "ValidatingAdmissionPolicyBinding", namespaced=False),
    _builtin("rbac.authorization.k8s.io", "v1", "roles", "Role", has_generation=False),
    _builtin("rbac.authorization.k8s.io", "v1", "rolebindings", "RoleBinding", has_generation=False),
    _builtin("rbac.authorization.k8s.io", "v1", "clusterroles", "ClusterRole", namespaced=False,
             has_generation=False),
    _builtin("rbac.authorization.k8s.io", "v1", "clusterrolebindings", "ClusterRoleBinding", namespaced=False,
             has_generation=False),
    _builtin("authentication.k8s.io", "v1", "selfsubjectreviews", "SelfSubjectReview", namespaced=False,
             verbs=("create",)),
    _builtin("authentication.k8s.io", "v1", "tokenreviews", "TokenReview", namespaced=False, verbs=("create",)),
    _builtin("authorization.k8s.io", "v1", "selfsubjectaccessreviews", "SelfSubjectAccessReview",
             namespaced=False, verbs=("create",)),
    _builtin("authorization.k8s.io", "v1", "selfsubjectrulesreviews", "SelfSubjectRulesReview", namespaced=False,
             verbs=("create",)),
    _builtin("authorization.k8s.io", "v1", "subjectaccessreviews", "SubjectAccessReview", namespaced=False,
             verbs=("create",)),
    _builtin("authorization.k8s.io", "v1", "localsubjectaccessreviews", "LocalSubjectAccessReview",
             verbs=("create",)),
)


def from_crd(crd: Mapping[str, Any]) -> list[ResourceType]:
    """The served versions of a CustomResourceDefinition as resource types.

    Raises KeyError/TypeError on a CRD missing required fields; the caller validates first.
    """
    spec = crd["spec"]
    names = spec["names"]
    result: list[ResourceType] = []
    for version in spec["versions"]:
        if not version.get("served", True):
            continue
        subresources = set(version.get("subresources") or {})
        schema = (version.get("schema") or {}).get("openAPIV3Schema")
        result.append(ResourceType(
            group=spec["group"],
            version=version["name"],
            plural=names["plural"],
            singular=names.get("singular") or names["kind"].lower(),
            kind=names["kind"],
            namespaced=spec.get("scope", "Namespaced") == "Namespaced",
            short_names=tuple(names.get("shortNames") or ()),
            categories=tuple(names.get("categories") or ()),
            subresources=frozenset(subresources),
            schema=schema,
            printer_columns=tuple(version.get("additionalPrinterColumns") or ()),
            custom=True,
            rules=cel_rules.compile_schema(schema),
        ))
    return result


class ResourceRegistry:
    """Lookup of served resources by (group, version, plural), by kind, and by name forms."""

    def __init__(self, resources: Iterable[ResourceType] = BUILTINS) -> None:
        self._by_gvr: dict[tuple[str, str, str], ResourceType] = {}
        for resource in resources:
            self.add(resource)

    def add(self, resource: ResourceType) -> None:
        self._by_gvr[(resource.group, resource.version, resource.plural)] = resource

    def remove_group_resource(self, group: str, plural: str) -> None:
        for key in [k for k in self._by_gvr if k[0] == group and k[2] == plural]:
            del self._by_gvr[key]

    def get(self, group: str, version: str, plural: str) -> ResourceType | None:
        return self._by_gvr.get((group, version, plural))

    def by_kind(self, api_version: str, kind: str) -> ResourceType | None:
        group, _, version = api_version.rpartition("/")
        for resource in self._by_gvr.values():
            if resource.group == group and resource.version == version and resource.kind == kind:
                return resource
        return None

    def all(self) -> list[ResourceType]:
        return list(self._by_gvr.values())

    def groups(self) -> dict[str, list[str]]:
        """Group name → its versions, in registration order ("" is the core group)."""
        result: dict[str, list[str]] = {}
        for group, version, _ in self._by_gvr:
            versions = result.setdefault(group, [])
            if version not in versions:
                versions.append(version)
        return result
