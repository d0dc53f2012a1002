"""Server-side field validation: the `fieldValidation` query parameter of create, update and patch.

kube-apiserver decodes custom resources strictly and reports the fields the CRD schema would
prune: `Strict` refuses the request, `Warn` (the default) answers with a Warning header per
field, `Ignore` drops them silently. kubectl relies on this instead of validating on the client
whenever the server's OpenAPI lists the parameter (see `openapi`). Built-in kinds carry no schema
here, so they are not checked.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import aiohttp.web

from remediator.sandbox import errors, go_format, resources, schemas

IGNORE, WARN, STRICT = "Ignore", "Warn", "Strict"
# Where a request keeps the warnings that its response sends as Warning headers.
WARNINGS = aiohttp.web.RequestKey("remediator.sandbox.warnings", list[str])
DIRECTIVES = ("", IGNORE, WARN, STRICT)
# metav1.ObjectMeta's JSON fields: anything else under metadata is unknown.
OBJECT_META_FIELDS = frozenset({
    "name", "generateName", "namespace", "selfLink", "uid", "resourceVersion", "generation",
    "creationTimestamp", "deletionTimestamp", "deletionGracePeriodSeconds", "labels", "annotations",
    "ownerReferences", "finalizers", "managedFields",
})


def directive(query: Mapping[str, str], options_kind: str) -> str:
    """The request's directive, Warn when absent; 422 for a value kube-apiserver does not know.

    `options_kind` names the options type in the error (CreateOptions, UpdateOptions, PatchOptions).
    """
    value = query.get("fieldValidation", "")
    if value not in DIRECTIVES:
        supported = ", ".join(go_format.quote(d) for d in DIRECTIVES)
        raise errors.invalid(f"{options_kind}.meta.k8s.io", "", [(
            "fieldValidation", "FieldValueNotSupported",
            f"Unsupported value: {go_format.quote(value)}: supported values: {supported}")],
            kind=options_kind, group="meta.k8s.io")
    return value or WARN


def unknown_fields(resource: resources.ResourceType, obj: Any, stored: Mapping[str, Any] | None = None) -> list[str]:
    """Paths of the fields the server would not keep (e.g. `spec.steps[0].foo`), sorted; [] for built-ins.

    Top-level sections equal to the `stored` object's are skipped: what is stored was pruned already.
    """
    if resource.schema is None or not isinstance(obj, Mapping):
        return []
    # Pruning keeps apiVersion, kind and metadata whole (their unknown fields are found below), so only
    # the other sections are pruned and compared; metadata's managedFields alone are most of an object.
    sections = {key: value for key, value in obj.items() if key not in ("apiVersion", "kind", "metadata")
                and (stored is None or stored.get(key) != value)}
    found = _dropped(sections, schemas.prune(resource.schema, sections), "")
    metadata = obj.get("metadata")
    if isinstance(metadata, Mapping):
        found += [f"metadata.{name}" for name in metadata if name not in OBJECT_META_FIELDS]
    return sorted(found)


def _dropped(original: Any, pruned: Any, path: str) -> list[str]:
    if isinstance(original, Mapping) and isinstance(pruned, Mapping):
        found: list[str] = []
        for name, value in original.items():
            child = f"{path}.{name}" if path else name
            found += _dropped(value, pruned[name], child) if name in pruned else [child]
        return found
    if isinstance(original, list) and isinstance(pruned, list):
        return [field for position, (item, kept) in enumerate(zip(original, pruned, strict=False))
                for field in _dropped(item, kept, f"{path}[{position}]")]
    return []


def strict_decoding_error(fields: Sequence[str]) -> str:
    """runtime.StrictDecodingError's text for unknown fields."""
    return "strict decoding error: " + ", ".join(f"unknown field {go_format.quote(f)}" for f in fields)


def check_body(request: aiohttp.web.BaseRequest, resource: resources.ResourceType, body: Any,
               options_kind: str) -> None:
    """Check a create or update body; warnings are kept on the request for its response.

    Under Strict, 400 BadRequest worded as kube-apiserver words a body it cannot decode strictly:
    `Incident in version "v1alpha1" cannot be handled as a Incident: strict decoding error: ...`.
    """
    field_directive = directive(request.query, options_kind)
    fields = unknown_fields(resource, body)
    if fields and field_directive == STRICT:
        raise errors.bad_request(f"{resource.kind} in version {go_format.quote(resource.version)} cannot be "
                                 f"handled as a {resource.kind}: {strict_decoding_error(fields)}")
    if fields and field_directive == WARN:
        _warn(request, fields)


def check_patched(request: aiohttp.web.BaseRequest, resource: resources.ResourceType, patched: Any,
                  stored: Mapping[str, Any] | None = None) -> None:
    """Check the object a patch produced from `stored`; under Strict, 422 Invalid on the field `patch`."""
    field_directive = directive(request.query, "PatchOptions")
    fields = unknown_fields(resource, patched, stored)
    if fields and field_directive == STRICT:
        rendered = go_format.quote(go_format.to_json(patched))
        raise errors.invalid("", "", [("patch", "FieldValueInvalid",
                                       f"Invalid value: {rendered}: {strict_decoding_error(fields)}")],
                             kind="", group="")
    if fields and field_directive == WARN:
        _warn(request, fields)


def _warn(request: aiohttp.web.BaseRequest, fields: Sequence[str]) -> None:
    request[WARNINGS] = [*request.get(WARNINGS, ()), *(f"unknown field {go_format.quote(f)}" for f in fields)]


def warning_header(message: str) -> str:
    """An RFC 7234 Warning header value as kube-apiserver sends it (code 299, agent "-")."""
    return f"299 - {go_format.quote(message)}"
