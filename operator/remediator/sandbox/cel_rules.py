"""A CRD schema's `x-kubernetes-validations` rules, compiled once per CRD and evaluated on every write.

Follows apiextensions-apiserver 1.32 (`pkg/apiserver/schema/cel/validation.go`): each rule runs with
`self` bound to the value at its schema node (only non-null values are validated); a rule that reads
`oldSelf` is a transition rule, run only on an update where the old value exists and can be
correlated (object properties, map keys, items of `x-kubernetes-list-type: map` lists by their
keys); the error is `field.Invalid(path, <schema type>, message)`, at `fieldPath` when the rule
names one, or Forbidden/Required/Duplicate by `reason`. At the resource root `self.metadata` holds
only `name` and `generateName`, as there.

Ratcheting (CRDValidationRatcheting, on since 1.30): a rule that does not read `oldSelf` does not fail
a value that the update leaves unchanged; kube-apiserver turns those errors into warnings, the
sandbox skips such rules. Not here: cost budgets, `optionalOldSelf` (no optional types in cel-rust;
such rules run as ordinary transition rules), rules inside `allOf`.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Mapping
from typing import Any

from remediator.sandbox import cel_library, field_errors
from remediator.sandbox.field_errors import FieldError

SELF = "self"
OLD_SELF = "oldSelf"
RULE_VARIABLES = (SELF, OLD_SELF)
REASONS = ("FieldValueInvalid", "FieldValueForbidden", "FieldValueRequired", "FieldValueDuplicate")
# kube-apiserver's hasBlockingErr: after these schema errors the rules are not run.
BLOCKING_ERRORS = frozenset({"FieldValueNotSupported", "FieldValueRequired", "FieldValueTooLong",
                             "FieldValueTooMany", "FieldValueTypeInvalid"})
NOT_CHECKED = FieldError(field_errors.NIL_PATH, "FieldValueInvalid",
                         "Invalid value: null: some validation rules were not checked because the object was "
                         "invalid; correct the existing errors to complete validation")


@dataclasses.dataclass(frozen=True)
class Rule:
    """One compiled `x-kubernetes-validations` entry."""

    rule: str
    expression: cel_library.Expression | None
    message: str
    message_expression: cel_library.Expression | None
    reason: str | None
    field_path: str  # normalised: `spec.replicas`, "" for the rule's own node
    compile_error: str | None = None

    @property
    def transition(self) -> bool:
        return self.expression is not None and self.expression.uses(OLD_SELF)

    @property
    def error_name(self) -> str:
        """What messages call the rule (ruleErrorString): its message, else its source."""
        return self.message.strip() or self.rule.strip()


@dataclasses.dataclass(frozen=True)
class Node:
    """The rules at one schema node and the nodes below it that hold rules."""

    schema_type: str
    rules: tuple[Rule, ...] = ()
    properties: Mapping[str, Node] = dataclasses.field(default_factory=dict)
    items: Node | None = None
    additional: Node | None = None
    resource_root: bool = False
    list_map_keys: tuple[str, ...] = ()
    # whether a transition rule sits here or below: an unchanged value is then still walked
    has_transition: bool = False


def compile_schema(schema: Mapping[str, Any] | None) -> Node | None:
    """The rule tree of a CRD version's `openAPIV3Schema`; None when it has no rules (the usual case)."""
    if schema is None:
        return None
    return _node(schema, resource_root=True)


def rule_problems(schema: Mapping[str, Any], path: str) -> list[FieldError]:
    """What kube-apiserver refuses in a CRD's rules when the CRD is written, with their field paths.

    `path` is where the schema sits (`spec.versions[0].schema.openAPIV3Schema`).
    """
    problems: list[FieldError] = []
    for rules_path, node_schema in _schemas_with_rules(schema, path):
        for position, entry in enumerate(node_schema.get("x-kubernetes-validations") or []):
            at = field_errors.index(f"{rules_path}.x-kubernetes-validations", position)
            if not isinstance(entry, Mapping):
                continue
            compiled = _rule(entry, node_schema)
            value = _go_rule_value(entry)
            if not str(entry.get("rule") or "").strip():
                problems.append(field_errors.required(f"{at}.rule", "rule is not specified"))
            elif compiled.compile_error is not None:
                problems.append(_raw_invalid(f"{at}.rule", value, compiled.compile_error))
            reason = entry.get("reason")
            if reason is not None and reason not in REASONS:
                problems.append(field_errors.not_supported(f"{at}.reason", reason, sorted(REASONS)))
            field_path = entry.get("fieldPath")
            if field_path is not None and _normalised_field_path(str(field_path), node_schema) is None:
                problems.append(field_errors.invalid(f"{at}.fieldPath", field_path, "fieldPath must be a valid path"))
            message_expression = entry.get("messageExpression")
            if message_expression:
                try:
                    cel_library.compile_expression(str(message_expression), RULE_VARIABLES)
                except cel_library.CompileError as e:
                    problems.append(_raw_invalid(f"{at}.messageExpression", value,
                                                 f"messageExpression compilation failed: {e}"))
    return problems


def validate_object(node: Node | None, obj: Mapping[str, Any], old: Mapping[str, Any] | None,
                    schema_errors: list[FieldError]) -> list[FieldError]:
    """The rule errors of a custom object on create (`old` None) or update, after its schema errors.

    As kube-apiserver does, rules are not run when a schema error makes the object's shape unknown
    (a wrong type, a missing required field...): one error says so instead.
    """
    if node is None:
        return []
    if any(error.reason in BLOCKING_ERRORS for error in schema_errors):
        return [NOT_CHECKED]
    return validate(node, obj, old)


def validate(node: Node | None, new: Any, old: Any, path: str = "") -> list[FieldError]:
    """The errors the rules find in `new` (`old` is the stored value on an update, else None)."""
    if node is None or new is None:
        return []
    if old is not None and not node.has_transition and (old is new or old == new):
        return []  # ratcheting: no rule here can fail a value the update leaves as it was
    errors = _validate_rules(node, new, old, path)
    if isinstance(new, dict):
        old_map = old if isinstance(old, dict) else {}
        for key, value in new.items():
            child = node.properties.get(key)
            if child is not None:
                errors += validate(child, value, old_map.get(key), field_errors.child(path, key))
            if node.additional is not None:
                errors += validate(node.additional, value, old_map.get(key), field_errors.key(path, key))
    elif isinstance(new, list) and node.items is not None:
        old_items = _correlated_items(node, old)
        for position, item in enumerate(new):
            before = old_items.get(_list_map_key(node, item)) if old_items else None
            errors += validate(node.items, item, before, field_errors.index(path, position))
    return errors


# -- evaluation ---------------------------------------------------------------------------------------


def _validate_rules(node: Node, new: Any, old: Any, path: str) -> list[FieldError]:
    if not node.rules:
        return []
    unchanged = old is not None and old == new
    self_value = _resource_view(new) if node.resource_root else new
    values = {SELF: self_value}
    if old is not None:
        values[OLD_SELF] = _resource_view(old) if node.resource_root else old
    errors: list[FieldError] = []
    for rule in node.rules:
        if rule.compile_error is not None:
            errors.append(_raw_invalid(path, node.schema_type, f"rule compile error: {rule.compile_error}"))
            continue
        if rule.expression is None:
            continue
        if rule.transition and old is None:
            continue  # transition rules need a value to compare with
        if not rule.transition and unchanged:
            continue  # ratcheting: an unchanged value is not failed again
        try:
            result = rule.expression.evaluate(values)
        except cel_library.EvaluationError as e:
            errors.append(_runtime_error(path, node.schema_type, str(e), rule))
            continue
        if result is True:
            continue
        at = field_errors.child(path, rule.field_path) if rule.field_path else path
        errors.append(_failure(at, node.schema_type, _message(rule, values), rule.reason))
    return errors


def _message(rule: Rule, values: Mapping[str, Any]) -> str:
    if rule.message_expression is not None:
        try:
            text = rule.message_expression.evaluate(values)
        except cel_library.EvaluationError:
            text = None
        if isinstance(text, str) and text.strip() and "\n" not in text.strip() and len(text.strip()) <= 5000:
            return text.strip()
    return rule.message.strip() or f"failed rule: {rule.error_name}"


def _runtime_error(path: str, schema_type: str, error: str, rule: Rule) -> FieldError:
    if error.startswith("no such overload"):
        return _raw_invalid(path, schema_type, f"'{error}': call arguments did not match a supported operator, "
                            f"function or macro signature for rule: {rule.error_name}")
    return _raw_invalid(path, schema_type, f"{error} evaluating rule: {rule.error_name}")


def _failure(path: str, schema_type: str, detail: str, reason: str | None) -> FieldError:
    if reason == "FieldValueForbidden":
        return field_errors.forbidden(path, detail)
    if reason == "FieldValueRequired":
        return field_errors.required(path, detail)
    if reason == "FieldValueDuplicate":
        return field_errors.duplicate(path, schema_type)
    return _raw_invalid(path, schema_type, detail)


def _raw_invalid(path: str, value: Any, detail: str) -> FieldError:
    """field.Invalid with the bad value printed as Go does: strings quoted, structs as JSON."""
    shown = json.dumps(value, separators=(",", ":")) if not isinstance(value, str) else field_errors.describe_value(
        value)
    return FieldError(path or field_errors.NIL_PATH, "FieldValueInvalid", f"Invalid value: {shown}: {detail}")


def _resource_view(obj: Any) -> Any:
    """The root object as rules see it: metadata reduced to name and generateName."""
    if not isinstance(obj, dict):
        return obj
    view = dict(obj)
    meta = obj.get("metadata")
    if isinstance(meta, dict):
        view["metadata"] = {k: meta[k] for k in ("name", "generateName") if k in meta}
    return view


def _correlated_items(node: Node, old: Any) -> dict[tuple[Any, ...], Any]:
    """Old items of a map-type list by their keys; nothing for other lists (their items never correlate)."""
    if not node.list_map_keys or not isinstance(old, list):
        return {}
    return {_list_map_key(node, item): item for item in old}


def _list_map_key(node: Node, item: Any) -> tuple[Any, ...]:
    if not isinstance(item, dict):
        return ()
    return tuple(json.dumps(item.get(key), sort_keys=True) for key in node.list_map_keys)


# -- compilation --------------------------------------------------------------------------------------


def _node(schema: Mapping[str, Any], *, resource_root: bool = False) -> Node | None:
    properties: dict[str, Node] = {}
    for name, sub in (schema.get("properties") or {}).items():
        if isinstance(sub, Mapping):
            child = _node(sub, resource_root=bool(sub.get("x-kubernetes-embedded-resource")))
            if child is not None:
                properties[name] = child
    items_schema = schema.get("items")
    items = _node(items_schema, resource_root=bool(items_schema.get("x-kubernetes-embedded-resource"))) \
        if isinstance(items_schema, Mapping) else None
    additional_schema = schema.get("additionalProperties")
    additional = _node(additional_schema) if isinstance(additional_schema, Mapping) else None
    entries = [entry for entry in schema.get("x-kubernetes-validations") or [] if isinstance(entry, Mapping)]
    if not entries and not properties and items is None and additional is None:
        return None
    keys = tuple(schema.get("x-kubernetes-list-map-keys") or ()) \
        if schema.get("x-kubernetes-list-type") == "map" else ()
    rules = tuple(_rule(entry, schema) for entry in entries)
    children = [*properties.values(), *(n for n in (items, additional) if n is not None)]
    has_transition = any(rule.transition for rule in rules) or any(child.has_transition for child in children)
    return Node(schema_type=str(schema.get("type") or ""), rules=rules, properties=properties, items=items,
                additional=additional, resource_root=resource_root, list_map_keys=keys,
                has_transition=has_transition)


def _rule(entry: Mapping[str, Any], schema: Mapping[str, Any]) -> Rule:
    source = str(entry.get("rule") or "")
    message = str(entry.get("message") or "")
    reason = entry.get("reason")
    field_path = _normalised_field_path(str(entry.get("fieldPath") or ""), schema) or ""
    if not source.strip():
        return Rule(source, None, message, None, reason, field_path)
    try:
        expression = cel_library.compile_expression(source, RULE_VARIABLES)
    except cel_library.CompileError as e:
        return Rule(source, None, message, None, reason, field_path, compile_error=f"compilation failed: {e}")
    message_expression = None
    if entry.get("messageExpression"):
        try:
            message_expression = cel_library.compile_expression(str(entry["messageExpression"]), RULE_VARIABLES)
        except cel_library.CompileError:
            message_expression = None
    return Rule(source, expression, message, message_expression, reason if isinstance(reason, str) else None,
                field_path)


def _normalised_field_path(field_path: str, schema: Mapping[str, Any]) -> str | None:
    """`fieldPath` (`.spec.x`, `.labels['a.b']`) as a field path below the rule's node; None when invalid."""
    if not field_path:
        return ""
    path = ""
    current: Mapping[str, Any] | None = schema
    rest = field_path
    while rest:
        if current is None:
            return None
        properties = current.get("properties")
        additional = current.get("additionalProperties")
        if rest.startswith("."):
            end = min([i for i in (rest.find(".", 1), rest.find("[", 1)) if i > 0] or [len(rest)])
            name, rest = rest[1:end], rest[end:]
        elif rest.startswith("['"):
            end = rest.find("']", 2)
            if end < 0:
                return None
            name, rest = rest[2:end].replace("\\'", "'"), rest[end + 2:]
        else:
            return None
        if isinstance(properties, Mapping):
            if name not in properties:
                return None
            path = field_errors.child(path, name)
            current = properties[name] if isinstance(properties[name], Mapping) else None
        elif isinstance(additional, Mapping):
            path = field_errors.key(path, name)
            current = additional
        else:
            return None
    return path


def _schemas_with_rules(schema: Mapping[str, Any], path: str) -> list[tuple[str, Mapping[str, Any]]]:
    found: list[tuple[str, Mapping[str, Any]]] = []
    if schema.get("x-kubernetes-validations"):
        found.append((path, schema))
    for name, sub in (schema.get("properties") or {}).items():
        if isinstance(sub, Mapping):
            found += _schemas_with_rules(sub, f"{path}.properties[{name}]")
    for keyword in ("items", "additionalProperties"):
        sub = schema.get(keyword)
        if isinstance(sub, Mapping):
            found += _schemas_with_rules(sub, f"{path}.{keyword}")
    return found


def _go_rule_value(entry: Mapping[str, Any]) -> dict[str, Any]:
    """The rule as json.Marshal prints apiextensions' internal ValidationRule (no JSON tags)."""
    return {"Rule": entry.get("rule") or "", "Message": entry.get("message") or "",
            "MessageExpression": entry.get("messageExpression") or "", "Reason": entry.get("reason"),
            "FieldPath": entry.get("fieldPath") or "", "OptionalOldSelf": entry.get("optionalOldSelf")}
