"""Validating admission in the sandbox's write path: the stored policies run on each write (see admission_policies).

The store calls `ValidatingAdmission.check` with every write it is about to make, after validation
and before storing (dry runs included), as kube-apiserver runs validating admission after the
registry's validation. Who writes comes from the request being served; the sandbox's own controllers
write as kube-controller-manager. Policies and bindings themselves are not subject to policies.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from remediator.sandbox import access, admission_policies, resources, selectors, store

_EXEMPT_GROUP = admission_policies.GROUP


class ValidatingAdmission:
    """Runs the store's ValidatingAdmissionPolicies and bindings on the store's writes."""

    def __init__(self, object_store: store.ObjectStore) -> None:
        self.store = object_store
        self.policies = object_store.resource_type(_EXEMPT_GROUP, "v1", "validatingadmissionpolicies")
        self.bindings = object_store.resource_type(_EXEMPT_GROUP, "v1", "validatingadmissionpolicybindings")
        object_store.admission_checks.append(self.check)

    def check(self, resource: resources.ResourceType, operation: str, new: Mapping[str, Any] | None,
              old: Mapping[str, Any] | None, subresource: str | None, dry_run: bool) -> None:
        """Raise the ApiError a denying policy answers with; warnings and audit go to the request."""
        if resource.group == _EXEMPT_GROUP:
            return
        bindings = self.store.list(self.bindings)
        if not bindings:
            return  # the usual case: no policy is bound
        context = access.CURRENT.get()
        user = context.attributes.user if context is not None else admission_policies.CONTROLLERS
        if not subresource and context is not None and context.attributes.resource == resource.plural:
            subresource = context.attributes.subresource  # e.g. scale, which the store writes as an update
        meta = (new or old or {}).get("metadata") or {}
        request = admission_policies.Request(resource, operation, subresource or "", str(meta.get("namespace") or ""),
                                             str(meta.get("name") or ""), new, old, user, dry_run)
        outcome = admission_policies.evaluate(request, self.store.list(self.policies), bindings, self)
        if context is not None:
            context.warnings += outcome.warnings
            if outcome.audit:
                context.annotations[admission_policies.AUDIT_KEY] = admission_policies.audit_value(outcome.audit)
        if outcome.denial is not None:
            raise outcome.denial

    # -- what admission_policies.Lookup asks for -----------------------------------------------

    def namespace(self, name: str) -> Mapping[str, Any] | None:
        return self.store.find(self.store.resource_type("", "v1", "namespaces"), None, name)

    def params(self, api_version: str, kind: str, namespace: str | None, name: str | None,
               selector: Mapping[str, Any] | None) -> list[Mapping[str, Any]] | None:
        resource = self.store.registry.by_kind(api_version, kind)
        if resource is None:
            return None
        if resource.namespaced and not namespace:
            raise admission_policies.ConfigurationError(
                "cannot use namespaced paramRef in policy binding that matches cluster-scoped resources")
        scope = namespace if resource.namespaced else None
        if name:
            found = self.store.find(resource, scope, name)
            return [] if found is None else [found]
        try:
            parsed = selectors.label_selector_from_object(selector or {})
        except selectors.SelectorError as e:
            raise admission_policies.ConfigurationError(str(e)) from None
        return list(self.store.list(resource, scope, parsed))



