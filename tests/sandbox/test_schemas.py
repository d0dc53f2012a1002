"""Custom objects go through a CRD schema exactly as kube-apiserver puts them through it.

Each contract test names the Kubernetes behaviour it checks and the document it comes from; the
expected messages are the ones a real kube-apiserver answers with.
"""

from __future__ import annotations

import copy
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from remediator.sandbox import schemas

STEP = {
    "type": "object",
    "required": ["name"],
    "properties": {
        "name": {"type": "string"},
        "scale": {"type": "object", "properties": {"replicas": {"type": "integer", "minimum": 0}}},
        "restart": {"type": "object", "properties": {"target": {"type": "string"}}},
    },
    "oneOf": [{"required": ["scale"]}, {"required": ["restart"]}],
}

INCIDENT = {
    "type": "object",
    "properties": {
        "spec": {
            "type": "object",
            "required": ["summary"],
            "properties": {
                "summary": {"type": "string", "minLength": 1},
                "severity": {"type": "string", "enum": ["P0", "P1", "P2", "P3"], "default": "P2"},
                "replicas": {"type": "integer", "minimum": 0},
                "name": {"type": "string", "maxLength": 63, "pattern": "^[a-z0-9]([-a-z0-9]*[a-z0-9])?$"},
                "ticket": {"type": "string", "pattern": "[0-9]+"},
                "startedAt": {"type": "string", "format": "date-time"},
                "port": {"x-kubernetes-int-or-string": True},
                "owner": {"type": "string", "nullable": True},
                "dryRun": {"type": "boolean", "default": False},
                "timeout": {"type": "string", "default": "5m"},
                "retry": {
                    "type": "object",
                    "default": {},
                    "properties": {"attempts": {"type": "integer", "default": 3}},
                },
                "labels": {"type": "object", "additionalProperties": {"type": "string"}},
                "tags": {"type": "array", "items": {"type": "string"}, "x-kubernetes-list-type": "set"},
                "steps": {
                    "type": "array",
                    "maxItems": 2,
                    "items": STEP,
                    "x-kubernetes-list-type": "map",
                    "x-kubernetes-list-map-keys": ["name"],
                },
                "extra": {
                    "type": "object",
                    "x-kubernetes-preserve-unknown-fields": True,
                    "properties": {"known": {"type": "object", "properties": {"a": {"type": "string"}}}},
                },
                "template": {"type": "object", "x-kubernetes-embedded-resource": True,
                             "x-kubernetes-preserve-unknown-fields": True},
            },
        },
        "status": {"type": "object", "properties": {"phase": {"type": "string"}}},
    },
}


def incident(**spec: Any) -> dict[str, Any]:
    return {
        "apiVersion": "remediator.dev/v1alpha1",
        "kind": "Incident",
        "metadata": {"name": "bad", "namespace": "default"},
        "spec": {"summary": "db down", **spec},
    }


def messages(obj: Any) -> list[str]:
    return [str(error) for error in schemas.validate(INCIDENT, obj)]


# -- pruning -----------------------------------------------------------------------------------------


def test_unknown_fields_are_pruned_nested_and_at_the_root_but_type_and_object_meta_stay() -> None:
    """Unknown fields are dropped silently on create, at any depth; apiVersion, kind and metadata
    at the root are never pruned. https://kubernetes.io/docs/tasks/extend-kubernetes/custom-resources/custom-resource-definitions/#field-pruning"""
    obj = incident(severity="P1", colour="red", retry={"attempts": 1, "backoff": "1s"})
    obj["rootJunk"] = True
    obj["metadata"]["labels"] = {"app": "db"}

    pruned = schemas.prune(INCIDENT, obj)

    assert "rootJunk" not in pruned
    assert pruned["spec"] == {"summary": "db down", "severity": "P1", "retry": {"attempts": 1}}
    assert pruned["apiVersion"] == "remediator.dev/v1alpha1"
    assert pruned["kind"] == "Incident"
    assert pruned["metadata"] == {"name": "bad", "namespace": "default", "labels": {"app": "db"}}
    assert obj["rootJunk"] is True, "the caller's object is left as it was"


def test_preserve_unknown_fields_keeps_unknown_fields_but_prunes_inside_known_ones() -> None:
    """x-kubernetes-preserve-unknown-fields: true keeps fields the schema does not specify, while
    the fields it does specify are still pruned inside. https://kubernetes.io/docs/tasks/extend-kubernetes/custom-resources/custom-resource-definitions/#controlling-pruning"""
    extra = {"anything": {"deep": [1, 2]}, "known": {"a": "x", "b": "y"}}

    pruned = schemas.prune(INCIDENT, incident(extra=extra))

    assert pruned["spec"]["extra"] == {"anything": {"deep": [1, 2]}, "known": {"a": "x"}}


def test_additional_properties_keep_every_key_of_a_map() -> None:
    """additionalProperties makes an object a map: any key is kept, its value pruned by that
    schema. https://kubernetes.io/docs/tasks/extend-kubernetes/custom-resources/custom-resource-definitions/#field-pruning"""
    pruned = schemas.prune(INCIDENT, incident(labels={"team": "sre", "tier": "db"}))

    assert pruned["spec"]["labels"] == {"team": "sre", "tier": "db"}


def test_an_embedded_resource_keeps_its_api_version_kind_and_metadata() -> None:
    """x-kubernetes-embedded-resource: the nested object keeps apiVersion, kind and metadata like a
    root object, and must name its apiVersion and kind. https://kubernetes.io/docs/tasks/extend-kubernetes/custom-resources/custom-resource-definitions/#rawextension"""
    template = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p"}, "spec": {"containers": []}}
    assert schemas.prune(INCIDENT, incident(template=template))["spec"]["template"] == template

    assert messages(incident(template={"metadata": {"name": "p"}})) == [
        "spec.template.apiVersion: Required value",
        "spec.template.kind: Required value",
    ]


# -- defaulting --------------------------------------------------------------------------------------


def test_defaults_fill_only_absent_fields_and_a_defaulted_object_gets_its_own_defaults() -> None:
    """A default applies where the field is absent, never over a value the user set; an object
    defaulted to {} then receives the defaults of its properties. https://kubernetes.io/docs/tasks/extend-kubernetes/custom-resources/custom-resource-definitions/#defaulting"""
    defaulted = schemas.apply_defaults(INCIDENT, incident(severity="P0", dryRun=True))

    assert defaulted["spec"]["severity"] == "P0"
    assert defaulted["spec"]["dryRun"] is True
    assert defaulted["spec"]["timeout"] == "5m"
    assert defaulted["spec"]["retry"] == {"attempts": 3}
    assert "status" not in defaulted, "no default, no field"


def test_a_nullable_null_is_kept_and_other_nulls_are_dropped_or_defaulted() -> None:
    """nullable: true keeps a null as is; a null for a field that is not nullable is pruned before
    defaulting, and gets the default when there is one. https://kubernetes.io/docs/tasks/extend-kubernetes/custom-resources/custom-resource-definitions/#defaulting-and-nullable"""
    stored, errors = schemas.admit(INCIDENT, incident(owner=None, replicas=None, timeout=None))

    assert errors == []
    assert stored["spec"]["owner"] is None
    assert "replicas" not in stored["spec"]
    assert stored["spec"]["timeout"] == "5m"


def test_a_null_the_schema_does_not_allow_is_refused_where_it_cannot_be_pruned() -> None:
    """A null list item for items that are not nullable fails the type check.
    https://kubernetes.io/docs/tasks/extend-kubernetes/custom-resources/custom-resource-definitions/#defaulting-and-nullable"""
    assert messages(incident(tags=["a", None])) == [
        'spec.tags[1]: Invalid value: "null": spec.tags[1] in body must be of type string: "null"',
    ]


# -- validation --------------------------------------------------------------------------------------


def test_negative_replicas_are_refused_with_the_servers_exact_message() -> None:
    """minimum: 0 refuses -1 with kube-openapi's wording, filed under the field's path.
    https://kubernetes.io/docs/tasks/extend-kubernetes/custom-resources/custom-resource-definitions/#validation"""
    obj = incident(steps=[{"name": "a", "scale": {"replicas": -1}}])

    [error] = schemas.validate(INCIDENT, obj)

    assert error.field == "spec.steps[0].scale.replicas"
    assert error.reason == "FieldValueInvalid"
    assert error.message == (
        "Invalid value: -1: spec.steps[0].scale.replicas in body should be greater than or equal to 0"
    )


def test_a_value_outside_the_enum_lists_the_supported_values() -> None:
    """enum refuses other values as Unsupported value, listing the allowed ones. https://kubernetes.io/docs/tasks/extend-kubernetes/custom-resources/custom-resource-definitions/#validation"""
    [error] = schemas.validate(INCIDENT, incident(severity="P9"))

    assert error.reason == "FieldValueNotSupported"
    assert str(error) == 'spec.severity: Unsupported value: "P9": supported values: "P0", "P1", "P2", "P3"'


def test_a_missing_required_field_is_a_required_value() -> None:
    """required lists fields that must be present. https://kubernetes.io/docs/tasks/extend-kubernetes/custom-resources/custom-resource-definitions/#validation"""
    obj = incident()
    del obj["spec"]["summary"]

    [error] = schemas.validate(INCIDENT, obj)

    assert (error.field, error.reason, error.message) == (
        "spec.summary", "FieldValueRequired", "Required value")


def test_a_value_of_the_wrong_type_names_the_type_it_got() -> None:
    """type: integer refuses a string, and the message names the JSON type received.
    https://kubernetes.io/docs/tasks/extend-kubernetes/custom-resources/custom-resource-definitions/#validation"""
    [error] = schemas.validate(INCIDENT, incident(steps=[{"name": "a", "scale": {"replicas": "string"}}]))

    assert error.reason == "FieldValueTypeInvalid"
    assert str(error) == ('spec.steps[0].scale.replicas: Invalid value: "string": '
                          'spec.steps[0].scale.replicas in body must be of type integer: "string"')


def test_a_whole_number_written_as_a_float_is_an_integer() -> None:
    """JSON has one number type: 2.0 passes type: integer, 2.5 does not. https://kubernetes.io/docs/tasks/extend-kubernetes/custom-resources/custom-resource-definitions/#validation"""
    assert messages(incident(replicas=2.0)) == []
    assert messages(incident(replicas=2.5)) == [
        'spec.replicas: Invalid value: "number": spec.replicas in body must be of type integer: "number"',
    ]


def test_one_of_matching_two_branches_is_reported_like_kube_apiserver() -> None:
    """oneOf with two valid branches fails. kube-apiserver files oneOf failures under the nil field
    path and names the object's path, quoted, in the message (kube-openapi schema_props.go,
    apiextensions kubeOpenAPIResultToFieldErrors). https://kubernetes.io/docs/tasks/extend-kubernetes/custom-resources/custom-resource-definitions/#validation"""
    [error] = schemas.validate(INCIDENT, incident(steps=[{"name": "a", "scale": {}, "restart": {}}]))

    assert error.field == "<nil>"
    assert error.reason == "FieldValueInvalid"
    assert error.message == (
        'Invalid value: "": "spec.steps[0]" must validate one and only one schema (oneOf). '
        "Found 2 valid alternatives"
    )


def test_one_of_matching_no_branch_also_says_what_the_first_branch_missed() -> None:
    """oneOf with no valid branch fails, and the errors of the closest branch are reported with it.
    https://kubernetes.io/docs/tasks/extend-kubernetes/custom-resources/custom-resource-definitions/#validation"""
    assert messages(incident(steps=[{"name": "a"}, {"name": "b", "restart": {}}])) == [
        '<nil>: Invalid value: "": "spec.steps[0]" must validate one and only one schema (oneOf). '
        "Found none valid",
        "spec.steps[0].scale: Required value",
    ]


def test_a_repeated_key_in_a_list_map_is_a_duplicate_value() -> None:
    """x-kubernetes-list-type: map requires unique keys; the second entry with a key is reported
    with the key as a Go map. https://kubernetes.io/docs/reference/using-api/server-side-apply/#merge-strategy"""
    obj = incident(steps=[{"name": "a", "scale": {}}, {"name": "a", "restart": {}}])

    [error] = schemas.validate(INCIDENT, obj)

    assert error.reason == "FieldValueDuplicate"
    assert str(error) == 'spec.steps[1]: Duplicate value: map[string]interface {}{"name":"a"}'


def test_a_repeated_item_in_a_list_set_is_a_duplicate_value_once() -> None:
    """x-kubernetes-list-type: set requires unique items; each repeated value is reported once, at its
    second occurrence. https://kubernetes.io/docs/reference/using-api/server-side-apply/#merge-strategy"""
    assert messages(incident(tags=["db", "sev", "db", "db"])) == ['spec.tags[2]: Duplicate value: "db"']


def test_int_or_string_accepts_both_and_nothing_else() -> None:
    """x-kubernetes-int-or-string: an integer or a string is valid, anything else is not.
    https://kubernetes.io/docs/tasks/extend-kubernetes/custom-resources/custom-resource-definitions/#intorstring"""
    assert messages(incident(port=8080)) == []
    assert messages(incident(port="http")) == []
    assert messages(incident(port=True)) == [
        'spec.port: Invalid value: "boolean": spec.port in body must be of type integer,string: "boolean"',
    ]


def test_a_date_time_must_be_rfc3339() -> None:
    """format: date-time accepts RFC 3339 timestamps and refuses anything else as a type error.
    https://kubernetes.io/docs/tasks/extend-kubernetes/custom-resources/custom-resource-definitions/#validation"""
    assert messages(incident(startedAt="2024-02-29T13:05:00Z")) == []
    assert messages(incident(startedAt="2024-02-29T13:05:00.123+02:00")) == []
    assert messages(incident(startedAt="2023-02-29T13:05:00Z")) == [
        'spec.startedAt: Invalid value: "2023-02-29T13:05:00Z": '
        'spec.startedAt in body must be of type date-time: "2023-02-29T13:05:00Z"',
    ]
    assert messages(incident(startedAt="yesterday")) == [
        'spec.startedAt: Invalid value: "yesterday": '
        'spec.startedAt in body must be of type date-time: "yesterday"',
    ]


def test_a_pattern_matches_anywhere_unless_it_is_anchored() -> None:
    """pattern is an unanchored regular expression (ECMA 262 / RE2 search), so '[0-9]+' accepts
    'INC-42'; anchors make it match the whole value. https://kubernetes.io/docs/tasks/extend-kubernetes/custom-resources/custom-resource-definitions/#validation"""
    assert messages(incident(ticket="INC-42")) == []
    assert messages(incident(ticket="none")) == [
        'spec.ticket: Invalid value: "none": spec.ticket in body should match \'[0-9]+\'',
    ]
    assert messages(incident(name="Bad Name")) == [
        'spec.name: Invalid value: "Bad Name": '
        "spec.name in body should match '^[a-z0-9]([-a-z0-9]*[a-z0-9])?$'",
    ]


def test_too_long_and_too_many_do_not_repeat_the_value() -> None:
    """maxLength and maxItems answer Too long / Too many. https://kubernetes.io/docs/tasks/extend-kubernetes/custom-resources/custom-resource-definitions/#validation"""
    steps: list[dict[str, Any]] = [{"name": n, "restart": {}} for n in ("a", "b", "c")]
    assert messages(incident(name="a" * 64, steps=steps)) == [
        "spec.name: Too long: may not be longer than 63",
        "spec.steps: Too many: 3: must have at most 2 items",
    ]


def test_admission_prunes_and_defaults_before_it_validates() -> None:
    """Unknown fields are pruned before validation, so they never fail it; defaults are applied
    before validation too. https://kubernetes.io/docs/tasks/extend-kubernetes/custom-resources/custom-resource-definitions/#field-pruning"""
    stored, errors = schemas.admit(INCIDENT, incident(colour=["not", "validated"]))

    assert errors == []
    assert "colour" not in stored["spec"]
    assert stored["spec"]["severity"] == "P2"


# -- the answer: a 422 Status, and object names -------------------------------------------------------


def test_an_invalid_object_is_answered_with_a_422_status_naming_every_cause() -> None:
    """An invalid object is refused with a Status of reason Invalid and code 422 whose details list
    each cause. https://github.com/kubernetes/community/blob/master/contributors/devel/sig-architecture/api-conventions.md#response-status-kind"""
    errors = schemas.validate(INCIDENT, incident(steps=[{"name": "a", "scale": {"replicas": -1}}]))

    status = schemas.invalid_status(kind="Incident", group="remediator.dev", name="bad", errors=errors)

    cause = "Invalid value: -1: spec.steps[0].scale.replicas in body should be greater than or equal to 0"
    assert status == {
        "kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
        "message": f'Incident.remediator.dev "bad" is invalid: spec.steps[0].scale.replicas: {cause}',
        "reason": "Invalid",
        "details": {"name": "bad", "group": "remediator.dev", "kind": "Incident", "causes": [
            {"reason": "FieldValueInvalid", "message": cause, "field": "spec.steps[0].scale.replicas"},
        ]},
        "code": 422,
    }


def test_several_causes_are_listed_in_brackets_in_the_status_message() -> None:
    """With several errors the Status message lists them all in brackets, each once.
    https://github.com/kubernetes/community/blob/master/contributors/devel/sig-architecture/api-conventions.md#response-status-kind"""
    errors = schemas.validate(INCIDENT, incident(severity="P9", replicas=-1))

    status = schemas.invalid_status(kind="Incident", group="remediator.dev", name="bad", errors=errors)

    assert status["message"] == (
        'Incident.remediator.dev "bad" is invalid: ['
        'spec.severity: Unsupported value: "P9": supported values: "P0", "P1", "P2", "P3", '
        "spec.replicas: Invalid value: -1: spec.replicas in body should be greater than or equal to 0]"
    )
    assert len(status["details"]["causes"]) == 2


def test_an_object_name_must_be_a_dns_subdomain() -> None:
    """Most resource names must be lowercase RFC 1123 subdomains; the server quotes the rule.
    https://kubernetes.io/docs/concepts/overview/working-with-objects/names/#dns-subdomain-names"""
    assert schemas.validate_object_name("db-down.sev1") == []
    [error] = schemas.validate_object_name("Bad_Name")
    assert str(error) == (
        'metadata.name: Invalid value: "Bad_Name": a lowercase RFC 1123 subdomain must consist of lower case '
        "alphanumeric characters, '-' or '.', and must start and end with an alphanumeric character "
        "(e.g. 'example.com', regex used for validation is "
        r"'[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')"
    )
    [missing] = schemas.validate_object_name("")
    assert str(missing) == "metadata.name: Required value: name or generateName is required"


def test_a_schema_that_is_not_structural_is_explained() -> None:
    """CRD schemas must be structural: a type on every field, items on every array, only value
    validations inside oneOf. https://kubernetes.io/docs/tasks/extend-kubernetes/custom-resources/custom-resource-definitions/#specifying-a-structural-schema"""
    schema = {"type": "object", "properties": {
        "spec": {"properties": {"steps": {"type": "array"}}, "oneOf": [{"type": "object"}]},
    }}

    assert schemas.validate_crd_schema_structural(schema, path="openAPIV3Schema") == [
        "openAPIV3Schema.properties[spec].oneOf[0].type: Forbidden: must be empty to be structural",
        "openAPIV3Schema.properties[spec].properties[steps].items: Required value: must be specified",
        "openAPIV3Schema.properties[spec].type: "
        "Required value: must not be empty for specified object fields",
    ]
    assert schemas.validate_crd_schema_structural(INCIDENT) == []


# -- properties over any input -----------------------------------------------------------------------

SCHEMA_KEYS = st.sampled_from([
    "spec", "status", "steps", "name", "scale", "replicas", "restart", "severity", "port", "tags", "labels",
    "extra", "template", "apiVersion", "kind", "metadata",
])
JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=8),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(SCHEMA_KEYS | st.text(max_size=4),
                                                                       children, max_size=4),
    max_leaves=25,
)


@settings(max_examples=300, deadline=None)
@given(JSON_VALUES)
def test_validation_never_fails_on_any_json_value(value: Any) -> None:
    """Whatever a client sends, the sandbox answers with field errors, never a crash."""
    before = copy.deepcopy(value)
    errors = schemas.validate(INCIDENT, value)
    assert all(error.field and error.reason and error.message for error in errors)
    schemas.admit(INCIDENT, value if isinstance(value, dict) else {"spec": value})
    assert value == before, "validation does not modify what it is given"


@settings(max_examples=300, deadline=None)
@given(JSON_VALUES)
def test_pruning_twice_is_pruning_once(value: Any) -> None:
    """Pruning is idempotent: what the server stores survives being pruned again on the next update."""
    once = schemas.prune(INCIDENT, value)
    assert schemas.prune(INCIDENT, once) == once
