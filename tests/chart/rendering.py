"""Rendering the chart's templates for tests, without a helm binary (none installs from the registries
this project uses): the small part of Helm's template language the templates under test use, and
nothing more. A construct outside it fails loudly, so a template cannot silently render wrong."""

from __future__ import annotations

import json
import pathlib
import re
from typing import Any

import yaml

CHART = pathlib.Path(__file__).resolve().parents[2] / "charts" / "remediator"
_ACTION = re.compile(r"\{\{-?\s*(.*?)\s*-?\}\}")


def values(**overrides: Any) -> dict[str, Any]:
    """The chart's values.yaml with top-level keys replaced by `overrides`."""
    return {**yaml.safe_load((CHART / "values.yaml").read_text()), **overrides}


def _lookup(path: str, scope: dict[str, Any]) -> Any:
    found: Any = scope
    for part in path.lstrip(".").split("."):
        found = found[part]
    return found


def _evaluate(action: str, scope: dict[str, Any]) -> Any:
    pipeline = [part.strip() for part in action.split("|")]
    head, *filters = pipeline
    join = re.fullmatch(r'join "(.*)" (\.[\w.]+)', head)
    if join:
        value: Any = join.group(1).join(str(v) for v in _lookup(join.group(2), scope))
    elif re.fullmatch(r"\.[\w.]+", head):
        value = _lookup(head, scope)
    else:
        raise ValueError(f"template action not supported by the test renderer: {{{{ {action} }}}}")
    for name in filters:
        if name != "quote":
            raise ValueError(f"template function not supported by the test renderer: {name}")
        value = json.dumps(str(value).lower() if isinstance(value, bool) else str(value))
    return value


def render(template: str, release: str, namespace: str, chart_values: dict[str, Any]) -> list[dict[str, Any]]:
    """The YAML documents `helm template` would print for templates/<template>."""
    scope = {"Release": {"Name": release, "Namespace": namespace}, "Values": chart_values}
    text = (CHART / "templates" / template).read_text()
    kept: list[str] = []
    skipping: list[bool] = []
    position = 0
    for match in _ACTION.finditer(text):
        if not any(skipping):
            kept.append(text[position:match.start()])
        position = match.end()
        action = match.group(1)
        if action.startswith("if "):
            skipping.append(not _evaluate(action[3:], scope))
        elif action == "end":
            skipping.pop()
        elif not any(skipping):
            kept.append(str(_evaluate(action, scope)))
    kept.append(text[position:])
    return [document for document in yaml.safe_load_all("".join(kept)) if document]
