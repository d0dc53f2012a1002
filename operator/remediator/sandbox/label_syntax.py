"""The syntax of label keys and values, checked and worded as k8s.io/apimachinery/pkg/util/validation does it.

Label selectors (`selectors`) and object metadata (`object_meta`: labels, annotation keys,
finalizers) check against the same rules, so a key the one refuses the other refuses too, in the
same words.
https://kubernetes.io/docs/concepts/overview/working-with-objects/labels/#syntax-and-character-set
"""

from __future__ import annotations

import re

_NAME = "([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]"
_DNS_LABEL = "[a-z0-9]([-a-z0-9]*[a-z0-9])?"
_DNS_SUBDOMAIN = rf"{_DNS_LABEL}(\.{_DNS_LABEL})*"
_LABEL_VALUE = f"({_NAME})?"
_NAME_CHARACTERS = ("consist of alphanumeric characters, '-', '_' or '.', and must start and end with an "
                    "alphanumeric character")


def _regex_error(message: str, pattern: str, *examples: str) -> str:
    """validation.RegexError (its examples are joined with "',  or '", two spaces and all)."""
    shown = "".join(f"{' or ' if i else ''}'{example}', " for i, example in enumerate(examples))
    return f"{message} (e.g. {shown}regex used for validation is '{pattern}')"


def qualified_name_errors(key: str) -> list[str]:
    """validation.IsQualifiedName: `[prefix/]name`, the prefix a DNS subdomain, the name ≤ 63 chars.

    Returns the server's messages, in its order; an empty list means the key is valid.
    """
    name_error = _regex_error("must " + _NAME_CHARACTERS, _NAME, "MyName", "my.name", "123-abc")
    parts = key.split("/")
    if len(parts) > 2:
        return [f"a qualified name {name_error} with an optional DNS subdomain prefix and '/' "
                "(e.g. 'example.com/MyName')"]
    errors = []
    if len(parts) == 2:
        prefix = parts[0]
        if not prefix:
            errors.append("prefix part must be non-empty")
        else:
            if len(prefix) > 253:
                errors.append("prefix part must be no more than 253 characters")
            if not re.fullmatch(_DNS_SUBDOMAIN, prefix):
                errors.append("prefix part " + _regex_error(
                    "a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, "
                    "'-' or '.', and must start and end with an alphanumeric character",
                    _DNS_SUBDOMAIN, "example.com"))
    name = parts[-1]
    if not name:
        errors.append("name part must be non-empty")
    elif len(name) > 63:
        errors.append("name part must be no more than 63 characters")
    if not re.fullmatch(_NAME, name):
        errors.append(f"name part {name_error}")
    return errors


def label_value_errors(value: str) -> list[str]:
    """validation.IsValidLabelValue: empty, or at most 63 name characters.

    Returns the server's messages, in its order; an empty list means the value is valid.
    """
    errors = []
    if len(value) > 63:
        errors.append("must be no more than 63 characters")
    if not re.fullmatch(_LABEL_VALUE, value):
        errors.append(_regex_error("a valid label must be an empty string or " + _NAME_CHARACTERS,
                                   _LABEL_VALUE, "MyValue", "my_value", "12345"))
    return errors
