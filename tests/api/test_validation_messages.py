from collections.abc import Iterator, Mapping
from typing import Any

import pydantic

from remediator.api.errors import validation_messages
from remediator.api.incidents import IncidentSpec, IncidentStatus


def errors_of(model: type[pydantic.BaseModel], data: object) -> pydantic.ValidationError:
    try:
        model.model_validate(data)
    except pydantic.ValidationError as error:
        return error
    raise AssertionError("validated")


def test_paths_use_the_json_names_and_list_indexes() -> None:
    error = errors_of(IncidentSpec, {"severity": "P1", "summary": "s", "steps": [{"name": "a", "scale": {}}]})
    assert validation_messages(error) == [
        "spec.steps[0].scale.target: Field required",
    ]


def test_the_prefix_names_where_the_object_sits() -> None:
    error = errors_of(IncidentStatus, {"timelineFolded": -1})
    assert validation_messages(error, prefix="status") == [
        "status.timelineFolded: Input should be greater than or equal to 0"
    ]


def test_a_whole_spec_of_the_wrong_type_is_reported_at_the_prefix() -> None:
    assert validation_messages(errors_of(IncidentSpec, ["not", "an", "object"])) == [
        "spec: Input should be a valid dictionary or instance of IncidentSpec"
    ]


def test_python_callers_may_use_the_python_field_names() -> None:
    spec = IncidentSpec.model_validate(
        {"severity": "P1", "summary": "s", "dry_run": True, "runbook_ref": {"name": "r"}}
    )
    assert spec.dry_run is True
    assert spec.model_dump(by_alias=True, exclude_none=True)["dryRun"] is True


def test_an_unknown_field_is_called_that() -> None:
    error = errors_of(
        IncidentSpec, {"severity": "P1", "summary": "s", "runbookRef": {"name": "r"}, "dryrun": True}
    )
    assert validation_messages(error) == ["spec.dryrun: unknown field"]


class SpecView(Mapping[str, Any]):
    """A read-only mapping over a stored spec, as Kopf hands one to a handler."""

    def __init__(self, stored: dict[str, Any]) -> None:
        self._stored = stored

    def __getitem__(self, key: str) -> Any:
        return self._stored[key]

    def __iter__(self) -> Iterator[str]:
        return iter(self._stored)

    def __len__(self) -> int:
        return len(self._stored)


def test_a_spec_is_read_from_the_mapping_a_handler_gets() -> None:
    spec = IncidentSpec.model_validate(
        SpecView({"severity": "SEV1", "summary": "down", "runbookRef": {"name": "r"}})
    )
    assert spec.runbook_ref is not None
    assert spec.runbook_ref.name == "r"
