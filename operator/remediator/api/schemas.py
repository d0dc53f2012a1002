"""OpenAPI v3 schemas for CRDs, made from the pydantic models.

Pydantic writes JSON Schema 2020-12; a CRD needs a *structural* OpenAPI v3
schema: a type on every node, no $ref, no anyOf of types, no titles, the
draft-4 boolean form of exclusiveMinimum, and defaults only where the API server
should apply them. This module translates one into the other and refuses
anything it does not know how to translate, so a new kind of field fails the
generation instead of producing a CRD the API server rejects.
"""

from typing import Any

from pydantic import BaseModel
from pydantic.json_schema import GenerateJsonSchema, JsonSchemaValue, NoDefault
from pydantic_core import core_schema

# Keywords copied as they are; everything else is translated or refused.
_PLAIN_KEYWORDS = frozenset(
    {
        "type",
        "description",
        "enum",
        "format",
        "pattern",
        "minimum",
        "maximum",
        "minLength",
        "maxLength",
        "minItems",
        "maxItems",
        "required",
        "oneOf",
        "x-kubernetes-int-or-string",
        "x-kubernetes-preserve-unknown-fields",
        "x-kubernetes-list-type",
        "x-kubernetes-list-map-keys",
        "x-kubernetes-validations",
    }
)


class _CrdJsonSchema(GenerateJsonSchema):
    """Pydantic's generator with Optional[X] written as X and factory defaults included."""

    def nullable_schema(self, schema: core_schema.NullableSchema) -> JsonSchemaValue:
        # A CRD field that is absent is None to the model; null itself is never stored.
        return self.generate_inner(schema["schema"])

    def get_default_value(self, schema: core_schema.WithDefaultSchema) -> Any:
        if "default_factory" in schema and not schema.get("default_factory_takes_data"):
            default = schema["default_factory"]()  # type: ignore[call-arg]
        else:
            default = schema.get("default", NoDefault)
        # None and empty collections are what an absent field means anyway: no default needed.
        if default is None or (isinstance(default, list | dict) and not default):
            return NoDefault
        if isinstance(default, BaseModel):
            return default.model_dump(by_alias=True, mode="json", exclude_none=True)
        return default


def structural_schema(model: type[BaseModel], *, with_defaults: bool) -> dict[str, Any]:
    """Return the structural OpenAPI v3 schema of `model`, using the JSON (camelCase) field names.

    With `with_defaults` false, no `default` is emitted (status: the operator
    writes every field it means). Raises ValueError when the model uses a schema
    construct this module cannot translate.
    """
    generated = model.model_json_schema(by_alias=True, mode="validation", schema_generator=_CrdJsonSchema)
    definitions = generated.pop("$defs", {})
    return _translate(generated, definitions, with_defaults, path=model.__name__)


def _translate(
    node: dict[str, Any], definitions: dict[str, Any], with_defaults: bool, path: str
) -> dict[str, Any]:
    if "$ref" in node:
        name = node["$ref"].removeprefix("#/$defs/")
        siblings = {key: value for key, value in node.items() if key != "$ref"}
        return _translate({**definitions[name], **siblings}, definitions, with_defaults, path)
    result: dict[str, Any] = {}
    for key, value in node.items():
        if key in _PLAIN_KEYWORDS:
            result[key] = value
        elif key in ("title", "propertyNames"):
            continue  # not allowed in a CRD; the model checks dict keys itself
        elif key == "default":
            if with_defaults:
                result[key] = value
        elif key == "const":
            result["enum"] = [value]
        elif key in ("exclusiveMinimum", "exclusiveMaximum"):
            result[key.replace("exclusiveM", "m")] = value
            result[key] = True
        elif key == "properties":
            result[key] = {
                name: _translate(child, definitions, with_defaults, f"{path}.{name}")
                for name, child in value.items()
            }
        elif key == "items":
            result[key] = _translate(value, definitions, with_defaults, f"{path}[]")
        elif key == "additionalProperties":
            _translate_additional_properties(result, node, value, definitions, with_defaults, path)
        elif key == "patternProperties" and len(value) == 1 and "additionalProperties" not in node:
            # A dict with constrained keys: the model checks the keys, the CRD only the values.
            [values] = value.values()
            _translate_additional_properties(result, node, values, definitions, with_defaults, path)
        else:
            raise ValueError(f"{path}: cannot express {key!r} in a CRD schema ({value!r})")
    return result


def _translate_additional_properties(
    result: dict[str, Any],
    node: dict[str, Any],
    value: Any,
    definitions: dict[str, Any],
    with_defaults: bool,
    path: str,
) -> None:
    if value is False:
        return  # extra="forbid": the API server prunes unknown fields, the model refuses them
    if "properties" in node:
        raise ValueError(f"{path}: a CRD object cannot have both properties and additionalProperties")
    if value is True:
        result["x-kubernetes-preserve-unknown-fields"] = True
    else:
        result["additionalProperties"] = _translate(value, definitions, with_defaults, f"{path}{{}}")
