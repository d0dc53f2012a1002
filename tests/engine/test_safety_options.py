"""Every safety option has a test that fails when the option stops working (issue: safety first)."""

from __future__ import annotations

import datetime
import json
from typing import Any

import pytest

from remediator.api.steps import Step
from remediator.engine import guards, incidents, intents, scaling

from .support import T0, WEB, Cluster, condition, incident, run, step_state

SECOND = datetime.timedelta(seconds=1)


def test_retries_n_give_exactly_n_plus_one_attempts_with_doubling_backoff() -> None:
    cluster = Cluster(replicas=2)
    cluster.fail_scale = ["ApiError"] * 10
    obj, decision = run(incident({"name": "up", "retries": 3, "retryBackoff": "10s",
                                  "scale": {"target": WEB, "replicas": 5}}), cluster)
    moment, waits = T0, []
    while step_state(obj, "up")["state"] == "Pending":
        retry_at = datetime.datetime.fromisoformat(step_state(obj, "up")["retryAt"].replace("Z", "+00:00"))
        waits.append(retry_at - moment)
        assert decision.requeue_after == retry_at - moment
        obj, _ = run(obj, cluster, now=retry_at - SECOND)
        assert step_state(obj, "up")["attempts"] == len(waits), "no attempt before the backoff has passed"
        moment = retry_at
        obj, decision = run(obj, cluster, now=moment)
    assert waits == [10 * SECOND, 20 * SECOND, 40 * SECOND]
    assert step_state(obj, "up")["state"] == "Failed" and step_state(obj, "up")["attempts"] == 4
    assert len([i for i in cluster.acted if isinstance(i, intents.ScaleTo)]) == 4


@pytest.mark.parametrize(("severity", "escalate_after", "escalated_at"), [
    ("P0", None, datetime.timedelta(minutes=5)),
    ("P0", "30m", datetime.timedelta(minutes=30)),
    ("P3", "1m", datetime.timedelta(minutes=1)),
    ("P3", None, datetime.timedelta(hours=4)),
], ids=["P0-default", "P0-later", "P3-sooner", "P3-default"])
def test_escalate_after_overrides_the_severity_default_both_ways(severity: str, escalate_after: str | None,
                                                                  escalated_at: datetime.timedelta) -> None:
    cluster = Cluster()
    cluster.http = [500] * 100
    extra = {"escalateAfter": escalate_after} if escalate_after else {}
    obj, _ = run(incident({"name": "verify", "httpCheck": {"url": "http://web/healthz", "interval": "10m"}},
                                 severity=severity, **extra), cluster)
    obj, _ = run(obj, cluster, now=T0 + escalated_at - SECOND)
    assert condition(obj, "Escalated") is None
    obj, _ = run(obj, cluster, now=T0 + escalated_at)
    assert condition(obj, "Escalated") == ("True", "NotMitigatedInTime")


@pytest.mark.parametrize(("spec_cooldown", "stamped_until"), [
    (None, T0 + datetime.timedelta(minutes=10)),
    ("2m", T0 + datetime.timedelta(minutes=2)),
    ("30m", T0 + datetime.timedelta(minutes=30)),
], ids=["operator-default", "shorter", "longer"])
def test_an_incidents_cooldown_overrides_the_operators(spec_cooldown: str | None,
                                                       stamped_until: datetime.datetime) -> None:
    cluster = Cluster()
    extra = {"cooldown": spec_cooldown} if spec_cooldown else {}
    run(incident({"name": "up", "scale": {"target": WEB, "replicas": 4}}, **extra), cluster,
        policy=incidents.Policy(cooldown=datetime.timedelta(minutes=10)))
    stamp = cluster.annotations[guards.cooldown_annotation("scale")]
    assert stamp == guards.format_cooldown(stamped_until, "shop/inc")


# (the scale step, the current replicas, the planned replicas, what limited it)
BOUNDS = [
    ({"replicas": 5, "maxReplicas": 5}, 2, 5, None),
    ({"by": 3, "maxReplicas": 5}, 2, 5, None),
    ({"by": 4, "maxReplicas": 5}, 2, 5, "maxReplicas"),
    ({"by": -1, "minReplicas": 1}, 2, 1, None),
    ({"by": -2, "minReplicas": 1}, 2, 1, "minReplicas"),
    ({"factor": 2, "maxFactor": 2}, 3, 6, None),
    ({"by": 4, "maxFactor": 2}, 3, 6, "maxFactor"),
    ({"by": -1, "maxFactor": 1.5}, 3, 2, None),
    ({"by": -2, "maxFactor": 1.5}, 3, 2, "maxFactor"),
    ({"factor": 10, "maxFactor": 10, "maxReplicas": 20}, 3, 20, "maxReplicas"),
    ({"by": -100}, 3, 0, None),
    ({"factor": 0.5, "maxReplicas": 0}, 3, 0, "maxReplicas"),
    ({"by": -100, "minReplicas": 0}, 3, 0, None),
    ({"factor": 1.0001}, 3, 4, None),
]


@pytest.mark.parametrize(("change", "current", "planned", "limited_by"), BOUNDS, ids=[json.dumps(b[0]) for b in BOUNDS])
def test_scale_bounds_at_the_bound_and_one_past_it(change: dict[str, Any], current: int, planned: int,
                                                   limited_by: str | None) -> None:
    step = Step.model_validate({"name": "s", "scale": {"target": WEB, **change}})
    assert step.scale is not None
    plan = scaling.plan_scale(step.scale, current)
    assert (plan.desired, plan.limited_by) == (planned, limited_by)
    cluster = Cluster(replicas=current)
    obj, _ = run(incident({"name": "s", "scale": {"target": WEB, **change}}), cluster,
                 policy=incidents.Policy(approval=guards.ApprovalPolicy(frozenset())))
    assert cluster.replicas == planned and step_state(obj, "s")["result"].get("limitedBy") == limited_by


@pytest.mark.parametrize("change", [{"replicas": 2**31}, {"by": 2**31}, {"maxReplicas": 2**31, "by": 1},
                                    {"minReplicas": 2**31, "by": 1}, {"by": -(2**31) - 1}])
def test_replica_counts_are_int32(change: dict[str, Any]) -> None:
    with pytest.raises(ValueError, match=r"2147483647|-2147483648"):
        Step.model_validate({"name": "s", "scale": {"target": WEB, **change}})


def test_an_incidents_status_stays_bounded_whatever_its_steps_report() -> None:
    """50 steps (the most an Incident may have), each failing all 11 of its attempts with a long message."""
    cluster = Cluster(replicas=2)
    cluster.fail_scale = ["ApiError"] * 10_000
    steps = [{"name": f"s{n:02d}", "retries": 10, "retryBackoff": "1s", "onFailure": "continue",
              "scale": {"target": WEB, "replicas": 3}} for n in range(50)]
    obj = incident(*steps, escalateAfter="48h")
    moment = T0
    for _ in range(2000):
        obj, decision = run(obj, cluster, now=moment)
        if obj.status.get("phase") == "Failed":
            break
        moment += decision.requeue_after or SECOND
    assert obj.status["phase"] == "Failed"
    timeline = obj.status["timeline"]
    # Acknowledged, 10 retries and a failure per step, the incident's failure: none dropped, the oldest folded.
    assert len(timeline) == 100 and len(timeline) + obj.status["timelineFolded"] == 1 + 50 * 11 + 1
    assert timeline[-1]["reason"] == "IncidentFailed", "the newest entries are kept"
    assert len(json.dumps(obj.status)) < 256 * 1024


@pytest.mark.parametrize("rows", [100, 14], ids=["100-KB-reports", "14-KB-reports"])
def test_huge_step_results_are_cut_down_and_the_status_stays_under_256_kib(rows: int) -> None:
    """About 180 database reports would have passed etcd's 1.5 MiB; 50 large reports now fit."""
    cluster = Cluster()
    cluster.database_report = {"maxConnections": 100, "longestRunning": [{"query": "x" * 1000}] * rows}
    secret = {"connectionSecretRef": {"name": "db"}}
    obj, _ = run(incident(*[{"name": f"r{n:02d}", "database": {"report": {}, **secret}}
                            for n in range(50)]), cluster)
    assert obj.status["phase"] == "Resolved"
    assert len(json.dumps(obj.status)) < 256 * 1024
    result = step_state(obj, "r00")["result"]
    assert result["truncated"] is True and result["bytes"] > rows * 1000 and result["maxConnections"] == 100
