"""Build a JSON value that validates against a JSON schema: the mock's "structured output".

The mock answers tool calls and ``json_schema`` response formats with a value built here, so
a client's own validation (or the gateway's) sees what a well-behaved model would produce.
The builder is deterministic: the same schema and seed always give the same value, and the
seed only picks among valid choices (which word, which enum member).

Covered: ``type`` (and type lists), ``enum``, ``const``, ``properties``/``required``/
``additionalProperties``/``min|maxProperties``, ``items``/``prefixItems``/``contains``/
``min|maxItems``/``uniqueItems``, ``min|maxLength``, ``pattern`` (a common regex subset),
``format`` (date, date-time, time, email, uri, uuid, hostname, ipv4, ipv6), numeric bounds
(inclusive, exclusive in both drafts' spellings) and ``multipleOf``, ``anyOf``/``oneOf``/
``allOf``, local ``$ref`` (``#/$defs``, ``#/definitions``, any ``#/`` pointer), OpenAPI's
``nullable`` and Gemini's upper-case type names. ``not`` and ``if``/``then`` are ignored.

Here: the walk over the schema (composition, objects, arrays, the type picked); strings and
numbers are built by ``scalar_instance``, values for a ``pattern`` by ``regex_instance``.
"""

from __future__ import annotations

import zlib
from collections.abc import Mapping
from typing import Any

from breakwater.infra.mock.scalar_instance import WORDS, count_keyword, number_for, string_for

_MAX_DEPTH = 12
# past _MAX_DEPTH only what is required is built; a schema that still nests this deep requires
# itself (a required property or minItems referring back up): no finite value validates
_MAX_NESTING = 4 * _MAX_DEPTH
_TOO_DEEP = (
    f"the schema requires values nested deeper than the mock builds (at most {_MAX_NESTING} levels);"
    " does a required property, or an allOf, refer back to its own schema?"
)
# a schema may ask for more than any model would write; past this the request is refused (400)
# rather than the mock spending its memory on it
_MAX_COUNT = 1000
_TYPE_ORDER = ("object", "array", "string", "integer", "number", "boolean", "null")


def instance_for(schema: Mapping[str, Any] | bool, *, seed: int = 0) -> Any:
    """A value valid against ``schema`` (best effort for ``pattern`` and conflicting keywords).

    Raises:
        ValueError: the schema is ``false`` (nothing validates) or has an unresolvable ``$ref``.
    """
    root = schema if isinstance(schema, Mapping) else {}
    return _Builder(root).build(schema, seed & 0x7FFFFFFF, 0)


def _mix(seed: int, salt: str | int) -> int:
    """A child seed: stable across runs and processes (crc32, not the salted ``hash()``)."""
    return zlib.crc32(f"{seed}:{salt}".encode()) & 0x7FFFFFFF


class _Builder:
    __slots__ = ("_root",)

    def __init__(self, root: Mapping[str, Any]) -> None:
        self._root = root

    def build(self, schema: Mapping[str, Any] | bool, seed: int, depth: int) -> Any:
        if depth > _MAX_NESTING:
            raise ValueError(_TOO_DEEP)
        if schema is True:
            return WORDS[seed % len(WORDS)]
        if schema is False:
            raise ValueError("the schema is 'false': no value validates against it")
        if not isinstance(schema, Mapping):
            raise ValueError(f"a schema must be an object or a boolean, got {_json_type(schema)}")
        schema = self._flatten(schema, depth)
        if "const" in schema:
            return schema["const"]
        enum = schema.get("enum")
        if isinstance(enum, list) and enum:
            return enum[seed % len(enum)]
        for key in ("oneOf", "anyOf"):
            branches = schema.get(key)
            if isinstance(branches, list) and branches:
                return self._branch(schema, key, branches, seed, depth)
        kind = _pick_type(schema)
        if kind == "object":
            return self._object(schema, seed, depth)
        if kind == "array":
            return self._array(schema, seed, depth)
        if kind == "string":
            return string_for(schema, seed)
        if kind in ("integer", "number"):
            try:
                return number_for(schema, seed, integer=kind == "integer")
            except OverflowError:  # bounds near the float limit, or a multipleOf near zero
                raise ValueError("the numeric bounds or multipleOf are beyond what the mock computes with") from None
        if kind == "boolean":
            return seed % 2 == 0
        return None

    # --- composition ----------------------------------------------------------------------

    def _flatten(self, schema: Mapping[str, Any], depth: int) -> Mapping[str, Any]:
        """Resolve ``$ref`` and fold ``allOf`` into one schema, so the rest sees plain keywords."""
        if depth > _MAX_NESTING:  # an allOf that refers back to itself
            raise ValueError(_TOO_DEEP)
        for _ in range(_MAX_DEPTH):  # a chain of refs to refs ends; a ref cycle must not hang
            ref = schema.get("$ref")
            if not isinstance(ref, str):
                break
            siblings = {k: v for k, v in schema.items() if k != "$ref"}
            schema = _merge(self._resolve(ref), siblings)
        parts = schema.get("allOf")
        if isinstance(parts, list) and parts:
            merged: Mapping[str, Any] = {k: v for k, v in schema.items() if k != "allOf"}
            for part in parts:
                if isinstance(part, Mapping):
                    merged = _merge(merged, self._flatten(part, depth + 1))
            schema = merged
        return schema

    def _resolve(self, ref: str) -> Mapping[str, Any]:
        if not ref.startswith("#"):
            raise ValueError(f"only local $ref values ('#/...') are supported, got {ref!r}")
        node: Any = self._root
        for raw in ref[1:].split("/")[1:] if ref != "#" else []:
            token = raw.replace("~1", "/").replace("~0", "~")
            if isinstance(node, Mapping) and token in node:
                node = node[token]
            elif isinstance(node, list) and token.isdigit() and int(token) < len(node):
                node = node[int(token)]
            else:
                raise ValueError(f"$ref {ref!r} does not resolve")
        if node is True:
            return {}
        if not isinstance(node, Mapping):
            raise ValueError(f"$ref {ref!r} does not point at a schema")
        return node

    def _branch(self, schema: Mapping[str, Any], key: str, branches: list[Any], seed: int, depth: int) -> Any:
        """First sensible branch: not ``null`` if anything else is allowed, and for ``oneOf``
        one whose value no other branch obviously accepts (the value must match exactly one)."""
        rest = {k: v for k, v in schema.items() if k not in ("oneOf", "anyOf")}
        order = sorted(range(len(branches)), key=lambda i: _is_null(branches[i]))
        first: Any = None
        for n, i in enumerate(order):
            branch = branches[i]
            if not isinstance(branch, (Mapping, bool)) or branch is False:
                continue
            merged = _merge(rest, self._flatten(branch, depth)) if isinstance(branch, Mapping) else rest
            value = self.build(merged, seed, depth + 1)
            if key == "anyOf":
                return value
            if n == 0:
                first = value
            others = [b for j, b in enumerate(branches) if j != i]
            if not any(self._accepts(b, value, depth) for b in others):
                return value
        return first

    def _accepts(self, schema: Any, value: Any, depth: int) -> bool:
        """A cheap, conservative "does this schema accept the value" (unknown keywords: yes)."""
        if isinstance(schema, bool):
            return schema
        if not isinstance(schema, Mapping) or depth > _MAX_DEPTH:
            return True
        schema = self._flatten(schema, depth)
        if "const" in schema and schema["const"] != value:
            return False
        if isinstance(schema.get("enum"), list) and value not in schema["enum"]:
            return False
        types = _types(schema)
        if types and not any(_is_type(value, t) for t in types):
            return False
        if isinstance(value, dict):
            required = schema.get("required")
            if isinstance(required, list) and any(r not in value for r in required):
                return False
            props = schema.get("properties")
            if isinstance(props, Mapping):
                for name, sub in props.items():
                    if name in value and not self._accepts(sub, value[name], depth + 1):
                        return False
                if schema.get("additionalProperties") is False and any(k not in props for k in value):
                    return False
        return True

    # --- containers -----------------------------------------------------------------------

    def _object(self, schema: Mapping[str, Any], seed: int, depth: int) -> dict[str, Any]:
        props = schema.get("properties")
        props = props if isinstance(props, Mapping) else {}
        listed = schema.get("required")
        required = [r for r in listed if isinstance(r, str)] if isinstance(listed, list) else []
        extra = schema.get("additionalProperties", True)
        # past the depth limit only what is required is built, so recursive schemas terminate
        names = list(dict.fromkeys(required + ([] if depth >= _MAX_DEPTH else list(props))))
        max_props = schema.get("maxProperties")
        if isinstance(max_props, int) and len(names) > max_props:
            names = list(dict.fromkeys(required + names))[: max(max_props, len(required))]
        out: dict[str, Any] = {}
        for name in names:
            sub = props.get(name, extra if isinstance(extra, (Mapping, bool)) else True)
            out[name] = self.build(True if sub is False else sub, _mix(seed, name), depth + 1)
        min_props = count_keyword(schema, "minProperties")
        if min_props is not None and min_props > _MAX_COUNT:
            raise ValueError(f"minProperties {min_props} is more than the mock builds (at most {_MAX_COUNT})")
        if min_props is not None and extra is not False:
            n = 0
            while len(out) < min_props:
                n += 1
                key = f"extra_{n}"
                if key not in out:
                    out[key] = self.build(extra if isinstance(extra, Mapping) else True, _mix(seed, key), depth + 1)
        return out

    def _array(self, schema: Mapping[str, Any], seed: int, depth: int) -> list[Any]:
        prefix = schema.get("prefixItems")
        items = schema.get("items", True)
        if isinstance(items, list):  # draft-07 tuple form
            prefix, items = items, schema.get("additionalItems", True)
        prefix = prefix if isinstance(prefix, list) else []
        hi = count_keyword(schema, "maxItems")
        count = max(count_keyword(schema, "minItems") or 0, len(prefix), 0 if depth >= _MAX_DEPTH else 1)
        if count > _MAX_COUNT:
            raise ValueError(f"minItems {count} is more than the mock builds (at most {_MAX_COUNT})")
        if items is False:
            count = min(count, len(prefix))
        if hi is not None:
            count = min(count, hi)
        out: list[Any] = []
        contains = schema.get("contains")
        if isinstance(contains, (Mapping, bool)) and contains is not False and not prefix and count > 0:
            out.append(self.build(contains, _mix(seed, "contains"), depth + 1))
        unique = schema.get("uniqueItems") is True
        i = 0
        while len(out) < count and i < count + 32:  # uniqueItems may need a few extra draws
            sub = prefix[len(out)] if len(out) < len(prefix) else items
            value = self.build(sub if isinstance(sub, (Mapping, bool)) else True, _mix(seed, i), depth + 1)
            i += 1
            if unique and value in out:
                continue
            out.append(value)
        return out


# --- small pieces -------------------------------------------------------------------------


def _types(schema: Mapping[str, Any]) -> list[str]:
    kind = schema.get("type")
    if isinstance(kind, str):
        kinds = [kind.lower()]
    elif isinstance(kind, list):
        kinds = [k.lower() for k in kind if isinstance(k, str)]
    else:
        return []
    if schema.get("nullable") is True and "null" not in kinds:
        kinds.append("null")
    return kinds


def _pick_type(schema: Mapping[str, Any]) -> str:
    kinds = _types(schema)
    if kinds:
        non_null = [k for k in kinds if k != "null"]
        return min(non_null, key=lambda k: _TYPE_ORDER.index(k) if k in _TYPE_ORDER else 99) if non_null else "null"
    # no "type": infer it from the keywords present, as a model reading the schema would
    if any(k in schema for k in ("properties", "required", "additionalProperties", "minProperties")):
        return "object"
    if any(k in schema for k in ("items", "prefixItems", "minItems", "maxItems", "contains")):
        return "array"
    if any(k in schema for k in ("minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum", "multipleOf")):
        return "number"
    return "string"


def _is_type(value: Any, kind: str) -> bool:
    if kind == "null":
        return value is None
    if kind == "boolean":
        return isinstance(value, bool)
    if kind == "integer":
        return (isinstance(value, int) and not isinstance(value, bool)) or (
            isinstance(value, float) and value.is_integer()
        )
    if kind == "number":
        return isinstance(value, (int, float)) and not isinstance(value, bool)
    if kind == "string":
        return isinstance(value, str)
    if kind == "array":
        return isinstance(value, list)
    if kind == "object":
        return isinstance(value, dict)
    return True


def _json_type(value: Any) -> str:
    """The JSON name of a decoded value's type, for messages (a client never sees 'NoneType')."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, (int, float)):
        return "a number"
    if isinstance(value, str):
        return "a string"
    return "an array" if isinstance(value, list) else "an object"


def _is_null(branch: Any) -> bool:
    return isinstance(branch, Mapping) and (branch.get("type") == "null" or branch.get("const", 0) is None)


def _merge(base: Mapping[str, Any], extra: Mapping[str, Any]) -> dict[str, Any]:
    """Shallow merge for ``allOf``/``$ref`` siblings; properties and required are combined."""
    out = dict(base)
    for key, value in extra.items():
        if key == "properties" and isinstance(out.get(key), Mapping) and isinstance(value, Mapping):
            out[key] = {**out[key], **value}
        elif key == "required" and isinstance(out.get(key), list) and isinstance(value, list):
            out[key] = list(dict.fromkeys(out[key] + value))
        else:
            out[key] = value
    return out
