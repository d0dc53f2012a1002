"""docs/api/<kind>.md: the committed API reference is what the models generate (`remediator crds` writes it)."""

from __future__ import annotations

import pathlib

from remediator.api import reference_docs
from remediator.api.keyrotations import KeyRotationSpec

DOCS = pathlib.Path(__file__).resolve().parents[2] / "docs" / "api"


def test_the_committed_reference_pages_are_what_the_models_generate() -> None:
    rendered = reference_docs.render_pages()
    committed = {path.name: path.read_text(encoding="utf-8") for path in DOCS.glob("*.md")}
    stale = sorted(name for name in rendered.keys() | committed.keys() if rendered.get(name) != committed.get(name))
    assert stale == [], f"docs/api is out of date for {stale}: run `remediator crds`"


def test_every_spec_field_has_a_row_with_its_description() -> None:
    page = reference_docs.render_pages()["keyrotation.md"]
    for name, field in KeyRotationSpec.model_fields.items():
        alias = field.alias or name
        row = next(line for line in page.splitlines() if line.startswith(f"| `spec.{alias}` |"))
        assert " ".join((field.description or "").split())[:40].replace("|", "\\|") in row, row
