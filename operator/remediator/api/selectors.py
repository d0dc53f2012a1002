"""Label selectors, shaped like metav1.LabelSelector."""

from enum import StrEnum
from typing import Annotated, Self

from pydantic import Field, model_validator

from remediator.api.bases import SpecModel
from remediator.api.errors import FieldRuleError
from remediator.api.patterns import Matches

# A label key: an optional DNS subdomain prefix and a name of at most 63 characters.
LABEL_KEY = (
    r"^([a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*/)?"
    r"[A-Za-z0-9]([-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?$"
)
LABEL_VALUE = r"^(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?$"

LabelKey = Annotated[str, Matches(LABEL_KEY, "a label key such as app or example.com/tier", max_length=316)]
LabelValue = Annotated[
    str, Matches(LABEL_VALUE, "a label value (letters, digits, '-', '_', '.')", max_length=63, min_length=0)
]


class SelectorOperator(StrEnum):
    """How a selector requirement relates a label to its values."""

    IN = "In"
    NOT_IN = "NotIn"
    EXISTS = "Exists"
    DOES_NOT_EXIST = "DoesNotExist"


class LabelSelectorRequirement(SpecModel):
    """A label key, an operator and (for In/NotIn) the values."""

    key: LabelKey
    """The label key the requirement applies to."""
    operator: SelectorOperator
    """In, NotIn, Exists or DoesNotExist."""
    values: list[LabelValue] = Field(default_factory=list)
    """Values for In and NotIn (at least one); empty for Exists and DoesNotExist."""

    @model_validator(mode="after")
    def _values_fit_operator(self) -> Self:
        wants_values = self.operator in (SelectorOperator.IN, SelectorOperator.NOT_IN)
        if wants_values and not self.values:
            raise FieldRuleError("values", f"must not be empty for operator {self.operator}")
        if not wants_values and self.values:
            raise FieldRuleError("values", f"must be empty for operator {self.operator}")
        return self


class LabelSelector(SpecModel):
    """Selects objects by labels; all requirements must hold. It must not be empty."""

    match_labels: dict[LabelKey, LabelValue] = Field(default_factory=dict)
    """Labels that must have exactly these values."""
    match_expressions: list[LabelSelectorRequirement] = Field(default_factory=list)
    """Further requirements on labels."""

    @model_validator(mode="after")
    def _selects_something_specific(self) -> Self:
        # An empty selector matches every pod in the namespace.
        if not self.match_labels and not self.match_expressions:
            raise FieldRuleError(
                "", "must set matchLabels or matchExpressions (an empty selector selects all)"
            )
        return self
