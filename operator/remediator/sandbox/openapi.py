"""OpenAPI v3 documents served to kubectl: the /openapi/v3 index and one document per group-version.

kubectl reads these to decide whether a PATCH endpoint takes `fieldValidation` (then it leaves
validation to the server instead of validating on the client) and, for `kubectl explain`, the
schemas. Custom resources get their CRD's openAPIV3Schema; built-in kinds get Kubernetes' own
schemas (builtin_schemas, from kubernetes-validate), an outline only for a kind it lacks.
/openapi/v2 carries the same definitions for JSON clients.
"""

from __future__ import annotations

import copy
import hashlib
import json
from collections.abc import Mapping
from typing import Any

from remediator.sandbox import builtin_schemas, resources

PREFIX = "/openapi/v3"
V2_PATH = "/openapi/v2"
_META = "io.k8s.apimachinery.pkg.apis.meta.v1"
# Where kube-apiserver's generated names put each built-in group's types.
_BUILTIN_PACKAGES = {
    "": "io.k8s.api.core",
    "apps": "io.k8s.api.apps",
    "batch": "io.k8s.api.batch",
    "policy": "io.k8s.api.policy",
    "coordination.k8s.io": "io.k8s.api.coordination",
    "rbac.authorization.k8s.io": "io.k8s.api.rbac",
    "admissionregistration.k8s.io": "io.k8s.api.admissionregistration",
    "authentication.k8s.io": "io.k8s.api.authentication",
    "authorization.k8s.io": "io.k8s.api.authorization",
    "apiextensions.k8s.io": "io.k8s.apiextensions-apiserver.pkg.apis.apiextensions",
}
_PATCH_TYPES = ("application/apply-patch+yaml", "application/json-patch+json", "application/merge-patch+json")
_JSON_TYPES = ("application/json", "application/yaml")


def serve(registry: resources.ResourceRegistry, path: str, accept: str = "") -> dict[str, Any] | None:
    """The OpenAPI document at a path under /openapi, or None when there is none.

    The `hash` query parameter of the index's URLs is not checked: the current document is served.
    /openapi/v2 is JSON only: a client asking for protobuf alone (kubectl) gets None (404).
    """
    if path == V2_PATH:
        return v2_document() if _takes_json(accept) else None
    if path == PREFIX:
        return index(registry)
    if path.startswith(PREFIX + "/"):
        group_version = path[len(PREFIX) + 1:]
        for group, versions in registry.groups().items():
            for version in versions:
                if _gv_path(group, version) == group_version:
                    return group_version_document(registry, group, version)
    return None


def _takes_json(accept: str) -> bool:
    return not accept or any(media.split(";")[0].strip() in ("application/json", "*/*", "application/*")
                             for media in accept.split(","))


def v2_document() -> dict[str, Any]:
    """The Swagger 2.0 document: the built-in kinds' definitions (the paths are left out)."""
    return {"swagger": "2.0", "info": {"title": "Kubernetes", "version": builtin_schemas.release()},
            "paths": {}, "definitions": builtin_schemas.v2_definitions()}


def index(registry: resources.ResourceRegistry) -> dict[str, Any]:
    """The /openapi/v3 discovery: every served group-version and the URL of its document.

    The URL carries a hash of the document so that clients refetch when a CRD changes it.
    """
    paths: dict[str, Any] = {}
    for group, versions in registry.groups().items():
        for version in versions:
            document = group_version_document(registry, group, version)
            digest = hashlib.sha512(json.dumps(document, sort_keys=True).encode()).hexdigest().upper()
            gv_path = _gv_path(group, version)
            paths[gv_path] = {"serverRelativeURL": f"{PREFIX}/{gv_path}?hash={digest}"}
    return {"paths": paths}


def group_version_document(registry: resources.ResourceRegistry, group: str, version: str) -> dict[str, Any]:
    """The OpenAPI v3 document of one group-version: its resources' paths and schemas."""
    served = sorted((r for r in registry.all() if r.group == group and r.version == version),
                    key=lambda r: r.plural)
    paths: dict[str, Any] = {}
    schemas: dict[str, Any] = dict(_meta_schemas())
    for resource in served:
        paths.update(_resource_paths(resource))
        name = schema_name(resource)
        if not resource.custom and builtin_schemas.has(name):
            schemas.update(builtin_schemas.v3_schemas([name, name + "List"]))
        else:
            schemas[name] = _object_schema(resource)
            schemas[name + "List"] = _list_schema(resource)
        if "scale" in resource.subresources:
            schemas.update(builtin_schemas.v3_schemas(["io.k8s.api.autoscaling.v1.Scale"]))
    return {
        "openapi": "3.0.0",
        "info": {"title": "Kubernetes", "version": "v1.32.0"},
        "paths": paths,
        "components": {"schemas": schemas},
    }


def schema_name(resource: resources.ResourceType) -> str:
    """The components/schemas name kube-apiserver gives a kind, e.g. dev.remediator.v1alpha1.Incident."""
    if resource.custom:
        package = ".".join(reversed(resource.group.split(".")))
    else:
        package = _BUILTIN_PACKAGES.get(resource.group, "io.k8s.api." + resource.group.split(".")[0])
    return f"{package}.{resource.version}.{resource.kind}"


def _gv_path(group: str, version: str) -> str:
    return f"apis/{group}/{version}" if group else f"api/{version}"


def _gvk(group: str, version: str, kind: str) -> dict[str, str]:
    return {"group": group, "version": version, "kind": kind}


def _ref(name: str) -> dict[str, Any]:
    return {"$ref": f"#/components/schemas/{name}"}


def _content(schema: Mapping[str, Any], media_types: tuple[str, ...] = _JSON_TYPES) -> dict[str, Any]:
    return {media_type: {"schema": schema} for media_type in media_types}


def _query(name: str, description: str) -> dict[str, Any]:
    return {"name": name, "in": "query", "description": description, "schema": {"type": "string"},
            "uniqueItems": True}


_DRY_RUN = _query("dryRun", "When present, indicates that modifications should not be persisted.")
_FIELD_MANAGER = _query("fieldManager", "A name associated with the actor or entity that is making these changes.")
_FIELD_VALIDATION = _query(
    "fieldValidation", "How the server handles fields it does not know (Ignore, Warn, Strict); Warn when unset.")
_FORCE = {"name": "force", "in": "query", "description": "Force is going to \"force\" Apply requests.",
          "schema": {"type": "boolean"}, "uniqueItems": True}
_LIST_PARAMETERS = [
    _query(name, description) for name, description in (
        ("continue", "The continue token of the previous page."),
        ("fieldSelector", "A selector to restrict the list of returned objects by their fields."),
        ("labelSelector", "A selector to restrict the list of returned objects by their labels."),
        ("resourceVersion", "Which resource versions the request may be served from."),
    )
] + [{"name": name, "in": "query", "description": description, "schema": {"type": type_name},
      "uniqueItems": True} for name, type_name, description in (
        ("limit", "integer", "The maximum number of responses to return for a list call."),
        ("timeoutSeconds", "integer", "Timeout for the list/watch call."),
        ("watch", "boolean", "Watch for changes to the described resources."),
    )]


def _operation(resource: resources.ResourceType, action: str, operation_id: str, *, kind: str | None = None,
               group: str | None = None, version: str | None = None, response: str,
               parameters: list[dict[str, Any]], body: dict[str, Any] | None = None,
               created: bool = False) -> dict[str, Any]:
    responses: dict[str, Any] = {"200": {"description": "OK", "content": _content(_ref(response))},
                                 "401": {"description": "Unauthorized"}}
    if created:
        responses["201"] = {"description": "Created", "content": _content(_ref(response))}
    operation: dict[str, Any] = {
        "tags": [resource.group or "core"],
        "description": f"{action} {kind or resource.kind}",
        "operationId": operation_id,
        "parameters": parameters,
        "responses": responses,
        "x-kubernetes-action": action,
        "x-kubernetes-group-version-kind": _gvk(resource.group if group is None else group,
                                                resource.version if version is None else version,
                                                kind or resource.kind),
    }
    if body is not None:
        operation["requestBody"] = body
    return operation


def _patch_body() -> dict[str, Any]:
    # The strategic-merge-patch body is left out: kubectl then takes the merge keys from its compiled-in
    # types for built-ins, as against a server whose document does not list that patch type.
    return {"content": _content(_ref(f"{_META}.Patch"), _PATCH_TYPES), "required": True}


def _resource_paths(resource: resources.ResourceType) -> dict[str, Any]:
    """The collection, item and subresource paths of one resource with their operations."""
    group_word = "".join(p.capitalize() for p in (resource.group or "core").replace("-", ".").split("."))
    base = f"{group_word}{resource.version.capitalize()}"
    scope = "Namespaced" if resource.namespaced else ""
    name = schema_name(resource)
    prefix = "/" + _gv_path(resource.group, resource.version)
    collection = (f"{prefix}/namespaces/{{namespace}}/{resource.plural}" if resource.namespaced
                  else f"{prefix}/{resource.plural}")
    path_parameters = [{"name": "namespace", "in": "path", "required": True, "schema": {"type": "string"}}] \
        if resource.namespaced else []
    named = [*path_parameters, {"name": "name", "in": "path", "required": True, "schema": {"type": "string"}}]
    write = [_DRY_RUN, _FIELD_MANAGER, _FIELD_VALIDATION]
    body = {"content": _content(_ref(name)), "required": True}
    paths: dict[str, Any] = {
        collection: {
            "get": _operation(resource, "list", f"list{base}{scope}{resource.kind}", response=name + "List",
                              parameters=_LIST_PARAMETERS),
            "post": _operation(resource, "post", f"create{base}{scope}{resource.kind}", response=name,
                               parameters=write, body=body, created=True),
            "delete": _operation(resource, "deletecollection", f"deleteCollection{base}{scope}{resource.kind}",
                                 response=f"{_META}.Status", parameters=_LIST_PARAMETERS),
            "parameters": path_parameters,
        },
        f"{collection}/{{name}}": {
            "get": _operation(resource, "get", f"read{base}{scope}{resource.kind}", response=name, parameters=[]),
            "put": _operation(resource, "put", f"replace{base}{scope}{resource.kind}", response=name,
                              parameters=write, body=body, created=True),
            "patch": _operation(resource, "patch", f"patch{base}{scope}{resource.kind}", response=name,
                                parameters=[*write, _FORCE], body=_patch_body(), created=True),
            "delete": _operation(resource, "delete", f"delete{base}{scope}{resource.kind}",
                                 response=f"{_META}.Status", parameters=[_DRY_RUN]),
            "parameters": named,
        },
    }
    if resource.namespaced:
        paths[f"{prefix}/{resource.plural}"] = {
            "get": _operation(resource, "list", f"list{base}{resource.kind}ForAllNamespaces",
                              response=name + "List", parameters=_LIST_PARAMETERS)}
    for sub in sorted(resource.subresources & {"status", "scale"}):
        target = ("Scale", "autoscaling", "v1", "io.k8s.api.autoscaling.v1.Scale") if sub == "scale" \
            else (resource.kind, resource.group, resource.version, name)
        kind, group, version, response = target
        sub_body = {"content": _content(_ref(response)), "required": True}
        suffix = f"{base}{scope}{resource.kind}{sub.capitalize()}"
        paths[f"{collection}/{{name}}/{sub}"] = {
            "get": _operation(resource, "get", f"read{suffix}", kind=kind, group=group, version=version,
                              response=response, parameters=[]),
            "put": _operation(resource, "put", f"replace{suffix}", kind=kind, group=group, version=version,
                              response=response, parameters=write, body=sub_body, created=True),
            "patch": _operation(resource, "patch", f"patch{suffix}", kind=kind, group=group, version=version,
                                response=response, parameters=[*write, _FORCE], body=_patch_body(),
                                created=True),
            "parameters": named,
        }
    return paths


def _object_schema(resource: resources.ResourceType) -> dict[str, Any]:
    if resource.schema is None:
        return _outline(resource.kind, resource.group, resource.version)
    schema = copy.deepcopy(dict(resource.schema))
    properties = schema.setdefault("properties", {})
    # As kube-apiserver publishes CRD schemas: metadata is the full ObjectMeta, not the CRD's stub.
    properties["metadata"] = {"description": "Standard object's metadata.", "default": {},
                              "allOf": [_ref(f"{_META}.ObjectMeta")]}
    schema["x-kubernetes-group-version-kind"] = [_gvk(resource.group, resource.version, resource.kind)]
    return schema


def _outline(kind: str, group: str, version: str) -> dict[str, Any]:
    return {
        "description": f"{kind} ({group or 'core'}/{version}).",
        "type": "object",
        "properties": {
            "apiVersion": {"type": "string", "description": "APIVersion of this object."},
            "kind": {"type": "string", "description": "Kind of this object."},
            "metadata": {"default": {}, "allOf": [_ref(f"{_META}.ObjectMeta")]},
            "spec": {"type": "object", "x-kubernetes-preserve-unknown-fields": True},
            "status": {"type": "object", "x-kubernetes-preserve-unknown-fields": True},
        },
        "x-kubernetes-group-version-kind": [_gvk(group, version, kind)],
    }


def _list_schema(resource: resources.ResourceType) -> dict[str, Any]:
    return {
        "description": f"{resource.list_kind} is a list of {resource.kind}.",
        "type": "object",
        "required": ["items"],
        "properties": {
            "apiVersion": {"type": "string"},
            "items": {"type": "array", "items": _ref(schema_name(resource))},
            "kind": {"type": "string"},
            "metadata": {"default": {}, "allOf": [_ref(f"{_META}.ListMeta")]},
        },
        "x-kubernetes-group-version-kind": [_gvk(resource.group, resource.version, resource.list_kind)],
    }


def _meta_schemas() -> dict[str, Any]:
    return builtin_schemas.v3_schemas(f"{_META}.{kind}" for kind in ("ObjectMeta", "ListMeta", "Status", "Patch"))
