"""Label and field selectors, parsed, matched and worded the way kube-apiserver does it.

Label selectors follow k8s.io/apimachinery/pkg/labels (selector.go) and field selectors
pkg/fields (selector.go), including their error messages: the server answers a bad selector
with 400 BadRequest and clients show that message to the user.

- https://kubernetes.io/docs/concepts/overview/working-with-objects/labels/#label-selectors
- https://kubernetes.io/docs/concepts/overview/working-with-objects/field-selectors/
"""

from __future__ import annotations

import dataclasses
import enum
import re
from collections.abc import Callable, Mapping
from typing import Any

from remediator.sandbox import go_format, label_syntax


class SelectorError(ValueError):
    """A selector the real server rejects with 400 BadRequest; `str()` is the server's message."""


# -- label selectors -------------------------------------------------------------------------------


class Operator(enum.StrEnum):
    """selection.Operator: the value is how Go names it."""

    EQUALS = "="
    DOUBLE_EQUALS = "=="
    NOT_EQUALS = "!="
    IN = "in"
    NOT_IN = "notin"
    EXISTS = "exists"
    DOES_NOT_EXIST = "!"
    GREATER_THAN = "gt"
    LESS_THAN = "lt"


_INT64 = re.compile(r"[+-]?[0-9]+")


def _int64(text: str) -> int | None:
    """strconv.ParseInt(text, 10, 64), or None where Go would fail."""
    if not _INT64.fullmatch(text):
        return None
    number = int(text)
    return number if -(2**63) <= number < 2**63 else None


@dataclasses.dataclass(frozen=True)
class Requirement:
    """One term of a label selector: `key`, an operator and its (sorted) values."""

    key: str
    operator: Operator
    values: tuple[str, ...] = ()

    def matches(self, labels: Mapping[str, str]) -> bool:
        """Whether labels satisfy the term; `!=` and `notin` hold when the label is absent."""
        if self.operator in (Operator.EQUALS, Operator.DOUBLE_EQUALS, Operator.IN):
            return self.key in labels and labels[self.key] in self.values
        if self.operator in (Operator.NOT_EQUALS, Operator.NOT_IN):
            return self.key not in labels or labels[self.key] not in self.values
        if self.operator is Operator.EXISTS:
            return self.key in labels
        if self.operator is Operator.DOES_NOT_EXIST:
            return self.key not in labels
        if self.key not in labels or len(self.values) != 1:
            return False
        actual, bound = _int64(labels[self.key]), _int64(self.values[0])
        if actual is None or bound is None:
            return False
        return actual > bound if self.operator is Operator.GREATER_THAN else actual < bound

    def __str__(self) -> str:
        if self.operator is Operator.DOES_NOT_EXIST:
            return f"!{self.key}"
        if self.operator is Operator.EXISTS:
            return self.key
        values = ",".join(self.values)
        if self.operator in (Operator.IN, Operator.NOT_IN):
            return f"{self.key} {self.operator.value} ({values})"
        symbol = {Operator.GREATER_THAN: ">", Operator.LESS_THAN: "<"}.get(self.operator, self.operator.value)
        return f"{self.key}{symbol}{values}"


@dataclasses.dataclass(frozen=True)
class LabelSelector:
    """Requirements that must all hold (sorted by key); none selects everything."""

    requirements: tuple[Requirement, ...] = ()

    def matches(self, labels: Mapping[str, str]) -> bool:
        """Whether an object with these labels is selected."""
        return all(requirement.matches(labels) for requirement in self.requirements)

    def __str__(self) -> str:
        """The canonical string form, which `parse_label_selector` reads back to an equal selector."""
        return ",".join(str(requirement) for requirement in self.requirements)


def _invalid(field: str, shown_value: str, detail: str) -> str:
    """field.Invalid(...).Error()."""
    return f"{field}: Invalid value: {shown_value}: {detail}"


def _go_strings(values: tuple[str, ...]) -> str:
    """`%#v` of a []string."""
    return "[]string{" + ", ".join(go_format.quote(value) for value in values) + "}"


def _aggregate(errors: list[str]) -> str:
    """utilerrors.NewAggregate(...).Error(): one message alone, several deduplicated in brackets."""
    unique = list(dict.fromkeys(errors))
    return unique[0] if len(unique) == 1 else "[" + ", ".join(unique) + "]"


def _requirement(key: str, operator: Operator, values: tuple[str, ...]) -> Requirement:
    """labels.NewRequirement: validates key, value count and values, with the server's wording."""
    errors = []
    if key_errors := label_syntax.qualified_name_errors(key):
        errors.append(_invalid("key", go_format.quote(key), "; ".join(key_errors)))
    if operator in (Operator.IN, Operator.NOT_IN) and not values:
        errors.append(_invalid("values", _go_strings(values),
                               "for 'in', 'notin' operators, values set can't be empty"))
    elif operator in (Operator.EQUALS, Operator.DOUBLE_EQUALS, Operator.NOT_EQUALS) and len(values) != 1:
        errors.append(_invalid("values", _go_strings(values),
                               "exact-match compatibility requires one single value"))
    elif operator in (Operator.EXISTS, Operator.DOES_NOT_EXIST) and values:
        errors.append(_invalid("values", _go_strings(values),
                               "values set must be empty for exists and does not exist"))
    elif operator in (Operator.GREATER_THAN, Operator.LESS_THAN):
        if len(values) != 1:
            errors.append(_invalid("values", _go_strings(values),
                                   "for 'Gt', 'Lt' operators, exactly one value is required"))
        errors += [_invalid(f"values[{i}]", go_format.quote(value),
                            "for 'Gt', 'Lt' operators, the value must be an integer")
                   for i, value in enumerate(values) if _int64(value) is None]
    for i, value in enumerate(values):
        if value_errors := label_syntax.label_value_errors(value):
            errors.append(_invalid(f"values[{i}][{key}]", go_format.quote(value), "; ".join(value_errors)))
    if errors:
        raise SelectorError(_aggregate(errors))
    return Requirement(key, operator, values)


class _Token(enum.Enum):
    END = enum.auto()
    IDENTIFIER = enum.auto()
    OPEN = enum.auto()
    CLOSE = enum.auto()
    COMMA = enum.auto()
    NOT = enum.auto()
    EQUALS = enum.auto()
    DOUBLE_EQUALS = enum.auto()
    NOT_EQUALS = enum.auto()
    GREATER = enum.auto()
    LESS = enum.auto()
    IN = enum.auto()
    NOT_IN = enum.auto()


_KEYWORDS = {
    "(": _Token.OPEN, ")": _Token.CLOSE, ",": _Token.COMMA, "!": _Token.NOT, "=": _Token.EQUALS,
    "==": _Token.DOUBLE_EQUALS, "!=": _Token.NOT_EQUALS, ">": _Token.GREATER, "<": _Token.LESS,
    "in": _Token.IN, "notin": _Token.NOT_IN,
}
_SYMBOLS = frozenset("=!(),><")
_WHITESPACE = frozenset(" \t\r\n")
_BINARY_OPERATORS = {
    _Token.IN: Operator.IN, _Token.NOT_IN: Operator.NOT_IN, _Token.EQUALS: Operator.EQUALS,
    _Token.DOUBLE_EQUALS: Operator.DOUBLE_EQUALS, _Token.NOT_EQUALS: Operator.NOT_EQUALS,
    _Token.GREATER: Operator.GREATER_THAN, _Token.LESS: Operator.LESS_THAN,
}


def _lex(text: str) -> list[tuple[_Token, str]]:
    """labels.Lexer: symbols (longest of `==`/`!=` first), and identifiers up to a symbol or space."""
    tokens, i = [], 0
    while True:
        while i < len(text) and text[i] in _WHITESPACE:
            i += 1
        if i >= len(text):
            tokens.append((_Token.END, ""))
            return tokens
        if text[i] in _SYMBOLS:
            size = 2 if text[i:i + 2] in ("==", "!=") else 1
            tokens.append((_KEYWORDS[text[i:i + size]], text[i:i + size]))
            i += size
            continue
        start = i
        while i < len(text) and text[i] not in _SYMBOLS and text[i] not in _WHITESPACE:
            i += 1
        word = text[start:i]
        tokens.append((_KEYWORDS.get(word, _Token.IDENTIFIER), word))


class _Parser:
    """labels.Parser: recursive descent over the lexed tokens, worded like Go's errors."""

    def __init__(self, text: str) -> None:
        self.tokens = _lex(text)
        self.position = 0

    def peek(self, values: bool = True) -> tuple[_Token, str]:
        # Where values are expected, `in` and `notin` are plain words.
        token, literal = self.tokens[self.position]
        if values and token in (_Token.IN, _Token.NOT_IN):
            token = _Token.IDENTIFIER
        return token, literal

    def take(self, values: bool = True) -> tuple[_Token, str]:
        item = self.peek(values)
        self.position = min(self.position + 1, len(self.tokens) - 1)
        return item

    def parse(self) -> list[Requirement]:
        requirements: list[Requirement] = []
        while True:
            token, literal = self.peek()
            if token is _Token.END:
                return requirements
            if token not in (_Token.IDENTIFIER, _Token.NOT):
                raise SelectorError(f"found '{literal}', expected: !, identifier, or 'end of string'")
            try:
                requirements.append(self.requirement())
            except SelectorError as error:
                raise SelectorError(f"unable to parse requirement: {error}") from None
            token, literal = self.take()
            if token is _Token.END:
                return requirements
            if token is not _Token.COMMA:
                raise SelectorError(f"found '{literal}', expected: ',' or 'end of string'")
            token, literal = self.peek()
            if token not in (_Token.IDENTIFIER, _Token.NOT):
                raise SelectorError(f"found '{literal}', expected: identifier after ','")

    def requirement(self) -> Requirement:
        token, literal = self.take()
        operator: Operator | None = None
        if token is _Token.NOT:
            operator = Operator.DOES_NOT_EXIST
            token, literal = self.take()
        if token is not _Token.IDENTIFIER:
            raise SelectorError(f"found '{literal}', expected: identifier")
        if key_errors := label_syntax.qualified_name_errors(literal):
            raise SelectorError(_invalid("<nil>", go_format.quote(literal), "; ".join(key_errors)))
        key = literal
        if operator is Operator.DOES_NOT_EXIST or self.peek()[0] in (_Token.END, _Token.COMMA):
            return _requirement(key, operator or Operator.EXISTS, ())
        token, literal = self.take(values=False)
        if token not in _BINARY_OPERATORS:
            raise SelectorError(f"found '{literal}', expected: '=', '!=', '==', 'in', notin'")  # sic
        operator = _BINARY_OPERATORS[token]
        if operator in (Operator.IN, Operator.NOT_IN):
            return _requirement(key, operator, tuple(sorted(self.value_set())))
        return _requirement(key, operator, (self.exact_value(),))

    def value_set(self) -> set[str]:
        token, literal = self.take()
        if token is not _Token.OPEN:
            raise SelectorError(f"found '{literal}' expected: '('")
        token, literal = self.peek()
        if token is _Token.CLOSE:
            self.take()
            return {""}
        if token not in (_Token.IDENTIFIER, _Token.COMMA):
            raise SelectorError(f"found '{literal}', expected: ',', ')' or identifier")
        values = self.identifiers()
        if self.take()[0] is not _Token.CLOSE:
            raise SelectorError(f"found '{literal}', expected: ')'")
        return values

    def identifiers(self) -> set[str]:
        """labels.Parser.parseIdentifiersList: empty entries (`(,a)`, `(a,)`) are the empty value."""
        values: set[str] = set()
        while True:
            token, literal = self.take()
            if token is _Token.IDENTIFIER:
                values.add(literal)
                following, shown = self.peek()
                if following is _Token.CLOSE:
                    return values
                if following is not _Token.COMMA:
                    raise SelectorError(f"found '{shown}', expected: ',' or ')'")
            elif token is _Token.COMMA:
                if not values:
                    values.add("")
                following, _ = self.peek()
                if following is _Token.CLOSE:
                    values.add("")
                    return values
                if following is _Token.COMMA:
                    self.take()
                    values.add("")
            else:
                raise SelectorError(f"found '{literal}', expected: ',', or identifier")

    def exact_value(self) -> str:
        token, literal = self.peek()
        if token in (_Token.END, _Token.COMMA):
            return ""
        token, literal = self.take()
        if token is not _Token.IDENTIFIER:
            raise SelectorError(f"found '{literal}', expected: identifier")
        return literal


def _by_key(requirements: list[Requirement]) -> LabelSelector:
    return LabelSelector(tuple(sorted(requirements, key=lambda requirement: requirement.key)))


def parse_label_selector(text: str) -> LabelSelector:
    """The selector in a `labelSelector` query parameter (labels.Parse).

    `a=b`, `a==b`, `a!=b`, `a in (b,c)`, `a notin (b)`, `a`, `!a`, `a>1`, `a<1`, joined by commas
    (AND) with free whitespace. An empty string selects everything. Raises `SelectorError` worded
    like the server's 400 (`unable to parse requirement: ...`) for bad syntax, keys or values.
    """
    return _by_key(_Parser(text).parse())


_EXPRESSION_OPERATORS = {"In": Operator.IN, "NotIn": Operator.NOT_IN, "Exists": Operator.EXISTS,
                         "DoesNotExist": Operator.DOES_NOT_EXIST}


def label_selector_from_object(selector: Mapping[str, Any]) -> LabelSelector:
    """The selector a metav1.LabelSelector (`matchLabels`, `matchExpressions`) stands for.

    An empty selector selects everything (a nil one selects nothing in Kubernetes: callers decide
    that before calling). Raises `SelectorError` for unknown operators and invalid keys or values.
    """
    requirements = []
    for key, value in (selector.get("matchLabels") or {}).items():
        if not isinstance(value, str):
            raise SelectorError(f"matchLabels values must be strings (key {go_format.quote(str(key))})")
        requirements.append(_requirement(str(key), Operator.EQUALS, (value,)))
    for expression in selector.get("matchExpressions") or []:
        if not isinstance(expression, Mapping):
            raise SelectorError("matchExpressions must hold objects")
        named = expression.get("operator")
        operator = _EXPRESSION_OPERATORS.get(named) if isinstance(named, str) else None
        if operator is None:
            shown = named if isinstance(named, str) else ""
            raise SelectorError(f"{go_format.quote(shown)} is not a valid label selector operator")
        values = tuple(sorted({str(value) for value in expression.get("values") or []}))
        requirements.append(_requirement(str(expression.get("key", "")), operator, values))
    return _by_key(requirements)


def format_label_selector(selector: Mapping[str, Any]) -> str:
    """The string form of a metav1.LabelSelector, as in a Deployment's scale `status.selector`.

    Feeding it to `parse_label_selector` gives the same selector. "" for an empty selector.
    Raises `SelectorError` as `label_selector_from_object` does.
    """
    return str(label_selector_from_object(selector))


# -- field selectors -------------------------------------------------------------------------------

_METADATA_FIELDS = frozenset({"metadata.name", "metadata.namespace"})

# The fields each kind's field label conversion accepts (pkg/apis/*/v1/conversion.go); "*" for kinds
# without one (runtime.DefaultMetaV1FieldSelectorConversion) and custom resources. Namespaces are
# cluster-scoped: no metadata.namespace.
SUPPORTED_FIELDS: Mapping[str, frozenset[str]] = {
    "*": _METADATA_FIELDS,
    "Pod": _METADATA_FIELDS | {
        "spec.nodeName", "spec.restartPolicy", "spec.schedulerName", "spec.serviceAccountName",
        "spec.hostNetwork", "status.phase", "status.podIP", "status.podIPs", "status.nominatedNodeName",
    },
    "Event": _METADATA_FIELDS | {
        "involvedObject.kind", "involvedObject.namespace", "involvedObject.name", "involvedObject.uid",
        "involvedObject.apiVersion", "involvedObject.resourceVersion", "involvedObject.fieldPath",
        "reason", "reportingComponent", "source", "type",
    },
    "Secret": _METADATA_FIELDS | {"type"},
    "Namespace": frozenset({"metadata.name", "status.phase"}),
    "Node": frozenset({"metadata.name", "spec.unschedulable"}),
    "Service": _METADATA_FIELDS | {"spec.clusterIP", "spec.type"},
    "Job": _METADATA_FIELDS | {"status.successful"},
}


def _first_pod_ip(obj: Mapping[str, Any]) -> str:
    status = obj.get("status") or {}
    ips = status.get("podIPs") or []
    return str(ips[0].get("ip", "")) if ips else str(status.get("podIP") or "")


# Fields whose value is not simply the object's value at that path (the registries' GetAttrs).
_DERIVED_FIELDS: Mapping[tuple[str, str], Callable[[Mapping[str, Any]], str]] = {
    ("Pod", "spec.hostNetwork"): lambda obj: str(bool((obj.get("spec") or {}).get("hostNetwork"))).lower(),
    ("Pod", "status.podIP"): _first_pod_ip,
    ("Event", "source"): lambda obj: str((obj.get("source") or {}).get("component") or ""),
    ("Job", "status.successful"): lambda obj: str((obj.get("status") or {}).get("succeeded") or 0),
}


def field_value(obj: Mapping[str, Any], field: str) -> str:
    """The string a field selector compares for `field` of an object; absent fields read as ""."""
    derive = _DERIVED_FIELDS.get((str(obj.get("kind", "")), field))
    if derive is not None:
        return derive(obj)
    value: Any = obj
    for part in field.split("."):
        if not isinstance(value, Mapping) or part not in value:
            return ""
        value = value[part]
    if isinstance(value, bool):
        return "true" if value else "false"
    if value is None or isinstance(value, dict | list):
        return ""
    return str(value)


_ESCAPES = {"\\": "\\\\", ",": "\\,", "=": "\\="}


@dataclasses.dataclass(frozen=True)
class FieldRequirement:
    """`field=value` or `field!=value` (`==` is read as `=`)."""

    field: str
    value: str
    negated: bool = False

    def matches(self, obj: Mapping[str, Any]) -> bool:
        """Whether the object's field (see `field_value`) equals, or for `!=` differs from, the value."""
        return (field_value(obj, self.field) == self.value) != self.negated

    def __str__(self) -> str:
        escaped = "".join(_ESCAPES.get(char, char) for char in self.value)
        return f"{self.field}{'!=' if self.negated else '='}{escaped}"


@dataclasses.dataclass(frozen=True)
class FieldSelector:
    """Field requirements that must all hold; none selects everything."""

    requirements: tuple[FieldRequirement, ...] = ()

    def matches(self, obj: Mapping[str, Any]) -> bool:
        """Whether the object is selected."""
        return all(requirement.matches(obj) for requirement in self.requirements)

    @property
    def fields(self) -> tuple[str, ...]:
        """The fields the selector reads, in its (sorted) order."""
        return tuple(requirement.field for requirement in self.requirements)

    def __str__(self) -> str:
        return ",".join(str(requirement) for requirement in self.requirements)


def _split_terms(text: str) -> list[str]:
    """fields.splitTerms: split on commas that are not backslash-escaped."""
    terms, start, escaped = [], 0, False
    for i, char in enumerate(text):
        if escaped:
            escaped = False
        elif char == "\\":
            escaped = True
        elif char == ",":
            terms.append(text[start:i])
            start = i + 1
    terms.append(text[start:])
    return terms


def _unescape(value: str) -> str:
    """fields.UnescapeValue: `\\\\`, `\\,` and `\\=` are the only escapes; bare `,` and `=` are errors."""
    unescaped, escaped = [], False
    for char in value:
        if escaped:
            if char not in "\\,=":
                raise SelectorError(f"invalid field selector: invalid escape sequence: \\{char}")
            unescaped.append(char)
            escaped = False
        elif char == "\\":
            escaped = True
        elif char in ",=":
            raise SelectorError(f"invalid field selector: unescaped character in value: {char}")
        else:
            unescaped.append(char)
    if escaped:
        raise SelectorError("invalid field selector: invalid escape sequence: \\")
    return "".join(unescaped)


def parse_field_selector(text: str) -> FieldSelector:
    """The selector in a `fieldSelector` query parameter (fields.ParseSelector).

    Terms `field=value`, `field==value` or `field!=value` joined by commas; values may escape
    `\\`, `,` and `=` with a backslash. Nothing is trimmed: whitespace is part of names and values,
    as on the real server. Raises `SelectorError` with the server's wording for a term without an
    operator or a bad escape. Which fields a kind allows is `check_field_selector`'s business.
    """
    requirements = []
    for term in sorted(_split_terms(text)):
        if not term:
            continue
        split = re.search("!=|==|=", term)
        if split is None:
            raise SelectorError(f"invalid selector: '{text}'; can't understand '{term}'")
        field, operator, value = term[:split.start()], split.group(), term[split.end():]
        requirements.append(FieldRequirement(field, _unescape(value), negated=operator == "!="))
    return FieldSelector(tuple(requirements))


def check_field_selector(kind: str, selector: FieldSelector, *, custom_api_version: str | None = None,
                         cluster_scoped: bool = False) -> None:
    """Raises `SelectorError` worded like the server's 400 if `kind` cannot be selected on a field.

    Kinds in `SUPPORTED_FIELDS` say `field label not supported: X`; other built-in kinds accept
    metadata.name and metadata.namespace and say `"X" is not a known field selector: only ...`.
    For a custom resource pass its apiVersion (and whether it is cluster-scoped, which rules out
    metadata.namespace): it says `field label not supported for <group>/<version>, Kind=<kind>: X`.
    """
    for field in selector.fields:
        if custom_api_version is not None:
            if field == "metadata.name" or (field == "metadata.namespace" and not cluster_scoped):
                continue
            raise SelectorError(f"field label not supported for {custom_api_version}, Kind={kind}: {field}")
        if kind in SUPPORTED_FIELDS:
            if field not in SUPPORTED_FIELDS[kind]:
                raise SelectorError(f"field label not supported: {field}")
        elif field not in SUPPORTED_FIELDS["*"]:
            raise SelectorError(f'{go_format.quote(field)} is not a known field selector: '
                                'only "metadata.name", "metadata.namespace"')
