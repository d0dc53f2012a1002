"""Discovery documents (/version, /api, /apis, group-version resource lists) for clients and kubectl.

/api and /apis answer in the aggregated form (apidiscovery.k8s.io/v2, every resource of every
group in one document) to clients that accept it first, as kubectl does, and as APIVersions and
APIGroupList otherwise.
"""

from __future__ import annotations

from typing import Any

from remediator.sandbox import openapi, resources

SERVER_VERSION = {
    "major": "1",
    "minor": "32",
    "gitVersion": "v1.32.0-remediator-sandbox",
    "gitCommit": "0000000000000000000000000000000000000000",
    "gitTreeState": "clean",
    "buildDate": "2026-01-01T00:00:00Z",
    "goVersion": "go1.23.0",
    "compiler": "gc",
    "platform": "linux/amd64",
}

AGGREGATED_MEDIA_TYPE = "application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList"
JSON_MEDIA_TYPE = "application/json"
SUBRESOURCE_VERBS = {"status": ["get", "patch", "update"], "scale": ["get", "patch", "update"],
                     "eviction": ["create"], "token": ["create"]}
# Subresources that answer with another kind than their resource's: (group, version, kind).
SUBRESOURCE_KINDS = {"scale": ("autoscaling", "v1", "Scale"), "eviction": ("policy", "v1", "Eviction"),
                     "token": ("authentication.k8s.io", "v1", "TokenRequest")}


def serve(registry: resources.ResourceRegistry, path: str, accept: str) -> dict[str, Any] | None:
    """The discovery or OpenAPI document at a path, or None when the path is not one of those."""
    path = path.rstrip("/") or "/"
    if path == "/version":
        return SERVER_VERSION
    if path in ("/api", "/apis") and wants_aggregated(accept):
        return aggregated(registry, core=path == "/api")
    if path == "/api":
        return {"kind": "APIVersions", "versions": ["v1"],
                "serverAddressByClientCIDRs": [{"clientCIDR": "0.0.0.0/0", "serverAddress": "127.0.0.1"}]}
    if path == "/apis":
        return {"kind": "APIGroupList", "apiVersion": "v1",
                "groups": [_group(name, versions) for name, versions in registry.groups().items() if name]}
    parts = path.strip("/").split("/")
    if len(parts) == 2 and parts[0] == "apis":
        versions = registry.groups().get(parts[1])
        if versions:
            return {"kind": "APIGroup", "apiVersion": "v1", **_group(parts[1], versions)}
    if parts[0] == "openapi":
        return openapi.serve(registry, path, accept)
    return None


def _group(name: str, versions: list[str]) -> dict[str, Any]:
    entries = [{"groupVersion": f"{name}/{v}", "version": v} for v in versions]
    return {"name": name, "versions": entries, "preferredVersion": entries[0]}


def resource_list(registry: resources.ResourceRegistry, group: str, version: str) -> dict[str, Any] | None:
    """The APIResourceList of one group-version, or None when nothing is served there."""
    served = [r for r in registry.all() if r.group == group and r.version == version]
    if not served:
        return None
    entries: list[dict[str, Any]] = []
    for resource in sorted(served, key=lambda r: r.plural):
        entry: dict[str, Any] = {
            "name": resource.plural,
            "singularName": resource.singular,
            "namespaced": resource.namespaced,
            "kind": resource.kind,
            "verbs": list(resource.verbs),
        }
        if resource.short_names:
            entry["shortNames"] = list(resource.short_names)
        if resource.categories:
            entry["categories"] = list(resource.categories)
        entries.append(entry)
        for sub in sorted(resource.subresources):
            sub_entry: dict[str, Any] = {"name": f"{resource.plural}/{sub}", "singularName": "",
                                         "namespaced": resource.namespaced, "kind": resource.kind,
                                         "verbs": SUBRESOURCE_VERBS.get(sub, ["get"])}
            if sub in SUBRESOURCE_KINDS:
                sub_group, sub_version, sub_kind = SUBRESOURCE_KINDS[sub]
                sub_entry.update(kind=sub_kind, group=sub_group, version=sub_version)
            entries.append(sub_entry)
    return {"kind": "APIResourceList", "apiVersion": "v1",
            "groupVersion": f"{group}/{version}" if group else version, "resources": entries}


def wants_aggregated(accept: str) -> bool:
    """Whether the first media type of an Accept header the server can answer is aggregated discovery."""
    for media_type in accept.split(","):
        name, *parameters = [part.strip() for part in media_type.split(";")]
        params = dict(p.split("=", 1) for p in parameters if "=" in p)
        if name in ("application/json", "*/*", "application/*") and params.get("as") == "APIGroupDiscoveryList":
            return params.get("g") == "apidiscovery.k8s.io" and params.get("v") == "v2"
        if name in ("application/json", "*/*", "application/*") and "as" not in params:
            return False
    return False


def media_type(document: dict[str, Any]) -> str:
    """The Content-Type a discovery document is served with."""
    return AGGREGATED_MEDIA_TYPE if document.get("kind") == "APIGroupDiscoveryList" else JSON_MEDIA_TYPE


def aggregated(registry: resources.ResourceRegistry, *, core: bool) -> dict[str, Any]:
    """The APIGroupDiscoveryList of the core group (/api) or of all named groups (/apis)."""
    items = []
    for group, versions in registry.groups().items():
        if bool(group) == core:
            continue
        metadata: dict[str, Any] = {"creationTimestamp": None}
        if group:
            metadata["name"] = group
        items.append({"metadata": metadata,
                      "versions": [{"version": version, "resources": _discovered(registry, group, version),
                                    "freshness": "Current"} for version in versions]})
    return {"kind": "APIGroupDiscoveryList", "apiVersion": "apidiscovery.k8s.io/v2", "metadata": {},
            "items": items}


def _discovered(registry: resources.ResourceRegistry, group: str, version: str) -> list[dict[str, Any]]:
    entries = []
    for resource in sorted((r for r in registry.all() if r.group == group and r.version == version),
                           key=lambda r: r.plural):
        entry: dict[str, Any] = {
            "resource": resource.plural,
            "responseKind": {"group": group, "version": version, "kind": resource.kind},
            "scope": "Namespaced" if resource.namespaced else "Cluster",
            "singularResource": resource.singular,
            "verbs": list(resource.verbs),
        }
        if resource.short_names:
            entry["shortNames"] = list(resource.short_names)
        if resource.categories:
            entry["categories"] = list(resource.categories)
        subresources = []
        for sub in sorted(resource.subresources):
            sub_group, sub_version, sub_kind = SUBRESOURCE_KINDS.get(sub, (group, version, resource.kind))
            subresources.append({"subresource": sub,
                                 "responseKind": {"group": sub_group, "version": sub_version, "kind": sub_kind},
                                 "verbs": SUBRESOURCE_VERBS.get(sub, ["get"])})
        if subresources:
            entry["subresources"] = subresources
        entries.append(entry)
    return entries
