"""Kopf handlers for Incidents: thin decorators that hand over to handle_incident."""

from __future__ import annotations

from typing import Any

import kopf

from remediator import GROUP, VERSION
from remediator.handlers import handle_incident
from remediator.typedefs import Logger


# Any change but status (spec, or an approval annotation) is a reason to look again.
@kopf.on.resume(GROUP, VERSION, "incidents", id="incident-reconcile", backoff=5)
@kopf.on.create(GROUP, VERSION, "incidents", id="incident-reconcile", backoff=5)
@kopf.on.update(GROUP, VERSION, "incidents", id="incident-reconcile", backoff=5)
async def reconcile_incident(body: kopf.Body, memo: kopf.Memo, logger: Logger, **_: Any) -> None:
    await handle_incident.reconcile(body, memo.config, memo.action_log, logger)


@kopf.on.delete(GROUP, VERSION, "incidents", id="incident-release", backoff=5)
async def release_incident(body: kopf.Body, logger: Logger, **_: Any) -> None:
    await handle_incident.release(body, logger)
