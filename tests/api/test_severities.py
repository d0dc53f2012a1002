from datetime import timedelta

import pydantic
import pytest

from remediator.api.incidents import IncidentSpec
from remediator.api.severities import Severity, default_escalate_after, normalise_severity


@pytest.mark.parametrize(
    ("written", "meant"),
    [
        ("SEV1", Severity.P0),
        ("SEV2", Severity.P1),
        ("SEV3", Severity.P2),
        ("SEV4", Severity.P3),
        ("P0", Severity.P0),
        ("P3", Severity.P3),
    ],
)
def test_the_sev_spelling_means_the_same_as_the_p_spelling(written: str, meant: Severity) -> None:
    spec = IncidentSpec.model_validate({"severity": written, "summary": "down", "runbookRef": {"name": "rb"}})
    assert spec.severity is meant
    assert spec.model_dump(mode="json", by_alias=True)["severity"] == meant.value


@pytest.mark.parametrize("written", ["P4", "SEV0", "sev1", "critical", "", 1, None])
def test_an_unknown_severity_is_refused_listing_the_accepted_ones(written: object) -> None:
    with pytest.raises(pydantic.ValidationError, match="use P0, P1, P2 or P3 \\(or SEV1 to SEV4\\)"):
        IncidentSpec.model_validate({"severity": written, "summary": "down", "runbookRef": {"name": "rb"}})


def test_normalising_a_severity_object_keeps_it() -> None:
    assert normalise_severity(Severity.P2) is Severity.P2


@pytest.mark.parametrize(
    ("severity", "wait"),
    [
        (Severity.P0, timedelta(minutes=5)),
        (Severity.P1, timedelta(minutes=15)),
        (Severity.P2, timedelta(hours=1)),
        (Severity.P3, timedelta(hours=4)),
    ],
)
def test_more_severe_incidents_escalate_sooner(severity: Severity, wait: timedelta) -> None:
    assert default_escalate_after(severity) == wait
