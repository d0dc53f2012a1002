"""The generated CRDs: committed copies up to date, structural, and saying what the models say."""

from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pydantic
import pytest
import yaml

from remediator.api import crdgen
from remediator.api.conditions import Condition
from remediator.api.incidents import IncidentStatus
from remediator.api.keyrotations import (
    ConsumerRestart,
    DatabaseRotation,
    KeyRotationStatus,
    Rotation,
    RotationStage,
)
from remediator.api.resources import RESOURCE_KINDS, ResourceKind
from remediator.api.rollbacks import RollbackRequestStatus
from remediator.api.runbooks import RunbookStatus
from remediator.api.steps import Step, StepState, StepStatus
from remediator.api.timelines import TimelineEntry

from .openapi import pruned_fields, schema_errors

REPOSITORY = Path(__file__).resolve().parents[2]
COMMITTED_DIRECTORIES = [REPOSITORY / "crds", REPOSITORY / "charts" / "remediator" / "crds"]
RENDERED = crdgen.render_crds()
CRDS = {name: yaml.safe_load(text) for name, text in RENDERED.items()}


def schema_of(kind: str) -> dict[str, Any]:
    crd = next(crd for crd in CRDS.values() if crd["spec"]["names"]["kind"] == kind)
    schema: dict[str, Any] = crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"]
    return schema


@pytest.mark.parametrize(
    "directory", COMMITTED_DIRECTORIES, ids=lambda path: path.relative_to(REPOSITORY).as_posix()
)
def test_the_committed_crds_are_what_the_models_generate(directory: Path) -> None:
    committed = {
        path.name: path.read_text(encoding="utf-8") for path in directory.glob("remediator.dev_*.yaml")
    }
    stale = sorted(
        name for name in RENDERED.keys() | committed.keys() if committed.get(name) != RENDERED.get(name)
    )
    assert not stale, (
        f"{directory.relative_to(REPOSITORY)} is out of date ({', '.join(stale)}): "
        f"run `python -m remediator crds --output {directory.relative_to(REPOSITORY)}` "
        "(or `python -m remediator.api.crdgen crds charts/remediator/crds`)"
    )


def test_rendering_twice_gives_the_same_text() -> None:
    assert crdgen.render_crds() == RENDERED


def test_the_yaml_reads_back_as_the_crd_it_was_made_from() -> None:
    # Long patterns are folded across lines; folding must not change them.
    for resource in RESOURCE_KINDS:
        assert CRDS[crdgen.crd_file_name(resource)] == crdgen.build_crd(resource)


def test_write_crds_writes_one_file_per_kind(tmp_path: Path) -> None:
    written = crdgen.write_crds(tmp_path / "out")
    assert [path.name for path in written] == sorted(RENDERED)
    assert all(path.read_text(encoding="utf-8") == RENDERED[path.name] for path in written)


@pytest.mark.parametrize(
    ("kind", "plural", "short_name"),
    [
        ("Incident", "incidents", "inc"),
        ("Runbook", "runbooks", "rbk"),
        ("RollbackRequest", "rollbackrequests", "rbr"),
        ("KeyRotation", "keyrotations", "kr"),
    ],
)
def test_each_kind_is_a_namespaced_remediator_resource(kind: str, plural: str, short_name: str) -> None:
    crd = CRDS[f"remediator.dev_{plural}.yaml"]
    assert crd["apiVersion"] == "apiextensions.k8s.io/v1"
    assert crd["metadata"]["name"] == f"{plural}.remediator.dev"
    assert crd["spec"]["group"] == "remediator.dev"
    assert crd["spec"]["scope"] == "Namespaced"
    assert crd["spec"]["names"] == {
        "kind": kind,
        "listKind": f"{kind}List",
        "plural": plural,
        "singular": kind.lower(),
        "shortNames": [short_name],
        "categories": ["remediator"],
    }
    [version] = crd["spec"]["versions"]
    assert (version["name"], version["served"], version["storage"]) == ("v1alpha1", True, True)
    assert version["subresources"] == {"status": {}}
    schema = version["schema"]["openAPIV3Schema"]
    assert schema["required"] == ["spec"]
    assert set(schema["properties"]) == {"apiVersion", "kind", "metadata", "spec", "status"}
    assert schema["properties"]["metadata"] == {"type": "object"}


@pytest.mark.parametrize(
    ("kind", "columns"),
    [
        (
            "Incident",
            [("Severity", ".spec.severity"), ("Phase", ".status.phase"), ("Ready", None), ("Age", None)],
        ),
        ("Runbook", [("Severity", ".spec.defaults.severity"), ("Ready", None), ("Age", None)]),
        (
            "RollbackRequest",
            [
                ("Target", ".spec.target.name"),
                ("Phase", ".status.phase"),
                ("From", ".status.fromRevision"),
                ("To", ".status.toRevision"),
                ("Ready", None),
                ("Age", None),
            ],
        ),
        (
            "KeyRotation",
            [
                ("Secret", ".spec.secretRef.name"),
                ("Phase", ".status.phase"),
                ("Last Rotation", ".status.lastRotationTime"),
                ("Ready", None),
                ("Age", None),
            ],
        ),
    ],
)
def test_kubectl_get_shows_the_columns_that_matter(kind: str, columns: list[tuple[str, str | None]]) -> None:
    crd = next(crd for crd in CRDS.values() if crd["spec"]["names"]["kind"] == kind)
    printed = crd["spec"]["versions"][0]["additionalPrinterColumns"]
    assert [column["name"] for column in printed] == [name for name, _ in columns]
    by_name = {column["name"]: column for column in printed}
    for name, path in columns:
        if path is not None:
            assert by_name[name]["jsonPath"] == path
    assert by_name["Ready"]["jsonPath"] == '.status.conditions[?(@.type=="Ready")].status'
    assert by_name["Age"] == {"name": "Age", "jsonPath": ".metadata.creationTimestamp", "type": "date"}


def nodes(schema: dict[str, Any], path: str = "") -> Iterator[tuple[str, dict[str, Any]]]:
    """Every schema node below `schema` (itself included), with its path."""
    yield path, schema
    for name, child in schema.get("properties", {}).items():
        yield from nodes(child, f"{path}.{name}")
    if isinstance(schema.get("items"), dict):
        yield from nodes(schema["items"], f"{path}[]")
    if isinstance(schema.get("additionalProperties"), dict):
        yield from nodes(schema["additionalProperties"], f"{path}{{}}")


ALL_NODES = [
    (f"{kind.kind}{path}", node) for kind in RESOURCE_KINDS for path, node in nodes(schema_of(kind.kind))
]


def test_every_schema_node_is_structural() -> None:
    problems = []
    for path, node in ALL_NODES:
        untyped_allowed = node.get("x-kubernetes-int-or-string") or node.get(
            "x-kubernetes-preserve-unknown-fields"
        )
        if "type" not in node and not untyped_allowed:
            problems.append(f"{path}: no type")
        for keyword in (
            "$ref",
            "anyOf",
            "allOf",
            "not",
            "title",
            "nullable",
            "$defs",
            "const",
            "uniqueItems",
        ):
            if keyword in node:
                problems.append(f"{path}: {keyword}")
        if "properties" in node and "additionalProperties" in node:
            problems.append(f"{path}: properties with additionalProperties")
        if "additionalProperties" in node and not isinstance(node["additionalProperties"], dict):
            problems.append(f"{path}: additionalProperties is not a schema")
        for branch in node.get("oneOf", []):
            if set(branch) != {"required"} or not set(branch["required"]) <= set(node.get("properties", {})):
                problems.append(f"{path}: oneOf branch {branch} is not a plain `required` of declared fields")
        if not isinstance(node.get("exclusiveMinimum", False), bool):
            problems.append(f"{path}: exclusiveMinimum is a number, not the OpenAPI v3 boolean")
        if "required" in node and not set(node["required"]) <= set(node.get("properties", {})):
            problems.append(f"{path}: requires undeclared fields")
    assert problems == []


def test_every_field_says_what_it_is_for() -> None:
    undocumented = [
        path
        for path, node in ALL_NODES
        if "description" not in node and not path.endswith(("[]", "{}", ".apiVersion", ".kind", ".metadata"))
    ]
    assert undocumented == []


def test_defaults_are_only_in_specs_and_are_valid_values() -> None:
    for path, node in ALL_NODES:
        if "default" in node:
            assert ".status" not in path, f"{path}: status fields get no defaults"
            assert schema_errors(node, node["default"], path) == [], path


@pytest.mark.parametrize("kind", ["Incident", "Runbook"])
def test_steps_hold_exactly_one_kind_and_unique_names(kind: str) -> None:
    steps = schema_of(kind)["properties"]["spec"]["properties"]["steps"]
    assert steps["x-kubernetes-list-type"] == "map"
    assert steps["x-kubernetes-list-map-keys"] == ["name"]
    assert steps["items"]["oneOf"] == [
        {"required": [kind_name]}
        for kind_name in [
            "scale",
            "restart",
            "rollback",
            "database",
            "job",
            "rotateKey",
            "httpCheck",
            "waitForRollout",
            "notify",
        ]
    ]
    assert "name" in steps["items"]["required"]
    step_kinds = steps["items"]["properties"]
    assert step_kinds["scale"]["oneOf"] == [
        {"required": ["replicas"]},
        {"required": ["by"]},
        {"required": ["factor"]},
    ]
    assert len(step_kinds["database"]["oneOf"]) == 9
    assert step_kinds["database"]["properties"]["reindex"]["oneOf"] == [
        {"required": ["table"]},
        {"required": ["index"]},
    ]
    assert step_kinds["scale"]["properties"]["factor"] == {
        "type": "number",
        "minimum": 0,
        "exclusiveMinimum": True,
        "description": "Multiply the replica count by this (rounded up).",
    }


def test_the_schema_offers_both_severity_spellings() -> None:
    severity = schema_of("Incident")["properties"]["spec"]["properties"]["severity"]
    assert severity["enum"] == ["P0", "P1", "P2", "P3", "SEV1", "SEV2", "SEV3", "SEV4"]


def test_durations_are_checked_by_the_api_server_too() -> None:
    step = schema_of("Incident")["properties"]["spec"]["properties"]["steps"]["items"]
    assert step["properties"]["timeout"]["pattern"] == "^([0-9]+(ms|s|m|h|d))+$"
    assert step["properties"]["retryBackoff"]["default"] == "10s"


@pytest.mark.parametrize("kind", [kind.kind for kind in RESOURCE_KINDS])
def test_conditions_are_a_map_keyed_by_type(kind: str) -> None:
    conditions = schema_of(kind)["properties"]["status"]["properties"]["conditions"]
    assert conditions["x-kubernetes-list-type"] == "map"
    assert conditions["x-kubernetes-list-map-keys"] == ["type"]
    assert conditions["items"]["properties"]["status"]["enum"] == ["True", "False", "Unknown"]


def test_a_step_result_may_hold_anything() -> None:
    steps = schema_of("Incident")["properties"]["status"]["properties"]["steps"]
    assert steps["x-kubernetes-list-map-keys"] == ["name"]
    assert steps["items"]["properties"]["result"] == {
        "type": "object",
        "x-kubernetes-preserve-unknown-fields": True,
        "description": "What the step found or did, as the step kind reports it.",
    }


AT = datetime(2024, 11, 3, 10, 0, tzinfo=UTC)
CONDITION = Condition(
    type="Ready",
    status="True",
    reason="Resolved",
    message="ok",
    last_transition_time=AT,
    observed_generation=2,
)
ENTRY = TimelineEntry(time=AT, type="Warning", reason="StepFailed", message="boom", step="roll-back")
FULL_STATUSES: list[tuple[str, pydantic.BaseModel]] = [
    (
        "Incident",
        IncidentStatus(
            phase="Resolved",
            conditions=[CONDITION],
            steps=[
                StepStatus(
                    name="roll-back",
                    state=StepState.SUCCEEDED,
                    attempts=2,
                    started_at=AT,
                    finished_at=AT,
                    message="rolled back",
                    result={"fromRevision": 42, "toRevision": 41, "pods": [{"name": "a"}]},
                    idempotency_key="roll-back/2",
                )
            ],
            timeline=[ENTRY],
            timeline_folded=7,
            observed_generation=2,
            lease_epoch=3,
            lease_name="remediator-shard-1",
            detected_at=AT,
            acknowledged_at=AT,
            mitigated_at=AT,
            resolved_at=AT,
            runbook_steps=[Step.model_validate({"name": "scale-out", "requiresApproval": True, "scale": {
                "target": {"kind": "Deployment", "name": "web"}, "by": 2, "maxReplicas": 10}})],
            steps_digest="0" * 64,
            ignored_approval="all",
        ),
    ),
    (
        "Runbook",
        RunbookStatus(
            conditions=[CONDITION], observed_generation=1, last_triggered_at=AT, incidents_created=4
        ),
    ),
    (
        "RollbackRequest",
        RollbackRequestStatus(
            phase="Complete",
            conditions=[CONDITION],
            from_revision=42,
            to_revision=41,
            to_template_hash="5d59d67564",
            original_replicas=3,
            migration_job_name="shop-api-rollback-41",
            timeline=[ENTRY],
            timeline_folded=1,
            observed_generation=1,
            lease_epoch=3,
            lease_name="remediator-shard-1",
        ),
    ),
    (
        "KeyRotation",
        KeyRotationStatus(
            phase="Rotated",
            conditions=[CONDITION],
            rotation=Rotation(
                id="3-1", cause="schedule", emergency=False, stage=RotationStage.GRACE, started_at=AT,
                stage_times={"Pending": AT, "Grace": AT}, version=4, secret_resource_version="812",
                consumers=[ConsumerRestart(kind="Deployment", name="shop-api", state="Restarted",
                                           restarted_at="2026-11-29T22:00:00Z", message="restarted")],
                database=DatabaseRotation(new_user="shop_app_b", previous_user="shop_app", sessions_at_revoke=2,
                                          sessions_terminated=0),
                verify_passes=2, message="verified",
            ),
            current_version=4,
            current_database_user="shop_app_b",
            last_trigger="2026-q4",
            last_request="incident/checkout-500/rotate",
            last_schedule_time=AT,
            last_rotation_time=AT,
            next_rotation_time=AT,
            previous_key_expires_at=AT,
            rotations=5,
            timeline=[ENTRY],
            timeline_folded=0,
            observed_generation=3,
            lease_epoch=3,
            lease_name="remediator-shard-1",
        ),
    ),
]


@pytest.mark.parametrize(("kind", "status"), FULL_STATUSES, ids=[kind for kind, _ in FULL_STATUSES])
def test_every_status_field_the_operator_writes_is_kept_by_the_api_server(
    kind: str, status: pydantic.BaseModel
) -> None:
    written = status.model_dump(by_alias=True, mode="json", exclude_none=True)
    unset = [name for name, value in status if value is None]
    assert unset == [], "fill in every field so the test covers it"
    schema = schema_of(kind)["properties"]["status"]
    assert pruned_fields(schema, written) == []
    assert schema_errors(schema, written) == []
    assert type(status).model_validate(written) == status


def test_a_kind_of_resource_knows_its_crd_name() -> None:
    incident: ResourceKind = RESOURCE_KINDS[0]
    assert (incident.crd_name, incident.singular) == ("incidents.remediator.dev", "incident")
