"""Helpers for the model-rule tests: validate a spec, get the API-server-style messages."""

from typing import Any

import pydantic

from remediator.api.errors import validation_messages


def messages(model: type[pydantic.BaseModel], spec: Any) -> list[str]:
    """Return the `spec...: message` lines for `spec`; fail the test if it validates."""
    try:
        model.model_validate(spec)
    except pydantic.ValidationError as error:
        return validation_messages(error)
    raise AssertionError(f"{model.__name__} accepted {spec!r}")


def incident_with(*steps: dict[str, Any]) -> dict[str, Any]:
    """An Incident spec holding `steps`."""
    return {"severity": "P1", "summary": "checkout is down", "steps": list(steps)}


def step(name: str, **kind: Any) -> dict[str, Any]:
    """A step named `name` with the given kind(s) and settings."""
    return {"name": name, **kind}


DEPLOYMENT = {"kind": "Deployment", "name": "shop-api"}
DATABASE = {"name": "shop-db"}
