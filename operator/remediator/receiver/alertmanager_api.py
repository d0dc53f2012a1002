"""Asking Alertmanager (`--alertmanager-url`) for the alerts a truncated notification left out."""

from __future__ import annotations

import asyncio
import json
import logging
import re
from typing import Any

import aiohttp

logger = logging.getLogger("remediator.receiver")

TIMEOUT = 5.0
LABEL_NAME = re.compile(r"[a-zA-Z_][a-zA-Z0-9_]*")


async def group_alerts(url: str, group_labels: dict[str, str], receiver: str = "") -> list[dict[str, Any]]:
    """The active alerts of a group (GET /api/v2/alerts filtered by its group labels and, when named, the
    receiver it was routed to); [] when Alertmanager cannot be asked (the notification's own alerts are
    still processed, and the truncation recorded) or a group label's name is not a label name."""
    # The names go into the filter as they are (the values are quoted): one that is not a label name
    # could rewrite the matcher, e.g. widen it to alerts of other groups.
    if not all(LABEL_NAME.fullmatch(name) for name in group_labels):
        logger.warning("a truncated notification's group labels are not label names: fetching nothing")
        return []
    params = [("active", "true"), ("silenced", "false"), ("inhibited", "false"),
              *(("filter", f"{name}={json.dumps(value)}") for name, value in sorted(group_labels.items()))]
    if receiver:  # Alertmanager anchors it: only the alerts routed to this receiver
        params.append(("receiver", re.escape(receiver)))
    try:
        async with asyncio.timeout(TIMEOUT), aiohttp.ClientSession() as session, \
                session.get(f"{url.rstrip('/')}/api/v2/alerts", params=params) as response:
            response.raise_for_status()
            listed = await response.json()
    except (aiohttp.ClientError, OSError, TimeoutError, ValueError) as e:
        logger.warning(f"could not fetch the alerts a truncated notification left out from Alertmanager "
                       f"({type(e).__name__}); going on with the notification's own")
        return []
    return [entry for entry in listed if isinstance(entry, dict)] if isinstance(listed, list) else []
