"""The store's owner-UID index: an owner's dependents and the uncontrolled objects, found without a scan.

kube-controller-manager's controllers find an owner's objects through an informer index by
controller UID, and the garbage collector keeps a graph of ownerReferences; the sandbox's
controllers ask the store the same questions. Whatever the writes, each answer must be exactly
what a scan of every stored object would give.
https://kubernetes.io/docs/concepts/overview/working-with-objects/owners-dependents/
"""

from __future__ import annotations

import json
from typing import Any

import pytest

from remediator.sandbox import patches, resources, store

MERGE = "application/merge-patch+json"


@pytest.fixture()
def objects() -> store.ObjectStore:
    return store.ObjectStore()


@pytest.fixture()
def configmaps(objects: store.ObjectStore) -> resources.ResourceType:
    return objects.resource_type("", "v1", "configmaps")


def reference(owner: dict[str, Any], *, controller: bool = False) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "ConfigMap", "name": owner["metadata"]["name"],
            "uid": owner["metadata"]["uid"], "controller": controller}


def configmap(objects: store.ObjectStore, resource: resources.ResourceType, name: str,
              *owners: dict[str, Any], namespace: str = "default") -> dict[str, Any]:
    refs = [reference(owner, controller=position == 0) for position, owner in enumerate(owners)]
    meta: dict[str, Any] = {"name": name, **({"ownerReferences": refs} if refs else {})}
    return objects.create(resource, {"metadata": meta}, namespace)


def patched(objects: store.ObjectStore, resource: resources.ResourceType, obj: dict[str, Any],
            patch: dict[str, Any]) -> dict[str, Any]:
    """A merge patch, applied as the API server's PATCH handler applies it."""
    meta = obj["metadata"]
    body = patches.apply_patch(obj, json.dumps(patch).encode(), MERGE, resource.kind)
    return objects.replace(resource, meta["namespace"], meta["name"], body)


def names(found: list[dict[str, Any]]) -> list[str]:
    return [obj["metadata"]["name"] for obj in found]


def assert_index_matches_a_scan(objects: store.ObjectStore, resource: resources.ResourceType,
                                *owners: dict[str, Any]) -> None:
    everything = objects.list(resource)
    for owner in owners:
        uid = owner["metadata"]["uid"]
        named = [obj for obj in everything
                 if uid in {ref["uid"] for ref in obj["metadata"].get("ownerReferences") or []}]
        assert objects.dependents(resource, uid) == named
    uncontrolled = [obj for obj in everything
                    if not any(ref.get("controller") for ref in obj["metadata"].get("ownerReferences") or [])]
    assert objects.uncontrolled(resource) == uncontrolled


def test_dependents_are_found_by_owner_uid_in_list_order(objects: store.ObjectStore,
                                                         configmaps: resources.ResourceType) -> None:
    a = configmap(objects, configmaps, "a")
    b = configmap(objects, configmaps, "b")
    configmap(objects, configmaps, "z-controlled", a)
    configmap(objects, configmaps, "m-shared", b, a)  # controlled by b, also owned by a
    configmap(objects, configmaps, "c-of-b", b)

    assert names(objects.dependents(configmaps, a["metadata"]["uid"])) == ["m-shared", "z-controlled"]
    assert names(objects.dependents(configmaps, b["metadata"]["uid"])) == ["c-of-b", "m-shared"]
    assert names(objects.uncontrolled(configmaps, "default")) == ["a", "b"]
    assert_index_matches_a_scan(objects, configmaps, a, b)


def test_dependents_are_filtered_by_resource_and_namespace(objects: store.ObjectStore,
                                                           configmaps: resources.ResourceType) -> None:
    objects.create(objects.resource_type("", "v1", "namespaces"), {"metadata": {"name": "other"}})
    owner = configmap(objects, configmaps, "owner")
    configmap(objects, configmaps, "here", owner)
    configmap(objects, configmaps, "there", owner, namespace="other")
    secrets = objects.resource_type("", "v1", "secrets")
    objects.create(secrets, {"metadata": {"name": "secret", "ownerReferences": [reference(owner)]}}, "default")

    uid = owner["metadata"]["uid"]
    assert names(objects.dependents(configmaps, uid, "default")) == ["here"]
    assert names(objects.dependents(configmaps, uid)) == ["here", "there"]
    assert names(objects.dependents(secrets, uid, "default")) == ["secret"]
    assert names(objects.uncontrolled(configmaps, "other")) == []


def test_owner_references_changed_by_a_patch_move_the_dependent(objects: store.ObjectStore,
                                                                configmaps: resources.ResourceType) -> None:
    a = configmap(objects, configmaps, "a")
    b = configmap(objects, configmaps, "b")
    dependent = configmap(objects, configmaps, "dependent", a)

    moved = patched(objects, configmaps, dependent, {"metadata": {"ownerReferences": [reference(b, controller=True)]}})
    assert objects.dependents(configmaps, a["metadata"]["uid"]) == []
    assert objects.dependents(configmaps, b["metadata"]["uid"]) == [moved]
    assert_index_matches_a_scan(objects, configmaps, a, b)

    released = patched(objects, configmaps, moved, {"metadata": {"ownerReferences": None}})
    assert objects.dependents(configmaps, b["metadata"]["uid"]) == []
    assert "dependent" in names(objects.uncontrolled(configmaps))
    assert_index_matches_a_scan(objects, configmaps, a, b)

    # A write that leaves the references alone (a label) keeps the dependent where it is.
    adopted = patched(objects, configmaps, released, {"metadata": {"ownerReferences": [reference(a)]}})
    relabelled = patched(objects, configmaps, adopted, {"metadata": {"labels": {"tier": "web"}}})
    assert objects.dependents(configmaps, a["metadata"]["uid"]) == [relabelled]
    assert_index_matches_a_scan(objects, configmaps, a, b)


def test_deletions_and_garbage_collection_leave_no_dependents_behind(objects: store.ObjectStore,
                                                                     configmaps: resources.ResourceType) -> None:
    a = configmap(objects, configmaps, "a")
    b = configmap(objects, configmaps, "b")
    configmap(objects, configmaps, "only-a", a)
    configmap(objects, configmaps, "a-and-b", a, b)
    configmap(objects, configmaps, "orphaned", b)
    configmap(objects, configmaps, "deleted", b)

    objects.delete(configmaps, "default", "deleted")
    assert names(objects.dependents(configmaps, b["metadata"]["uid"])) == ["a-and-b", "orphaned"]

    # Background deletion collects what only `a` owned; `a-and-b` stays (b lives) and still names a.
    objects.delete(configmaps, "default", "a")
    assert names(objects.list(configmaps)) == ["a-and-b", "b", "orphaned"]
    assert names(objects.dependents(configmaps, a["metadata"]["uid"])) == ["a-and-b"]
    assert_index_matches_a_scan(objects, configmaps, a, b)

    # Orphan propagation removes the references to b, so nothing is b's any more.
    objects.delete(configmaps, "default", "b", propagation="Orphan")
    assert objects.dependents(configmaps, b["metadata"]["uid"]) == []
    assert_index_matches_a_scan(objects, configmaps, a, b)

    # Recreating a name gives a new uid: the old owner's index does not claim the new object.
    configmap(objects, configmaps, "a")
    objects.delete(configmaps, "default", "a-and-b")
    assert objects.dependents(configmaps, a["metadata"]["uid"]) == []
    assert names(objects.uncontrolled(configmaps)) == ["a", "orphaned"]
