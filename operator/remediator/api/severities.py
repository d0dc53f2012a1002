"""Incident severities: P0 (most severe) to P3, with the SEV1 to SEV4 spelling accepted."""

from datetime import timedelta
from enum import StrEnum
from typing import Annotated, Any

from pydantic import BeforeValidator, WithJsonSchema


class Severity(StrEnum):
    """How bad an incident is; P0 is a full outage, P3 a minor issue."""

    P0 = "P0"
    P1 = "P1"
    P2 = "P2"
    P3 = "P3"


SEVERITY_ALIASES = {"SEV1": Severity.P0, "SEV2": Severity.P1, "SEV3": Severity.P2, "SEV4": Severity.P3}

_DEFAULT_ESCALATE_AFTER = {
    Severity.P0: timedelta(minutes=5),
    Severity.P1: timedelta(minutes=15),
    Severity.P2: timedelta(hours=1),
    Severity.P3: timedelta(hours=4),
}


def normalise_severity(value: Any) -> Severity:
    """Return the Severity that `value` names ("P1", "SEV2", or a Severity).

    Raises ValueError listing the accepted spellings for anything else.
    """
    if isinstance(value, str):
        if value in SEVERITY_ALIASES:
            return SEVERITY_ALIASES[value]
        if value in Severity.__members__:
            return Severity(value)
    raise ValueError(f"{value!r} is not a severity: use P0, P1, P2 or P3 (or SEV1 to SEV4)")


def default_escalate_after(severity: Severity) -> timedelta:
    """Return how long an unresolved incident of `severity` waits before it is escalated."""
    return _DEFAULT_ESCALATE_AFTER[severity]


SeverityField = Annotated[
    Severity,
    BeforeValidator(normalise_severity),
    WithJsonSchema({"type": "string", "enum": [*(s.value for s in Severity), *SEVERITY_ALIASES]}),
]
"""A severity as users write it: the model normalises the SEV spelling to P0 to P3."""
