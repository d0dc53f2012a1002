"""Strings constrained by a regular expression, validated alike by the model and the CRD schema.

`Matches` is Annotated metadata: the model checks the string with a message a
person can act on, and the generated schema carries the same `pattern` so the API
server refuses the object first. Patterns use the syntax common to Python, RE2
(Go, the API server) and ECMA-262, and are anchored with ^...$.
"""

import re
from dataclasses import dataclass, field
from typing import Annotated, Any

from pydantic import GetCoreSchemaHandler, GetJsonSchemaHandler
from pydantic.json_schema import JsonSchemaValue
from pydantic_core import core_schema


@dataclass(frozen=True)
class Matches:
    """Annotated metadata for a `str` that must fully match `pattern`."""

    pattern: str
    what: str
    """How the message names a valid value, e.g. "a DNS-1123 label"."""
    max_length: int | None = None
    min_length: int = 1
    _compiled: re.Pattern[str] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "_compiled", re.compile(self.pattern))

    def check(self, value: str) -> str:
        """Return `value` unchanged; raise ValueError saying what a valid value looks like."""
        if self.max_length is not None and len(value) > self.max_length:
            raise ValueError(f"must be at most {self.max_length} characters long ({len(value)})")
        if len(value) < self.min_length or not self._compiled.fullmatch(value):
            raise ValueError(f"{value!r} is not {self.what}")
        return value

    def __get_pydantic_core_schema__(
        self, source: Any, handler: GetCoreSchemaHandler
    ) -> core_schema.CoreSchema:
        return core_schema.no_info_after_validator_function(self.check, handler(source))

    def __get_pydantic_json_schema__(
        self, schema: core_schema.CoreSchema, handler: GetJsonSchemaHandler
    ) -> JsonSchemaValue:
        json_schema = handler(schema)
        json_schema["pattern"] = self.pattern
        json_schema["minLength"] = self.min_length
        if self.max_length is not None:
            json_schema["maxLength"] = self.max_length
        return json_schema


DNS_LABEL = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$"
DNS_SUBDOMAIN = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$"
# Kubernetes' ConfigMap/Secret key rule.
SECRET_KEY = r"^[-._a-zA-Z0-9]+$"
# metav1.Condition reason, and the reasons of timeline entries (they become Events).
REASON = r"^[A-Za-z]([A-Za-z0-9_,:]*[A-Za-z0-9_])?$"
# An unquoted PostgreSQL identifier, optionally schema-qualified: nothing to quote or inject.
SQL_NAME = r"^[A-Za-z_][A-Za-z0-9_$]*(\.[A-Za-z_][A-Za-z0-9_$]*)?$"
SQL_ROLE = r"^[A-Za-z_][A-Za-z0-9_$]*$"
ENV_VAR_NAME = r"^[-._a-zA-Z][-._a-zA-Z0-9]*$"

DNSLabel = Annotated[
    str,
    Matches(DNS_LABEL, "a DNS-1123 label (lowercase letters, digits and '-', at most 63)", max_length=63),
]
DNSSubdomain = Annotated[
    str,
    Matches(DNS_SUBDOMAIN, "a DNS-1123 subdomain (lowercase letters, digits, '-' and '.')", max_length=253),
]
SecretKey = Annotated[
    str, Matches(SECRET_KEY, "a Secret key (letters, digits, '-', '_' and '.')", max_length=253)
]
Reason = Annotated[str, Matches(REASON, "a CamelCase reason", max_length=1024)]
SqlName = Annotated[
    str, Matches(SQL_NAME, "a plain SQL name such as orders or public.orders", max_length=127)
]
SqlRole = Annotated[str, Matches(SQL_ROLE, "a plain SQL role name", max_length=63)]
EnvVarName = Annotated[str, Matches(ENV_VAR_NAME, "an environment variable name", max_length=253)]
