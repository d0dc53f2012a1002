"""The custom resource kinds: names, models and printer columns, one entry per kind."""

from dataclasses import dataclass, field
from typing import Any

from pydantic import BaseModel

from remediator import GROUP
from remediator.api.incidents import IncidentSpec, IncidentStatus
from remediator.api.keyrotations import KeyRotationSpec, KeyRotationStatus
from remediator.api.rollbacks import RollbackRequestSpec, RollbackRequestStatus
from remediator.api.runbooks import RunbookSpec, RunbookStatus

CATEGORY = "remediator"


@dataclass(frozen=True)
class PrinterColumn:
    """A column `kubectl get` shows for the kind."""

    name: str
    json_path: str
    type: str = "string"

    def as_crd(self) -> dict[str, Any]:
        """Return the column as an additionalPrinterColumns entry."""
        return {"name": self.name, "jsonPath": self.json_path, "type": self.type}


PHASE = PrinterColumn("Phase", ".status.phase")
READY = PrinterColumn("Ready", '.status.conditions[?(@.type=="Ready")].status')
AGE = PrinterColumn("Age", ".metadata.creationTimestamp", "date")


@dataclass(frozen=True)
class ResourceKind:
    """One namespaced kind of the remediator.dev group."""

    kind: str
    plural: str
    short_names: tuple[str, ...]
    description: str
    spec_model: type[BaseModel]
    status_model: type[BaseModel]
    printer_columns: tuple[PrinterColumn, ...] = field(default=())

    @property
    def singular(self) -> str:
        """The lowercase singular name (incident)."""
        return self.kind.lower()

    @property
    def crd_name(self) -> str:
        """The CustomResourceDefinition's name (incidents.remediator.dev)."""
        return f"{self.plural}.{GROUP}"


INCIDENT = ResourceKind(
    kind="Incident",
    plural="incidents",
    short_names=("inc",),
    description="One incident and its ordered remediation steps; the status holds the phase, "
    "conditions, the state of each step and the timeline.",
    spec_model=IncidentSpec,
    status_model=IncidentStatus,
    printer_columns=(PrinterColumn("Severity", ".spec.severity"), PHASE, READY, AGE),
)
RUNBOOK = ResourceKind(
    kind="Runbook",
    plural="runbooks",
    short_names=("rbk",),
    description="Reusable remediation steps, the alerts that trigger them, and defaults for the "
    "Incidents they create.",
    spec_model=RunbookSpec,
    status_model=RunbookStatus,
    printer_columns=(PrinterColumn("Severity", ".spec.defaults.severity"), READY, AGE),
)
ROLLBACK_REQUEST = ResourceKind(
    kind="RollbackRequest",
    plural="rollbackrequests",
    short_names=("rbr",),
    description="Roll a Deployment back to a previous (or given) revision, optionally stopping the "
    "application and running a migration-rollback Job first, then wait for the rollout.",
    spec_model=RollbackRequestSpec,
    status_model=RollbackRequestStatus,
    printer_columns=(
        PrinterColumn("Target", ".spec.target.name"),
        PHASE,
        PrinterColumn("From", ".status.fromRevision", "integer"),
        PrinterColumn("To", ".status.toRevision", "integer"),
        READY,
        AGE,
    ),
)
KEY_ROTATION = ResourceKind(
    kind="KeyRotation",
    plural="keyrotations",
    short_names=("kr",),
    description="Rotate keys held in a Secret (and optionally a database role's password), restart "
    "the consumers, verify, and remove the old values after a grace period.",
    spec_model=KeyRotationSpec,
    status_model=KeyRotationStatus,
    printer_columns=(
        PrinterColumn("Secret", ".spec.secretRef.name"),
        PHASE,
        PrinterColumn("Last Rotation", ".status.lastRotationTime", "date"),
        READY,
        AGE,
    ),
)

RESOURCE_KINDS = (INCIDENT, RUNBOOK, ROLLBACK_REQUEST, KEY_ROTATION)
