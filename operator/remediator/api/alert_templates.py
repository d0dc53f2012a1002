"""The placeholders a Runbook's incident template may use: `{{ alertname }}`, `{{ labels.NAME }}` and
`{{ annotations.NAME }}`, nothing else. Substitution is one pass over the template: a value that itself
looks like a placeholder is inserted as text, never expanded, and there are no expressions to run.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Callable, Mapping

PLACEHOLDER = re.compile(r"\{\{\s*(?P<reference>[^{}]*?)\s*\}\}")
_REFERENCE = re.compile(r"^(?:alertname|(?P<source>labels|annotations)\.(?P<name>[A-Za-z_][A-Za-z0-9_]*))$")


@dataclasses.dataclass(frozen=True)
class Reference:
    """What one placeholder reads: a label (`alertname` is the label of that name) or an annotation."""

    source: str  # "labels" or "annotations"
    name: str


def references(template: str) -> list[Reference]:
    """The placeholders in `template`, in order; raises ValueError naming the first unknown one."""
    found = []
    for match in PLACEHOLDER.finditer(template):
        reference = _REFERENCE.match(match["reference"])
        if reference is None:
            raise ValueError(f"unknown placeholder {match[0]!r}: use {{{{ alertname }}}}, {{{{ labels.NAME }}}} "
                             f"or {{{{ annotations.NAME }}}}")
        found.append(Reference(reference["source"] or "labels", reference["name"] or "alertname"))
    return found


def render(template: str, labels: Mapping[str, str], annotations: Mapping[str, str],
           check: Callable[[Reference, str], None] | None = None) -> str:
    """`template` with each placeholder replaced by the alert's value ("" when the alert has none).

    `check` sees each value before it is inserted and may raise ValueError to refuse it.
    Raises ValueError for an unknown placeholder.
    """
    def value_of(match: re.Match[str]) -> str:
        [reference] = references(match[0])
        value = (labels if reference.source == "labels" else annotations).get(reference.name, "")
        if check is not None:
            check(reference, value)
        return value

    return PLACEHOLDER.sub(value_of, template)
