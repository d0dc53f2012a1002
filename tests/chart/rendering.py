"""Rendering and linting the chart with Helm itself: the helm-python-sdk wheel embeds Helm v4's Go SDK
as a shared library, so `helm template` and `helm lint` run in-process with no binary to download."""

from __future__ import annotations

import pathlib
from typing import Any

import helm_python
import yaml

CHART = pathlib.Path(__file__).resolve().parents[2] / "charts" / "remediator"


def values(**overrides: Any) -> dict[str, Any]:
    """The chart's values.yaml with top-level keys replaced by `overrides`."""
    return {**yaml.safe_load((CHART / "values.yaml").read_text()), **overrides}


def render_all(release: str, namespace: str, chart_values: dict[str, Any]) -> dict[str, list[dict[str, Any]]]:
    """What `helm template RELEASE charts/remediator -n NAMESPACE` prints, by template file name."""
    with helm_python.Chart.load(CHART) as chart:
        rendered = chart.render(values=chart_values, name=release, namespace=namespace, is_install=True)
        prefix = f"{chart.name}/templates/"
    return {path.removeprefix(prefix): [document for document in yaml.safe_load_all(text) if document]
            for path, text in rendered.items() if path.endswith(".yaml")}


def render(template: str, release: str, namespace: str, chart_values: dict[str, Any]) -> list[dict[str, Any]]:
    """The YAML documents `helm template` prints for templates/<template>."""
    return render_all(release, namespace, chart_values).get(template, [])


def manifests(release: str, namespace: str, chart_values: dict[str, Any]) -> list[dict[str, Any]]:
    """Every document of the rendered chart, in template order."""
    return [document for documents in render_all(release, namespace, chart_values).values()
            for document in documents]


def lint(chart_values: dict[str, Any] | None = None) -> list[str]:
    """`helm lint --strict`'s warnings and errors (info-level advice such as 'icon is recommended' left out)."""
    report = helm_python.lint(CHART, chart_values, strict=True)
    return [f"{message['path']}: {message['error']}" for message in report["messages"]
            if message["severity"] >= 2] + list(report.get("errors") or [])


def notes(release: str, namespace: str, chart_values: dict[str, Any]) -> str:
    """What `helm install` prints after installing (templates/NOTES.txt)."""
    with helm_python.Chart.load(CHART) as chart:
        rendered = chart.render(values=chart_values, name=release, namespace=namespace, is_install=True)
        return rendered[f"{chart.name}/templates/NOTES.txt"]
