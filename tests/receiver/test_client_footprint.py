"""The receiver and the leader's pod label send their core-group requests by path: the asyncio client's
CoreV1Api would load the core group's model modules (23 MB of RSS) into every operator running them."""

from __future__ import annotations

import subprocess
import sys

PROGRAM = """
import sys
from kubernetes.aio import client as aio
from remediator.receiver import incident_writes, tokens
from remediator import leader_label
incident_writes.IncidentWrites(aio.ApiClient())
tokens.SecretToken(aio.ApiClient(), "default", "token")
print("kubernetes.aio.client.api.core_v1_api" in sys.modules)
"""


def test_the_receiver_does_not_load_the_core_group_models() -> None:
    answer = subprocess.run([sys.executable, "-c", PROGRAM], capture_output=True, text=True, check=True, timeout=60)
    assert answer.stdout.strip() == "False", answer.stderr
