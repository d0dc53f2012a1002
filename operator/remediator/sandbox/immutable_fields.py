"""Fields of built-in kinds that an update may not change, refused with kube-apiserver's 422 causes.

A workload's selector, a Job's pod template, and the data of a ConfigMap or Secret marked
`immutable: true`: a client that tries to change them fails on a cluster, so it fails here too.
https://kubernetes.io/docs/concepts/workloads/controllers/deployment/#label-selector-updates
https://kubernetes.io/docs/concepts/workloads/controllers/job/#mutable-scheduling-directives
https://kubernetes.io/docs/concepts/configuration/configmap/#configmap-immutable
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from remediator.sandbox import go_format

Cause = tuple[str, str, str]  # (field, reason, message) as errors.invalid takes them
IMMUTABLE = "field is immutable"
WORKLOADS = frozenset({("apps", "Deployment"), ("apps", "ReplicaSet"), ("apps", "StatefulSet"),
                       ("apps", "DaemonSet"), ("batch", "Job")})


def _label_selector(selector: Any) -> str:
    """`%#v` of a metav1.LabelSelector, as the Invalid value of an immutable selector reads."""
    selector = selector if isinstance(selector, Mapping) else {}
    labels = selector.get("matchLabels") or {}
    shown_labels = ("map[string]string{" + ", ".join(f"{go_format.quote(k)}:{go_format.quote(str(v))}"
                                                     for k, v in sorted(labels.items())) + "}"
                    if labels else "map[string]string(nil)")
    expressions = selector.get("matchExpressions") or []
    shown_expressions = ("[]v1.LabelSelectorRequirement{" + ", ".join(
        f"v1.LabelSelectorRequirement{{Key:{go_format.quote(str(e.get('key', '')))}, "
        f"Operator:{go_format.quote(str(e.get('operator', '')))}, Values:[]string{{"
        + ", ".join(go_format.quote(str(v)) for v in e.get("values") or []) + "}}"
        for e in expressions if isinstance(e, Mapping)) + "}"
        if expressions else "[]v1.LabelSelectorRequirement(nil)")
    return f"v1.LabelSelector{{MatchLabels:{shown_labels}, MatchExpressions:{shown_expressions}}}"


def _changed(old: Mapping[str, Any], new: Mapping[str, Any], field: str) -> bool:
    return old.get(field) != new.get(field)


def problems(group: str, kind: str, old: Mapping[str, Any], new: Mapping[str, Any]) -> list[Cause]:
    """What an update of a built-in object changes that it may not (empty when it may)."""
    causes: list[Cause] = []
    old_spec, new_spec = old.get("spec") or {}, new.get("spec") or {}
    if (group, kind) in WORKLOADS and _changed(old_spec, new_spec, "selector"):
        causes.append(("spec.selector", "FieldValueInvalid",
                       f"Invalid value: {_label_selector(new_spec.get('selector'))}: {IMMUTABLE}"))
    if (group, kind) == ("batch", "Job"):
        # A suspended Job that never started may change its template's scheduling directives; the
        # sandbox keeps to the general rule.
        if _changed(old_spec, new_spec, "template"):
            causes.append(("spec.template", "FieldValueInvalid",
                           f"Invalid value: core.PodTemplateSpec{{...}}: {IMMUTABLE}"))
        for field in ("completionMode", "podFailurePolicy", "backoffLimitPerIndex", "managedBy"):
            if _changed(old_spec, new_spec, field):
                value = new_spec.get(field)
                shown = go_format.quote(value) if isinstance(value, str) else go_format.value_v(value)
                causes.append((f"spec.{field}", "FieldValueInvalid", f"Invalid value: {shown}: {IMMUTABLE}"))
    if (group, kind) in (("", "ConfigMap"), ("", "Secret")) and old.get("immutable") is True:
        for field in ("data", "binaryData") if kind == "ConfigMap" else ("data",):
            if _changed(old, new, field):
                causes.append((field, "FieldValueForbidden",
                               f"Forbidden: {IMMUTABLE} when `immutable` is set"))
        if new.get("immutable") is not True:
            causes.append(("immutable", "FieldValueForbidden", f"Forbidden: {IMMUTABLE} when `immutable` is set"))
    if (group, kind) == ("", "Secret") and _changed(old, new, "type"):
        causes.append(("type", "FieldValueInvalid",
                       f"Invalid value: {go_format.quote(str(new.get('type', '')))}: {IMMUTABLE}"))
    return causes
