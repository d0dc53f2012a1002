"""Maintenance windows: an alert during one creates its Incident with the plan, but no step starts before
the window closes (MaintenanceWindow), unless the Runbook says duringMaintenance: run."""

from __future__ import annotations

import datetime
from typing import Any

from tests.engine.support import T0, WEB, Cluster, incident, run, step_state

from remediator.api.runbooks import RunbookSpec
from remediator.engine import windows
from remediator.receiver import plans
from remediator.receiver.payloads import Notification

from .alerts import alert, crash_loop_runbook, notification

NOW = datetime.datetime(2026, 11, 29, 3, 30, tzinfo=datetime.UTC)
NIGHTLY = {"schedule": "0 3 * * *", "duration": "1h"}  # 03:00-04:00 UTC


def placed(now: datetime.datetime = NOW, operator_windows: list[windows.Window] | None = None,
           **defaults: Any) -> plans.Placement:
    spec = RunbookSpec.model_validate(crash_loop_runbook(defaults=defaults))
    result = plans.plan(Notification.model_validate(notification(alert())), [plans.Runbook("default", "crash-loop",
                                                                                           spec)], None)
    [episode] = result.episodes
    return plans.place(episode, [], now, None, operator_windows or [])


def test_an_incident_from_an_alert_in_a_window_waits_for_it_to_close() -> None:
    placement = placed(maintenanceWindows=[NIGHTLY])
    assert placement.create is not None
    assert placement.create["spec"]["maintenanceUntil"] == "2026-11-29T04:00:00+00:00"
    after = placed(datetime.datetime(2026, 11, 29, 4, tzinfo=datetime.UTC), maintenanceWindows=[NIGHTLY])
    assert after.create is not None and "maintenanceUntil" not in after.create["spec"]


def test_the_runbook_may_run_during_maintenance() -> None:
    placement = placed(maintenanceWindows=[NIGHTLY], duringMaintenance="run")
    assert placement.create is not None and "maintenanceUntil" not in placement.create["spec"]


def test_the_operators_windows_count_too() -> None:
    flag = windows.compile_windows([windows.parse_window_flag("2026-11-29T00:00:00Z/2026-11-29T06:00:00Z")])
    placement = placed(operator_windows=flag)
    assert placement.create is not None
    assert placement.create["spec"]["maintenanceUntil"] == "2026-11-29T06:00:00+00:00"


def test_a_window_that_never_opens_is_a_rejection() -> None:
    spec = RunbookSpec.model_validate(crash_loop_runbook(defaults={"maintenanceWindows": [
        {"schedule": "0 0 30 2 *", "duration": "1h"}]}))
    result = plans.plan(Notification.model_validate(notification(alert())), [plans.Runbook("default", "crash-loop",
                                                                                           spec)], None)
    assert result.episodes == []
    assert [r.reason for r in result.rejections] == ["InvalidMaintenanceWindow"]


def test_no_step_starts_before_the_window_closes_then_the_incident_runs() -> None:
    cluster = Cluster()
    until = T0 + datetime.timedelta(hours=1)
    obj = incident({"name": "restart", "restart": {"target": WEB}}, maintenanceUntil=until.isoformat())
    obj, decision = run(obj, cluster)
    assert cluster.acted == []
    assert step_state(obj, "restart")["state"] == "Pending"
    assert step_state(obj, "restart")["message"] == "waiting for the maintenance window to close at " \
                                                     "2026-11-22T04:00:00.000000Z"
    assert decision.requeue_after is not None and decision.requeue_after <= datetime.timedelta(hours=1)
    obj, _ = run(obj, cluster, now=T0 + datetime.timedelta(minutes=30))
    assert [e["reason"] for e in obj.status["timeline"]].count("MaintenanceWindow") == 1
    obj, _ = run(obj, cluster, now=until)
    assert step_state(obj, "restart")["state"] == "Succeeded"
