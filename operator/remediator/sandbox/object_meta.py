"""Validation of the ObjectMeta every kind shares: labels, annotations, finalizers, ownerReferences.

Worded as k8s.io/apimachinery/pkg/api/validation/objectmeta.go words it, so that an operator that
writes an invalid label (an alert name with spaces, say) fails here as it would on a cluster.
https://kubernetes.io/docs/concepts/overview/working-with-objects/labels/#syntax-and-character-set
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from remediator.sandbox import go_format

Cause = tuple[str, str, str]  # (field, reason, message) as errors.invalid takes them

_NAME = "([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]"
_DNS_LABEL = "[a-z0-9]([-a-z0-9]*[a-z0-9])?"
_DNS_SUBDOMAIN = rf"{_DNS_LABEL}(\.{_DNS_LABEL})*"
_LABEL_VALUE = f"({_NAME})?"
_NAME_CHARACTERS = ("consist of alphanumeric characters, '-', '_' or '.', and must start and end with an "
                    "alphanumeric character")
TOTAL_ANNOTATION_BYTES = 256 * 1024


def _regex_error(message: str, pattern: str, *examples: str) -> str:
    """validation.RegexError (its examples are joined with "',  or '", two spaces and all)."""
    shown = "".join(f"{' or ' if i else ''}'{example}', " for i, example in enumerate(examples))
    return f"{message} (e.g. {shown}regex used for validation is '{pattern}')"


def qualified_name_errors(key: str) -> list[str]:
    """validation.IsQualifiedName: `[prefix/]name`, the prefix a DNS subdomain, the name ≤ 63 chars."""
    name_error = _regex_error("must " + _NAME_CHARACTERS, _NAME, "MyName", "my.name", "123-abc")
    parts = key.split("/")
    if len(parts) > 2:
        return [f"a qualified name {name_error} with an optional DNS subdomain prefix and '/' "
                "(e.g. 'example.com/MyName')"]
    problems = []
    if len(parts) == 2:
        prefix = parts[0]
        if not prefix:
            problems.append("prefix part must be non-empty")
        else:
            if len(prefix) > 253:
                problems.append("prefix part must be no more than 253 characters")
            if not re.fullmatch(_DNS_SUBDOMAIN, prefix):
                problems.append("prefix part " + _regex_error(
                    "a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, "
                    "'-' or '.', and must start and end with an alphanumeric character",
                    _DNS_SUBDOMAIN, "example.com"))
    name = parts[-1]
    if not name:
        problems.append("name part must be non-empty")
    elif len(name) > 63:
        problems.append("name part must be no more than 63 characters")
    if not re.fullmatch(_NAME, name):
        problems.append(f"name part {name_error}")
    return problems


def label_value_errors(value: str) -> list[str]:
    """validation.IsValidLabelValue."""
    problems = []
    if len(value) > 63:
        problems.append("must be no more than 63 characters")
    if not re.fullmatch(_LABEL_VALUE, value):
        problems.append(_regex_error("a valid label must be an empty string or " + _NAME_CHARACTERS,
                                     _LABEL_VALUE, "MyValue", "my_value", "12345"))
    return problems


def _invalid(field: str, value: Any, detail: str) -> Cause:
    shown = go_format.quote(value) if isinstance(value, str) else go_format.go_syntax(value)
    return (field, "FieldValueInvalid", f"Invalid value: {shown}: {detail}")


def problems(meta: Mapping[str, Any]) -> list[Cause]:
    """Everything wrong with an object's labels, annotations, finalizers and ownerReferences."""
    causes: list[Cause] = []
    labels = meta.get("labels") or {}
    if isinstance(labels, Mapping):
        for key, value in labels.items():
            causes += [_invalid("metadata.labels", key, detail) for detail in qualified_name_errors(key)]
            if isinstance(value, str):
                causes += [_invalid("metadata.labels", value, detail) for detail in label_value_errors(value)]
    annotations = meta.get("annotations") or {}
    if isinstance(annotations, Mapping):
        for key in annotations:
            causes += [_invalid("metadata.annotations", key, detail)
                       for detail in qualified_name_errors(key.lower())]
        size = sum(len(k.encode()) + len(str(v).encode()) for k, v in annotations.items())
        if size > TOTAL_ANNOTATION_BYTES:
            causes.append(("metadata.annotations", "FieldValueTooLong",
                           f"Too long: must have at most {TOTAL_ANNOTATION_BYTES} bytes"))
    for finalizer in meta.get("finalizers") or ():
        if isinstance(finalizer, str):
            causes += [_invalid("metadata.finalizers", finalizer, detail)
                       for detail in qualified_name_errors(finalizer)]
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
