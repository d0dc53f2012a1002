"""Showing who leads: the `remediator_leader` metric and the `remediator.dev/leader` label on this replica's pod.

`kubectl get pods -l remediator.dev/leader=true` finds the leader. The label is best effort: a
replica that loses the lease exits at once, leaving `true` on its pod until its container starts
again (as a follower, which writes `false` first thing); the metric goes with the process.
"""

from __future__ import annotations

import logging
import os

from kubernetes.aio import client

from remediator import GROUP, api_requests
from remediator.metrics import OperatorMetrics

LABEL = f"{GROUP}/leader"
TIMEOUT_SECONDS = 5.0
logger = logging.getLogger("remediator.leadership")


async def show(api: client.ApiClient, namespace: str, metrics: OperatorMetrics, leading: bool) -> None:
    """Set the metric, and the label on the pod named by $POD_NAME in `namespace` (none without $POD_NAME)."""
    metrics.leader.set(1 if leading else 0)
    pod = os.environ.get("POD_NAME")
    if not pod:
        return
    patch = {"metadata": {"labels": {LABEL: "true" if leading else "false"}}}
    try:
        await api_requests.send_json(api, "PATCH", api_requests.path("/api/v1/namespaces", namespace, "pods", pod),
                                     patch, content_type=api_requests.MERGE_PATCH, timeout=TIMEOUT_SECONDS)
    except Exception as e:  # the label is for people; acting never waits for it
        described = f"API error {e.status}" if isinstance(e, client.ApiException) else type(e).__name__
        logger.warning(f"could not label the pod {namespace}/{pod} {LABEL}={str(leading).lower()} ({described})")
