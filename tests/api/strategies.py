"""Hypothesis strategies for valid specs, as the JSON dicts Kubernetes stores."""

from datetime import UTC
from typing import Any

from hypothesis import strategies as st

from remediator.api.durations import parse_duration

Json = dict[str, Any]

dns_labels = st.from_regex(r"[a-z]([-a-z0-9]{0,12}[a-z0-9])?", fullmatch=True)
dns_subdomains = st.builds(".".join, st.lists(dns_labels, min_size=1, max_size=3))
secret_keys = st.from_regex(r"[-._a-zA-Z0-9]{1,20}", fullmatch=True)
sql_names = st.from_regex(r"([a-z_][a-z0-9_]{0,10}\.)?[a-z_][a-z0-9_$]{0,10}", fullmatch=True)
texts = st.text(min_size=1, max_size=40)
timestamps = st.datetimes(timezones=st.just(UTC)).map(lambda moment: moment.isoformat())

_units = st.sampled_from(["ms", "s", "m", "h", "d"])
durations = st.lists(st.tuples(st.integers(0, 500), _units), min_size=1, max_size=3).map(
    lambda parts: "".join(f"{number}{unit}" for number, unit in parts)
)
positive_durations = durations.filter(lambda text: parse_duration(text).total_seconds() > 0)


def optional(strategy: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    """Values of `strategy`, or the marker that the field is left out."""
    return st.one_of(st.none(), strategy)


@st.composite
def objects(draw: st.DrawFn, /, required: Json, **optionals: st.SearchStrategy[Any]) -> Json:
    """A dict of the `required` values plus any of the `optionals` that are drawn present."""
    result = dict(required)
    for name, strategy in optionals.items():
        value = draw(optional(strategy))
        if value is not None:
            result[name] = value
    return result


def targets(kinds: list[str]) -> st.SearchStrategy[Json]:
    return st.fixed_dictionaries({"kind": st.sampled_from(kinds), "name": dns_subdomains})


@st.composite
def scale_steps(draw: st.DrawFn) -> Json:
    low = draw(st.integers(0, 5))
    high = draw(st.integers(low, 50))
    change = draw(
        st.sampled_from(
            [
                ("replicas", st.integers(low, high)),
                ("by", st.integers(-10, 10).filter(bool)),
                ("factor", st.floats(0.5, 2.0)),
            ]
        )
    )
    step: Json = {"target": draw(targets(["Deployment", "StatefulSet"])), change[0]: draw(change[1])}
    if draw(st.booleans()):
        step |= {"minReplicas": low, "maxReplicas": high}
    if draw(st.booleans()):
        step["maxFactor"] = draw(st.floats(2.0, 10.0))
    return step


@st.composite
def restart_steps(draw: st.DrawFn) -> Json:
    step: Json = {"target": draw(targets(["Deployment", "StatefulSet", "DaemonSet"]))}
    if draw(st.booleans()):
        step |= {
            "mode": "deletePods",
            "selector": {
                "matchLabels": draw(st.dictionaries(dns_labels, dns_labels, min_size=1, max_size=2))
            },
            "maxUnavailable": draw(st.one_of(st.integers(1, 5), st.integers(1, 100).map(lambda n: f"{n}%"))),
        }
    return step


env_vars = st.one_of(
    st.fixed_dictionaries(
        {"name": st.from_regex(r"[A-Z_]{1,10}", fullmatch=True), "value": st.text(max_size=10)}
    ),
    st.fixed_dictionaries(
        {
            "name": st.from_regex(r"[A-Z_]{1,10}", fullmatch=True),
            "valueFrom": st.fixed_dictionaries(
                {"secretKeyRef": st.fixed_dictionaries({"name": dns_subdomains, "key": secret_keys})}
            ),
        }
    ),
)

job_templates = objects(
    {"image": "ghcr.io/example/migrate:1.4.2"},
    command=st.lists(texts, max_size=2),
    args=st.lists(texts, max_size=2),
    env=st.lists(env_vars, max_size=2),
    envFromSecrets=st.lists(dns_subdomains, max_size=2),
    resources=st.fixed_dictionaries(
        {
            "requests": st.dictionaries(
                st.sampled_from(["cpu", "memory"]), st.sampled_from(["100m", "128Mi", 1, "0.5"])
            )
        }
    ),
    backoffLimit=st.integers(0, 3),
    activeDeadlineSeconds=st.integers(1, 3600),
    serviceAccountName=dns_subdomains,
    ttlSecondsAfterFinished=st.integers(0, 3600),
)


@st.composite
def rollback_steps(draw: st.DrawFn) -> Json:
    step = draw(
        objects(
            {"target": draw(targets(["Deployment"]))},
            toRevision=st.integers(1, 100),
            stopApplication=st.booleans(),
            rolloutTimeout=positive_durations,
        )
    )
    if step.get("stopApplication") and draw(st.booleans()):
        step["migrationJob"] = draw(job_templates)
    return step


long_running = objects(
    {},
    olderThan=positive_durations,
    states=st.lists(st.sampled_from(["active", "idle in transaction"]), min_size=1, max_size=2),
    usernames=st.lists(texts, max_size=2),
    applicationNames=st.lists(texts, max_size=2),
).map(lambda fields: {"olderThan": "5m"} | fields)

database_operations = st.one_of(
    st.tuples(st.just("terminateLongRunning"), long_running),
    st.tuples(st.just("cancelLongRunning"), long_running),
    st.tuples(
        st.just("terminateIdle"),
        objects({}, includeIdleInTransaction=st.booleans()).map(lambda fields: {"idleFor": "10m"} | fields),
    ),
    st.tuples(st.just("killBlockers"), st.fixed_dictionaries({"blockedFor": positive_durations})),
    st.tuples(
        st.just("vacuumAnalyze"),
        st.fixed_dictionaries({"tables": st.lists(sql_names, min_size=1, max_size=3)}),
    ),
    st.tuples(st.just("analyze"), objects({}, tables=st.lists(sql_names, max_size=3))),
    st.tuples(
        st.just("reindex"),
        st.tuples(st.sampled_from(["table", "index"]), sql_names, optional(st.booleans())).map(
            lambda drawn: {drawn[0]: drawn[1]} | ({} if drawn[2] is None else {"concurrently": drawn[2]})
        ),
    ),
    st.tuples(st.just("report"), objects({}, topN=st.integers(1, 100))),
    st.tuples(st.just("healthCheck"), objects({}, maxReplicationLag=positive_durations)),
)


@st.composite
def database_steps(draw: st.DrawFn) -> Json:
    operation, settings = draw(database_operations)
    step = draw(
        objects(
            {"connectionSecretRef": draw(objects({"name": draw(dns_subdomains)}, key=secret_keys))},
            statementTimeout=st.sampled_from(["30s", "1m", "2h"]),
            lockTimeout=st.sampled_from(["100ms", "5s", "30s"]),
            maxTerminations=st.integers(1, 500),
        )
    )
    return step | {operation: settings}


http_checks = objects(
    {"url": "https://shop.example.com/api/health"},
    method=st.just("GET"),
    expectedStatus=st.integers(100, 599),
    bodyContains=texts,
    successThreshold=st.integers(1, 5),
    interval=positive_durations,
    requestTimeout=positive_durations,
    headers=st.dictionaries(st.sampled_from(["Accept", "X-Probe"]), texts, max_size=2),
)

step_kinds = st.one_of(
    st.tuples(st.just("scale"), scale_steps()),
    st.tuples(st.just("restart"), restart_steps()),
    st.tuples(st.just("rollback"), rollback_steps()),
    st.tuples(st.just("database"), database_steps()),
    st.tuples(st.just("job"), st.fixed_dictionaries({"template": job_templates})),
    st.tuples(
        st.just("rotateKey"),
        st.fixed_dictionaries({"keyRotationRef": st.fixed_dictionaries({"name": dns_subdomains})}),
    ),
    st.tuples(st.just("httpCheck"), http_checks),
    st.tuples(
        st.just("waitForRollout"), st.fixed_dictionaries({"target": targets(["Deployment", "DaemonSet"])})
    ),
    st.tuples(
        st.just("notify"),
        objects(
            {"webhookSecretRef": {"name": "chat-webhook", "key": "url"}, "message": "Rolled back shop-api"},
            failOnError=st.booleans(),
        ),
    ),
)


@st.composite
def steps(draw: st.DrawFn, name: str) -> Json:
    kind, body = draw(step_kinds)
    step = draw(
        objects(
            {"name": name, kind: body},
            requiresApproval=st.booleans(),
            onFailure=st.sampled_from(["abort", "continue", "escalate"]),
            retries=st.integers(0, 10),
            retryBackoff=durations,
        )
    )
    # A step timeout must leave room for the waits inside the step.
    if draw(st.booleans()):
        step["timeout"] = "9999d"
    return step


@st.composite
def step_lists(draw: st.DrawFn, min_size: int) -> list[Json]:
    names = draw(st.lists(dns_labels, min_size=min_size, max_size=4, unique=True))
    return [draw(steps(name)) for name in names]


@st.composite
def incident_specs(draw: st.DrawFn) -> Json:
    """A valid Incident spec with steps of every kind, in the JSON form Kubernetes stores."""
    runbook_ref = draw(optional(st.fixed_dictionaries({"name": dns_subdomains})))
    spec = draw(
        objects(
            {
                "severity": draw(st.sampled_from(["P0", "P1", "P2", "P3", "SEV1", "SEV2", "SEV3", "SEV4"])),
                "summary": draw(texts),
                "steps": draw(step_lists(min_size=0 if runbook_ref else 1)),
            },
            description=texts,
            dryRun=st.booleans(),
            escalateAfter=positive_durations,
            cooldown=durations,
            source=objects(
                {},
                alertname=texts,
                fingerprint=st.from_regex(r"[0-9a-f]{16}", fullmatch=True),
                labels=st.dictionaries(dns_labels, texts, max_size=3),
                annotations=st.dictionaries(dns_labels, texts, max_size=2),
                startsAt=timestamps,
            ),
        )
    )
    if runbook_ref is not None:
        spec["runbookRef"] = runbook_ref
    return spec


@st.composite
def runbook_specs(draw: st.DrawFn) -> Json:
    """A valid Runbook spec."""
    matcher = objects({"name": "severity", "value": "critical"}, op=st.sampled_from(["=", "!=", "=~", "!~"]))
    trigger = objects({"alertname": draw(texts)}, matchers=st.lists(matcher, max_size=2))
    return draw(
        objects(
            {"steps": draw(step_lists(min_size=1))},
            description=texts,
            triggers=st.lists(trigger, max_size=2),
            defaults=objects(
                {},
                severity=st.sampled_from(["P1", "SEV3"]),
                requiresApproval=st.booleans(),
                cooldown=durations,
                dryRun=st.booleans(),
                escalateAfter=positive_durations,
            ),
        )
    )


@st.composite
def rollback_request_specs(draw: st.DrawFn) -> Json:
    """A valid RollbackRequest spec."""
    spec = draw(rollback_steps())
    if draw(st.booleans()):
        spec["incidentRef"] = {"name": draw(dns_subdomains)}
    return spec


maintenance_windows = st.one_of(
    st.fixed_dictionaries(
        {"schedule": st.sampled_from(["0 2 * * 6", "@daily", "30 1 * * 1-5"]), "duration": positive_durations}
    ),
    st.just({"start": "2026-12-24T00:00:00Z", "end": "2026-12-27T00:00:00+01:00"}),
)


@st.composite
def key_rotation_specs(draw: st.DrawFn) -> Json:
    """A valid KeyRotation spec."""
    key_names = draw(
        st.lists(st.from_regex(r"[A-Z]{1,12}", fullmatch=True), min_size=1, max_size=3, unique=True)
    )
    generator = objects(
        {},
        type=st.just("random"),
        length=st.integers(16, 256),
        encoding=st.sampled_from(["base64", "hex", "alphanumeric"]),
    )
    spec = draw(
        objects(
            {
                "secretRef": {"name": draw(dns_subdomains)},
                "keys": [draw(objects({"key": name}, generator=generator)) for name in key_names],
            },
            previousKeySuffix=st.sampled_from(["_previous", "-old", ".prev"]),
            consumers=st.one_of(
                st.just({"auto": True}),
                st.fixed_dictionaries(
                    {"workloads": st.lists(targets(["Deployment", "StatefulSet", "DaemonSet"]), max_size=2,
                                           unique_by=lambda target: (target["kind"], target["name"]))}
                ),
            ),
            rollout=st.sampled_from(["all", "staged"]),
            maxConsumers=st.integers(1, 1000),
            verify=st.lists(http_checks, max_size=2),
            gracePeriod=durations,
            emergency=st.booleans(),
            emergencyGracePeriod=durations,
            schedule=st.sampled_from(["0 3 1 * *", "@monthly", "*/15 * * * MON-FRI", "@every 90d", "@every 1h30m"]),
            timeZone=st.sampled_from(["UTC", "Europe/Berlin", "America/Port-au-Prince", "Etc/GMT+5"]),
            maintenanceWindows=st.lists(maintenance_windows, max_size=2),
            trigger=st.from_regex(r"[a-z0-9-]{1,20}", fullmatch=True),
            suspend=st.booleans(),
        )
    )
    if draw(st.booleans()):
        spec["databaseRole"] = {
            "connectionSecretRef": {"name": "db-admin", "key": "uri"},
            "role": "app_user",
            "passwordKey": key_names[0],
            "strategy": draw(st.sampled_from(["alternatingUsers", "inPlace"])),
            "terminateSessionsOnRevoke": draw(st.booleans()),
        }
    return spec


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=8),
    lambda children: (
        st.lists(children, max_size=3) | st.dictionaries(st.text(max_size=8), children, max_size=3)
    ),
    max_leaves=20,
)
"""Arbitrary JSON, as a careless or hostile client could store it (before schema validation)."""
