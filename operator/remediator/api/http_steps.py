"""Steps that talk HTTP: health checks and notifications."""

from typing import Annotated, Literal, Self

from pydantic import Field, model_validator

from remediator.api.bases import INT32_MAX, SpecModel
from remediator.api.durations import PositiveDuration
from remediator.api.errors import FieldRuleError
from remediator.api.patterns import Matches
from remediator.api.references import SecretKeyRef

HTTP_URL = r"^https?://[^\s/?#]+[^\s]*$"


class HttpCheck(SpecModel):
    """Poll a URL until it answers as expected often enough in a row."""

    url: Annotated[str, Matches(HTTP_URL, "an http:// or https:// URL", max_length=2048)]
    """The URL to request (http or https)."""
    method: Literal["GET", "HEAD"] = "GET"
    """GET or HEAD."""
    expected_status: int = Field(default=200, ge=100, le=599)
    """The HTTP status a healthy answer has."""
    body_contains: str | None = Field(default=None, min_length=1)
    """A healthy answer's body contains this text (GET only)."""
    success_threshold: int = Field(default=1, ge=1, le=INT32_MAX)
    """Healthy answers needed in a row."""
    interval: PositiveDuration = "5s"
    """Time between requests."""
    request_timeout: PositiveDuration = "5s"
    """How long one request may take."""
    headers: dict[str, str] = Field(default_factory=dict)
    """Request headers (visible to anyone who can read the object: no credentials)."""

    @model_validator(mode="after")
    def _body_needs_get(self) -> Self:
        if self.body_contains is not None and self.method != "GET":
            raise FieldRuleError("bodyContains", "needs method GET (a HEAD answer has no body)")
        return self


class NotifyStep(SpecModel):
    """Post a message to a chat webhook (Slack-compatible) whose URL is kept in a Secret."""

    webhook_secret_ref: SecretKeyRef
    """The Secret key holding the webhook URL."""
    message: str = Field(min_length=1, max_length=4096)
    """The text to post."""
    fail_on_error: bool = False
    """Fail the step when the webhook cannot be reached; by default a failed notification only warns."""
