"""Label and field selectors as kube-apiserver parses, matches and rejects them."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from remediator.sandbox import selectors

LABELS_DOC = "https://kubernetes.io/docs/concepts/overview/working-with-objects/labels/#label-selectors"
FIELDS_DOC = "https://kubernetes.io/docs/concepts/overview/working-with-objects/field-selectors/"

PROD_FRONTEND = {"environment": "production", "tier": "frontend"}
PROD_BACKEND = {"environment": "production", "tier": "backend", "partition": "customerA"}
QA_CACHE = {"environment": "qa", "tier": "cache", "partition": "customerB"}
UNLABELLED: dict[str, str] = {}
OBJECTS = [PROD_FRONTEND, PROD_BACKEND, QA_CACHE, UNLABELLED]


def selected(text: str) -> list[dict[str, str]]:
    selector = selectors.parse_label_selector(text)
    return [labels for labels in OBJECTS if selector.matches(labels)]


# -- label selectors: the documented forms ---------------------------------------------------------


@pytest.mark.parametrize(("text", "expected"), [
    ("environment = production", [PROD_FRONTEND, PROD_BACKEND]),
    ("environment == production", [PROD_FRONTEND, PROD_BACKEND]),
    ("tier != frontend", [PROD_BACKEND, QA_CACHE, UNLABELLED]),
    ("environment=production,tier!=frontend", [PROD_BACKEND]),
])
def test_equality_based_requirements_select_as_documented(text: str, expected: list[dict[str, str]]) -> None:
    """"tier != frontend" selects resources whose tier is not frontend *and* resources without a
    tier label; commas mean AND.

    https://kubernetes.io/docs/concepts/overview/working-with-objects/labels/#equality-based-requirement
    """
    assert selected(text) == expected


@pytest.mark.parametrize(("text", "expected"), [
    ("environment in (production, qa)", [PROD_FRONTEND, PROD_BACKEND, QA_CACHE]),
    ("tier notin (frontend, backend)", [QA_CACHE, UNLABELLED]),
    ("partition", [PROD_BACKEND, QA_CACHE]),
    ("!partition", [PROD_FRONTEND, UNLABELLED]),
    ("partition,environment notin (qa)", [PROD_BACKEND]),
    ("partition in (customerA, customerB),environment!=qa", [PROD_BACKEND]),
])
def test_set_based_requirements_select_as_documented(text: str, expected: list[dict[str, str]]) -> None:
    """in, notin (which also matches objects without the key), exists and !exists.

    https://kubernetes.io/docs/concepts/overview/working-with-objects/labels/#set-based-requirement
    """
    assert selected(text) == expected


def test_an_empty_label_selector_selects_everything() -> None:
    """"An empty label selector ... selects every object in the collection."

    https://kubernetes.io/docs/concepts/overview/working-with-objects/labels/#label-selectors
    """
    assert selected("") == OBJECTS
    assert str(selectors.parse_label_selector("")) == ""


def test_whitespace_around_every_token_is_ignored() -> None:
    """labels.Lexer skips spaces, tabs and newlines between tokens."""
    spaced = selectors.parse_label_selector(" environment\tin ( production ,qa )\n, ! partition ")
    assert spaced == selectors.parse_label_selector("environment in (production,qa),!partition")


def test_in_and_notin_are_plain_words_where_a_key_or_value_is_expected() -> None:
    """labels.Parser reads `in`/`notin` as keywords only where an operator may stand."""
    selector = selectors.parse_label_selector("in=notin,mode notin (in)")
    assert selector.matches({"in": "notin", "mode": "out"})
    assert not selector.matches({"in": "notin", "mode": "in"})


def test_empty_values_are_allowed_where_the_grammar_allows_them() -> None:
    """`key=` matches the empty value, and `(a,)` holds a and the empty value (labels.Parser)."""
    assert selectors.parse_label_selector("tier=").matches({"tier": ""})
    assert selectors.parse_label_selector("tier in (cache,)").matches({"tier": ""})
    assert not selectors.parse_label_selector("tier=").matches({})


def test_greater_and_less_than_compare_integer_label_values() -> None:
    """`>`/`<` (selection.GreaterThan/LessThan) compare integers; a non-integer label never matches."""
    newer = selectors.parse_label_selector("generation>3")
    assert newer.matches({"generation": "4"})
    assert not newer.matches({"generation": "3"})
    assert not newer.matches({"generation": "four"})
    assert not newer.matches({})
    assert selectors.parse_label_selector("generation<3").matches({"generation": "-1"})


def test_a_selector_reads_back_from_its_own_string_form() -> None:
    """The canonical form sorts requirements by key, as labels.Parse does."""
    selector = selectors.parse_label_selector("tier notin (b,a),  environment==production,!partition,x>1")
    assert str(selector) == "environment==production,!partition,tier notin (a,b),x>1"
    assert selectors.parse_label_selector(str(selector)) == selector


# -- label selectors: errors worded like the server ------------------------------------------------

NAME_RULE = ("name part must consist of alphanumeric characters, '-', '_' or '.', and must start and end with an "
             "alphanumeric character (e.g. 'MyName',  or 'my.name',  or '123-abc', regex used for validation is "
             "'([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]')")
VALUE_RULE = ("a valid label must be an empty string or consist of alphanumeric characters, '-', '_' or '.', and "
              "must start and end with an alphanumeric character (e.g. 'MyValue',  or 'my_value',  or '12345', "
              "regex used for validation is '(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?')")


@pytest.mark.parametrize(("text", "message"), [
    ("app=demo-{nginx}", f'unable to parse requirement: values[0][app]: Invalid value: "demo-{{nginx}}": {VALUE_RULE}'),
    ("app$=x", f'unable to parse requirement: <nil>: Invalid value: "app$": {NAME_RULE}'),
    ("app=" + "x" * 64, 'unable to parse requirement: values[0][app]: Invalid value: "' + "x" * 64
     + '": must be no more than 63 characters'),
    ("environment>qa",
     "unable to parse requirement: values[0]: Invalid value: \"qa\": for 'Gt', 'Lt' operators, the value must be "
     "an integer"),
    ("a b", "unable to parse requirement: found 'b', expected: '=', '!=', '==', 'in', notin'"),
    ("a in b", "unable to parse requirement: found 'b' expected: '('"),
    ("a in (b", "unable to parse requirement: found '', expected: ',' or ')'"),
    ("a in (b c)", "unable to parse requirement: found 'c', expected: ',' or ')'"),
    ("a=b=c", "found '=', expected: ',' or 'end of string'"),
    ("!a=b", "found '=', expected: ',' or 'end of string'"),
    ("a,", "found '', expected: identifier after ','"),
    (",a", "found ',', expected: !, identifier, or 'end of string'"),
    ("=a", "found '=', expected: !, identifier, or 'end of string'"),
])
def test_bad_label_selectors_fail_with_the_servers_message(text: str, message: str) -> None:
    """kube-apiserver answers 400 BadRequest with labels.Parse's error; clients print it, e.g.
    `unable to parse requirement: values[0][app]: Invalid value: "demo-{nginx}": ...`.

    https://kubernetes.io/docs/concepts/overview/working-with-objects/labels/#syntax-and-character-set
    """
    with pytest.raises(selectors.SelectorError) as failure:
        selectors.parse_label_selector(text)
    assert str(failure.value) == message


def test_a_key_prefix_must_be_a_dns_subdomain() -> None:
    """"The prefix is optional. If specified, the prefix must be a DNS subdomain ... followed by a slash."

    https://kubernetes.io/docs/concepts/overview/working-with-objects/labels/#syntax-and-character-set
    """
    assert selectors.parse_label_selector("app.kubernetes.io/name=web").matches({"app.kubernetes.io/name": "web"})
    with pytest.raises(selectors.SelectorError, match="prefix part a lowercase RFC 1123 subdomain"):
        selectors.parse_label_selector("Example.com/name=web")
    with pytest.raises(selectors.SelectorError, match="with an optional DNS subdomain prefix and '/'"):
        selectors.parse_label_selector("a/b/c=web")


# -- metav1.LabelSelector --------------------------------------------------------------------------


def test_match_labels_and_match_expressions_all_have_to_hold() -> None:
    """The documented selector: component=redis, tier in (cache), environment notin (dev).

    https://kubernetes.io/docs/concepts/overview/working-with-objects/labels/#resources-that-support-set-based-requirements
    """
    selector = {"matchLabels": {"component": "redis"},
                "matchExpressions": [{"key": "tier", "operator": "In", "values": ["cache"]},
                                     {"key": "environment", "operator": "NotIn", "values": ["dev"]}]}

    parsed = selectors.label_selector_from_object(selector)

    assert parsed.matches({"component": "redis", "tier": "cache"})
    assert not parsed.matches({"component": "redis", "tier": "cache", "environment": "dev"})
    assert not parsed.matches({"component": "redis"})
    assert selectors.format_label_selector(selector) == "component=redis,environment notin (dev),tier in (cache)"


def test_exists_and_does_not_exist_expressions() -> None:
    """metav1.LabelSelectorOperator Exists and DoesNotExist take no values.

    https://kubernetes.io/docs/reference/kubernetes-api/common-definitions/label-selector/
    """
    selector = {"matchExpressions": [{"key": "canary", "operator": "DoesNotExist"},
                                     {"key": "app", "operator": "Exists"}]}
    assert selectors.format_label_selector(selector) == "app,!canary"
    assert selectors.label_selector_from_object(selector).matches({"app": "x"})
    assert not selectors.label_selector_from_object(selector).matches({"app": "x", "canary": "true"})


def test_an_empty_label_selector_object_selects_everything() -> None:
    """"An empty label selector matches all objects" (a Deployment's status.selector is then "").

    https://kubernetes.io/docs/reference/kubernetes-api/common-definitions/label-selector/
    """
    assert selectors.label_selector_from_object({}).matches({"any": "thing"})
    assert selectors.format_label_selector({"matchLabels": {}, "matchExpressions": []}) == ""


@pytest.mark.parametrize(("selector", "message"), [
    ({"matchExpressions": [{"key": "a", "operator": "In", "values": []}]},
     "values: Invalid value: []string{}: for 'in', 'notin' operators, values set can't be empty"),
    ({"matchExpressions": [{"key": "a", "operator": "Exists", "values": ["x"]}]},
     'values: Invalid value: []string{"x"}: values set must be empty for exists and does not exist'),
    ({"matchExpressions": [{"key": "a", "operator": "Gt", "values": ["1"]}]},
     '"Gt" is not a valid label selector operator'),
    ({"matchLabels": {"a$": "b"}}, f'key: Invalid value: "a$": {NAME_RULE}'),
    ({"matchLabels": {"a$": "b$"}},
     f'[key: Invalid value: "a$": {NAME_RULE}, values[0][a$]: Invalid value: "b$": {VALUE_RULE}]'),
])
def test_invalid_label_selector_objects_fail_like_label_selector_as_selector(selector: Any, message: str) -> None:
    """metav1.LabelSelectorAsSelector's errors; several are listed in brackets (utilerrors aggregate)."""
    with pytest.raises(selectors.SelectorError) as failure:
        selectors.label_selector_from_object(selector)
    assert str(failure.value) == message


LABEL_NAMES = st.from_regex(r"[a-z0-9]([-a-z0-9_.]{0,8}[a-z0-9])?", fullmatch=True)
LABEL_KEYS = st.builds(lambda prefix, name: f"{prefix}/{name}" if prefix else name,
                       st.sampled_from(["", "example.com", "app.kubernetes.io"]), LABEL_NAMES)
LABEL_VALUES = st.one_of(st.just(""), LABEL_NAMES)
EXPRESSIONS = st.one_of(
    st.fixed_dictionaries({"key": LABEL_KEYS, "operator": st.sampled_from(["In", "NotIn"]),
                           "values": st.lists(LABEL_VALUES, min_size=1, max_size=3)}),
    st.fixed_dictionaries({"key": LABEL_KEYS, "operator": st.sampled_from(["Exists", "DoesNotExist"])}),
)
LABEL_SELECTORS = st.fixed_dictionaries({}, optional={
    "matchLabels": st.dictionaries(LABEL_KEYS, LABEL_VALUES, max_size=3),
    "matchExpressions": st.lists(EXPRESSIONS, max_size=3),
})


@given(LABEL_SELECTORS, st.dictionaries(LABEL_KEYS, LABEL_VALUES, max_size=4))
def test_a_formatted_label_selector_parses_back_to_the_same_selection(selector: dict[str, Any],
                                                                      labels: dict[str, str]) -> None:
    """What a controller writes to status.selector, a client can send back as labelSelector and
    select the same objects (metav1.FormatLabelSelector / labels.Parse)."""
    from_object = selectors.label_selector_from_object(selector)
    parsed = selectors.parse_label_selector(selectors.format_label_selector(selector))

    assert parsed == from_object
    assert parsed.matches(labels) == from_object.matches(labels)


# -- field selectors -------------------------------------------------------------------------------


def pod(name: str, phase: str, namespace: str = "default", **spec: Any) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name, "namespace": namespace},
            "spec": spec, "status": {"phase": phase}}


PENDING = pod("pending", "Pending", restartPolicy="Always")
RUNNING = pod("running", "Running", restartPolicy="Always", nodeName="node-1")
SYSTEM = pod("coredns", "Running", namespace="kube-system", restartPolicy="Never")


@pytest.mark.parametrize(("text", "expected"), [
    ("status.phase=Running", [RUNNING, SYSTEM]),
    ("metadata.name=pending", [PENDING]),
    ("metadata.namespace!=default", [SYSTEM]),
    ("status.phase!=Running,spec.restartPolicy=Always", [PENDING]),
    ("status.phase==Running,metadata.namespace=default", [RUNNING]),
    ("spec.nodeName=", [PENDING, SYSTEM]),
    ("", [PENDING, RUNNING, SYSTEM]),
])
def test_field_selectors_select_as_documented(text: str, expected: list[dict[str, Any]]) -> None:
    """`=`, `==` and `!=` on fields, chained with commas; a field the object lacks reads as "".

    https://kubernetes.io/docs/concepts/overview/working-with-objects/field-selectors/
    """
    selector = selectors.parse_field_selector(text)
    selectors.check_field_selector("Pod", selector)
    assert [obj for obj in (PENDING, RUNNING, SYSTEM) if selector.matches(obj)] == expected


def test_event_field_selectors_find_the_events_of_one_object() -> None:
    """`kubectl describe` and `kubectl events --for` list a Pod's events with involvedObject fields.

    https://kubernetes.io/docs/concepts/overview/working-with-objects/field-selectors/#supported-fields
    """
    event = {"apiVersion": "v1", "kind": "Event", "metadata": {"name": "e", "namespace": "default"},
             "involvedObject": {"kind": "Pod", "name": "web-0", "namespace": "default", "uid": "u-1"},
             "reason": "BackOff", "type": "Warning", "source": {"component": "kubelet"}}
    text = ("involvedObject.name=web-0,involvedObject.namespace=default,involvedObject.kind=Pod,"
            "involvedObject.uid=u-1,type=Warning,reason=BackOff,source=kubelet")

    selector = selectors.parse_field_selector(text)
    selectors.check_field_selector("Event", selector)

    assert selector.matches(event)
    assert not selectors.parse_field_selector("involvedObject.name=web-1").matches(event)


@pytest.mark.parametrize(("kind", "obj", "text"), [
    ("Secret", {"kind": "Secret", "type": "kubernetes.io/tls"}, "type=kubernetes.io/tls"),
    ("Job", {"kind": "Job", "status": {"succeeded": 1}}, "status.successful=1"),
    ("Job", {"kind": "Job", "status": {}}, "status.successful=0"),
    ("Pod", {"kind": "Pod", "spec": {}}, "spec.hostNetwork=false"),
    ("Pod", {"kind": "Pod", "status": {"podIP": "10.0.0.1", "podIPs": [{"ip": "10.0.0.1"}]}},
     "status.podIP=10.0.0.1"),
    ("Namespace", {"kind": "Namespace", "status": {"phase": "Terminating"}}, "status.phase=Terminating"),
])
def test_kind_specific_fields_read_what_the_server_reads(kind: str, obj: dict[str, Any], text: str) -> None:
    """Fields the registries expose per kind, with their defaults (a Job without successes is 0).

    https://kubernetes.io/docs/concepts/overview/working-with-objects/field-selectors/#supported-fields
    """
    selector = selectors.parse_field_selector(text)
    selectors.check_field_selector(kind, selector)
    assert selector.matches(obj)


def test_field_selector_values_may_escape_commas_and_equals() -> None:
    """fields.EscapeValue/UnescapeValue: `\\,` and `\\=` stand for literal characters."""
    selector = selectors.parse_field_selector(r"metadata.name=a\,b\=c\\d")
    assert selector.matches({"metadata": {"name": "a,b=c\\d"}})
    assert str(selector) == r"metadata.name=a\,b\=c\\d"


def test_field_selectors_keep_whitespace() -> None:
    """Unlike label selectors, field selectors are not trimmed: " Running" is not "Running"."""
    assert not selectors.parse_field_selector("status.phase= Running").matches(RUNNING)
    assert selectors.parse_field_selector("status.phase =Running").fields == ("status.phase ",)


@pytest.mark.parametrize(("text", "message"), [
    ("status.phase", "invalid selector: 'status.phase'; can't understand 'status.phase'"),
    ("metadata.name=a=b", "invalid field selector: unescaped character in value: ="),
    (r"metadata.name=a\x", "invalid field selector: invalid escape sequence: \\x"),
    ("metadata.name=a\\", "invalid field selector: invalid escape sequence: \\"),
])
def test_malformed_field_selectors_fail_with_the_servers_message(text: str, message: str) -> None:
    """fields.ParseSelector's errors, answered as 400 BadRequest."""
    with pytest.raises(selectors.SelectorError) as failure:
        selectors.parse_field_selector(text)
    assert str(failure.value) == message


@pytest.mark.parametrize(("kind", "text", "message"), [
    ("Pod", "spec.foo=x", "field label not supported: spec.foo"),
    ("Namespace", "metadata.namespace=x", "field label not supported: metadata.namespace"),
    ("Event", "involvedObject.name=x,count=1", "field label not supported: count"),
    ("Ingress", "foo.bar=baz", '"foo.bar" is not a known field selector: only "metadata.name", "metadata.namespace"'),
    ("Deployment", "status.replicas=1",
     '"status.replicas" is not a known field selector: only "metadata.name", "metadata.namespace"'),
])
def test_unsupported_fields_fail_with_the_servers_message(kind: str, text: str, message: str) -> None:
    """"Using unsupported fields gives an error": `kubectl get ingress --field-selector foo.bar=baz`
    shows `"foo.bar" is not a known field selector: only "metadata.name", "metadata.namespace"`;
    kinds with their own field list say `field label not supported`.

    https://kubernetes.io/docs/concepts/overview/working-with-objects/field-selectors/#supported-fields
    """
    with pytest.raises(selectors.SelectorError) as failure:
        selectors.check_field_selector(kind, selectors.parse_field_selector(text))
    assert str(failure.value) == message


def test_every_kind_accepts_name_and_namespace_fields() -> None:
    """"All resource types support the metadata.name and metadata.namespace fields."

    https://kubernetes.io/docs/concepts/overview/working-with-objects/field-selectors/#supported-fields
    """
    selector = selectors.parse_field_selector("metadata.name=x,metadata.namespace=y")
    for kind in ("Pod", "Event", "Secret", "Job", "Service", "Deployment", "ConfigMap", "Runbook"):
        selectors.check_field_selector(kind, selector)
    selectors.check_field_selector("Runbook", selector, custom_api_version="remediator.dev/v1")


def test_custom_resources_name_their_group_version_kind_when_rejecting_a_field() -> None:
    """apiextensions-apiserver rejects fields a CRD does not declare selectable, naming the GVK;
    a cluster-scoped custom resource has no metadata.namespace."""
    with pytest.raises(selectors.SelectorError) as failure:
        selectors.check_field_selector("Runbook", selectors.parse_field_selector("spec.target=x"),
                                       custom_api_version="remediator.dev/v1")
    assert str(failure.value) == "field label not supported for remediator.dev/v1, Kind=Runbook: spec.target"
    with pytest.raises(selectors.SelectorError):
        selectors.check_field_selector("Policy", selectors.parse_field_selector("metadata.namespace=x"),
                                       custom_api_version="remediator.dev/v1", cluster_scoped=True)


def test_the_supported_field_table_covers_every_kind_with_its_own_fields() -> None:
    """Kinds with a field label conversion of their own, plus "*" for all others."""
    assert set(selectors.SUPPORTED_FIELDS) >= {"*", "Pod", "Event", "Secret", "Job", "Namespace"}
    assert all({"metadata.name"} <= fields for fields in selectors.SUPPORTED_FIELDS.values())
