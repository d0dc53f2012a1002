"""Contract: a CRD's `x-kubernetes-validations` (CEL) rules are enforced as kube-apiserver 1.32 does.

https://kubernetes.io/docs/tasks/extend-kubernetes/custom-resources/custom-resource-definitions/#validation-rules
"""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from remediator.sandbox import controllers

from .support import MERGE, NO_CONTROLLERS, created

CRDS = "/apis/apiextensions.k8s.io/v1/customresourcedefinitions"
GADGETS = "/apis/example.dev/v1/namespaces/default/gadgets"


@pytest.fixture()
def simulations() -> controllers.Simulations:
    return NO_CONTROLLERS


def gadget_crd(spec_rules: list[dict[str, Any]], root_rules: list[dict[str, Any]] | None = None,
               name_rules: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    """A Gadget CRD whose `spec` carries `spec_rules` (and the root `root_rules`)."""
    spec_schema: dict[str, Any] = {
        "type": "object",
        "properties": {
            "size": {"type": "integer"},
            "maxSize": {"type": "integer"},
            "owner": {"type": "string", "x-kubernetes-validations": name_rules or []},
            "labels": {"type": "object", "additionalProperties": {"type": "string"}},
            "parts": {"type": "array", "x-kubernetes-list-type": "map", "x-kubernetes-list-map-keys": ["name"],
                      "items": {"type": "object", "required": ["name"], "properties": {
                          "name": {"type": "string"}, "count": {"type": "integer"}},
                          "x-kubernetes-validations": [{"rule": "self.count >= oldSelf.count",
                                                        "message": "a part's count may only grow"}]}},
        },
        "x-kubernetes-validations": spec_rules,
    }
    root: dict[str, Any] = {"type": "object", "properties": {
        "spec": spec_schema, "status": {"type": "object", "properties": {"phase": {"type": "string"}}}}}
    if root_rules:
        root["x-kubernetes-validations"] = root_rules
    return {"apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition",
            "metadata": {"name": "gadgets.example.dev"},
            "spec": {"group": "example.dev", "scope": "Namespaced",
                     "names": {"plural": "gadgets", "singular": "gadget", "kind": "Gadget"},
                     "versions": [{"name": "v1", "served": True, "storage": True, "subresources": {"status": {}},
                                   "schema": {"openAPIV3Schema": root}}]}}


def gadget(name: str = "g", **spec: Any) -> dict[str, Any]:
    return {"apiVersion": "example.dev/v1", "kind": "Gadget", "metadata": {"name": name}, "spec": spec}


async def with_rules(api: httpx.AsyncClient, spec_rules: list[dict[str, Any]], **more: Any) -> None:
    await created(api, CRDS, gadget_crd(spec_rules, **more))


async def test_a_cross_field_rule_failing_is_422_with_the_rule_message(api: httpx.AsyncClient) -> None:
    """The documented `self.minReplicas <= self.replicas` kind of rule, on create and on update.

    https://kubernetes.io/docs/tasks/extend-kubernetes/custom-resources/custom-resource-definitions/#validation-rules
    """
    await with_rules(api, [{"rule": "self.size <= self.maxSize", "message": "size must not exceed maxSize"}])
    assert (await api.post(GADGETS, json=gadget(size=2, maxSize=3))).status_code == 201
    response = await api.post(GADGETS, json=gadget("big", size=5, maxSize=3))
    assert response.status_code == 422
    status = response.json()
    assert status["message"] == 'Gadget.example.dev "big" is invalid: spec: Invalid value: "object": ' \
                                "size must not exceed maxSize"
    assert status["details"]["causes"] == [{"reason": "FieldValueInvalid", "field": "spec",
                                            "message": 'Invalid value: "object": size must not exceed maxSize'}]
    response = await api.patch(f"{GADGETS}/g", json={"spec": {"size": 4}}, headers=MERGE)
    assert response.status_code == 422
    assert (await api.get(f"{GADGETS}/g")).json()["spec"]["size"] == 2


async def test_without_a_message_the_rule_itself_is_quoted(api: httpx.AsyncClient) -> None:
    """`failed rule: <rule>` when the rule has no message."""
    await with_rules(api, [{"rule": "self.size > 0"}])
    response = await api.post(GADGETS, json=gadget(size=0))
    assert response.json()["message"] == 'Gadget.example.dev "g" is invalid: spec: Invalid value: "object": ' \
                                         "failed rule: self.size > 0"


async def test_an_immutable_field_via_self_equals_old_self(api: httpx.AsyncClient) -> None:
    """A transition rule `self == oldSelf` makes a field immutable; it is not run on create.

    https://kubernetes.io/docs/tasks/extend-kubernetes/custom-resources/custom-resource-definitions/#transition-rules
    """
    await with_rules(api, [], name_rules=[{"rule": "self == oldSelf", "message": "owner is immutable"}])
    await created(api, GADGETS, gadget(owner="alice", size=1))
    response = await api.patch(f"{GADGETS}/g", json={"spec": {"owner": "bob"}}, headers=MERGE)
    assert response.status_code == 422
    assert response.json()["message"] == 'Gadget.example.dev "g" is invalid: spec.owner: Invalid value: "string": ' \
                                         "owner is immutable"
    assert (await api.patch(f"{GADGETS}/g", json={"spec": {"size": 2}}, headers=MERGE)).status_code == 200


async def test_a_transition_rule_on_the_root_sees_status_and_spec(api: httpx.AsyncClient) -> None:
    """What the Incident needs: spec may not change once status says so (a status write is validated too)."""
    rule = {"rule": "!has(oldSelf.status) || oldSelf.status.phase != 'Acknowledged' || self.spec == oldSelf.spec",
            "message": "spec is frozen once acknowledged", "fieldPath": ".spec"}
    await with_rules(api, [], root_rules=[rule])
    await created(api, GADGETS, gadget(size=1))
    assert (await api.patch(f"{GADGETS}/g", json={"spec": {"size": 2}}, headers=MERGE)).status_code == 200
    acked = await api.patch(f"{GADGETS}/g/status", json={"status": {"phase": "Acknowledged"}}, headers=MERGE)
    assert acked.status_code == 200, acked.text
    response = await api.patch(f"{GADGETS}/g", json={"spec": {"size": 3}}, headers=MERGE)
    assert response.status_code == 422
    assert response.json()["message"] == 'Gadget.example.dev "g" is invalid: spec: Invalid value: "object": ' \
                                         "spec is frozen once acknowledged"
    # labels are metadata: not part of the rule, so still writable
    assert (await api.patch(f"{GADGETS}/g", json={"metadata": {"labels": {"a": "b"}}},
                            headers=MERGE)).status_code == 200


async def test_message_expression_and_reason(api: httpx.AsyncClient) -> None:
    """messageExpression builds the message from the object; reason picks the cause type."""
    await with_rules(api, [{"rule": "self.size <= self.maxSize", "reason": "FieldValueForbidden",
                            "messageExpression": "'size ' + string(self.size) + ' is above ' + string(self.maxSize)"}])
    response = await api.post(GADGETS, json=gadget(size=9, maxSize=3))
    status = response.json()
    assert status["message"] == 'Gadget.example.dev "g" is invalid: spec: Forbidden: size 9 is above 3'
    assert status["details"]["causes"][0]["reason"] == "FieldValueForbidden"


async def test_a_runtime_error_names_the_missing_key_and_the_rule(api: httpx.AsyncClient) -> None:
    """Reading an absent field is `no such key`; `has()` is how a rule guards against it."""
    await with_rules(api, [{"rule": "self.maxSize > 0"}, {"rule": "!has(self.labels) || 'team' in self.labels",
                                                          "message": "labels need a team"}])
    response = await api.post(GADGETS, json=gadget(size=1))
    assert response.json()["message"] == 'Gadget.example.dev "g" is invalid: spec: Invalid value: "object": ' \
                                         "no such key: maxSize evaluating rule: self.maxSize > 0"
    response = await api.post(GADGETS, json=gadget(size=1, maxSize=2, labels={"x": "y"}))
    assert response.json()["message"] == 'Gadget.example.dev "g" is invalid: spec: Invalid value: "object": ' \
                                         "labels need a team"


async def test_string_and_list_functions_of_kubernetes(api: httpx.AsyncClient) -> None:
    """The Kubernetes CEL libraries: strings (lowerAscii, split), lists (isSorted), regex (find)."""
    await with_rules(api, [], name_rules=[
        {"rule": "self == self.lowerAscii()", "message": "lower case"},
        {"rule": "self.split('@').size() == 2 && self.find('[a-z]+$') != ''", "message": "user@domain"},
    ])
    assert (await api.post(GADGETS, json=gadget("a", owner="bob@example"))).status_code == 201
    messages = (await api.post(GADGETS, json=gadget("b", owner="Bob"))).json()["details"]["causes"]
    assert [c["message"] for c in messages] == ['Invalid value: "string": lower case',
                                                'Invalid value: "string": user@domain']


async def test_items_of_a_map_list_are_correlated_by_key(api: httpx.AsyncClient) -> None:
    """A transition rule on list items compares each item with the old item of the same key.

    https://kubernetes.io/docs/tasks/extend-kubernetes/custom-resources/custom-resource-definitions/#transition-rules
    """
    await with_rules(api, [])
    await created(api, GADGETS, gadget(parts=[{"name": "a", "count": 2}, {"name": "b", "count": 1}]))
    # reordered and grown: fine; a new item has no old value, so its rule is not run
    grown = {"spec": {"parts": [{"name": "b", "count": 1}, {"name": "a", "count": 3}, {"name": "c", "count": 0}]}}
    assert (await api.patch(f"{GADGETS}/g", json=grown, headers=MERGE)).status_code == 200
    shrunk = {"spec": {"parts": [{"name": "b", "count": 0}, {"name": "a", "count": 3}]}}
    response = await api.patch(f"{GADGETS}/g", json=shrunk, headers=MERGE)
    assert response.status_code == 422
    assert response.json()["details"]["causes"] == [{"reason": "FieldValueInvalid", "field": "spec.parts[0]",
                                                     "message": 'Invalid value: "object": a part\'s count may only '
                                                                'grow'}]


async def test_rules_are_not_run_on_an_object_whose_schema_errors_block_them(api: httpx.AsyncClient) -> None:
    """A type error first: the rules are skipped with one error saying so (hasBlockingErr)."""
    await with_rules(api, [{"rule": "self.size <= self.maxSize"}])
    response = await api.post(GADGETS, json=gadget(size="big", maxSize=3))
    causes = response.json()["details"]["causes"]
    assert causes[-1] == {"reason": "FieldValueInvalid", "field": "<nil>", "message":
                          "Invalid value: null: some validation rules were not checked because the object was "
                          "invalid; correct the existing errors to complete validation"}


async def test_an_unchanged_value_is_not_failed_again(api: httpx.AsyncClient) -> None:
    """Validation ratcheting: a rule added later does not block updates that leave the old value alone.

    https://kubernetes.io/docs/tasks/extend-kubernetes/custom-resources/custom-resource-definitions/#validation-ratcheting
    """
    await with_rules(api, [])
    await created(api, GADGETS, gadget(owner="Alice", size=1))
    crd = (await api.get(f"{CRDS}/gadgets.example.dev")).json()
    crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"]["properties"]["spec"]["properties"]["owner"][
        "x-kubernetes-validations"] = [{"rule": "self == self.lowerAscii()", "message": "lower case"}]
    assert (await api.put(f"{CRDS}/gadgets.example.dev", json=crd)).status_code == 200
    assert (await api.patch(f"{GADGETS}/g", json={"spec": {"size": 2}}, headers=MERGE)).status_code == 200
    response = await api.patch(f"{GADGETS}/g", json={"spec": {"owner": "Bob"}}, headers=MERGE)
    assert response.status_code == 422


async def test_a_crd_whose_rule_does_not_compile_is_refused(api: httpx.AsyncClient) -> None:
    """A syntax error or an unknown identifier is caught when the CRD is written, not on every object."""
    response = await api.post(CRDS, json=gadget_crd([{"rule": "self.size <="}]))
    assert response.status_code == 422
    cause = response.json()["details"]["causes"][0]
    assert cause["field"] == ("spec.versions[0].schema.openAPIV3Schema.properties[spec]"
                              ".x-kubernetes-validations[0].rule")
    assert cause["message"].startswith('Invalid value: {"Rule":"self.size <=","Message":"",')
    assert "compilation failed: ERROR: <input>:1:13: Syntax error:" in cause["message"]
    response = await api.post(CRDS, json=gadget_crd([{"rule": "self.size < limit"}]))
    assert "undeclared reference to 'limit' (in container '')" in response.json()["message"]


async def test_rules_hold_for_server_side_apply_too(api: httpx.AsyncClient) -> None:
    """An apply creating or updating a custom object is validated by the same rules (transition rules included)."""
    await with_rules(api, [], name_rules=[{"rule": "self == oldSelf", "message": "owner is immutable"}])
    apply = {"Content-Type": "application/apply-patch+yaml"}
    first = await api.patch(f"{GADGETS}/g?fieldManager=gitops", json=gadget(owner="alice"), headers=apply)
    assert first.status_code == 201, first.text
    response = await api.patch(f"{GADGETS}/g?fieldManager=gitops", json=gadget(owner="bob"), headers=apply)
    assert response.status_code == 422
    assert "spec.owner: Invalid value: \"string\": owner is immutable" in response.json()["message"]
