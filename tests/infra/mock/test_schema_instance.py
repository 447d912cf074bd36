"""``instance_for`` builds values that the ``jsonschema`` library accepts, for a varied set of schemas."""

from __future__ import annotations

from typing import Any

import jsonschema
import pytest

from breakwater.infra.mock.regex_instance import string_matching
from breakwater.infra.mock.schema_instance import instance_for

NODE = {
    "type": "object",
    "properties": {"value": {"type": "integer"}, "children": {"type": "array", "items": {"$ref": "#/$defs/node"}}},
    "required": ["value", "children"],
}

SCHEMAS: dict[str, Any] = {
    "weather tool": {
        "type": "object",
        "properties": {
            "city": {"type": "string", "description": "City name"},
            "days": {"type": "integer", "minimum": 1, "maximum": 14},
            "unit": {"type": "string", "enum": ["celsius", "fahrenheit"]},
        },
        "required": ["city", "days", "unit"],
        "additionalProperties": False,
    },
    "enum mixed": {"enum": ["a", "b", 3, None]},
    "const": {"const": {"fixed": [1, 2]}},
    "type list": {"type": ["null", "string"], "minLength": 2},
    "openapi nullable": {"type": "integer", "nullable": True, "minimum": 500},
    "int array": {
        "type": "array",
        "items": {"type": "integer", "multipleOf": 7, "minimum": 10},
        "minItems": 3,
        "maxItems": 5,
    },
    "tuple closed": {"type": "array", "prefixItems": [{"type": "string"}, {"type": "boolean"}], "items": False},
    "tuple draft7": {
        "$schema": "http://json-schema.org/draft-07/schema#",
        "type": "array",
        "items": [{"type": "integer"}, {"type": "string", "format": "date"}],
        "additionalItems": False,
    },
    "long string": {"type": "string", "minLength": 40},
    "short string": {"type": "string", "maxLength": 3},
    "pattern code": {"type": "string", "pattern": "^[A-Z]{3}-\\d{4}$"},
    "pattern email-like": {"type": "string", "pattern": "^[a-z]+@[a-z]+\\.(com|org)$"},
    "pattern colour": {"type": "string", "pattern": "^#[0-9a-fA-F]{6}$"},
    "formats": {
        "type": "object",
        "properties": {
            f: {"type": "string", "format": f}
            for f in ("date", "date-time", "time", "email", "uri", "uuid", "hostname", "ipv4", "ipv6")
        },
        "required": ["date", "date-time", "email", "uuid"],
    },
    "open interval": {"type": "number", "exclusiveMinimum": 0, "exclusiveMaximum": 1},
    "cents": {"type": "number", "multipleOf": 0.01, "minimum": 5.5, "maximum": 6},
    "negative only": {"type": "integer", "maximum": -3},
    "integer window": {"type": "integer", "exclusiveMinimum": 10, "exclusiveMaximum": 12},
    "draft4 exclusive": {
        "$schema": "http://json-schema.org/draft-04/schema#",
        "type": "integer",
        "minimum": 100,
        "exclusiveMinimum": True,
    },
    "anyOf optional": {"anyOf": [{"type": "null"}, {"type": "object", "properties": {"x": {"type": "number"}}}]},
    "oneOf int or number": {"oneOf": [{"type": "integer"}, {"type": "number"}]},
    "oneOf number or int": {"oneOf": [{"type": "number"}, {"type": "integer"}]},
    "oneOf discriminated": {
        "oneOf": [
            {"type": "object", "properties": {"kind": {"const": "a"}}, "required": ["kind"]},
            {"type": "object", "properties": {"kind": {"const": "b"}, "x": {"type": "string"}}, "required": ["kind"]},
        ]
    },
    "allOf merge": {
        "allOf": [
            {"type": "object", "properties": {"a": {"type": "string"}}, "required": ["a"]},
            {"properties": {"b": {"type": "integer", "minimum": 3}}, "required": ["b"]},
        ]
    },
    "recursive $defs": {"$defs": {"node": NODE}, "$ref": "#/$defs/node"},
    "definitions draft7": {
        "$schema": "http://json-schema.org/draft-07/schema#",
        "definitions": {"point": {"type": "object", "properties": {"x": {"type": "number"}}, "required": ["x"]}},
        "type": "object",
        "properties": {"points": {"type": "array", "items": {"$ref": "#/definitions/point"}, "minItems": 2}},
        "required": ["points"],
    },
    "ref with siblings": {
        "$defs": {"base": {"type": "object", "properties": {"id": {"type": "integer"}}, "required": ["id"]}},
        "$ref": "#/$defs/base",
        "properties": {"name": {"type": "string"}},
        "required": ["name"],
    },
    "min properties": {"type": "object", "minProperties": 3, "additionalProperties": {"type": "boolean"}},
    "max properties": {
        "type": "object",
        "properties": {"a": {"type": "string"}, "b": {"type": "string"}, "c": {"type": "string"}},
        "required": ["c"],
        "maxProperties": 1,
    },
    "unique enum items": {"type": "array", "items": {"enum": ["x", "y", "z"]}, "minItems": 3, "uniqueItems": True},
    "contains": {"type": "array", "items": {"type": "integer"}, "contains": {"const": 42}},
    "untyped keywords": {"properties": {"n": {"minimum": 3}}, "required": ["n"]},
    "anything": {},
    "true": True,
    "nested strict (OpenAI structured outputs)": {
        "type": "object",
        "properties": {
            "steps": {
                "type": "array",
                "items": {
                    "type": "object",
                    "properties": {"explanation": {"type": "string"}, "output": {"type": ["string", "null"]}},
                    "required": ["explanation", "output"],
                    "additionalProperties": False,
                },
            },
            "final_answer": {"type": "string"},
        },
        "required": ["steps", "final_answer"],
        "additionalProperties": False,
    },
}


def _validate(schema: Any, value: Any) -> None:
    cls = jsonschema.validators.validator_for(schema, default=jsonschema.Draft202012Validator)
    cls(schema, format_checker=cls.FORMAT_CHECKER).validate(value)


@pytest.mark.parametrize("name", list(SCHEMAS))
@pytest.mark.parametrize("seed", [0, 1, 12345])
def test_instance_validates(name: str, seed: int) -> None:
    """The built value validates against the schema (jsonschema, with format checks) for several seeds."""
    schema = SCHEMAS[name]
    _validate(schema, instance_for(schema, seed=seed))


def test_instance_is_deterministic() -> None:
    """The same schema and seed always give the same value; the seed picks among valid values."""
    schema = SCHEMAS["weather tool"]
    assert instance_for(schema, seed=3) == instance_for(schema, seed=3)
    assert len({str(instance_for(schema, seed=s)) for s in range(10)}) > 1


def test_gemini_upper_case_types() -> None:
    """Gemini's upper-case type names (OBJECT, INTEGER) are understood."""
    value = instance_for({"type": "OBJECT", "properties": {"n": {"type": "INTEGER"}, "s": {"type": "STRING"}}})
    assert isinstance(value["n"], int)
    assert isinstance(value["s"], str)


def test_recursive_schema_terminates() -> None:
    """A schema that refers to itself still yields a finite value."""
    value = instance_for(SCHEMAS["recursive $defs"])
    depth = 0
    while value["children"]:
        value = value["children"][0]
        depth += 1
    assert depth < 20


@pytest.mark.parametrize(
    ("schema", "message"),
    [
        (False, "'false'"),
        ({"$ref": "#/$defs/missing"}, "does not resolve"),
        ({"$ref": "https://example.com/schema.json"}, "only local $ref"),
        # found while fuzzing the mock: each was a RecursionError or an OverflowError, a 500 from the gateway
        ({"type": "object", "properties": {"x": {"$ref": "#"}}, "required": ["x"]}, "nested deeper"),
        ({"type": "array", "items": {"$ref": "#"}, "minItems": 1}, "nested deeper"),
        ({"allOf": [{"$ref": "#"}]}, "nested deeper"),
        ({"type": "integer", "minimum": 1.7e308, "maximum": 1.7e308}, "beyond what the mock computes"),
        ({"type": "integer", "multipleOf": 1e-320}, "beyond what the mock computes"),
    ],
)
def test_impossible_schemas_raise(schema: Any, message: str) -> None:
    """Schemas nothing can satisfy, with refs it cannot follow, or with numbers past float arithmetic raise ValueError with the reason."""
    with pytest.raises(ValueError, match=message.replace("$", r"\$")):
        instance_for(schema)


@pytest.mark.parametrize("pattern", ["(?=lookahead)x", "(a)\\1"])
def test_patterns_beyond_the_subset_give_up(pattern: str) -> None:
    """Lookarounds and backreferences are not generated: the caller keeps its plain value."""
    assert string_matching(pattern) is None


def test_a_required_that_is_not_a_list_is_ignored() -> None:
    """``required: true`` (not JSON Schema, but a client may send it in a tool) makes an instance,
    not a 500: found by the fuzz test."""
    value = instance_for({"type": "object", "properties": {"a": {"type": "string"}}, "required": True}, seed=1)
    assert isinstance(value, dict)
