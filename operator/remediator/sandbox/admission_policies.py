"""ValidatingAdmissionPolicy and its bindings (admissionregistration.k8s.io/v1), run on every write.

As kube-apiserver 1.32's validating admission policy plugin: after a write has passed validation
and before it is stored, each policy whose `matchConstraints` match the request (resource rules,
operations, namespace and object selectors, exclusions) and whose `matchConditions` hold is
evaluated once per binding that matches too, with `object`, `oldObject`, `request` (operation,
userInfo, name, namespace, ...), `params` (the binding's `paramRef`: one object, or those a
selector picks), `namespaceObject` and `variables`. A failing validation is acted on per the
binding's `validationActions`: Deny (the write is refused: 422 Invalid, or 403 for
`reason: Forbidden`, worded as kube-apiserver words it), Warn (a `Warning` header) and Audit
(an annotation in the request log). An expression that cannot be evaluated denies under
`failurePolicy: Fail` (the default) and is ignored under `Ignore`.

Not here: `auditAnnotations`, the `authorizer` variable, `matchPolicy: Equivalent` conversion
between versions, the policy's type-checking status.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Iterable, Mapping
from typing import Any, Protocol

from remediator.sandbox import authn, cel_library, errors, field_errors, resources, selectors

GROUP = "admissionregistration.k8s.io"
VARIABLES = ("object", "oldObject", "request", "params", "namespaceObject", "variables", "authorizer")
AUDIT_KEY = "validation.policy.admission.k8s.io/validation_failure"
# Who the sandbox's own controllers write as (kube-controller-manager's identity).
CONTROLLERS = authn.UserInfo("system:kube-controller-manager", (authn.AUTHENTICATED,))
Object = Mapping[str, Any]


@dataclasses.dataclass(frozen=True)
class Request:
    """One write as admission sees it."""

    resource: resources.ResourceType
    operation: str  # CREATE, UPDATE, DELETE
    subresource: str
    namespace: str
    name: str
    new: Object | None
    old: Object | None
    user: authn.UserInfo
    dry_run: bool = False


@dataclasses.dataclass
class Outcome:
    """What the policies decided: warnings to send, audit annotations to log, or a denial to raise."""

    warnings: list[str] = dataclasses.field(default_factory=list)
    audit: list[dict[str, Any]] = dataclasses.field(default_factory=list)
    denial: errors.ApiError | None = None


@dataclasses.dataclass(frozen=True)
class _Compiled:
    """A policy's expressions, compiled once per policy version."""

    match_conditions: tuple[tuple[str, cel_library.Expression | str], ...]
    variables: tuple[tuple[str, cel_library.Expression | str], ...]
    validations: tuple[tuple[Object, cel_library.Expression | str, cel_library.Expression | None], ...]


class Lookup(Protocol):
    """What evaluation reads from the store: namespaces and parameter objects."""

    def namespace(self, name: str) -> Object | None:
        """The Namespace object, or None."""

    def params(self, api_version: str, kind: str, namespace: str | None, name: str | None,
               selector: Object | None) -> list[Object] | None:
        """The param objects (None when the kind is not served); raises ConfigurationError."""


_compiled_cache: dict[tuple[str, str], _Compiled] = {}


def evaluate(request: Request, policies: Iterable[Object], bindings: Iterable[Object], lookup: Lookup) -> Outcome:
    """Run every matching policy and binding on one write; the outcome says what the server should do."""
    outcome = Outcome()
    denials: list[tuple[Object, Object | None, str, str]] = []  # policy, binding, message, reason
    by_policy: dict[str, list[Object]] = {}
    for binding in bindings:
        by_policy.setdefault(str((binding.get("spec") or {}).get("policyName") or ""), []).append(binding)
    for policy in policies:
        policy_bindings = by_policy.get(policy["metadata"]["name"])
        if not policy_bindings:
            continue
        spec = policy.get("spec") or {}
        if not _matches_resources(spec.get("matchConstraints") or {}, request, lookup):
            continue
        compiled = _compile(policy)
        fail = (spec.get("failurePolicy") or "Fail") != "Ignore"
        for binding in policy_bindings:
            binding_spec = binding.get("spec") or {}
            constraints = binding_spec.get("matchResources")
            if constraints and not _matches_resources(constraints, request, lookup):
                continue
            try:
                params_list = _params(spec.get("paramKind"), binding_spec.get("paramRef"), request, lookup)
            except ConfigurationError as e:
                if fail:
                    denials.append((policy, binding, f"failed to configure binding: {e}", ""))
                continue
            actions = binding_spec.get("validationActions") or ["Deny"]
            for params in params_list:
                for message, reason, index in _decisions(compiled, request, params, lookup, fail):
                    _act(outcome, denials, policy, binding, actions, message, reason, index)
    if denials:
        outcome.denial = _denial(request, *denials[0])
    return outcome


# -- deciding -----------------------------------------------------------------------------------------


def _decisions(compiled: _Compiled, request: Request, params: Object | None, lookup: Lookup, fail: bool
               ) -> list[tuple[str, str, int]]:
    """(message, reason, validation index) of each failed validation for one set of params."""
    values: dict[str, Any] = {
        "object": request.new, "oldObject": request.old, "request": _request_object(request),
        "params": params, "namespaceObject": _namespace_object(request, lookup),
    }
    for _, expression in compiled.match_conditions:
        try:
            matched = _run(expression, values)
        except _ExpressionError as e:
            return [(str(e), "", -1)] if fail else []
        if matched is not True:
            return []
    variables: dict[str, Any] = {}
    failed_variables: dict[str, str] = {}
    for name, expression in compiled.variables:
        try:
            variables[name] = _run(expression, {**values, "variables": variables})
        except _ExpressionError as e:
            failed_variables[name] = str(e)
    values["variables"] = variables
    decisions: list[tuple[str, str, int]] = []
    for index, (validation, expression, message_expression) in enumerate(compiled.validations):
        needed = [name for name in failed_variables
                  if isinstance(expression, cel_library.Expression) and f"variables.{name}" in expression.source]
        try:
            if needed:
                raise _ExpressionError(f"expression '{_source(validation)}' resulted in error: "
                                       f"{failed_variables[needed[0]]}")
            result = _run(expression, values)
        except _ExpressionError as e:
            if fail:
                decisions.append((str(e), "", index))
            continue
        if result is True:
            continue
        decisions.append((_message(validation, message_expression, values), str(validation.get("reason") or ""),
                          index))
    return decisions


def _act(outcome: Outcome, denials: list[tuple[Object, Object | None, str, str]], policy: Object, binding: Object,
         actions: list[str], message: str, reason: str, index: int) -> None:
    policy_name, binding_name = policy["metadata"]["name"], binding["metadata"]["name"]
    for action in actions:
        if action == "Deny":
            denials.append((policy, binding, message, reason))
        elif action == "Warn":
            outcome.warnings.append(f"Validation failed for ValidatingAdmissionPolicy '{policy_name}' with binding "
                                    f"'{binding_name}': {message}")
        elif action == "Audit":
            outcome.audit.append({"message": message, "policy": policy_name, "binding": binding_name,
                                  "expressionIndex": index, "validationActions": list(actions)})


def _message(validation: Object, message_expression: cel_library.Expression | None, values: Mapping[str, Any]
             ) -> str:
    if message_expression is not None:
        try:
            text = message_expression.evaluate(values)
        except cel_library.EvaluationError:
            text = None
        if isinstance(text, str) and text.strip() and "\n" not in text and len(text.strip()) <= 5000:
            return text.strip()
    message = str(validation.get("message") or "").strip()
    return message or f"failed expression: {_source(validation)}"


def _denial(request: Request, policy: Object, binding: Object | None, message: str, reason: str) -> errors.ApiError:
    """kube-apiserver's refusal: `<resource> "<name>" is forbidden: ValidatingAdmissionPolicy '<p>' ...`."""
    prefix = f"ValidatingAdmissionPolicy '{policy['metadata']['name']}'"
    if binding is not None:
        prefix += f" with binding '{binding['metadata']['name']}'"
    text = f"{prefix} denied request: {message}"
    resource = request.resource
    group_resource = resource.group_resource
    subject = f'{group_resource} "{request.name}"' if request.name else group_resource
    reason = reason or "Invalid"
    code = {"Forbidden": 403, "Unauthorized": 401, "RequestEntityTooLarge": 413}.get(reason, 422)
    details: dict[str, Any] = {k: v for k, v in (("name", request.name), ("group", resource.group),
                                                 ("kind", resource.plural)) if v}
    details["causes"] = [{"message": text}]
    return errors.ApiError(code, f"{subject} is forbidden: {text}", reason=reason, details=details)


# -- matching -----------------------------------------------------------------------------------------


def _matches_resources(constraints: Object, request: Request, lookup: Lookup) -> bool:
    """matchConstraints / matchResources: a resource rule matches, no exclusion does, and the selectors hold."""
    if not any(_rule_matches(rule, request) for rule in constraints.get("resourceRules") or []):
        return False
    if any(_rule_matches(rule, request) for rule in constraints.get("excludeResourceRules") or []):
        return False
    return _namespace_selected(constraints.get("namespaceSelector"), request, lookup) and \
        _object_selected(constraints.get("objectSelector"), request)


def _rule_matches(rule: Object, request: Request) -> bool:
    resource = request.resource
    operations = rule.get("operations") or []
    if "*" not in operations and request.operation not in operations:
        return False
    groups = rule.get("apiGroups") or []
    versions = rule.get("apiVersions") or []
    if "*" not in groups and resource.group not in groups:
        return False
    if "*" not in versions and resource.version not in versions:
        return False
    scope = rule.get("scope") or "*"
    if (scope == "Cluster" and resource.namespaced) or (scope == "Namespaced" and not resource.namespaced):
        return False
    names = rule.get("resourceNames") or []
    if names and request.name not in names:
        return False
    return any(_resource_matches(pattern, resource.plural, request.subresource) for pattern in rule.get("resources")
               or [])


def _resource_matches(pattern: str, plural: str, subresource: str) -> bool:
    wanted, _, wanted_sub = pattern.partition("/")
    if wanted not in ("*", plural):
        return False
    if not wanted_sub:
        return not subresource
    return wanted_sub in ("*", subresource)


def _namespace_selected(selector: Object | None, request: Request, lookup: Lookup) -> bool:
    if not selector:
        return True
    if request.resource.key == ("", "namespaces"):
        labels = ((request.new or request.old or {}).get("metadata") or {}).get("labels") or {}
    elif not request.resource.namespaced:
        return True  # cluster-scoped objects are not filtered by namespace
    else:
        namespace = lookup.namespace(request.namespace)
        labels = ((namespace or {}).get("metadata") or {}).get("labels") or {}
    return selectors.label_selector_from_object(selector).matches(labels)


def _object_selected(selector: Object | None, request: Request) -> bool:
    if not selector:
        return True
    parsed = selectors.label_selector_from_object(selector)
    return any(parsed.matches((obj.get("metadata") or {}).get("labels") or {})
               for obj in (request.new, request.old) if obj is not None)


# -- params and inputs --------------------------------------------------------------------------------


class ConfigurationError(Exception):
    """A binding that cannot be evaluated (its params are missing or misdeclared)."""


def _params(param_kind: Object | None, param_ref: Object | None, request: Request, lookup: Lookup
            ) -> list[Object | None]:
    if not param_kind or not param_ref:
        return [None]
    api_version, kind = str(param_kind.get("apiVersion") or ""), str(param_kind.get("kind") or "")
    name, selector = param_ref.get("name"), param_ref.get("selector")
    if name and selector is not None:
        raise ConfigurationError("paramRef.name and paramRef.selector are mutually exclusive")
    if not name and selector is None:
        raise ConfigurationError("one of name or selector must be provided")
    found = lookup.params(api_version, kind, param_ref.get("namespace") or request.namespace or None, name, selector)
    if found is None:
        raise ConfigurationError(f"paramKind kind `{api_version}, Kind={kind}` not known")
    if not found and param_ref.get("parameterNotFoundAction") == "Deny":
        raise ConfigurationError("no params found for policy binding with `Deny` parameterNotFoundAction")
    return list(found)


def _request_object(request: Request) -> dict[str, Any]:
    """The AdmissionRequest fields CEL sees as `request` (omitempty fields left out)."""
    resource = request.resource
    kind = {"group": resource.group, "version": resource.version, "kind": resource.kind}
    gvr = {"group": resource.group, "version": resource.version, "resource": resource.plural}
    shown: dict[str, Any] = {"kind": kind, "resource": gvr, "requestKind": kind, "requestResource": gvr,
                             "operation": request.operation, "userInfo": request.user.as_json(),
                             "dryRun": request.dry_run}
    if request.subresource:
        shown["subResource"] = shown["requestSubResource"] = request.subresource
    if request.name:
        shown["name"] = request.name
    if request.namespace:
        shown["namespace"] = request.namespace
    return shown


def _namespace_object(request: Request, lookup: Lookup) -> Any:
    if not request.resource.namespaced or not request.namespace:
        return None
    return lookup.namespace(request.namespace)


# -- validating the objects themselves ---------------------------------------------------------------

ACTIONS = ("Deny", "Warn", "Audit")
FAILURE_POLICIES = ("Fail", "Ignore")


def policy_problems(policy: Object) -> list[field_errors.FieldError]:
    """Why kube-apiserver refuses a ValidatingAdmissionPolicy: a required list missing, an unknown
    failurePolicy, or an expression that does not compile (`compilation failed: ERROR: ...`)."""
    spec = policy.get("spec") or {}
    problems: list[field_errors.FieldError] = []
    if not spec.get("validations") and not spec.get("auditAnnotations"):
        problems.append(field_errors.required("spec.validations",
                                              "validations or auditAnnotations must contain at least one item"))
    failure_policy = spec.get("failurePolicy")
    if failure_policy is not None and failure_policy not in FAILURE_POLICIES:
        problems.append(field_errors.not_supported("spec.failurePolicy", failure_policy, FAILURE_POLICIES))
    if not (spec.get("matchConstraints") or {}).get("resourceRules"):
        problems.append(field_errors.required("spec.matchConstraints.resourceRules", ""))
    for section, key in (("matchConditions", "expression"), ("variables", "expression"),
                         ("validations", "expression"), ("validations", "messageExpression")):
        for position, entry in enumerate(spec.get(section) or []):
            source = (entry or {}).get(key) if isinstance(entry, Mapping) else None
            if not source:
                if key == "expression":
                    problems.append(field_errors.required(f"spec.{section}[{position}].{key}", ""))
                continue
            compiled = _expression(str(source))
            if isinstance(compiled, str):
                problems.append(field_errors.invalid(f"spec.{section}[{position}].{key}", str(source), compiled))
    return problems


def binding_problems(binding: Object) -> list[field_errors.FieldError]:
    """Why kube-apiserver refuses a ValidatingAdmissionPolicyBinding: no policyName, no or unknown actions."""
    spec = binding.get("spec") or {}
    problems: list[field_errors.FieldError] = []
    if not spec.get("policyName"):
        problems.append(field_errors.required("spec.policyName", ""))
    actions = spec.get("validationActions") or []
    if not actions:
        problems.append(field_errors.required("spec.validationActions", ""))
    for position, action in enumerate(actions):
        if action not in ACTIONS:
            problems.append(field_errors.not_supported(f"spec.validationActions[{position}]", action, ACTIONS))
    return problems


# -- compiling ----------------------------------------------------------------------------------------


def _compile(policy: Object) -> _Compiled:
    meta = policy["metadata"]
    key = (str(meta.get("uid")), str(meta.get("resourceVersion")))
    cached = _compiled_cache.get(key)
    if cached is not None:
        return cached
    spec = policy.get("spec") or {}
    variable_names = [str(v.get("name")) for v in spec.get("variables") or [] if isinstance(v, Mapping)]
    compiled = _Compiled(
        match_conditions=tuple((str(c.get("name")), _expression(str(c.get("expression") or "")))
                               for c in spec.get("matchConditions") or [] if isinstance(c, Mapping)),
        variables=tuple((name, _expression(str(v.get("expression") or "")))
                        for name, v in zip(variable_names, spec.get("variables") or [], strict=False)),
        validations=tuple((v, _expression(str(v.get("expression") or "")), _message_expression(v))
                          for v in spec.get("validations") or [] if isinstance(v, Mapping)))
    if len(_compiled_cache) > 1000:
        _compiled_cache.clear()
    _compiled_cache[key] = compiled
    return compiled


def _expression(source: str) -> cel_library.Expression | str:
    """The compiled expression, or the error text that evaluating it will report."""
    try:
        return cel_library.compile_expression(source, VARIABLES)
    except cel_library.CompileError as e:
        return f"compilation failed: {e}"


def _message_expression(validation: Object) -> cel_library.Expression | None:
    source = validation.get("messageExpression")
    compiled = _expression(str(source)) if source else None
    return compiled if isinstance(compiled, cel_library.Expression) else None


class _ExpressionError(Exception):
    pass


def _run(expression: cel_library.Expression | str, values: Mapping[str, Any]) -> Any:
    if isinstance(expression, str):
        raise _ExpressionError(expression)
    try:
        return expression.evaluate(values)
    except cel_library.EvaluationError as e:
        raise _ExpressionError(f"expression '{expression.source}' resulted in error: {e}") from None


def _source(validation: Object) -> str:
    return str(validation.get("expression") or "").strip()


def audit_value(entries: list[dict[str, Any]]) -> str:
    """The audit annotation's value: the failures as a JSON list."""
    return json.dumps(entries, separators=(",", ":"))
