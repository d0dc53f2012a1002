"""The chart as Helm renders and lints it (Helm v4, in-process through helm-python-sdk)."""

from __future__ import annotations

import helm_python
import pytest

from .rendering import lint, manifests, values


def test_helm_lint_strict_finds_nothing_with_the_default_values() -> None:
    assert lint() == []


def test_a_template_error_fails_the_render_instead_of_printing_half_a_chart() -> None:
    with pytest.raises(helm_python.HelmError):
        manifests("remediator", "remediator", values(image="not-a-mapping"))
