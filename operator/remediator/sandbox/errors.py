"""API errors rendered as metav1.Status bodies, worded like kube-apiserver's."""

from __future__ import annotations

from typing import Any

REASONS: dict[int, str] = {
    400: "BadRequest",
    401: "Unauthorized",
    403: "Forbidden",
    404: "NotFound",
    405: "MethodNotAllowed",
    406: "NotAcceptable",
    409: "Conflict",
    410: "Expired",
    415: "UnsupportedMediaType",
    422: "Invalid",
    429: "TooManyRequests",
    500: "InternalError",
}


class ApiError(Exception):
    """An error answered to the client as a Status object with an HTTP code."""

    def __init__(
        self,
        code: int,
        message: str,
        *,
        reason: str | None = None,
        details: dict[str, Any] | None = None,
        body: dict[str, Any] | None = None,
    ) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.reason = reason or REASONS.get(code, "Unknown")
        self.details = details
        self._body = body

    def status(self) -> dict[str, Any]:
        """The metav1.Status body, its fields in the Go struct's order (as kube-apiserver prints them)."""
        if self._body is not None:
            return self._body
        status: dict[str, Any] = {
            "kind": "Status",
            "apiVersion": "v1",
            "metadata": {},
            "status": "Failure",
            "message": self.message,
            "reason": self.reason,
        }
        if self.details is not None:
            status["details"] = self.details
        status["code"] = self.code
        return status


def _details(name: str, group: str, kind: str) -> dict[str, Any]:
    # StatusDetails fields are omitempty: the core group is left out.
    details: dict[str, Any] = {"name": name, "group": group, "kind": kind}
    return {k: v for k, v in details.items() if v}


def not_found(group_resource: str, name: str, *, kind: str, group: str) -> ApiError:
    """404 for a named object; `kind` is the resource (plural), as NewNotFound puts it in details."""
    return ApiError(404, f'{group_resource} "{name}" not found', details=_details(name, group, kind))


def already_exists(group_resource: str, name: str, *, kind: str, group: str) -> ApiError:
    """409 AlreadyExists; `kind` is the resource (plural), as NewAlreadyExists puts it in details."""
    return ApiError(409, f'{group_resource} "{name}" already exists', reason="AlreadyExists",
                    details=_details(name, group, kind))


STALE = "the object has been modified; please apply your changes to the latest version and try again"


def conflict(group_resource: str, name: str, *, kind: str, group: str, because: str = STALE) -> ApiError:
    """409 Conflict (a stale write unless `because` says otherwise); `kind` is the resource (plural),
    as NewConflict puts it in details."""
    return ApiError(409, f'Operation cannot be fulfilled on {group_resource} "{name}": {because}',
                    details=_details(name, group, kind))


def invalid(group_kind: str, name: str, causes: list[tuple[str, str, str]], *, kind: str,
            group: str) -> ApiError:
    """A 422 from (field, reason, message) causes, summarised like field.ErrorList."""
    rendered = [f"{field}: {message}" if field else message for field, _, message in causes]
    summary = rendered[0] if len(rendered) == 1 else "[" + ", ".join(rendered) + "]"
    return ApiError(
        422,
        f'{group_kind} "{name}" is invalid: {summary}',
        details={
            **_details(name, group, kind),
            "causes": [{"reason": reason, "message": message, "field": field}
                       for field, reason, message in causes],
        },
    )


def bad_request(message: str) -> ApiError:
    return ApiError(400, message)


def method_not_allowed(message: str = "the server does not allow this method on the requested resource"
                       ) -> ApiError:
    return ApiError(405, message)


def unclassified(code: int, message: str) -> ApiError:
    """A Go error the registry did not turn into a Status: no reason (StatusReasonUnknown is "")."""
    return ApiError(code, message, body={"kind": "Status", "apiVersion": "v1", "metadata": {},
                                         "status": "Failure", "message": message, "code": code})
