"""Maintenance windows for Incidents from alerts: while one is open, an Incident is created with its plan
but no step starts before the windows close (spec.maintenanceUntil), unless the Runbook says
`duringMaintenance: run`. Pure, clock injected; the windows are the engine's (engine/windows.py).
"""

from __future__ import annotations

import datetime
from collections.abc import Mapping, Sequence
from typing import Any

from remediator.api.runbooks import DuringMaintenance, RunbookDefaults
from remediator.engine import windows


def until(defaults: RunbookDefaults, operator_windows: Sequence[windows.Window],
          now: datetime.datetime) -> datetime.datetime | None:
    """When the open maintenance windows close (the Runbook's and the operator's); None when none is open
    or the Runbook runs during maintenance. Raises ScheduleError for a Runbook window that cannot be read."""
    if defaults.during_maintenance == DuringMaintenance.RUN:
        return None
    compiled = [*windows.compile_windows(defaults.maintenance_windows, defaults.time_zone,
                                         field="defaults.maintenanceWindows"), *operator_windows]
    return windows.closes_at(compiled, now)


def held(manifest: Mapping[str, Any], closes: datetime.datetime) -> dict[str, Any]:
    """The Incident manifest whose steps wait until `closes`."""
    return {**manifest, "spec": {**manifest["spec"], "maintenanceUntil": closes.isoformat()}}
