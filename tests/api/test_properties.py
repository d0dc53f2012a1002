"""Property tests: valid specs survive storage unchanged; no input crashes the models."""

import copy
from typing import Any

import pydantic
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from remediator.api.incidents import IncidentSpec, IncidentStatus
from remediator.api.keyrotations import KeyRotationSpec, KeyRotationStatus
from remediator.api.resources import INCIDENT, KEY_ROTATION, ROLLBACK_REQUEST, RUNBOOK, ResourceKind
from remediator.api.rollbacks import RollbackRequestSpec, RollbackRequestStatus
from remediator.api.runbooks import RunbookSpec, RunbookStatus
from remediator.api.schemas import structural_schema

from . import strategies
from .openapi import apply_defaults, pruned_fields, schema_errors

RELAXED = settings(deadline=None, suppress_health_check=[HealthCheck.too_slow])

SPECS: list[tuple[ResourceKind, st.SearchStrategy[dict[str, Any]]]] = [
    (INCIDENT, strategies.incident_specs()),
    (RUNBOOK, strategies.runbook_specs()),
    (ROLLBACK_REQUEST, strategies.rollback_request_specs()),
    (KEY_ROTATION, strategies.key_rotation_specs()),
]
IDS = [kind.kind for kind, _ in SPECS]


def stored(spec: pydantic.BaseModel) -> dict[str, Any]:
    """What the operator would write (and Kubernetes keep) for `spec`."""
    return spec.model_dump(by_alias=True, mode="json", exclude_none=True)


@pytest.mark.parametrize(("kind", "specs"), SPECS, ids=IDS)
def test_a_valid_spec_reads_back_equal_after_storage(
    kind: ResourceKind, specs: st.SearchStrategy[Any]
) -> None:
    @RELAXED
    @given(specs)
    def check(written: dict[str, Any]) -> None:
        spec = kind.spec_model.model_validate(written)
        assert kind.spec_model.model_validate(stored(spec)) == spec

    check()


@pytest.mark.parametrize(("kind", "specs"), SPECS, ids=IDS)
def test_the_api_server_accepts_what_the_model_accepts_and_its_defaults_change_nothing(
    kind: ResourceKind, specs: st.SearchStrategy[Any]
) -> None:
    schema = structural_schema(kind.spec_model, with_defaults=True)

    @RELAXED
    @given(specs)
    def check(written: dict[str, Any]) -> None:
        assert schema_errors(schema, written) == []
        assert pruned_fields(schema, written) == []
        defaulted = apply_defaults(schema, written)
        assert schema_errors(schema, defaulted) == []
        assert kind.spec_model.model_validate(defaulted) == kind.spec_model.model_validate(written)

    check()


ALL_MODELS = [
    IncidentSpec,
    IncidentStatus,
    RunbookSpec,
    RunbookStatus,
    RollbackRequestSpec,
    RollbackRequestStatus,
    KeyRotationSpec,
    KeyRotationStatus,
]


@pytest.mark.parametrize("model", ALL_MODELS, ids=[model.__name__ for model in ALL_MODELS])
def test_arbitrary_json_is_refused_with_a_validation_error_and_nothing_else(
    model: type[pydantic.BaseModel],
) -> None:
    @RELAXED
    @given(strategies.json_values)
    def check(garbage: Any) -> None:
        try:
            model.model_validate(garbage)
        except pydantic.ValidationError:
            pass

    check()


@st.composite
def damaged(draw: st.DrawFn, specs: st.SearchStrategy[dict[str, Any]]) -> Any:
    """A valid spec with one value somewhere inside replaced by arbitrary JSON."""
    # A copy: the strategy may hand out shared objects (sampled or constant values), and changing one in
    # place would make the next replay draw something else (hypothesis' FlakyStrategyDefinition).
    spec = copy.deepcopy(draw(specs))
    places: list[tuple[Any, Any]] = []

    def collect(container: Any) -> None:
        keys = container.keys() if isinstance(container, dict) else range(len(container))
        for key in keys:
            places.append((container, key))
            if isinstance(container[key], dict | list):
                collect(container[key])

    collect(spec)
    container, key = draw(st.sampled_from(places))
    container[key] = draw(
        strategies.json_values | st.sampled_from(["0s", "99999999999999999999999d", "", -1, 0])
    )
    return spec


@pytest.mark.parametrize(("kind", "specs"), SPECS, ids=IDS)
def test_a_damaged_spec_is_refused_with_a_validation_error_and_nothing_else(
    kind: ResourceKind, specs: st.SearchStrategy[Any]
) -> None:
    @RELAXED
    @given(damaged(specs))
    def check(spec: Any) -> None:
        try:
            kind.spec_model.model_validate(spec)
        except pydantic.ValidationError:
            pass

    check()
