"""Every intent the engine can ask for has exactly one carrier in the handler's table."""

from __future__ import annotations

import typing

from remediator.engine import intents
from remediator.handlers import intent_table


def test_every_intent_type_has_a_carrier() -> None:
    asked = set(typing.get_args(intents.Observation)) | set(typing.get_args(intents.Action))
    assert asked == set(intent_table.CARRIERS)
