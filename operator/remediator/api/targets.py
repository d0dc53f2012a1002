"""Workloads that steps act on, always in the object's own namespace.

There is no namespace field on purpose: nothing acts across namespaces by accident.
Each step accepts only the kinds it can handle, so the schema refuses the rest.
"""

from typing import Literal

from remediator.api.bases import SpecModel
from remediator.api.patterns import DNSSubdomain

WorkloadKind = Literal["Deployment", "StatefulSet", "DaemonSet"]
ScalableKind = Literal["Deployment", "StatefulSet"]


class Target(SpecModel):
    """A Deployment, StatefulSet or DaemonSet in the same namespace."""

    kind: WorkloadKind
    """Kind of the workload."""
    name: DNSSubdomain
    """Name of the workload."""


class ScalableTarget(SpecModel):
    """A Deployment or StatefulSet in the same namespace."""

    kind: ScalableKind
    """Kind of the workload."""
    name: DNSSubdomain
    """Name of the workload."""


class DeploymentTarget(SpecModel):
    """A Deployment in the same namespace."""

    kind: Literal["Deployment"]
    """Kind of the workload: only Deployments keep revisions to roll back to."""
    name: DNSSubdomain
    """Name of the Deployment."""
