"""Authentication, impersonation and RBAC authorization of each request, the reviews, and the request log.

With `auth` off (the default, so the demo stays simple) every request is the admin's and nothing
is forbidden; impersonation headers still change who the request is from (no authorizer checks them,
as with kube-apiserver's AlwaysAllow). With it on, as kube-apiserver with a token file, ServiceAccount
tokens, anonymous requests disabled and `--authorization-mode=RBAC`:
- 401 Unauthorized without a token or with one the server did not issue;
- `Impersonate-User` / `-Group` / `-Uid` / `-Extra-<key>` need the `impersonate` verb on users, groups,
  serviceaccounts, uids or userextras/<key>;
- 403 Forbidden when no RBAC rule allows the request, worded as kube-apiserver words it.
The reviews (SelfSubjectAccessReview, SelfSubjectRulesReview, SubjectAccessReview,
SelfSubjectReview) and TokenRequest (`serviceaccounts/<name>/token`) are answered here.
"""

from __future__ import annotations

import collections
import contextvars
import dataclasses
import datetime
import urllib.parse
from collections.abc import Mapping
from typing import Any

import aiohttp.web
import multidict

from remediator.sandbox import authn, errors, paths, rbac, rbac_defaults, resources, store


@dataclasses.dataclass
class RequestContext:
    """The request being served, as admission needs it: who, what, and the warnings to answer with."""

    attributes: rbac.Attributes
    warnings: list[str] = dataclasses.field(default_factory=list)
    # audit annotations (key → value) for the request log
    annotations: dict[str, str] = dataclasses.field(default_factory=dict)


# The request being served by the current task; None outside requests (the controllers' writes).
CURRENT: contextvars.ContextVar[RequestContext | None] = contextvars.ContextVar("sandbox_request", default=None)
# Where the server keeps the request's UserInfo on the aiohttp request.
USER = aiohttp.web.RequestKey("remediator.sandbox.user", authn.UserInfo)
LOG_SIZE = 100_000
IMPERSONATE_USER = "Impersonate-User"
IMPERSONATE_GROUP = "Impersonate-Group"
IMPERSONATE_UID = "Impersonate-Uid"
IMPERSONATE_EXTRA = "impersonate-extra-"


@dataclasses.dataclass
class RequestRecord:
    """One request as the sandbox's request log (kube-apiserver's audit log) records it.

    Logged when the request arrives; `code` is 0 until the response is complete (an open watch).
    """

    user: str
    groups: tuple[str, ...]
    verb: str
    api_group: str
    resource: str
    subresource: str
    namespace: str
    name: str
    path: str
    code: int = 0
    annotations: dict[str, str] = dataclasses.field(default_factory=dict)
    user_agent: str = ""
    """The client's User-Agent (the audit log's userAgent): tells apart processes sharing a user."""


class AccessControl:
    """Who each request is from and whether it may proceed, over one store's RBAC objects."""

    def __init__(self, object_store: store.ObjectStore, authenticator: authn.Authenticator | None = None) -> None:
        self.store = object_store
        self.authenticator = authenticator
        self.log: collections.deque[RequestRecord] = collections.deque(maxlen=LOG_SIZE)
        self._policy: tuple[int, rbac.Policy] | None = None
        seed_policy(object_store)

    @property
    def enabled(self) -> bool:
        return self.authenticator is not None

    def identify(self, request: aiohttp.web.BaseRequest) -> tuple[authn.UserInfo, rbac.Attributes]:
        """The request's user (after impersonation) and attributes; raises ApiError 401 (who?), or 403
        when impersonation is not allowed. Whether the request itself is allowed is `check`'s."""
        user = authn.ADMIN
        if self.authenticator is not None:
            found = self.authenticator.authenticate(request.headers.get("Authorization"), self._service_account_uid,
                                                    int(self.store.clock().timestamp()))
            if found is None:
                raise errors.ApiError(401, "Unauthorized")
            user = found
        user = self._impersonated(user, request.headers)
        return user, rbac.request_attributes(user, request.method, request.path, request.query)

    def check(self, attributes: rbac.Attributes) -> None:
        """Raise 403 Forbidden unless RBAC allows the request (always allowed with auth off)."""
        if self.authenticator is None:
            return
        decision = rbac.authorize(attributes, self.policy())
        if not decision.allowed:
            raise forbidden(attributes, decision.reason)

    def policy(self) -> rbac.Policy:
        """The RBAC objects as stored now (rebuilt only after a write)."""
        version = self.store.resource_version
        if self._policy is None or self._policy[0] != version:
            self._policy = (version, _policy_of(self.store))
        return self._policy[1]

    def record(self, request: aiohttp.web.BaseRequest, attributes: rbac.Attributes | None) -> RequestRecord:
        """Log a request as it arrives (attributes None: it did not authenticate); the caller sets its code."""
        user = attributes.user if attributes is not None else authn.UserInfo("")
        if attributes is None:
            attributes = rbac.request_attributes(user, request.method, request.path, request.query)
        logged = RequestRecord(user.username, user.groups, attributes.verb, attributes.api_group,
                               attributes.resource, attributes.subresource, attributes.namespace, attributes.name,
                               request.path, user_agent=request.headers.get("User-Agent", ""))
        self.log.append(logged)
        return logged

    # -- reviews and tokens -------------------------------------------------------------------

    def serve(self, resource: resources.ResourceType, api: paths.ApiPath, body: Any,
              user: authn.UserInfo) -> dict[str, Any] | None:
        """The answer to a review or TokenRequest (201), or None when the request is not one of those."""
        if resource.key == ("", "serviceaccounts") and api.subresource == "token":
            return self._token_request(api, body)
        if resource.group not in ("authorization.k8s.io", "authentication.k8s.io"):
            return None
        if not isinstance(body, dict):
            raise errors.bad_request("the request body must be a JSON object")
        spec = body.get("spec") or {}
        answer: dict[str, Any] = {"kind": resource.kind, "apiVersion": resource.api_version,
                                  "metadata": {"creationTimestamp": None}, "spec": spec}
        if resource.plural == "selfsubjectreviews":
            answer["status"] = {"userInfo": user.as_json()}
        elif resource.plural == "selfsubjectrulesreviews":
            answer["status"] = self._rules_review(user, str(spec.get("namespace") or ""))
        elif resource.plural in ("selfsubjectaccessreviews", "subjectaccessreviews", "localsubjectaccessreviews"):
            subject = user if resource.plural == "selfsubjectaccessreviews" else authn.UserInfo(
                str(spec.get("user") or ""), tuple(spec.get("groups") or ()), str(spec.get("uid") or ""))
            if resource.plural == "localsubjectaccessreviews":
                spec = {**spec, "resourceAttributes": {**(spec.get("resourceAttributes") or {}),
                                                       "namespace": api.namespace or ""}}
                answer["metadata"]["namespace"] = api.namespace
            answer["status"] = self._access_review(subject, spec)
        elif resource.plural == "tokenreviews":
            found = self.authenticator.authenticate(f"Bearer {spec.get('token', '')}", self._service_account_uid,
                                                    int(self.store.clock().timestamp())) \
                if self.authenticator is not None else None
            answer["spec"] = {}  # the token is never echoed back
            answer["status"] = {"authenticated": True, "user": found.as_json()} if found else {"user": {}}
        return answer

    def _access_review(self, subject: authn.UserInfo, spec: Mapping[str, Any]) -> dict[str, Any]:
        resource_attributes = spec.get("resourceAttributes")
        if isinstance(resource_attributes, Mapping):
            attributes = rbac.Attributes(
                subject, str(resource_attributes.get("verb") or ""), api_group=str(resource_attributes.get("group")
                                                                                   or ""),
                api_version=str(resource_attributes.get("version") or ""),
                resource=str(resource_attributes.get("resource") or ""),
                subresource=str(resource_attributes.get("subresource") or ""),
                namespace=str(resource_attributes.get("namespace") or ""),
                name=str(resource_attributes.get("name") or ""))
        else:
            non_resource = spec.get("nonResourceAttributes") or {}
            attributes = rbac.Attributes(subject, str(non_resource.get("verb") or ""), resource_request=False,
                                         path=str(non_resource.get("path") or ""))
        if self.authenticator is None:
            return {"allowed": True}
        decision = rbac.authorize(attributes, self.policy())
        status: dict[str, Any] = {"allowed": decision.allowed}
        if decision.reason:
            status["reason"] = decision.reason
        return status

    def _rules_review(self, user: authn.UserInfo, namespace: str) -> dict[str, Any]:
        if self.authenticator is None:
            found = rbac_defaults.CLUSTER_ROLES[0]["rules"]  # cluster-admin's: everything
            problems: list[str] = []
        else:
            found, problems = rbac.rules_for(user, namespace, self.policy())
        resource_rules = []
        non_resource_rules = []
        for rule in found:
            if rule.get("resources"):
                entry = {"verbs": list(rule.get("verbs") or []), "apiGroups": list(rule.get("apiGroups") or []),
                         "resources": list(rule["resources"])}
                if rule.get("resourceNames"):
                    entry["resourceNames"] = list(rule["resourceNames"])
                resource_rules.append(entry)
            if rule.get("nonResourceURLs"):
                non_resource_rules.append({"verbs": list(rule.get("verbs") or []),
                                           "nonResourceURLs": list(rule["nonResourceURLs"])})
        status: dict[str, Any] = {"resourceRules": resource_rules, "nonResourceRules": non_resource_rules,
                                  "incomplete": bool(problems)}
        if problems:
            status["evaluationError"] = problems[0] if len(problems) == 1 else "[" + ", ".join(problems) + "]"
        return status

    def _token_request(self, api: paths.ApiPath, body: Any) -> dict[str, Any]:
        namespace, name = api.namespace or "", api.name or ""
        account_type = self.store.resource_type("", "v1", "serviceaccounts")
        account = self.store.get(account_type, namespace, name)
        spec = (body or {}).get("spec") or {} if isinstance(body, dict) else {}
        authenticator = self.authenticator or authn.Authenticator()
        now = self.store.clock()
        token, expires = authenticator.issue(namespace, name, account["metadata"]["uid"],
                                             now=int(now.timestamp()),
                                             expiration_seconds=spec.get("expirationSeconds"),
                                             audiences=tuple(spec.get("audiences") or ()))
        return {"kind": "TokenRequest", "apiVersion": "authentication.k8s.io/v1",
                "metadata": {"name": name, "namespace": namespace, "creationTimestamp": None},
                "spec": {"audiences": list(spec.get("audiences") or [authn.ISSUER]),
                         "expirationSeconds": expires - int(now.timestamp()), "boundObjectRef": spec.get(
                             "boundObjectRef")},
                "status": {"token": token, "expirationTimestamp": store.format_time(
                    datetime.datetime.fromtimestamp(expires, datetime.UTC))}}

    # -- impersonation ------------------------------------------------------------------------

    def _impersonated(self, user: authn.UserInfo, headers: multidict.CIMultiDictProxy[str]) -> authn.UserInfo:
        username = headers.get(IMPERSONATE_USER)
        groups = tuple(headers.getall(IMPERSONATE_GROUP, []))
        uid = headers.get(IMPERSONATE_UID, "")
        extra: dict[str, tuple[str, ...]] = {}
        for header, value in headers.items():
            if header.lower().startswith(IMPERSONATE_EXTRA):
                key = urllib.parse.unquote(header[len(IMPERSONATE_EXTRA):]).lower()
                extra[key] = (*extra.get(key, ()), value)
        if username is None:
            if groups or uid or extra:
                raise errors.ApiError(500, "Internal Server Error: requested impersonation of groups or a uid "
                                      "without impersonating a user")
            return user
        account = authn.parse_service_account(username)
        checks = [rbac.Attributes(user, "impersonate", api_group="", resource="serviceaccounts",
                                  namespace=account[0], name=account[1]) if account else
                  rbac.Attributes(user, "impersonate", api_group="", resource="users", name=username)]
        checks += [rbac.Attributes(user, "impersonate", api_group="", resource="groups", name=g) for g in groups]
        if uid:
            checks.append(rbac.Attributes(user, "impersonate", api_group="authentication.k8s.io", resource="uids",
                                          name=uid))
        checks += [rbac.Attributes(user, "impersonate", api_group="authentication.k8s.io", resource="userextras",
                                   subresource=key, name=value) for key, values in extra.items() for value in values]
        for attributes in checks:
            self.check(attributes)
        if account and not groups:
            return authn.with_authenticated(dataclasses.replace(authn.service_account_user(*account, uid),
                                                                extra=extra))
        return authn.with_authenticated(authn.UserInfo(username, groups, uid, extra))

    def _service_account_uid(self, namespace: str, name: str) -> str | None:
        found = self.store.find(self.store.resource_type("", "v1", "serviceaccounts"), namespace, name)
        return None if found is None else str(found["metadata"]["uid"])


def forbidden(attributes: rbac.Attributes, reason: str = "") -> errors.ApiError:
    """kube-apiserver's 403 for a request its authorizer did not allow."""
    who = f'User "{attributes.user.username}"'
    if not attributes.resource_request:
        message = f'forbidden: {who} cannot {attributes.verb} path "{attributes.path}"'
        return errors.ApiError(403, f"{message}: {reason}" if reason else message, details={})
    scope = f'in the namespace "{attributes.namespace}"' if attributes.namespace else "at the cluster scope"
    detail = (f'{who} cannot {attributes.verb} resource "{attributes.combined_resource}" in API group '
              f'"{attributes.api_group}" {scope}')
    if reason:
        detail += f": {reason}"
    group_resource = f"{attributes.resource}.{attributes.api_group}" if attributes.api_group else attributes.resource
    subject = f'{group_resource} "{attributes.name}"' if attributes.name else group_resource
    details = {k: v for k, v in (("name", attributes.name), ("group", attributes.api_group),
                                 ("kind", attributes.resource)) if v}
    return errors.ApiError(403, f"{subject} is forbidden: {detail}", details=details)


def seed_policy(object_store: store.ObjectStore) -> None:
    """Create the bootstrap ClusterRoles and ClusterRoleBindings that are missing."""
    for plural, documents in (("clusterroles", rbac_defaults.CLUSTER_ROLES),
                              ("clusterrolebindings", rbac_defaults.CLUSTER_ROLE_BINDINGS)):
        resource = object_store.resource_type(rbac.GROUP, "v1", plural)
        for document in documents:
            if object_store.find(resource, None, document["metadata"]["name"]) is None:
                object_store.create(resource, document)


def _policy_of(object_store: store.ObjectStore) -> rbac.Policy:
    def listed(plural: str) -> list[dict[str, Any]]:
        return object_store.list(object_store.resource_type(rbac.GROUP, "v1", plural))

    return rbac.Policy(
        roles={(r["metadata"]["namespace"], r["metadata"]["name"]): r for r in listed("roles")},
        cluster_roles={r["metadata"]["name"]: r for r in listed("clusterroles")},
        role_bindings=listed("rolebindings"),
        cluster_role_bindings=listed("clusterrolebindings"))
