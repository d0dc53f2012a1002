"""Kopf's settings as the operator runs with them: Kopf keeps its diff-base (what a change handler compares
against) only for the kinds that have change handlers, so a storm of Incidents does not pay for it."""

from __future__ import annotations

import pathlib

import kopf
import yaml

from remediator import operator_main
from remediator.operator_main import operator_settings

API = "remediator.dev/v1alpha1"
CRDS = pathlib.Path(__file__).resolve().parents[2] / "crds"


def body(kind: str) -> kopf.Body:
    return kopf.Body({"apiVersion": API, "kind": kind,
                      "metadata": {"name": "x", "namespace": "default", "annotations": {
                          "remediator.dev/last-handled-configuration": '{"spec": {"old": true}}'}},
                      "spec": {"revision": 2}, "status": {"phase": "Running"}})


def test_a_rollback_request_keeps_its_diff_base_for_its_change_handlers() -> None:
    storage = operator_settings().persistence.diffbase_storage
    assert storage.build(body=body("RollbackRequest"))["spec"] == {"revision": 2}
    assert storage.fetch(body=body("RollbackRequest")) == {"spec": {"old": True}}


def test_incidents_and_key_rotations_handled_from_the_raw_watch_cost_no_diff_base() -> None:
    storage = operator_settings().persistence.diffbase_storage
    for kind in ("Incident", "KeyRotation"):
        assert storage.build(body=body(kind)) == {}
        assert storage.fetch(body=body(kind)) is None


def test_every_kind_the_operator_hangs_change_handlers_on_keeps_its_diff_base() -> None:
    """A change handler added on another kind without its diff-base would never see an update."""
    from remediator import handlers  # noqa: F401  (registers the operator's handlers)

    kinds = {document["spec"]["names"]["plural"]: document["spec"]["names"]["kind"]
             for path in CRDS.glob("*.yaml") for document in yaml.safe_load_all(path.read_text()) if document}
    registry = kopf.get_default_registry()
    handled = {kinds[handler.selector.any_name] for handler in (*registry._changing.get_all_handlers(),
                                                                *registry._spawning.get_all_handlers())}
    assert handled == operator_main.CHANGE_HANDLED_KINDS
