"""Validation of the ObjectMeta every kind shares: labels, annotations, finalizers, ownerReferences.

Worded as k8s.io/apimachinery/pkg/api/validation/objectmeta.go words it, so that an operator that
writes an invalid label (an alert name with spaces, say) fails here as it would on a cluster.
https://kubernetes.io/docs/concepts/overview/working-with-objects/labels/#syntax-and-character-set
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from remediator.sandbox import go_format, label_syntax

Cause = tuple[str, str, str]  # (field, reason, message) as errors.invalid takes them

TOTAL_ANNOTATION_BYTES = 256 * 1024


def _invalid(field: str, value: Any, detail: str) -> Cause:
    shown = go_format.quote(value) if isinstance(value, str) else go_format.go_syntax(value)
    return (field, "FieldValueInvalid", f"Invalid value: {shown}: {detail}")


def problems(meta: Mapping[str, Any]) -> list[Cause]:
    """Everything wrong with an object's labels, annotations, finalizers and ownerReferences."""
    causes: list[Cause] = []
    labels = meta.get("labels") or {}
    if isinstance(labels, Mapping):
        for key, value in labels.items():
            causes += [_invalid("metadata.labels", key, detail)
                       for detail in label_syntax.qualified_name_errors(key)]
            if isinstance(value, str):
                causes += [_invalid("metadata.labels", value, detail)
                           for detail in label_syntax.label_value_errors(value)]
    annotations = meta.get("annotations") or {}
    if isinstance(annotations, Mapping):
        for key in annotations:
            causes += [_invalid("metadata.annotations", key, detail)
                       for detail in label_syntax.qualified_name_errors(key.lower())]
        size = sum(len(k.encode()) + len(str(v).encode()) for k, v in annotations.items())
        if size > TOTAL_ANNOTATION_BYTES:
            causes.append(("metadata.annotations", "FieldValueTooLong",
                           f"Too long: must have at most {TOTAL_ANNOTATION_BYTES} bytes"))
    for finalizer in meta.get("finalizers") or ():
        if isinstance(finalizer, str):
            causes += [_invalid("metadata.finalizers", finalizer, detail)
                       for detail in label_syntax.qualified_name_errors(finalizer)]
    causes += _owner_reference_problems(meta.get("ownerReferences") or ())
    return causes


def _owner_reference_problems(references: Any) -> list[Cause]:
    causes: list[Cause] = []
    controllers = []
    for reference in references if isinstance(references, list) else ():
        if not isinstance(reference, Mapping):
            continue
        for field, what in (("apiVersion", "version"), ("kind", "kind"), ("name", "name"), ("uid", "uid")):
            if not reference.get(field):
                causes.append(_invalid(f"metadata.ownerReferences.{field}", reference.get(field) or "",
                                       f"{what} must not be empty"))
        if reference.get("controller") is True:
            controllers.append(reference)
    if len(controllers) > 1:
        owners = " and ".join(f"{r.get('kind', '')}/{r.get('name', '')}" for r in controllers)
        # The Go message prints the whole []metav1.OwnerReference with %#v; it is elided here.
        causes.append(("metadata.ownerReferences", "FieldValueInvalid",
                       "Invalid value: []v1.OwnerReference{...}: Only one reference can have Controller set to "
                       f'true. Found "true" in references for {owners}'))
    return causes
