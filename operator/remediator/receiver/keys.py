"""The incident key (which alerts are one episode) and the deterministic Incident name.

The key is the Runbook plus the values of its key labels, hashed from a canonical JSON form: label
order and labels outside the key change nothing. The name adds the episode's first startsAt, so a
resend, an HA duplicate or a second replica names the same Incident, and a new firing a new one.
"""

from __future__ import annotations

import datetime
import hashlib
import json
from collections.abc import Mapping, Sequence

from remediator import GROUP

KEY_LABEL = f"{GROUP}/incident-key"
RUNBOOK_LABEL = f"{GROUP}/runbook"
# sha256 in hex, cut to fit a label value (63) with room to spare; 160 bits never collide in practice.
KEY_HASH_LENGTH = 40
NAME_HASH_LENGTH = 16
MAX_RUNBOOK_PART = 200


def incident_key(runbook_namespace: str, runbook_name: str, key_labels: Sequence[str],
                 labels: Mapping[str, str]) -> str:
    """The hash of the incident key: the Runbook and the values of `key_labels` ("" when absent)."""
    canonical = json.dumps([runbook_namespace, runbook_name, sorted((n, labels.get(n, "")) for n in set(key_labels))],
                           separators=(",", ":"), ensure_ascii=True)
    return hashlib.sha256(canonical.encode()).hexdigest()[:KEY_HASH_LENGTH]


def incident_name(runbook_name: str, key_hash: str, starts_at: datetime.datetime) -> str:
    """The Incident's name for the episode of `key_hash` that started at `starts_at` (a DNS subdomain)."""
    moment = starts_at.astimezone(datetime.UTC).isoformat()
    suffix = hashlib.sha256(f"{key_hash}/{moment}".encode()).hexdigest()[:NAME_HASH_LENGTH]
    prefix = runbook_name[:MAX_RUNBOOK_PART].rstrip("-.")
    return f"{prefix}-{suffix}"
