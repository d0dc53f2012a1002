"""Validation errors rendered the way the API server reports them: `path: message`.

Paths use the camelCase JSON field names and `[i]` list indexes, e.g.
`spec.steps[1].scale.minReplicas: must not exceed maxReplicas (3 > 2)`.
"""

import pydantic


class FieldRuleError(ValueError):
    """A model rule broken by one field below the model that checks it.

    `field` is the camelCase path relative to the checking model ("" for the model
    itself, "minReplicas", "steps[2].name"); pydantic only knows the model's path.
    """

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}" if field else message)
        self.field = field
        self.message = message


def validation_messages(exc: pydantic.ValidationError, prefix: str = "spec") -> list[str]:
    """Render each error of `exc` as `path: message`, the path starting at `prefix`.

    Never raises; errors without a location are reported at `prefix` itself.
    """
    messages = []
    for error in exc.errors():
        path = prefix + _render_location(error["loc"])
        message = error["msg"]
        cause = error.get("ctx", {}).get("error")
        if isinstance(cause, FieldRuleError):
            path += _join_relative(cause.field)
            message = cause.message
        elif message.startswith("Value error, "):
            message = message.removeprefix("Value error, ")
        elif error["type"] == "extra_forbidden":
            message = "unknown field"
        messages.append(f"{path}: {message}")
    return messages


def _render_location(location: tuple[int | str, ...]) -> str:
    rendered = ""
    for part in location:
        rendered += f"[{part}]" if isinstance(part, int) else f".{part}"
    return rendered


def _join_relative(field: str) -> str:
    if not field:
        return ""
    return field if field.startswith("[") else f".{field}"
