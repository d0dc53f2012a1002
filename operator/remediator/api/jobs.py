"""Job templates: the one-off containers run by the `job` step and by migration rollbacks."""

from typing import Self

from pydantic import ConfigDict, Field, model_validator

from remediator.api.bases import INT32_MAX, SpecModel, one_of_required
from remediator.api.errors import FieldRuleError
from remediator.api.intorstrings import Quantity
from remediator.api.patterns import DNSSubdomain, EnvVarName
from remediator.api.references import SecretKeyRef


class EnvVarSource(SpecModel):
    """Where an environment variable's value comes from."""

    secret_key_ref: SecretKeyRef
    """A key of a Secret in the same namespace."""


class EnvVar(SpecModel):
    """An environment variable: a literal `value` or a `valueFrom` a Secret key, not both."""

    model_config = ConfigDict(json_schema_extra=one_of_required(["value", "value_from"]))

    name: EnvVarName
    """Name of the variable."""
    value: str | None = None
    """Literal value."""
    value_from: EnvVarSource | None = None
    """Take the value from a Secret key."""

    @model_validator(mode="after")
    def _one_source(self) -> Self:
        if (self.value is None) == (self.value_from is None):
            raise FieldRuleError("", "must set exactly one of value, valueFrom")
        return self


class ResourceRequirements(SpecModel):
    """Compute resources of the container, as in a Pod spec."""

    requests: dict[str, Quantity] = Field(default_factory=dict)
    """Resources the container is guaranteed, e.g. {cpu: 100m, memory: 128Mi}."""
    limits: dict[str, Quantity] = Field(default_factory=dict)
    """Resources the container may use at most."""


class JobTemplate(SpecModel):
    """A single-container Job run to completion in the same namespace."""

    image: str = Field(min_length=1, max_length=1024)
    """Container image, e.g. ghcr.io/example/migrate:1.4.2."""
    command: list[str] = Field(default_factory=list)
    """Entrypoint; the image's when empty."""
    args: list[str] = Field(default_factory=list)
    """Arguments to the entrypoint."""
    env: list[EnvVar] = Field(default_factory=list)
    """Environment variables."""
    env_from_secrets: list[DNSSubdomain] = Field(default_factory=list)
    """Names of Secrets whose every key becomes an environment variable."""
    resources: ResourceRequirements | None = None
    """Compute resources of the container."""
    backoff_limit: int = Field(default=0, ge=0, le=INT32_MAX)
    """Retries of a failed pod before the Job fails; 0 because migrations are rarely safe to rerun."""
    active_deadline_seconds: int | None = Field(default=None, ge=1, le=INT32_MAX)
    """Seconds the Job may run before it is stopped and fails."""
    service_account_name: DNSSubdomain | None = None
    """ServiceAccount the pod runs as; the namespace's default when unset (the operator's allow-list decides)."""
    unrestricted: bool = False
    """Run without the restricted security context (non-root, no privilege escalation, no capabilities,
    RuntimeDefault seccomp); only where the operator allows it (--allow-unrestricted-jobs)."""
    ttl_seconds_after_finished: int | None = Field(default=None, ge=0, le=INT32_MAX)
    """Seconds a finished Job is kept before Kubernetes deletes it."""
