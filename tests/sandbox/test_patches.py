"""PATCH bodies as kube-apiserver applies them: merge patch, JSON patch and strategic merge patch."""

from __future__ import annotations

import copy
import json
import subprocess
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st
from tests.kubectl import KUBECTL, requires_kubectl

from remediator.sandbox import patches

RFC7386 = "https://www.rfc-editor.org/rfc/rfc7386"
RFC6902 = "https://www.rfc-editor.org/rfc/rfc6902"
KUBECTL_PATCH_DOC = "https://kubernetes.io/docs/tasks/manage-kubernetes-objects/update-api-object-kubectl-patch/"
SMP_DOC = ("https://github.com/kubernetes/community/blob/master/contributors/devel/sig-api-machinery/"
           "strategic-merge-patch.md")


def deployment(containers: list[dict[str, Any]], **template_spec: Any) -> dict[str, Any]:
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": "patch-demo", "namespace": "default"},
        "spec": {
            "replicas": 2,
            "selector": {"matchLabels": {"app": "nginx"}},
            "strategy": {"type": "RollingUpdate", "rollingUpdate": {"maxSurge": "25%", "maxUnavailable": "25%"}},
            "template": {
                "metadata": {"labels": {"app": "nginx"}},
                "spec": {"containers": containers, **template_spec},
            },
        },
    }


def template_spec(obj: dict[str, Any]) -> dict[str, Any]:
    spec: dict[str, Any] = obj["spec"]["template"]["spec"]
    return spec


def names(items: list[dict[str, Any]], key: str = "name") -> list[Any]:
    return [item[key] for item in items]


# -- JSON Merge Patch ------------------------------------------------------------------------------

RFC7386_EXAMPLES = [
    ({"a": "b"}, {"a": "c"}, {"a": "c"}),
    ({"a": "b"}, {"b": "c"}, {"a": "b", "b": "c"}),
    ({"a": "b"}, {"a": None}, {}),
    ({"a": "b", "b": "c"}, {"a": None}, {"b": "c"}),
    ({"a": ["b"]}, {"a": "c"}, {"a": "c"}),
    ({"a": "c"}, {"a": ["b"]}, {"a": ["b"]}),
    ({"a": {"b": "c"}}, {"a": {"b": "d", "c": None}}, {"a": {"b": "d"}}),
    ({"a": [{"b": "c"}]}, {"a": [1]}, {"a": [1]}),
    (["a", "b"], ["c", "d"], ["c", "d"]),
    ({"a": "b"}, ["c"], ["c"]),
    ({"a": "foo"}, None, None),
    ({"a": "foo"}, "bar", "bar"),
    ({"e": None}, {"a": 1}, {"e": None, "a": 1}),
    ([1, 2], {"a": "b", "c": None}, {"a": "b"}),
    ({}, {"a": {"bb": {"ccc": None}}}, {"a": {"bb": {}}}),
]


@pytest.mark.parametrize(("target", "patch", "expected"), RFC7386_EXAMPLES)
def test_merge_patch_gives_every_result_of_the_rfc_7386_examples(target: Any, patch: Any, expected: Any) -> None:
    """RFC 7386 Appendix A: objects merge, null deletes, anything else replaces.

    https://www.rfc-editor.org/rfc/rfc7386#appendix-A
    """
    assert patches.merge_patch(target, patch) == expected


def test_a_merge_patch_replaces_the_container_list_whole() -> None:
    """`kubectl patch --type merge` with one container leaves only that container.

    https://kubernetes.io/docs/tasks/manage-kubernetes-objects/update-api-object-kubectl-patch/
    ("Use a JSON merge patch to update a Deployment")
    """
    live = deployment([{"name": "patch-demo-ctr", "image": "nginx"}, {"name": "patch-demo-ctr-2", "image": "redis"}])
    patch = {"spec": {"template": {"spec": {"containers": [
        {"name": "patch-demo-ctr-3", "image": "gcr.io/google-samples/node-hello:1.0"}]}}}}

    patched = patches.apply_patch(live, patch, "application/merge-patch+json", "Deployment")

    assert template_spec(patched)["containers"] == [
        {"name": "patch-demo-ctr-3", "image": "gcr.io/google-samples/node-hello:1.0"}]


def test_a_merge_patch_keeps_rolling_update_when_switching_to_recreate() -> None:
    """A merge patch of `strategy.type: Recreate` keeps `rollingUpdate`, which is why the docs
    show the server rejecting it (validation then forbids rollingUpdate with Recreate).

    https://kubernetes.io/docs/tasks/manage-kubernetes-objects/update-api-object-kubectl-patch/
    ("Use strategic merge patch to update a Deployment using the retainKeys strategy")
    """
    live = deployment([{"name": "retainkeys-demo-ctr", "image": "nginx"}])

    patched = patches.merge_patch(live, {"spec": {"strategy": {"type": "Recreate"}}})

    assert patched["spec"]["strategy"] == {"type": "Recreate",
                                           "rollingUpdate": {"maxSurge": "25%", "maxUnavailable": "25%"}}


@given(st.recursive(st.none() | st.booleans() | st.integers() | st.text(max_size=3),
                    lambda children: st.lists(children, max_size=3)
                    | st.dictionaries(st.text(max_size=2), children, max_size=3), max_leaves=12),
       st.dictionaries(st.text(max_size=2), st.none() | st.integers() | st.dictionaries(
           st.text(max_size=2), st.none() | st.integers(), max_size=2), max_size=3))
def test_applying_the_same_merge_patch_twice_changes_nothing_more(target: Any, patch: Any) -> None:
    """RFC 7386 section 1: a merge patch is idempotent, and the inputs are left untouched."""
    target_before, patch_before = copy.deepcopy(target), copy.deepcopy(patch)
    once = patches.merge_patch(target, patch)

    assert patches.merge_patch(once, patch) == once
    assert (target, patch) == (target_before, patch_before)


# -- JSON Patch ------------------------------------------------------------------------------------

RFC6902_EXAMPLES = [
    pytest.param({"foo": "bar"}, [{"op": "add", "path": "/baz", "value": "qux"}],
                 {"baz": "qux", "foo": "bar"}, id="A.1 adding an object member"),
    pytest.param({"foo": ["bar", "baz"]}, [{"op": "add", "path": "/foo/1", "value": "qux"}],
                 {"foo": ["bar", "qux", "baz"]}, id="A.2 adding an array element"),
    pytest.param({"baz": "qux", "foo": "bar"}, [{"op": "remove", "path": "/baz"}],
                 {"foo": "bar"}, id="A.3 removing an object member"),
    pytest.param({"foo": ["bar", "qux", "baz"]}, [{"op": "remove", "path": "/foo/1"}],
                 {"foo": ["bar", "baz"]}, id="A.4 removing an array element"),
    pytest.param({"baz": "qux", "foo": "bar"}, [{"op": "replace", "path": "/baz", "value": "boo"}],
                 {"baz": "boo", "foo": "bar"}, id="A.5 replacing a value"),
    pytest.param({"foo": {"bar": "baz", "waldo": "fred"}, "qux": {"corge": "grault"}},
                 [{"op": "move", "from": "/foo/waldo", "path": "/qux/thud"}],
                 {"foo": {"bar": "baz"}, "qux": {"corge": "grault", "thud": "fred"}}, id="A.6 moving a value"),
    pytest.param({"foo": ["all", "grass", "cows", "eat"]}, [{"op": "move", "from": "/foo/1", "path": "/foo/3"}],
                 {"foo": ["all", "cows", "eat", "grass"]}, id="A.7 moving an array element"),
    pytest.param({"baz": "qux", "foo": ["a", 2, "c"]},
                 [{"op": "test", "path": "/baz", "value": "qux"}, {"op": "test", "path": "/foo/1", "value": 2}],
                 {"baz": "qux", "foo": ["a", 2, "c"]}, id="A.8 testing a value: success"),
    pytest.param({"foo": "bar"}, [{"op": "add", "path": "/child", "value": {"grandchild": {}}}],
                 {"foo": "bar", "child": {"grandchild": {}}}, id="A.10 adding a nested member object"),
    pytest.param({"foo": "bar"}, [{"op": "add", "path": "/baz", "value": "qux", "xyz": 123}],
                 {"foo": "bar", "baz": "qux"}, id="A.11 ignoring unrecognized elements"),
    pytest.param({"/": 9, "~1": 10}, [{"op": "test", "path": "/~01", "value": 10}],
                 {"/": 9, "~1": 10}, id="A.14 ~ escape ordering"),
    pytest.param({"foo": ["bar"]}, [{"op": "add", "path": "/foo/-", "value": ["abc", "def"]}],
                 {"foo": ["bar", ["abc", "def"]]}, id="A.16 adding an array value"),
]


@pytest.mark.parametrize(("target", "operations", "expected"), RFC6902_EXAMPLES)
def test_json_patch_gives_every_result_of_the_rfc_6902_examples(target: Any, operations: Any, expected: Any) -> None:
    """RFC 6902 Appendix A, the examples that succeed.

    https://www.rfc-editor.org/rfc/rfc6902#appendix-A
    """
    assert patches.json_patch(target, operations) == expected


@pytest.mark.parametrize(("target", "operations"), [
    pytest.param({"baz": "qux"}, [{"op": "test", "path": "/baz", "value": "bar"}], id="A.9 testing a value: error"),
    pytest.param({"/": 9, "~1": 10}, [{"op": "test", "path": "/~01", "value": "10"}],
                 id="A.15 comparing strings and numbers"),
])
def test_a_failed_json_patch_test_is_a_test_failure(target: Any, operations: Any) -> None:
    """RFC 6902 section 4.6 and Appendix A.9/A.15: a `test` that does not hold fails the patch;
    kube-apiserver answers 422, which Kopf reads as a lost race.

    https://www.rfc-editor.org/rfc/rfc6902#section-4.6
    """
    with pytest.raises(patches.PatchTestFailed) as failure:
        patches.json_patch(target, operations)
    assert failure.value.status_code == 422


def test_adding_under_a_missing_parent_is_an_invalid_patch() -> None:
    """RFC 6902 Appendix A.12: adding to a nonexistent target is an error (422 on the server).

    https://www.rfc-editor.org/rfc/rfc6902#appendix-A.12
    """
    with pytest.raises(patches.InvalidPatch) as failure:
        patches.json_patch({"foo": "bar"}, [{"op": "add", "path": "/baz/bat", "value": "qux"}])
    assert failure.value.status_code == 422
    assert "/baz/bat" in str(failure.value)


def test_a_json_patch_that_fails_half_way_changes_nothing() -> None:
    """RFC 6902 section 5: if any operation fails, the whole patch is not applied."""
    live = {"metadata": {"resourceVersion": "7", "labels": {"a": "1"}}}
    operations = [
        {"op": "replace", "path": "/metadata/labels/a", "value": "2"},
        {"op": "test", "path": "/metadata/resourceVersion", "value": "6"},
    ]

    with pytest.raises(patches.PatchTestFailed):
        patches.json_patch(live, operations)
    assert live == {"metadata": {"resourceVersion": "7", "labels": {"a": "1"}}}


def test_a_stale_resource_version_test_names_the_path_but_not_the_values() -> None:
    """A patch can carry secrets, so the error names the path and op only (RFC 6902 section 4.6)."""
    live = {"data": {"password": "hunter2"}}

    with pytest.raises(patches.PatchTestFailed) as failure:
        patches.json_patch(live, [{"op": "test", "path": "/data/password", "value": "s3cret"}])

    assert str(failure.value) == "testing value /data/password failed: test failed"
    assert "hunter2" not in str(failure.value) and "s3cret" not in str(failure.value)


@pytest.mark.parametrize(("operations", "message"), [
    ([{"op": "remove", "path": "/metadata/labels"}],
     "error in remove for path: '/metadata/labels': Unable to remove nonexistent key: labels: missing value"),
    ([{"op": "add", "path": "/spec/containers/2", "value": {}}],
     "error in add for path: '/spec/containers/2': Unable to access invalid index: 2: invalid index referenced"),
    ([{"op": "bogus", "path": "/spec"}], "Unexpected kind: bogus"),
    ([{"op": "add", "path": "spec", "value": 1}], "add operation: path spec is not a JSON pointer"),
    ([{"op": "add", "path": "/spec/x"}], "add operation has no value"),
    ([{"op": "move", "from": "/spec", "path": "/spec/x"}],
     "move operation does not apply: /spec/x is inside from /spec"),
])
def test_json_patch_operations_that_do_not_apply_are_rejected(operations: Any, message: str) -> None:
    """RFC 6902 sections 4 and 5: missing targets, bad indexes, unknown ops and pointers are errors,
    worded like evanphx/json-patch, which kube-apiserver uses.

    https://www.rfc-editor.org/rfc/rfc6902#section-5
    """
    pod = {"metadata": {"name": "p"}, "spec": {"containers": [{"name": "app"}]}}

    with pytest.raises(patches.InvalidPatch, match="^" + message.replace("(", r"\(") + "$"):
        patches.json_patch(pod, operations)


def test_json_patch_appends_to_a_list_with_dash_and_unescapes_slashes_in_keys() -> None:
    """RFC 6901 section 4 (`~1` is `/`) and RFC 6902 section 4.1 (`-` is past the end): how a
    client adds an annotation with a slash in its key and a finalizer.

    https://www.rfc-editor.org/rfc/rfc6901#section-4
    """
    live = {"metadata": {"annotations": {}, "finalizers": ["a"]}}
    operations = [
        {"op": "add", "path": "/metadata/annotations/example.com~1owner", "value": "team~x"},
        {"op": "add", "path": "/metadata/finalizers/-", "value": "b"},
    ]

    assert patches.json_patch(live, operations) == {
        "metadata": {"annotations": {"example.com/owner": "team~x"}, "finalizers": ["a", "b"]}}


def test_json_patch_replace_of_a_missing_member_adds_it_like_kube_apiserver() -> None:
    """kube-apiserver applies JSON patches with evanphx/json-patch v4, whose `replace` does not
    check that an object member exists (RFC 6902 section 4.3 says it must); `kubectl patch
    --type json` relies on the same library."""
    assert patches.json_patch({"metadata": {}}, [{"op": "replace", "path": "/metadata/labels", "value": {}}]) \
        == {"metadata": {"labels": {}}}


def test_json_patch_test_for_null_holds_for_a_missing_member_like_kube_apiserver() -> None:
    """evanphx/json-patch v4 treats a missing member as null in `test`: a client may assert that
    a field is absent before adding it."""
    live = {"metadata": {"name": "p"}}
    operations = [{"op": "test", "path": "/metadata/deletionTimestamp", "value": None}]

    assert patches.json_patch(live, operations) == live


def test_json_patch_reads_list_indexes_like_kube_apiserver() -> None:
    """evanphx/json-patch v4 parses indexes with strconv.Atoi: negative ones count from the end
    and leading zeros are accepted (RFC 6901 section 4 forbids both); a missing member copies as null."""
    live = {"metadata": {"finalizers": ["a", "b"]}}
    operations = [
        {"op": "add", "path": "/metadata/finalizers/-1", "value": "c"},
        {"op": "replace", "path": "/metadata/finalizers/00", "value": "A"},
        {"op": "copy", "from": "/metadata/missing", "path": "/metadata/finalizers/-"},
    ]

    assert patches.json_patch(live, operations) == {"metadata": {"finalizers": ["A", "b", "c", None]}}
    with pytest.raises(patches.InvalidPatch, match="Unable to access invalid index: -4"):
        patches.json_patch(live, [{"op": "remove", "path": "/metadata/finalizers/-4"}])


# -- strategic merge patch: the kubectl patch docs -------------------------------------------------


def test_strategic_merge_adds_a_container_by_name_and_puts_it_first() -> None:
    """kubectl patch with patch-file.yaml: the redis container is added, not swapped in, and the
    server lists it before the existing one.

    https://kubernetes.io/docs/tasks/manage-kubernetes-objects/update-api-object-kubectl-patch/
    ("Use a strategic merge patch to update a Deployment")
    """
    live = deployment([{"name": "patch-demo-ctr", "image": "nginx"}],
                      tolerations=[{"effect": "NoSchedule", "key": "dedicated", "value": "test-team"}])
    patch = {"spec": {"template": {"spec": {"containers": [{"name": "patch-demo-ctr-2", "image": "redis"}]}}}}

    patched = patches.strategic_merge_patch(live, patch, "Deployment")

    assert template_spec(patched)["containers"] == [
        {"name": "patch-demo-ctr-2", "image": "redis"}, {"name": "patch-demo-ctr", "image": "nginx"}]
    assert template_spec(patched)["tolerations"] == template_spec(live)["tolerations"]


def test_strategic_merge_replaces_tolerations_whole() -> None:
    """patch-file-tolerations.yaml: tolerations have no patch strategy, so the list is replaced.

    https://kubernetes.io/docs/tasks/manage-kubernetes-objects/update-api-object-kubectl-patch/
    ("Notes on the strategic merge patch")
    """
    live = deployment([{"name": "patch-demo-ctr", "image": "nginx"}],
                      tolerations=[{"effect": "NoSchedule", "key": "dedicated", "value": "test-team"}])
    patch = {"spec": {"template": {"spec": {"tolerations": [
        {"effect": "NoSchedule", "key": "disktype", "value": "ssd"}]}}}}

    patched = patches.strategic_merge_patch(live, patch, "Deployment")

    assert template_spec(patched)["tolerations"] == [{"effect": "NoSchedule", "key": "disktype", "value": "ssd"}]


def test_retain_keys_clears_rolling_update_when_switching_to_recreate() -> None:
    """patch-file-retainkeys.yaml: `$retainKeys: [type]` keeps only `type` in `strategy`.

    https://kubernetes.io/docs/tasks/manage-kubernetes-objects/update-api-object-kubectl-patch/
    ("Use strategic merge patch to update a Deployment using the retainKeys strategy")
    """
    live = deployment([{"name": "retainkeys-demo-ctr", "image": "nginx"}])
    patch = {"spec": {"strategy": {"$retainKeys": ["type"], "type": "Recreate"}}}

    patched = patches.strategic_merge_patch(live, patch, "Deployment")

    assert patched["spec"]["strategy"] == {"type": "Recreate"}


def test_retain_keys_must_list_every_key_the_patch_sets() -> None:
    """"All fields in the $retainKeys list must be a superset or the same as the fields present in
    the patch" (the docs' retainKeys notes); the server answers 400 otherwise.

    https://kubernetes.io/docs/tasks/manage-kubernetes-objects/update-api-object-kubectl-patch/
    """
    live = deployment([{"name": "retainkeys-demo-ctr", "image": "nginx"}])
    patch = {"spec": {"strategy": {"$retainKeys": ["type"], "type": "RollingUpdate",
                                   "rollingUpdate": {"maxSurge": 1}}}}

    with pytest.raises(patches.MalformedPatch, match="invalid patch format of retainKeys") as failure:
        patches.strategic_merge_patch(live, patch, "Deployment")
    assert failure.value.status_code == 400


# -- strategic merge patch: the directives ---------------------------------------------------------


def test_patch_replace_in_a_map_takes_the_map_literally() -> None:
    """`$patch: replace` in a map: the map is replaced, not merged (strategic-merge-patch.md).

    https://github.com/kubernetes/community/blob/master/contributors/devel/sig-api-machinery/strategic-merge-patch.md
    """
    live = deployment([{"name": "app", "image": "app:1",
                        "resources": {"limits": {"cpu": "1", "memory": "1Gi"}, "requests": {"cpu": "1"}}}])
    patch = {"spec": {"template": {"spec": {"containers": [
        {"name": "app", "resources": {"$patch": "replace", "limits": {"memory": "2Gi"}}}]}}}}

    patched = patches.strategic_merge_patch(live, patch, "Deployment")

    assert template_spec(patched)["containers"][0]["resources"] == {"limits": {"memory": "2Gi"}}


def test_patch_replace_in_a_list_replaces_a_merging_list() -> None:
    """`- $patch: replace` as a list element: the container list is replaced, regardless of its
    merge strategy (strategic-merge-patch.md, "List of Maps").

    https://github.com/kubernetes/community/blob/master/contributors/devel/sig-api-machinery/strategic-merge-patch.md
    """
    live = deployment([{"name": "nginx", "image": "nginx-0.9"}, {"name": "log-tailer", "image": "log-tailer-1.0"}])
    patch = {"spec": {"template": {"spec": {"containers": [
        {"name": "nginx", "image": "nginx-1.0"}, {"$patch": "replace"}]}}}}

    patched = patches.strategic_merge_patch(live, patch, "Deployment")

    assert template_spec(patched)["containers"] == [{"name": "nginx", "image": "nginx-1.0"}]


def test_patch_delete_in_a_list_removes_the_element_with_that_merge_key() -> None:
    """`- $patch: delete, name: log-tailer` removes that container (strategic-merge-patch.md).

    https://github.com/kubernetes/community/blob/master/contributors/devel/sig-api-machinery/strategic-merge-patch.md
    """
    live = deployment([{"name": "nginx", "image": "nginx-0.9"}, {"name": "log-tailer", "image": "log-tailer-1.0"}])
    patch = {"spec": {"template": {"spec": {"containers": [
        {"name": "nginx", "image": "nginx-1.0"}, {"$patch": "delete", "name": "log-tailer"}]}}}}

    patched = patches.strategic_merge_patch(live, patch, "Deployment")

    assert template_spec(patched)["containers"] == [{"name": "nginx", "image": "nginx-1.0"}]


@pytest.mark.parametrize("deletion", [{"$patch": "delete"}, None], ids=["$patch: delete", "null"])
def test_a_map_is_deleted_by_patch_delete_or_null(deletion: Any) -> None:
    """"Applying this patch will delete the rollingUpdate map" — `$patch: delete` leaves it empty
    (as the Go implementation does), `null` removes the key (strategic-merge-patch.md, "Maps").

    https://github.com/kubernetes/community/blob/master/contributors/devel/sig-api-machinery/strategic-merge-patch.md
    """
    live = deployment([{"name": "app", "image": "app:1"}])

    patched = patches.strategic_merge_patch(live, {"spec": {"strategy": {"rollingUpdate": deletion}}}, "Deployment")

    assert patched["spec"]["strategy"].get("rollingUpdate", {}) == {}
    assert patched["spec"]["strategy"]["type"] == "RollingUpdate"


def test_delete_from_primitive_list_removes_finalizers() -> None:
    """`$deleteFromPrimitiveList/finalizers: [b, c]` on `[a, b, c]` leaves `[a]` (strategic-merge-patch.md).

    https://github.com/kubernetes/community/blob/master/contributors/devel/sig-api-machinery/strategic-merge-patch.md
    """
    live = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c", "finalizers": ["a", "b", "c"]}}

    patched = patches.strategic_merge_patch(
        live, {"metadata": {"$deleteFromPrimitiveList/finalizers": ["b", "c"]}}, "ConfigMap")

    assert patched["metadata"]["finalizers"] == ["a"]


def test_finalizers_merge_as_a_set_with_new_ones_first() -> None:
    """metadata.finalizers has patchStrategy merge: a patch adds to the set, and the server puts
    the patch's items before the ones only it had (strategicpatch.normalizeElementOrder).

    https://github.com/kubernetes/community/blob/master/contributors/devel/sig-api-machinery/strategic-merge-patch.md
    """
    live = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p", "finalizers": ["a", "b"]}}

    patched = patches.strategic_merge_patch(live, {"metadata": {"finalizers": ["c", "a"]}}, "Pod")

    assert patched["metadata"]["finalizers"] == ["c", "a", "b"]


@pytest.mark.parametrize(("live", "patch", "expected"), [
    pytest.param({"metadata": {"finalizers": ["a", "b", "c"]}},
                 {"metadata": {"$setElementOrder/finalizers": ["b", "c", "a"]}},
                 {"metadata": {"finalizers": ["b", "c", "a"]}}, id="list of primitives"),
    pytest.param({"spec": {"containers": [{"name": "a", "image": "1"}, {"name": "b"}, {"name": "c"}]}},
                 {"spec": {"$setElementOrder/containers": [{"name": "b"}, {"name": "c"}, {"name": "a"}]}},
                 {"spec": {"containers": [{"name": "b"}, {"name": "c"}, {"name": "a", "image": "1"}]}},
                 id="list of maps"),
])
def test_set_element_order_reorders_the_list(live: Any, patch: Any, expected: Any) -> None:
    """The `$setElementOrder` examples of strategic-merge-patch.md.

    https://github.com/kubernetes/community/blob/master/contributors/devel/sig-api-machinery/strategic-merge-patch.md
    """
    assert patches.strategic_merge_patch(live, patch, "Pod") == expected


def test_a_patch_list_out_of_set_element_order_is_rejected() -> None:
    """The relative order of the patch list must match `$setElementOrder` (strategicpatch's
    validatePatchWithSetOrderList); kubectl never sends such a patch.

    https://github.com/kubernetes/community/blob/master/contributors/devel/sig-api-machinery/strategic-merge-patch.md
    """
    live = {"status": {"conditions": [{"type": "Ready", "status": "False"}]}}
    patch = {"status": {"conditions": [{"type": "Ready", "status": "True"}, {"type": "Initialized", "status": "True"}],
                        "$setElementOrder/conditions": [{"type": "Initialized"}, {"type": "Ready"}]}}

    with pytest.raises(patches.InvalidPatch, match=r"doesn't match the \$setElementOrder list"):
        patches.strategic_merge_patch(live, patch, "Pod")


def test_retain_keys_clears_the_other_members_of_a_union() -> None:
    """The `retainKeys` union example of strategic-merge-patch.md (a volume's source is a union).

    https://github.com/kubernetes/community/blob/master/contributors/devel/sig-api-machinery/strategic-merge-patch.md
    """
    live = {"spec": {"volumes": [{"name": "v", "emptyDir": {}, "hostPath": {"path": "/tmp"}}]}}
    patch = {"spec": {"volumes": [{"name": "v", "$retainKeys": ["name", "configMap"], "configMap": {"name": "c"}}]}}

    patched = patches.strategic_merge_patch(live, patch, "Pod")

    assert patched["spec"]["volumes"] == [{"name": "v", "configMap": {"name": "c"}}]


# -- strategic merge patch: what kubectl sends -----------------------------------------------------


def test_kubectl_set_image_changes_one_container_and_keeps_the_rest() -> None:
    """`kubectl set image deployment/web app=app:2` sends the two-way strategic merge patch of the
    change, with `$setElementOrder/containers` listing every container.

    https://kubernetes.io/docs/reference/kubectl/generated/kubectl_set/kubectl_set_image/
    """
    live = deployment([{"name": "app", "image": "app:1", "ports": [{"containerPort": 8080}]},
                       {"name": "proxy", "image": "envoy:1"}])
    patch = {"spec": {"template": {"spec": {
        "$setElementOrder/containers": [{"name": "app"}, {"name": "proxy"}],
        "containers": [{"name": "app", "image": "app:2"}]}}}}

    patched = patches.apply_patch(live, json.dumps(patch).encode(), "application/strategic-merge-patch+json",
                                  "Deployment")

    assert template_spec(patched)["containers"] == [
        {"name": "app", "image": "app:2", "ports": [{"containerPort": 8080}]},
        {"name": "proxy", "image": "envoy:1"}]


def test_kubectl_apply_removes_a_container_and_keeps_an_injected_sidecar_in_place() -> None:
    """`kubectl apply` after removing `old` from the manifest sends a three-way patch: the
    last-applied annotation, `$patch: delete` for `old` and `$setElementOrder/containers`. A
    sidecar that only the server knows (injected by a webhook) stays where it was.

    https://kubernetes.io/docs/tasks/manage-kubernetes-objects/declarative-config/
    ("How apply calculates differences and merges changes")
    """
    live = deployment([{"name": "app", "image": "app:1"}, {"name": "istio-proxy", "image": "proxy"},
                       {"name": "old", "image": "old:1"}])
    patch = {
        "metadata": {"annotations": {"kubectl.kubernetes.io/last-applied-configuration": "{}\n"}},
        "spec": {"template": {"spec": {
            "$setElementOrder/containers": [{"name": "app"}],
            "containers": [{"$patch": "delete", "name": "old"}]}}},
    }

    patched = patches.strategic_merge_patch(live, patch, "Deployment")

    assert names(template_spec(patched)["containers"]) == ["app", "istio-proxy"]
    assert patched["metadata"]["annotations"] == {"kubectl.kubernetes.io/last-applied-configuration": "{}\n"}


def test_kubectl_apply_changes_an_env_var_and_drops_another_inside_a_container() -> None:
    """Nested merge lists: env merges by name inside the container merged by name, with the
    `$setElementOrder/env` and `$patch: delete` that kubectl apply generates.

    https://kubernetes.io/docs/tasks/manage-kubernetes-objects/declarative-config/
    """
    live = deployment([{"name": "app", "image": "app:1", "env": [
        {"name": "A", "value": "1"}, {"name": "B", "value": "2"}, {"name": "C", "value": "3"}]}])
    patch = {"spec": {"template": {"spec": {
        "$setElementOrder/containers": [{"name": "app"}],
        "containers": [{"name": "app", "$setElementOrder/env": [{"name": "C"}, {"name": "A"}],
                        "env": [{"name": "A", "value": "10"}, {"$patch": "delete", "name": "B"}]}]}}}}

    patched = patches.strategic_merge_patch(live, patch, "Deployment")

    assert template_spec(patched)["containers"][0]["env"] == [{"name": "C", "value": "3"},
                                                              {"name": "A", "value": "10"}]


def test_kubectl_rollout_restart_adds_a_template_annotation() -> None:
    """`kubectl rollout restart` patches `spec.template.metadata.annotations` with
    `kubectl.kubernetes.io/restartedAt`; maps merge, so existing annotations stay.

    https://kubernetes.io/docs/reference/kubectl/generated/kubectl_rollout/kubectl_rollout_restart/
    """
    live = deployment([{"name": "app", "image": "app:1"}])
    live["spec"]["template"]["metadata"]["annotations"] = {"team": "sre"}
    patch = {"spec": {"template": {"metadata": {"annotations": {
        "kubectl.kubernetes.io/restartedAt": "2024-05-01T10:00:00Z"}}}}}

    patched = patches.strategic_merge_patch(live, patch, "Deployment")

    assert patched["spec"]["template"]["metadata"]["annotations"] == {
        "team": "sre", "kubectl.kubernetes.io/restartedAt": "2024-05-01T10:00:00Z"}


# -- strategic merge patch: which lists merge ------------------------------------------------------


def test_a_pod_merges_containers_at_spec_containers() -> None:
    """The same Container merge keys apply at a Pod's `spec.containers` and a Deployment's
    `spec.template.spec.containers`: env by name, ports by containerPort, volumeMounts by mountPath.

    https://kubernetes.io/docs/reference/kubernetes-api/workload-resources/pod-v1/#containers
    """
    live = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p"}, "spec": {"containers": [{
        "name": "app", "image": "app:1",
        "env": [{"name": "A", "value": "1"}],
        "ports": [{"containerPort": 80, "name": "http"}],
        "volumeMounts": [{"mountPath": "/data", "name": "data"}],
        "args": ["--a"]}]}}
    patch = {"spec": {"containers": [{
        "name": "app",
        "env": [{"name": "B", "value": "2"}],
        "ports": [{"containerPort": 80, "protocol": "TCP"}],
        "volumeMounts": [{"mountPath": "/cache", "name": "cache"}],
        "args": ["--b"]}]}}

    container = patches.strategic_merge_patch(live, patch, "Pod")["spec"]["containers"][0]

    assert container["env"] == [{"name": "B", "value": "2"}, {"name": "A", "value": "1"}]
    assert container["ports"] == [{"containerPort": 80, "name": "http", "protocol": "TCP"}]
    assert names(container["volumeMounts"], "mountPath") == ["/cache", "/data"]
    assert container["args"] == ["--b"]


def test_env_from_command_and_args_are_replaced_whole() -> None:
    """Container fields without a patch strategy are atomic (the kubectl patch docs' notes).

    https://kubernetes.io/docs/tasks/manage-kubernetes-objects/update-api-object-kubectl-patch/
    """
    live = deployment([{"name": "app", "command": ["a", "b"], "envFrom": [{"configMapRef": {"name": "x"}}]}])
    patch = {"spec": {"template": {"spec": {"containers": [
        {"name": "app", "command": ["c"], "envFrom": [{"secretRef": {"name": "y"}}]}]}}}}

    container = template_spec(patches.strategic_merge_patch(live, patch, "Deployment"))["containers"][0]

    assert container["command"] == ["c"]
    assert container["envFrom"] == [{"secretRef": {"name": "y"}}]


def test_status_conditions_merge_by_type() -> None:
    """A status patch with one condition updates that condition and keeps the others
    (conditions have patchMergeKey type).

    https://kubernetes.io/docs/reference/kubernetes-api/workload-resources/deployment-v1/#DeploymentStatus
    """
    live = deployment([{"name": "app"}])
    live["status"] = {"conditions": [{"type": "Available", "status": "True"},
                                     {"type": "Progressing", "status": "True"}]}
    patch = {"status": {"conditions": [{"type": "Progressing", "status": "False", "reason": "Timeout"}]}}

    patched = patches.strategic_merge_patch(live, patch, "Deployment")

    assert patched["status"]["conditions"] == [{"type": "Available", "status": "True"},
                                               {"type": "Progressing", "status": "False", "reason": "Timeout"}]


@pytest.mark.parametrize(("kind", "path", "key", "live_items", "patch_items", "expected"), [
    ("Service", ("spec", "ports"), "port", [{"port": 80, "targetPort": 8080}], [{"port": 80, "name": "http"}],
     [{"port": 80, "targetPort": 8080, "name": "http"}]),
    ("Pod", ("spec", "volumes"), "name", [{"name": "a", "emptyDir": {}}], [{"name": "b", "emptyDir": {}}],
     [{"name": "b", "emptyDir": {}}, {"name": "a", "emptyDir": {}}]),
    ("ConfigMap", ("metadata", "ownerReferences"), "uid", [{"uid": "1", "name": "a"}], [{"uid": "1", "name": "b"}],
     [{"uid": "1", "name": "b"}]),
    ("Pod", ("spec", "imagePullSecrets"), "name", [{"name": "a"}], [{"name": "a"}], [{"name": "a"}]),
    ("Pod", ("spec", "hostAliases"), "ip", [{"ip": "1.1.1.1", "hostnames": ["a"]}],
     [{"ip": "1.1.1.1", "hostnames": ["b"]}], [{"ip": "1.1.1.1", "hostnames": ["b"]}]),
    ("Pod", ("spec", "topologySpreadConstraints"), "topologyKey", [{"topologyKey": "zone", "maxSkew": 1}],
     [{"topologyKey": "zone", "maxSkew": 2}], [{"topologyKey": "zone", "maxSkew": 2}]),
])
def test_lists_with_a_merge_key_merge_element_by_element(kind: str, path: tuple[str, str], key: str,
                                                         live_items: Any, patch_items: Any, expected: Any) -> None:
    """patchMergeKey of Service ports (port), volumes (name), ownerReferences (uid),
    imagePullSecrets (name), hostAliases (ip), topologySpreadConstraints (topologyKey).

    https://kubernetes.io/docs/reference/kubernetes-api/ (the "Patch strategy: merge on key" notes)
    """
    live = {path[0]: {path[1]: live_items}}
    patched = patches.strategic_merge_patch(live, {path[0]: {path[1]: patch_items}}, kind)
    assert patched[path[0]][path[1]] == expected


def test_new_list_elements_are_stored_without_directives_or_nulls() -> None:
    """The server decodes the merged object into its Go type, which drops null members and
    directive keys of values taken from the patch as they are."""
    live = deployment([{"name": "app", "image": "app:1"}])
    patch = {"spec": {"template": {"spec": {"containers": [
        {"name": "sidecar", "image": "s:1", "$setElementOrder/env": [{"name": "A"}],
         "env": [{"name": "A", "value": None}]}]}}}}

    patched = patches.strategic_merge_patch(live, patch, "Deployment")

    assert template_spec(patched)["containers"][0] == {"name": "sidecar", "image": "s:1", "env": [{"name": "A"}]}


def test_strategic_merge_leaves_its_inputs_untouched() -> None:
    """The store keeps the live object; a patch must not change it behind the store's back."""
    live = deployment([{"name": "app", "image": "app:1", "env": [{"name": "A", "value": "1"}]}])
    patch = {"spec": {"template": {"spec": {
        "$setElementOrder/containers": [{"name": "app"}],
        "containers": [{"name": "app", "env": [{"$patch": "delete", "name": "A"}]}]}}}}
    live_before, patch_before = copy.deepcopy(live), copy.deepcopy(patch)

    patches.strategic_merge_patch(live, patch, "Deployment")

    assert (live, patch) == (live_before, patch_before)


# -- strategic merge patch: errors -----------------------------------------------------------------


def test_strategic_merge_on_a_custom_resource_is_unsupported_media_type() -> None:
    """"Strategic merge patch is not supported for custom resources" (the kubectl patch docs);
    the server answers 415.

    https://kubernetes.io/docs/tasks/manage-kubernetes-objects/update-api-object-kubectl-patch/
    """
    with pytest.raises(patches.StrategicMergeUnsupported) as failure:
        patches.strategic_merge_patch({"spec": {}}, {"spec": {"x": 1}}, "Runbook")
    assert failure.value.status_code == 415
    assert "application/merge-patch+json" in str(failure.value)


@pytest.mark.parametrize(("patch", "message"), [
    ({"spec": {"containers": [{"$patch": "merge", "name": "app"}]}}, "merging lists cannot yet be specified"),
    ({"spec": {"containers": [{"image": "x"}]}}, "does not contain declared merge key: name"),
    ({"spec": {"containers": [{"$patch": "delete"}]}}, "does not contain declared merge key: name"),
    ({"spec": {"$patch": "merge"}}, "unknown patch type in the map at spec"),
])
def test_strategic_merge_rejects_lists_it_cannot_merge(patch: Any, message: str) -> None:
    """strategicpatch's errors: `$patch: merge` is not allowed in a patch, and every element of a
    merging list needs its merge key (strategic-merge-patch.md, "merge Directive").

    https://github.com/kubernetes/community/blob/master/contributors/devel/sig-api-machinery/strategic-merge-patch.md
    """
    live = {"spec": {"containers": [{"name": "app", "image": "app:1"}]}}
    with pytest.raises(patches.InvalidPatch, match=message):
        patches.strategic_merge_patch(live, patch, "Pod")


def test_strategic_merge_error_messages_never_show_values() -> None:
    """A patch can carry secrets: errors name the field, never its contents."""
    live = {"spec": {"containers": [{"name": "app", "env": [{"name": "TOKEN", "value": "hunter2"}]}]}}
    patch = {"spec": {"containers": [{"name": "app", "env": [{"value": "s3cret"}]}]}}

    with pytest.raises(patches.InvalidPatch) as failure:
        patches.strategic_merge_patch(live, patch, "Pod")

    assert "spec.containers[*].env" in str(failure.value)
    assert "hunter2" not in str(failure.value) and "s3cret" not in str(failure.value)


# -- dispatch by content type ----------------------------------------------------------------------


@pytest.mark.parametrize("content_type", [
    "application/strategic-merge-patch+json",
    "application/strategic-merge-patch+json; charset=utf-8",
    "Application/Strategic-Merge-Patch+JSON",
])
def test_apply_patch_dispatches_on_the_media_type_whatever_its_parameters(content_type: str) -> None:
    """RFC 9110 section 8.3.1: media type names are case-insensitive and may carry parameters.

    https://www.rfc-editor.org/rfc/rfc9110#section-8.3.1
    """
    live = {"spec": {"containers": [{"name": "a"}]}}
    patched = patches.apply_patch(live, b'{"spec": {"containers": [{"name": "b"}]}}', content_type, "Pod")
    assert names(patched["spec"]["containers"]) == ["b", "a"]


def test_apply_patch_applies_json_patch_and_merge_patch_bodies() -> None:
    """The three patch types kube-apiserver accepts for built-in kinds.

    https://kubernetes.io/docs/reference/using-api/api-concepts/#patch-and-apply
    """
    live = {"metadata": {"labels": {"a": "1"}}}

    merged = patches.apply_patch(live, {"metadata": {"labels": {"a": None}}}, "application/merge-patch+json", "Pod")
    jsoned = patches.apply_patch(live, b'[{"op": "add", "path": "/metadata/labels/b", "value": "2"}]',
                                 "application/json-patch+json", "Pod")

    assert merged == {"metadata": {"labels": {}}}
    assert jsoned == {"metadata": {"labels": {"a": "1", "b": "2"}}}


@pytest.mark.parametrize("content_type", ["application/apply-patch+yaml", "text/plain", ""])
def test_server_side_apply_and_unknown_patch_types_are_unsupported_media_types(content_type: str) -> None:
    """The sandbox does not implement server-side apply; like any unknown patch type it gets 415."""
    with pytest.raises(patches.UnsupportedPatchType) as failure:
        patches.apply_patch({}, b"{}", content_type, "Pod")
    assert failure.value.status_code == 415


@pytest.mark.parametrize(("body", "content_type"), [
    (b"{not json", "application/merge-patch+json"),
    (b'{"a": NaN}', "application/strategic-merge-patch+json"),
    (b'"a string"', "application/merge-patch+json"),
    (b"[]", "application/strategic-merge-patch+json"),
    (b'{"op": "add"}', "application/json-patch+json"),
])
def test_a_body_that_is_not_the_declared_patch_is_a_bad_request(body: bytes, content_type: str) -> None:
    """kube-apiserver answers 400 BadRequest to bodies that do not decode as the patch type."""
    with pytest.raises(patches.MalformedPatch) as failure:
        patches.apply_patch({"metadata": {}}, body, content_type, "Pod")
    assert failure.value.status_code == 400


# -- agreement with kubectl's own strategic merge --------------------------------------------------


def as_decoded(value: Any) -> Any:
    """What decoding into the Go type keeps of a patched value: no nulls, no directive keys."""
    if isinstance(value, dict):
        return {key: as_decoded(item) for key, item in value.items()
                if item is not None and not key.startswith("$")}
    if isinstance(value, list):
        return [as_decoded(item) for item in value]
    return value


KUBECTL_CASES = [
    pytest.param(
        {"metadata": {"finalizers": ["f3", "f1", "f2"]}},
        {"metadata": {"finalizers": ["f1", "f4"], "$setElementOrder/finalizers": []}},
        id="empty element order puts unknown finalizers first"),
    pytest.param(
        {"spec": {"containers": [{"name": "b", "env": [{"name": "y", "value": "1"}]}, {"name": "c", "image": "i"}]}},
        {"spec": {"containers": [{"name": "d", "image": "n"}, {"name": "e"}, {"name": "c", "$patch": "replace"},
                                 {"name": "b", "env": [{"$patch": "delete", "name": "y"}]}],
                  "$setElementOrder/containers": []}},
        id="replace marker inside list replaces it, empty order sorts like Go"),
    pytest.param(
        {"spec": {"containers": [{"name": "b", "image": "redis"}]}},
        {"spec": {"containers": [{"name": "b", "env": [{"$patch": "delete", "name": "x"},
                                                       {"name": "y", "value": None}, {"name": "z", "value": "1"}],
                                  "securityContext": {"$patch": "delete"},
                                  "resources": {"limits": {"$patch": "replace", "cpu": "1"}}}]}},
        id="directives in values new to the object vanish"),
    pytest.param(
        {"spec": {"containers": [{"name": "a", "ports": [{"containerPort": 80}, {"containerPort": 81}]}],
                  "tolerations": [{"key": "t"}]}},
        {"spec": {"containers": [{"name": "a", "ports": [{"containerPort": 82}, {"$patch": "delete",
                                                                                 "containerPort": 80}]},
                                 {"name": "b", "env": [{"$patch": "delete", "name": "x"}]}],
                  "tolerations": []}},
        id="ports by containerPort, raw new element"),
    pytest.param(
        {"metadata": {"labels": {"a": "1", "b": "2"}, "finalizers": ["a", "b", "c"]},
         "status": {"conditions": [{"type": "Ready", "status": "False"}, {"type": "PodScheduled", "status": "True"}]}},
        {"metadata": {"labels": {"a": None, "c": "3"}, "$deleteFromPrimitiveList/finalizers": ["b"],
                      "$setElementOrder/finalizers": ["c", "a"]},
         "status": {"conditions": [{"type": "Initialized", "status": "True"}, {"type": "Ready", "status": "True"}],
                    "$setElementOrder/conditions": [{"type": "Initialized"}, {"type": "Ready"},
                                                    {"type": "PodScheduled"}]}},
        id="labels, finalizers and conditions"),
]


def kubectl_patch(tmp_path: Path, obj: dict[str, Any], patch: Any, patch_type: str) -> subprocess.CompletedProcess[str]:
    assert KUBECTL is not None
    manifest = tmp_path / "object.json"
    manifest.write_text(json.dumps(obj))
    return subprocess.run(
        [str(KUBECTL), "patch", "--local", "-f", str(manifest), "--type", patch_type, "-p", json.dumps(patch),
         "-o", "json"], capture_output=True, text=True, timeout=30, check=False)


@requires_kubectl
@pytest.mark.parametrize("operations", [
    [{"op": "add", "path": "/metadata/labels/a~1b", "value": "x"}, {"op": "move", "from": "/metadata/labels/a",
                                                                     "path": "/metadata/annotations"}],
    [{"op": "copy", "from": "/spec/containers/0", "path": "/spec/containers/-1"},
     {"op": "replace", "path": "/spec/containers/1/name", "value": "copy"}],
    [{"op": "test", "path": "/metadata/labels/a", "value": "1"}, {"op": "remove", "path": "/metadata/labels"}],
    [{"op": "test", "path": "/metadata/labels/a", "value": 1}],
    [{"op": "remove", "path": "/spec/containers/1"}],
    [{"op": "replace", "path": "/metadata/uid", "value": "u"}, {"op": "test", "path": "/metadata/gone", "value": None}],
])
def test_json_patch_agrees_with_kubectl_patch_local(tmp_path: Path, operations: Any) -> None:
    """`kubectl patch --local --type json` runs evanphx/json-patch as kube-apiserver does: the same
    operations give the same object, or fail in both."""
    pod = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p", "labels": {"a": "1"}},
           "spec": {"containers": [{"name": "app", "image": "app:1"}]}}

    kubectl = kubectl_patch(tmp_path, pod, operations, "json")

    if kubectl.returncode:
        with pytest.raises(patches.PatchError):
            patches.json_patch(pod, operations)
    else:
        assert patches.json_patch(pod, operations) == json.loads(kubectl.stdout)


@requires_kubectl
@pytest.mark.parametrize(("live", "patch"), KUBECTL_CASES)
def test_strategic_merge_agrees_with_kubectl_patch_local(tmp_path: Path, live: dict[str, Any],
                                                         patch: dict[str, Any]) -> None:
    """`kubectl patch --local --type strategic` runs k8s.io/apimachinery's strategicpatch, the code
    kube-apiserver runs: on the same Pod and patch we must give the same object, once decoded."""
    pod = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p"}, "spec": {"containers": []}}
    pod = patches.merge_patch(pod, live)

    kubectl = kubectl_patch(tmp_path, pod, patch, "strategic")

    assert kubectl.returncode == 0, kubectl.stderr
    assert patches.strategic_merge_patch(pod, patch, "Pod") == as_decoded(json.loads(kubectl.stdout))
