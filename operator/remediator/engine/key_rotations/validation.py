"""Bad input: what stops a KeyRotation before it touches anything, with a reason and the field at fault.

`static` needs only the spec and the policy; `against_world` needs what was read: the Secrets, the
namespace's other KeyRotations and its workloads.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from typing import Any

import pydantic

from remediator.api.keyrotations import KeyRotationSpec
from remediator.engine import guards, intents, role_rotations
from remediator.engine.key_rotations import consumers, moves, views

SOURCE_ANNOTATION = "remediator.dev/rotation-source-for"
"""On a Secret named by a fromSecretRef: the KeyRotations (a comma list, or *) that may copy its values.
Without it a KeyRotation would copy a Secret its author may not read into one they may."""
# Secrets whose values another controller writes: a rotation would fight it, or break a token.
NOT_ROTATABLE_TYPES = frozenset({"kubernetes.io/service-account-token", "bootstrap.kubernetes.io/token"})


@dataclasses.dataclass(frozen=True)
class Refusal:
    """Why the KeyRotation cannot rotate: a CamelCase reason, the field path and what is wrong."""

    reason: str
    field: str
    message: str

    @property
    def text(self) -> str:
        return f"{self.field}: {self.message}" if self.field else self.message


def static(spec: KeyRotationSpec, rotation: views.KeyRotation, policy: views.Policy) -> Refusal | None:
    """Refusals decided from the spec and the operator's allow-lists alone."""
    verdict = guards.allowed(rotation.namespace, None, policy.namespaces, policy.kinds)
    if not verdict.proceeds:
        return Refusal(verdict.reason, "metadata.namespace", verdict.message)
    for index, rotated in enumerate(spec.keys):
        source = rotated.from_secret_ref
        if source is not None and source.namespace not in (None, rotation.namespace):
            return Refusal("CrossNamespaceSecret", f"spec.keys[{index}].fromSecretRef.namespace",
                           f"{source.namespace} is not the KeyRotation's namespace {rotation.namespace}: "
                           "a rotation never reads another namespace")
    for index, target in enumerate(spec.consumers.workloads):
        verdict = guards.allowed(rotation.namespace, str(target.kind), None, policy.kinds)
        if not verdict.proceeds:
            return Refusal(verdict.reason, f"spec.consumers.workloads[{index}].kind", verdict.message)
    return None


def secret_names(spec: KeyRotationSpec) -> tuple[str, ...]:
    """The live Secret first, then every fromSecretRef Secret."""
    sources = [k.from_secret_ref.name for k in spec.keys if k.from_secret_ref is not None]
    return tuple(dict.fromkeys([spec.secret_ref.name, *sources]))


def against_world(spec: KeyRotationSpec, rotation: views.KeyRotation,
                  secrets: Mapping[str, moves.SecretSeen | None], others: Sequence[Mapping[str, Any]],
                  workloads: Sequence[Mapping[str, Any]]) -> Refusal | None:
    """Refusals that depend on what exists: the Secret and its keys, the sources, a KeyRotation that
    manages the same key first, consumers missing or too many."""
    live = secrets.get(spec.secret_ref.name)
    if live is None:
        return Refusal("SecretNotFound", "spec.secretRef.name",
                       f"secret {spec.secret_ref.name} does not exist in namespace {rotation.namespace}")
    if live.type in NOT_ROTATABLE_TYPES:
        return Refusal("SecretNotRotatable", "spec.secretRef.name",
                       f"secret {live.name} is of type {live.type}, whose values its own controller writes")
    if live.immutable:
        return Refusal("SecretImmutable", "spec.secretRef.name",
                       f"secret {live.name} is immutable: its values cannot be rotated in place")
    for index, rotated in enumerate(spec.keys):
        if rotated.key not in live.keys:
            return Refusal("KeyNotFound", f"spec.keys[{index}].key",
                           f"secret {live.name} has no key {rotated.key!r}")
        source = rotated.from_secret_ref
        if source is not None:
            found = secrets.get(source.name)
            if found is None:
                return Refusal("SourceSecretNotFound", f"spec.keys[{index}].fromSecretRef.name",
                               f"secret {source.name} does not exist in namespace {rotation.namespace}")
            if source.key not in found.keys:
                return Refusal("SourceKeyNotFound", f"spec.keys[{index}].fromSecretRef.key",
                               f"secret {source.name} has no key {source.key!r}")
            allowed = {n.strip() for n in (found.annotation(SOURCE_ANNOTATION) or "").split(",") if n.strip()}
            if rotation.name not in allowed and "*" not in allowed:
                return Refusal("SourceNotShared", f"spec.keys[{index}].fromSecretRef.name",
                               f"secret {source.name} does not share its values with KeyRotation {rotation.name}: "
                               f"its annotation {SOURCE_ANNOTATION} must name it")
    conflict = _conflict(spec, rotation, others)
    if conflict is not None:
        return conflict
    found_consumers, missing = consumers.select(spec.consumers, spec.secret_ref.name, workloads)
    if missing:
        kind, name = missing[0]
        index = [(str(t.kind), t.name) for t in spec.consumers.workloads].index(missing[0])
        return Refusal("ConsumerNotFound", f"spec.consumers.workloads[{index}]",
                       f"{kind.lower()}/{name} does not exist in namespace {rotation.namespace}")
    if len(found_consumers) > spec.max_consumers:
        return Refusal("TooManyConsumers", "spec.maxConsumers",
                       f"{len(found_consumers)} workloads read secret {spec.secret_ref.name}, more than "
                       f"maxConsumers {spec.max_consumers}; nothing was changed")
    return None


def role_refusal(spec: KeyRotationSpec, current_user: str | None, observed: intents.Result) -> Refusal | None:
    """Why the database role may not be rotated: the database cannot be reached, or the role is missing,
    a superuser, the database's owner or the operator's own (engine.role_rotations' rules)."""
    role = spec.database_role
    assert role is not None
    if not observed.succeeded:
        return Refusal(observed.reason or "DatabaseUnreachable", "spec.databaseRole.connectionSecretRef",
                       observed.message)
    refused = role_rotations.refusal(observed.value, role.strategy)
    if refused is None:
        planned = role_rotations.plan(role.strategy, role.role, current_user)
        refused = planned if isinstance(planned, role_rotations.Refusal) else None
    if refused is not None:
        return Refusal(refused.reason, "spec.databaseRole.role", refused.message)
    return None


def _managed_keys(spec: KeyRotationSpec) -> set[str]:
    return {name for k in spec.keys for name in (k.key, k.key + spec.previous_key_suffix)}


def _conflict(spec: KeyRotationSpec, rotation: views.KeyRotation,
              others: Sequence[Mapping[str, Any]]) -> Refusal | None:
    """The first KeyRotation (oldest, then by name) to manage a key of the Secret keeps it; later ones are
    refused with Conflict."""
    mine = _managed_keys(spec)
    for other in sorted(others, key=lambda o: (str(o.get("createdAt") or ""), str(o["name"]))):
        if other["name"] == rotation.name or (str(other.get("createdAt") or ""), str(other["name"])) > (
                rotation.created_at, rotation.name):
            continue
        try:
            other_spec = KeyRotationSpec.model_validate(dict(other.get("spec") or {}))
        except pydantic.ValidationError:
            continue  # an invalid KeyRotation manages nothing
        if other_spec.secret_ref.name != spec.secret_ref.name:
            continue
        shared = sorted(mine & _managed_keys(other_spec))
        if shared:
            index = next(i for i, k in enumerate(spec.keys)
                         if {k.key, k.key + spec.previous_key_suffix} & set(shared))
            return Refusal("Conflict", f"spec.keys[{index}].key",
                           f"KeyRotation {other['name']} already manages key {shared[0]!r} of secret "
                           f"{spec.secret_ref.name}")
    return None
