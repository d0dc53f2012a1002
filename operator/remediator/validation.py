"""`remediator validate FILE...`: check manifests offline, as the API server and the operator would,
for CI in a GitOps repository. The models are the CRDs' source (the CRDs are generated from them), so
a document the models accept is one the API server stores and the operator carries out."""

from __future__ import annotations

import pathlib
from collections.abc import Iterable, Iterator
from typing import Any

import pydantic
import yaml

from remediator import API_VERSION
from remediator.api.errors import validation_messages
from remediator.api.resources import RESOURCE_KINDS

_MODELS = {resource.kind: resource.spec_model for resource in RESOURCE_KINDS}


def problems(path: pathlib.Path) -> Iterator[str]:
    """`file:path: message` for every problem of every remediator.dev document in the file."""
    try:
        documents = [d for d in yaml.safe_load_all(path.read_text()) if d is not None]
    except (OSError, yaml.YAMLError) as e:
        yield f"{path}: cannot read YAML: {str(e).splitlines()[0]}"
        return
    for index, document in enumerate(documents):
        where = f"{path}" if len(documents) == 1 else f"{path}[{index}]"
        yield from _document_problems(where, document)


def _document_problems(where: str, document: Any) -> Iterator[str]:
    if not isinstance(document, dict):
        yield f"{where}: not an object"
        return
    if document.get("apiVersion") != API_VERSION or document.get("kind") not in _MODELS:
        return  # another API's object: kubectl's business
    name = (document.get("metadata") or {}).get("name")
    if not name:
        yield f"{where}: metadata.name: Required value"
    try:
        _MODELS[document["kind"]].model_validate(document.get("spec") or {})
    except pydantic.ValidationError as e:
        for message in validation_messages(e):
            yield f"{where}: {message}"


def validate(paths: Iterable[pathlib.Path]) -> int:
    """Print every problem; 1 when there was one, else 0."""
    found = False
    for path in paths:
        for problem in problems(path):
            print(problem)
            found = True
    return 1 if found else 0
