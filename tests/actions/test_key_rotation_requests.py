"""What a rotateKey step writes to KeyRotations, against the sandbox: the request annotation (both keys,
on condition that nothing was written meanwhile) and the inline KeyRotation owned by its Incident."""

from __future__ import annotations

import json

import kubernetes.client

from remediator import API_VERSION, manifests
from remediator.actions import key_rotation_requests
from remediator.api.keyrotations import EMERGENCY_ANNOTATION, ROTATE_ANNOTATION
from remediator.engine import intents

SPEC = {"secretRef": {"name": "shop-keys"}, "keys": [{"key": "API_KEY"}]}


async def key_rotation(client: manifests.Client, name: str = "api-keys") -> dict[str, object]:
    found = await client.get(API_VERSION, "KeyRotation", "default", name)
    assert found is not None
    return found


async def test_a_request_is_written_with_its_emergency_flag_and_never_over_a_newer_write(
        client: manifests.Client, kubernetes_client: kubernetes.client.ApiClient) -> None:
    await client.apply({"apiVersion": API_VERSION, "kind": "KeyRotation",
                        "metadata": {"name": "api-keys", "namespace": "default",
                                     "annotations": {EMERGENCY_ANNOTATION: "true"}}, "spec": SPEC})
    read = await key_rotation(client)
    version = str(read["metadata"]["resourceVersion"])  # type: ignore[index]

    first = intents.RequestRotation("rotate", "api-keys", "incident/a/rotate/1", False, version)
    assert await key_rotation_requests.request(kubernetes_client, "default", first) == intents.done({"written": True})
    annotations = (await key_rotation(client))["metadata"]["annotations"]  # type: ignore[index]
    # An emergency flag from an earlier request does not carry over.
    assert (annotations[ROTATE_ANNOTATION], annotations[EMERGENCY_ANNOTATION]) == ("incident/a/rotate/1", "false")

    stale = intents.RequestRotation("rotate", "api-keys", "incident/b/rotate/2", True, version)
    assert await key_rotation_requests.request(kubernetes_client, "default", stale) == intents.done({"written": False})
    annotations = (await key_rotation(client))["metadata"]["annotations"]  # type: ignore[index]
    assert annotations[ROTATE_ANNOTATION] == "incident/a/rotate/1", "the first request is not lost"

    missing = intents.RequestRotation("rotate", "nothing", "x", False)
    assert (await key_rotation_requests.request(kubernetes_client, "default", missing)).reason == "KeyRotationNotFound"
    gone = await key_rotation_requests.observe(kubernetes_client, "default", intents.ObserveKeyRotation("r", "nothing"))
    assert gone.reason == "KeyRotationNotFound"


async def test_an_inline_key_rotation_is_created_once_owned_by_its_incident_with_the_request_on_it(
        client: manifests.Client, kubernetes_client: kubernetes.client.ApiClient) -> None:
    incident = {"metadata": {"name": "leak", "namespace": "default", "uid": "0f6c1d2e-uid"}}
    ensure = intents.EnsureKeyRotation("rotate", "leak-rotate", json.dumps(SPEC), "incident/leak/rotate/0f6c1d2e",
                                       True)
    for _ in range(2):
        assert await key_rotation_requests.ensure(kubernetes_client, incident, ensure) == intents.done()
    created = await key_rotation(client, "leak-rotate")
    metadata = created["metadata"]
    assert metadata["annotations"] == {ROTATE_ANNOTATION: "incident/leak/rotate/0f6c1d2e",  # type: ignore[index]
                                       EMERGENCY_ANNOTATION: "true"}
    assert [(o["kind"], o["name"], o["controller"]) for o in metadata["ownerReferences"]] == [  # type: ignore[index]
        ("Incident", "leak", True)]
    assert created["spec"]["secretRef"] == SPEC["secretRef"]  # type: ignore[index]

    invalid = intents.EnsureKeyRotation("rotate", "bad", json.dumps({"secretRef": {"name": "x"}, "keys": []}),
                                        "r", False)
    refused = await key_rotation_requests.ensure(kubernetes_client, incident, invalid)
    assert refused.reason == "InvalidKeyRotation" and "keys" in refused.message
    assert await client.get(API_VERSION, "KeyRotation", "default", "bad") is None
