"""Every step rule: the server or the model refuses a bad step, naming the camelCase field."""

from typing import Any

import pytest

from remediator.api.incidents import IncidentSpec

from .rules import DATABASE, DEPLOYMENT, incident_with, messages, step

BAD_STEPS: list[tuple[str, dict[str, Any], str]] = [
    (
        "min above max",
        step("grow", scale={"target": DEPLOYMENT, "replicas": 3, "minReplicas": 3, "maxReplicas": 2}),
        "spec.steps[1].scale.minReplicas: must not exceed maxReplicas (3 > 2)",
    ),
    (
        "replicas above max",
        step("grow", scale={"target": DEPLOYMENT, "replicas": 30, "maxReplicas": 20}),
        "spec.steps[1].scale.replicas: must not exceed maxReplicas (30 > 20)",
    ),
    (
        "replicas below min",
        step("shrink", scale={"target": DEPLOYMENT, "replicas": 1, "minReplicas": 2}),
        "spec.steps[1].scale.replicas: must not be below minReplicas (1 < 2)",
    ),
    (
        "two scale changes",
        step("grow", scale={"target": DEPLOYMENT, "replicas": 3, "by": 1}),
        "spec.steps[1].scale: must set exactly one of replicas, by, factor; found replicas and by",
    ),
    (
        "no scale change",
        step("grow", scale={"target": DEPLOYMENT}),
        "spec.steps[1].scale: must set exactly one of replicas, by, factor; none is set",
    ),
    (
        "zero change",
        step("grow", scale={"target": DEPLOYMENT, "by": 0}),
        "spec.steps[1].scale.by: must not be zero",
    ),
    (
        "factor beyond maxFactor",
        step("grow", scale={"target": DEPLOYMENT, "factor": 4, "maxFactor": 2}),
        "spec.steps[1].scale.factor: must lie between 1/maxFactor and maxFactor (4.0, 2.0)",
    ),
    (
        "daemonset cannot scale",
        step("grow", scale={"target": {"kind": "DaemonSet", "name": "agent"}, "by": 1}),
        "spec.steps[1].scale.target.kind: Input should be 'Deployment' or 'StatefulSet'",
    ),
    (
        "two kinds in one step",
        step("both", scale={"target": DEPLOYMENT, "by": 1}, restart={"target": DEPLOYMENT}),
        "spec.steps[1]: must set exactly one of scale, restart, rollback, database, job, rotateKey, "
        "httpCheck, waitForRollout, notify; found scale and restart",
    ),
    (
        "no kind",
        step("nothing", retries=2),
        "spec.steps[1]: must set exactly one of scale, restart, rollback, database, job, rotateKey, "
        "httpCheck, waitForRollout, notify; none is set",
    ),
    (
        "deletePods without selector",
        step("bounce", restart={"target": DEPLOYMENT, "mode": "deletePods"}),
        "spec.steps[1].restart.selector: is required when mode is deletePods",
    ),
    (
        "selector on a rolling restart",
        step("bounce", restart={"target": DEPLOYMENT, "selector": {"matchLabels": {"app": "shop"}}}),
        "spec.steps[1].restart.selector: applies only when mode is deletePods",
    ),
    (
        "empty selector",
        step("bounce", restart={"target": DEPLOYMENT, "mode": "deletePods", "selector": {}}),
        "spec.steps[1].restart.selector: must set matchLabels or matchExpressions "
        "(an empty selector selects all)",
    ),
    (
        "In without values",
        step(
            "bounce",
            restart={
                "target": DEPLOYMENT,
                "mode": "deletePods",
                "selector": {"matchExpressions": [{"key": "app", "operator": "In"}]},
            },
        ),
        "spec.steps[1].restart.selector.matchExpressions[0].values: must not be empty for operator In",
    ),
    (
        "zero percent unavailable",
        step(
            "bounce",
            restart={
                "target": DEPLOYMENT,
                "mode": "deletePods",
                "selector": {"matchLabels": {"app": "shop"}},
                "maxUnavailable": "0%",
            },
        ),
        "spec.steps[1].restart.maxUnavailable: '0%' is neither a count (at least 1) "
        "nor a percentage from 1% to 100%",
    ),
    (
        "migration with the app running",
        step("back", rollback={"target": DEPLOYMENT, "migrationJob": {"image": "migrate:1"}}),
        "spec.steps[1].rollback.stopApplication: must be true when migrationJob is set",
    ),
    (
        "step timeout too short for the health check to ever pass",
        step(
            "probe",
            timeout="15s",
            httpCheck={"url": "https://shop.example.com/health", "successThreshold": 3, "interval": "10s"},
        ),
        "spec.steps[1].timeout: must be at least 20s for httpCheck to see successThreshold (3) healthy "
        "answers 10s apart (15s)",
    ),
    (
        "zero timeout",
        step("probe", timeout="0s", httpCheck={"url": "https://shop.example.com/health"}),
        "spec.steps[1].timeout: must be longer than zero ('0s')",
    ),
    (
        "too many retries",
        step("probe", retries=11, httpCheck={"url": "https://shop.example.com/health"}),
        "spec.steps[1].retries: Input should be less than or equal to 10",
    ),
    (
        "two database operations",
        step("db", database={"connectionSecretRef": DATABASE, "report": {}, "analyze": {}}),
        "spec.steps[1].database: must set exactly one of terminateLongRunning, cancelLongRunning, "
        "terminateIdle, killBlockers, vacuumAnalyze, analyze, reindex, report, healthCheck; "
        "found analyze and report",
    ),
    (
        "terminating every query",
        step("db", database={"connectionSecretRef": DATABASE, "terminateLongRunning": {"olderThan": "0s"}}),
        "spec.steps[1].database.terminateLongRunning.olderThan: must be longer than zero ('0s')",
    ),
    (
        "vacuum without tables",
        step("db", database={"connectionSecretRef": DATABASE, "vacuumAnalyze": {"tables": []}}),
        "spec.steps[1].database.vacuumAnalyze.tables: "
        "List should have at least 1 item after validation, not 0",
    ),
    (
        "sql in a table name",
        step(
            "db", database={"connectionSecretRef": DATABASE, "analyze": {"tables": ["users; DROP TABLE x"]}}
        ),
        "spec.steps[1].database.analyze.tables[0]: "
        "'users; DROP TABLE x' is not a plain SQL name such as orders or public.orders",
    ),
    (
        "reindex of both",
        step("db", database={"connectionSecretRef": DATABASE, "reindex": {"table": "a", "index": "b"}}),
        "spec.steps[1].database.reindex: must set exactly one of table, index; found table and index",
    ),
    (
        "env var with two sources",
        step(
            "migrate",
            job={
                "template": {
                    "image": "migrate:1",
                    "env": [
                        {"name": "A", "value": "1", "valueFrom": {"secretKeyRef": {"name": "s", "key": "k"}}}
                    ],
                }
            },
        ),
        "spec.steps[1].job.template.env[0]: must set exactly one of value, valueFrom",
    ),
    (
        "negative quantity",
        step("migrate", job={"template": {"image": "migrate:1", "resources": {"limits": {"cpu": -1}}}}),
        "spec.steps[1].job.template.resources.limits.cpu: must not be negative (-1)",
    ),
    (
        "body of a HEAD request",
        step(
            "probe",
            httpCheck={"url": "https://shop.example.com/health", "method": "HEAD", "bodyContains": "ok"},
        ),
        "spec.steps[1].httpCheck.bodyContains: needs method GET (a HEAD answer has no body)",
    ),
    (
        "not an http url",
        step("probe", httpCheck={"url": "ftp://shop.example.com/"}),
        "spec.steps[1].httpCheck.url: 'ftp://shop.example.com/' is not an http:// or https:// URL",
    ),
    (
        "status out of range",
        step("probe", httpCheck={"url": "https://shop.example.com/", "expectedStatus": 99}),
        "spec.steps[1].httpCheck.expectedStatus: Input should be greater than or equal to 100",
    ),
    (
        "upper-case step name",
        step("Probe", httpCheck={"url": "https://shop.example.com/"}),
        "spec.steps[1].name: 'Probe' is not a DNS-1123 label (lowercase letters, digits and '-', at most 63)",
    ),
    (
        "unknown field",
        step("probe", httpCheck={"url": "https://shop.example.com/", "verb": "POST"}),
        "spec.steps[1].httpCheck.verb: unknown field",
    ),
    (
        "notify without the key",
        step("tell", notify={"webhookSecretRef": {"name": "chat"}, "message": "hi"}),
        "spec.steps[1].notify.webhookSecretRef.key: Field required",
    ),
]


@pytest.mark.parametrize(("case", "bad_step", "expected"), BAD_STEPS, ids=[case[0] for case in BAD_STEPS])
def test_a_bad_step_is_refused_naming_the_field(case: str, bad_step: dict[str, Any], expected: str) -> None:
    good_step = step("check", httpCheck={"url": "https://shop.example.com/health"})
    assert messages(IncidentSpec, incident_with(good_step, bad_step)) == [expected]


def test_two_steps_of_the_same_name_are_refused_at_the_second() -> None:
    probe = step("probe", httpCheck={"url": "https://shop.example.com/"})
    restart = step("restart", restart={"target": DEPLOYMENT})
    assert messages(IncidentSpec, incident_with(probe, restart, probe)) == [
        "spec.steps[2].name: duplicate step name 'probe' (also steps[0])"
    ]


def test_every_broken_step_is_reported_not_just_the_first() -> None:
    bad = step("grow", scale={"target": DEPLOYMENT, "replicas": -1})
    worse = step("Bad", restart={"target": {"kind": "Pod", "name": "x"}})
    assert messages(IncidentSpec, incident_with(bad, worse)) == [
        "spec.steps[0].scale.replicas: Input should be greater than or equal to 0",
        "spec.steps[1].name: 'Bad' is not a DNS-1123 label (lowercase letters, digits and '-', at most 63)",
        "spec.steps[1].restart.target.kind: Input should be 'Deployment', 'StatefulSet' or 'DaemonSet'",
    ]


def test_a_step_says_which_kind_it_is() -> None:
    spec = IncidentSpec.model_validate(
        incident_with(
            step("db", database={"connectionSecretRef": DATABASE, "terminateIdle": {"idleFor": "10m"}})
        )
    )
    assert spec.steps[0].kind == "database"
    assert spec.steps[0].database is not None
    assert spec.steps[0].database.operation == "terminate_idle"


def test_a_step_timeout_just_long_enough_for_the_health_check_is_accepted() -> None:
    probe = step(
        "probe",
        timeout="20s",
        httpCheck={"url": "https://shop.example.com/health", "successThreshold": 3, "interval": "10s"},
    )
    assert IncidentSpec.model_validate(incident_with(probe)).steps[0].timeout == "20s"
