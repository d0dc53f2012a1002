"""Names and hashes the simulated controllers give the objects they create.

Kubernetes names generated objects with `utilrand.String` (pod names) and encodes template
hashes with `rand.SafeEncodeString`, both over an alphabet without vowels (no accidental words)
and without look-alike characters; the sandbox uses the same alphabet so names look the same.
"""

from __future__ import annotations

import json
import random
from collections.abc import Mapping
from typing import Any

# k8s.io/apimachinery/pkg/util/rand: "bcdfghjklmnpqrstvwxz2456789".
SAFE_ALPHABET = "bcdfghjklmnpqrstvwxz2456789"
POD_TEMPLATE_HASH_LABEL = "pod-template-hash"

_FNV32_OFFSET = 0x811C9DC5
_FNV32_PRIME = 0x01000193


def random_suffix(length: int = 5, rng: random.Random | None = None) -> str:
    """Random characters as the API server appends to a generateName (e.g. "x7k2q")."""
    chooser = rng or random
    return "".join(chooser.choice(SAFE_ALPHABET) for _ in range(length))


def safe_encode(text: str) -> str:
    """Kubernetes' SafeEncodeString: each byte mapped into the safe alphabet."""
    return "".join(SAFE_ALPHABET[ord(char) % len(SAFE_ALPHABET)] for char in text)


def fnv32a(data: bytes) -> int:
    """The 32-bit FNV-1a hash that Kubernetes uses for template hashes."""
    value = _FNV32_OFFSET
    for byte in data:
        value ^= byte
        value = (value * _FNV32_PRIME) & 0xFFFFFFFF
    return value


def template_hash(template: Mapping[str, Any], collision_count: int | None = None) -> str:
    """A stable hash of a pod template, formatted like Kubernetes' (up to 10 chars, e.g. "5d59d67564").

    The template is hashed as canonical JSON of `comparable_template`, so the hash of a
    ReplicaSet's template equals the hash of the Deployment template it came from.
    A collision count (Deployment status.collisionCount) changes the hash, as in Kubernetes.
    """
    canonical = json.dumps(comparable_template(template), sort_keys=True, separators=(",", ":"))
    data = canonical.encode()
    if collision_count:
        data += collision_count.to_bytes(4, "little")
    return safe_encode(str(fnv32a(data)))


def comparable_template(template: Mapping[str, Any]) -> Any:
    """A pod template as Kubernetes compares templates (apiequality.Semantic.DeepEqual after decoding):
    no `pod-template-hash` label, and no null, empty-map or empty-list fields.

    Clients round-trip templates through typed structs, so `kubectl rollout undo` sends back
    `creationTimestamp: null` and `resources: {}` that were never in the stored template.
    """
    return _without_empty(without_hash_label(template))


def _without_empty(value: Any) -> Any:
    if isinstance(value, Mapping):
        pruned = {key: _without_empty(item) for key, item in value.items()}
        return {key: item for key, item in pruned.items() if item is not None and item != {} and item != []}
    if isinstance(value, list):
        return [_without_empty(item) for item in value]
    return value


def without_hash_label(template: Mapping[str, Any]) -> dict[str, Any]:
    """A copy of a pod template without the `pod-template-hash` label (and no empty labels map)."""
    result = dict(template)
    metadata = dict(result.get("metadata") or {})
    labels = {k: v for k, v in (metadata.get("labels") or {}).items() if k != POD_TEMPLATE_HASH_LABEL}
    if labels:
        metadata["labels"] = labels
    else:
        metadata.pop("labels", None)
    if metadata:
        result["metadata"] = metadata
    else:
        result.pop("metadata", None)
    return result
