"""Discovery documents (/version, /api, /apis, group-version resource lists) for clients and kubectl."""

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

VERBS = ["create", "delete", "deletecollection", "get", "list", "patch", "update", "watch"]
SUBRESOURCE_VERBS = {"status": ["get", "patch", "update"], "scale": ["get", "patch", "update"],
                     "eviction": ["create"]}


def serve(registry: resources.ResourceRegistry, path: str, accept: str) -> dict[str, Any] | None:
    """The discovery or OpenAPI document at a path, or None when the path is not one of those."""
    path = path.rstrip("/") or "/"
    if path == "/version":
        return SERVER_VERSION
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
        return openapi.serve(registry, path)
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
            "verbs": VERBS,
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
            if sub == "scale":
                sub_entry.update(kind="Scale", group="autoscaling", version="v1")
            if sub == "eviction":
                sub_entry.update(kind="Eviction", group="policy", version="v1")
            entries.append(sub_entry)
    return {"kind": "APIResourceList", "apiVersion": "v1",
            "groupVersion": f"{group}/{version}" if group else version, "resources": entries}
