"""The examples from the runbooks are accepted; each kind's own rules refuse bad specs by field."""

from typing import Any

import pydantic
import pytest

from remediator.api.incidents import IncidentSpec, IncidentStatus
from remediator.api.keyrotations import KeyEncoding, KeyRotationSpec
from remediator.api.rollbacks import RollbackRequestSpec
from remediator.api.runbooks import RunbookSpec
from remediator.api.severities import Severity
from remediator.api.workload_steps import RestartMode

from . import examples
from .rules import DEPLOYMENT, messages


@pytest.mark.parametrize(
    ("model", "example"),
    [
        (IncidentSpec, examples.DATABASE_FIRST_AID),
        (IncidentSpec, examples.BAD_DEPLOY_ROLLED_BACK),
        (IncidentSpec, examples.SCALE_UP),
        (RunbookSpec, examples.HIGH_ERROR_RATE_RUNBOOK),
        (RollbackRequestSpec, examples.ROLLBACK_REQUEST),
        (KeyRotationSpec, examples.QUARTERLY_KEY_ROTATION),
    ],
)
def test_a_runbook_example_is_accepted_as_written(model: type[pydantic.BaseModel], example: str) -> None:
    spec = model.model_validate(examples.load(example))
    stored = spec.model_dump(by_alias=True, mode="json", exclude_none=True)
    assert model.model_validate(stored) == spec


def test_unset_fields_get_their_documented_defaults() -> None:
    incident = IncidentSpec.model_validate(examples.load(examples.SCALE_UP))
    assert incident.severity is Severity.P1
    assert incident.dry_run is False
    first = incident.steps[0]
    assert (first.requires_approval, first.on_failure, first.retries, first.retry_backoff) == (
        False,
        "abort",
        0,
        "10s",
    )
    assert incident.steps[1].restart is not None
    assert incident.steps[1].restart.mode is RestartMode.DELETE_PODS
    rotation = KeyRotationSpec.model_validate(examples.load(examples.QUARTERLY_KEY_ROTATION))
    assert rotation.previous_key_suffix == "_previous"
    assert rotation.keys[0].generator.length == 32
    assert rotation.keys[0].generator.encoding is KeyEncoding.BASE64
    runbook = RunbookSpec.model_validate({"steps": [{"name": "a", "restart": {"target": DEPLOYMENT}}]})
    assert runbook.defaults.cooldown == "10m"
    request = RollbackRequestSpec.model_validate({"target": DEPLOYMENT})
    assert request.rollout_timeout == "10m"


BAD_SPECS: list[tuple[str, type[pydantic.BaseModel], dict[str, Any], str]] = [
    (
        "incident without steps or runbook",
        IncidentSpec,
        {"severity": "P2", "summary": "slow"},
        "spec.steps: must not be empty unless runbookRef is set",
    ),
    (
        "incident without summary",
        IncidentSpec,
        {"severity": "P2", "summary": "", "runbookRef": {"name": "rb"}},
        "spec.summary: String should have at least 1 character",
    ),
    (
        "incident with a naive alert time",
        IncidentSpec,
        {
            "severity": "P2",
            "summary": "s",
            "runbookRef": {"name": "rb"},
            "source": {"startsAt": "2024-11-03T10:00:00"},
        },
        "spec.source.startsAt: Input should have timezone info",
    ),
    (
        "runbook without steps",
        RunbookSpec,
        {"steps": []},
        "spec.steps: must not be empty unless incident.steps is set",
    ),
    (
        "runbook with duplicate steps",
        RunbookSpec,
        {
            "steps": [
                {"name": "a", "restart": {"target": DEPLOYMENT}},
                {"name": "a", "restart": {"target": DEPLOYMENT}},
            ]
        },
        "spec.steps[1].name: duplicate step name 'a' (also steps[0])",
    ),
    (
        "runbook trigger matching every alert",
        RunbookSpec,
        {"triggers": [{"matchers": []}], "steps": [{"name": "a", "restart": {"target": DEPLOYMENT}}]},
        "spec.triggers[0]: must set alertname or at least one matcher",
    ),
    (
        "runbook matcher with a broken regex",
        RunbookSpec,
        {
            "triggers": [{"matchers": [{"name": "service", "value": "(api", "op": "=~"}]}],
            "steps": [{"name": "a", "restart": {"target": DEPLOYMENT}}],
        },
        "spec.triggers[0].matchers[0].value: is not a regular expression: missing ), unterminated subpattern "
        "at position 0",
    ),
    (
        "rollback of a statefulset",
        RollbackRequestSpec,
        {"target": {"kind": "StatefulSet", "name": "db"}},
        "spec.target.kind: Input should be 'Deployment'",
    ),
    (
        "rollback with a migration while the app runs",
        RollbackRequestSpec,
        {"target": DEPLOYMENT, "migrationJob": {"image": "migrate:1"}, "stopApplication": False},
        "spec.stopApplication: must be true when migrationJob is set",
    ),
    (
        "rollback to revision zero",
        RollbackRequestSpec,
        {"target": DEPLOYMENT, "toRevision": 0},
        "spec.toRevision: Input should be greater than or equal to 1",
    ),
    (
        "key rotation without keys",
        KeyRotationSpec,
        {"secretRef": {"name": "keys"}, "keys": []},
        "spec.keys: List should have at least 1 item after validation, not 0",
    ),
    (
        "key rotation with a short key",
        KeyRotationSpec,
        {"secretRef": {"name": "keys"}, "keys": [{"key": "A", "generator": {"length": 8}}]},
        "spec.keys[0].generator.length: Input should be greater than or equal to 16",
    ),
    (
        "key rotation of the same key twice",
        KeyRotationSpec,
        {"secretRef": {"name": "keys"}, "keys": [{"key": "A"}, {"key": "A"}]},
        "spec.keys[1].key: duplicate key 'A'",
    ),
    (
        "key rotation overwriting a key with an old value",
        KeyRotationSpec,
        {"secretRef": {"name": "keys"}, "keys": [{"key": "A"}, {"key": "A_previous"}]},
        "spec.keys[0].key: 'A' plus previousKeySuffix names another rotated key",
    ),
    (
        "key rotation of a password it does not generate",
        KeyRotationSpec,
        {
            "secretRef": {"name": "keys"},
            "keys": [{"key": "A"}],
            "databaseRole": {"connectionSecretRef": {"name": "db"}, "role": "app", "passwordKey": "PASSWORD"},
        },
        "spec.databaseRole.passwordKey: 'PASSWORD' is not one of keys[].key",
    ),
    (
        "key rotation with a bad schedule",
        KeyRotationSpec,
        {"secretRef": {"name": "keys"}, "keys": [{"key": "A"}], "schedule": "every day"},
        "spec.schedule: 'every day' is not a cron schedule such as '0 3 1 */3 *', @monthly or '@every 90d'",
    ),
    (
        "key rotation with a pseudo-random generator",
        KeyRotationSpec,
        {"secretRef": {"name": "keys"}, "keys": [{"key": "A", "generator": {"type": "sequential"}}]},
        "spec.keys[0].generator.type: Input should be 'random'",
    ),
]


@pytest.mark.parametrize(
    ("case", "model", "spec", "expected"), BAD_SPECS, ids=[case[0] for case in BAD_SPECS]
)
def test_a_bad_spec_is_refused_naming_the_field(
    case: str, model: type[pydantic.BaseModel], spec: dict[str, Any], expected: str
) -> None:
    assert messages(model, spec) == [expected]


def test_a_status_written_by_a_newer_operator_can_still_be_read() -> None:
    status = IncidentStatus.model_validate(
        {"phase": "Mitigating", "futureField": {"x": 1}, "timelineFolded": 3}
    )
    assert (status.phase, status.timeline_folded) == ("Mitigating", 3)
