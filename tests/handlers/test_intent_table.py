"""Every intent the engine can ask for has exactly one carrier in the handler's table."""

from __future__ import annotations

import pathlib
import threading
import typing

import kubernetes.client
import pytest

from remediator import config, kube, manifests
from remediator.engine import intents
from remediator.handlers import intent_table

REPO = pathlib.Path(__file__).resolve().parents[2]


def test_every_intent_type_has_a_carrier() -> None:
    asked = set(typing.get_args(intents.Observation)) | set(typing.get_args(intents.Action))
    assert asked == set(intent_table.CARRIERS)


async def test_the_api_classes_are_loaded_in_a_thread_for_the_first_intent_that_needs_them_only(
        monkeypatch: pytest.MonkeyPatch, client: manifests.Client, kubernetes_client: kubernetes.client.ApiClient,
        kubeconfig: pathlib.Path) -> None:
    """The scale path goes by path: an operator that only scales never pays the client's API classes (a
    second of imports, 29 MB); a pod restart's reads use them, loaded off the event loop, once."""
    loads: list[str] = []
    monkeypatch.setattr(kube, "_api_classes_loaded", False)
    monkeypatch.setattr(kube, "load_api_classes", lambda: loads.append(threading.current_thread().name))
    await client.apply_file(REPO / "examples" / "01-workload.yaml")
    where = intent_table.Where(kubernetes_client, {}, "default", config.OperatorConfig(kubeconfig=kubeconfig))

    for intent in (intents.ObserveTarget("s", "Deployment", "web"), intents.ScaleTo("s", "Deployment", "web", 3)):
        assert (await intent_table.carry_out(where, intent)).succeeded
    assert loads == []
    for _ in range(2):
        assert (await intent_table.carry_out(where, intents.ObservePods("p", "app=web"))).succeeded
    assert len(loads) == 1 and loads[0] != threading.main_thread().name
