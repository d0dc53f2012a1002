"""The RBAC authorizer: which requests Roles, ClusterRoles and their bindings allow. Pure functions.

Follows kube-apiserver's RBAC authorizer and the documented matching
(https://kubernetes.io/docs/reference/access-authn-authz/rbac/): a request is allowed when one rule
of a role bound to the user, one of its groups, or its ServiceAccount matches its verb, API group,
resource (`resource/subresource`, `*`, `*/subresource`) and name (`resourceNames`), or, for a
path outside the API, its verb and `nonResourceURLs` (`*` and `/prefix/*`). Nothing is denied
explicitly: no matching rule means 403. ClusterRoleBindings apply everywhere, RoleBindings in their
namespace (a RoleBinding may name a ClusterRole, whose rules then apply in that namespace only).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator, Mapping, Sequence
from typing import Any

from remediator.sandbox import authn, paths, selectors

GROUP = "rbac.authorization.k8s.io"
Object = Mapping[str, Any]


@dataclasses.dataclass(frozen=True)
class Attributes:
    """What a request asks to do, as kube-apiserver's authorizer.Attributes holds it."""

    user: authn.UserInfo
    verb: str
    resource_request: bool = True
    api_group: str = ""
    api_version: str = ""
    resource: str = ""
    subresource: str = ""
    namespace: str = ""
    name: str = ""
    path: str = ""

    @property
    def combined_resource(self) -> str:
        return f"{self.resource}/{self.subresource}" if self.subresource else self.resource


@dataclasses.dataclass(frozen=True)
class Policy:
    """The RBAC objects the authorizer reads (as its informers' caches hold them)."""

    roles: Mapping[tuple[str, str], Object]  # (namespace, name) → Role
    cluster_roles: Mapping[str, Object]
    role_bindings: Sequence[Object]
    cluster_role_bindings: Sequence[Object]


@dataclasses.dataclass(frozen=True)
class Decision:
    allowed: bool
    reason: str  # "RBAC: allowed by ..." or why rules could not be found ("" when none)


_VERBS = {"GET": "get", "POST": "create", "PUT": "update", "PATCH": "patch", "DELETE": "delete"}


def request_attributes(user: authn.UserInfo, method: str, path: str, query: Mapping[str, str]) -> Attributes:
    """The attributes of an HTTP request (kube-apiserver's RequestInfoFactory)."""
    try:
        api = paths.parse(path)
    except ValueError:
        api = None
    if api is None or api.plural is None:
        return Attributes(user, method.lower(), resource_request=False, path=path)
    verb = _VERBS.get(method, method.lower())
    name = api.name or ""
    if method == "GET" and not api.name:
        verb = "watch" if query.get("watch") in ("true", "1") else "list"
    elif method == "DELETE" and not api.name:
        verb = "deletecollection"
    if verb in ("list", "watch"):
        # a list or watch of one object by field selector is authorised for that name
        selector = query.get("fieldSelector", "")
        if selector.startswith("metadata.name=") and "," not in selector:
            name = selector.removeprefix("metadata.name=")
    namespace = api.namespace or ""
    resource = api.plural
    subresource = api.subresource or ""
    if api.group == "" and resource == "namespaces" and api.name and not namespace:
        namespace = api.name  # a namespace is in its own namespace, for RoleBindings there
    return Attributes(user, verb, api_group=api.group, api_version=api.version, resource=resource,
                      subresource=subresource, namespace=namespace, name=name, path=path)


def authorize(attributes: Attributes, policy: Policy) -> Decision:
    """Whether the policy allows the request; when not, the reason names rules that could not be read."""
    problems: list[str] = []
    for source, rules, problem in visit_rules(attributes.user, attributes.namespace, policy):
        if problem:
            problems.append(problem)
        for rule in rules:
            if rule_allows(attributes, rule):
                return Decision(True, f"RBAC: allowed by {source}")
    if not problems:
        return Decision(False, "")
    joined = problems[0] if len(problems) == 1 else "[" + ", ".join(problems) + "]"
    return Decision(False, f"RBAC: {joined}")


def rules_for(user: authn.UserInfo, namespace: str, policy: Policy) -> tuple[list[Object], list[str]]:
    """Every rule that applies to the user in a namespace ("" is cluster-wide only), and lookup errors."""
    rules: list[Object] = []
    problems: list[str] = []
    for _, found, problem in visit_rules(user, namespace, policy):
        rules += found
        if problem:
            problems.append(problem)
    return rules, problems


def visit_rules(user: authn.UserInfo, namespace: str, policy: Policy
                ) -> Iterator[tuple[str, list[Object], str]]:
    """(binding description, its role's rules, error) for every binding that names the user."""
    for binding in policy.cluster_role_bindings:
        subject = _applies(binding, user, "")
        if subject is None:
            continue
        rules, problem = _role_rules(binding.get("roleRef") or {}, "", policy)
        yield (f'ClusterRoleBinding "{binding["metadata"]["name"]}" of {_role_ref(binding)} to {subject}', rules,
               problem)
    if not namespace:
        return
    for binding in policy.role_bindings:
        if binding["metadata"].get("namespace") != namespace:
            continue
        subject = _applies(binding, user, namespace)
        if subject is None:
            continue
        rules, problem = _role_rules(binding.get("roleRef") or {}, namespace, policy)
        yield (f'RoleBinding "{binding["metadata"]["name"]}/{namespace}" of {_role_ref(binding)} to {subject}',
               rules, problem)


def rule_allows(attributes: Attributes, rule: Object) -> bool:
    """Whether one PolicyRule matches the request."""
    verbs = rule.get("verbs") or []
    if "*" not in verbs and attributes.verb not in verbs:
        return False
    if not attributes.resource_request:
        return _non_resource_url_matches(rule.get("nonResourceURLs") or [], attributes.path)
    groups = rule.get("apiGroups") or []
    if "*" not in groups and attributes.api_group not in groups:
        return False
    if not _resource_matches(rule.get("resources") or [], attributes):
        return False
    names = rule.get("resourceNames") or []
    return not names or attributes.name in names


def aggregated_rules(cluster_role: Object, cluster_roles: Mapping[str, Object]) -> list[Object] | None:
    """The rules an aggregated ClusterRole gets from the ClusterRoles its selectors match, or None.

    As kube-controller-manager's clusterrole-aggregation controller: matching roles in name order,
    each rule once.
    """
    aggregation = cluster_role.get("aggregationRule")
    if not isinstance(aggregation, Mapping):
        return None
    rules: list[Object] = []
    own_name = cluster_role["metadata"]["name"]
    for selector_object in aggregation.get("clusterRoleSelectors") or []:
        selector = selectors.label_selector_from_object(selector_object or {})
        for name in sorted(cluster_roles):
            if name == own_name:
                continue
            other = cluster_roles[name]
            if not selector.matches(other["metadata"].get("labels") or {}):
                continue
            for rule in other.get("rules") or []:
                if rule not in rules:
                    rules.append(rule)
    return rules


# -- matching -----------------------------------------------------------------------------------------


def _resource_matches(resources: Sequence[str], attributes: Attributes) -> bool:
    combined = attributes.combined_resource
    for resource in resources:
        if resource in ("*", combined):
            return True
        if attributes.subresource and resource == f"*/{attributes.subresource}":
            return True
    return False


def _non_resource_url_matches(urls: Sequence[str], path: str) -> bool:
    for url in urls:
        if url in ("*", path):
            return True
        if url.endswith("*") and path.startswith(url[:-1]):
            return True
    return False


def _applies(binding: Object, user: authn.UserInfo, namespace: str) -> str | None:
    """How the binding names the user (`User "x"`, `Group "y"`...), or None when it does not."""
    for subject in binding.get("subjects") or []:
        kind = subject.get("kind")
        name = subject.get("name", "")
        if kind == "User" and name == user.username:
            return f'User "{name}"'
        if kind == "Group" and name in user.groups:
            return f'Group "{name}"'
        if kind == "ServiceAccount":
            subject_namespace = subject.get("namespace") or namespace
            if subject_namespace and user.username == f"{authn.SERVICE_ACCOUNT_PREFIX}{subject_namespace}:{name}":
                return f'ServiceAccount "{name}/{subject_namespace}"'
    return None


def _role_rules(role_ref: Object, namespace: str, policy: Policy) -> tuple[list[Object], str]:
    kind, name = role_ref.get("kind"), role_ref.get("name", "")
    if kind == "ClusterRole":
        role = policy.cluster_roles.get(name)
        if role is None:
            return [], f'clusterrole.{GROUP} "{name}" not found'
        return list(role.get("rules") or []), ""
    if kind == "Role" and namespace:
        found = policy.roles.get((namespace, name))
        if found is None:
            return [], f'role.{GROUP} "{name}" not found'
        return list(found.get("rules") or []), ""
    return [], ""


def _role_ref(binding: Object) -> str:
    ref = binding.get("roleRef") or {}
    return f'{ref.get("kind", "")} "{ref.get("name", "")}"'
