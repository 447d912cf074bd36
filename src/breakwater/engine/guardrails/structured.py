"""Structured outputs checked: an answer against the JSON schema its request asked for.

One implementation for every reader: the output checks (``output_stage.py``: validate, repair,
refuse), a cascade's ``json_schema`` check (``engine/router/checks.py``) and the evals'
``is-valid-openai-tools-call`` assertion (``engine/evals/asserts.py``). Each function returns
what is wrong, in a sentence, or ``None``; the sentence is fit to show the model when it is asked
again (a repair), and names no credential.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import orjson

from breakwater.core.types import ChatRequest, ChatResponse, ResponseFormat

#: a validation message is cut to this many characters (it may quote the answer)
_DETAIL_CHARS = 300


def schema_error(schema: Mapping[str, Any], value: Any) -> str | None:
    """Why ``value`` does not satisfy ``schema`` (the most relevant error), or ``None``."""
    import jsonschema  # only when a schema is checked

    if not isinstance(schema, Mapping):
        return "the schema itself is not a valid JSON schema"
    try:
        validator = jsonschema.validators.validator_for(schema)(schema)
        error = jsonschema.exceptions.best_match(validator.iter_errors(value))
    except jsonschema.SchemaError:
        return "the schema itself is not a valid JSON schema"
    except Exception:  # noqa: BLE001 - a schema from a request may break the validator any way (a type of 3, a bad pattern)
        return "the schema itself is not a valid JSON schema"
    if error is None:
        return None
    where = "/".join(str(p) for p in error.absolute_path)
    detail = f"at '/{where}': {error.message}" if where else error.message
    return detail[:_DETAIL_CHARS]


def format_error(response_format: ResponseFormat | None, text: str) -> str | None:
    """Why ``text`` is not the JSON ``response_format`` asks for (an object for ``json_object``,
    valid against the schema for ``json_schema``), or ``None`` (also when no JSON was asked for)."""
    if response_format is None or response_format.type == "text":
        return None
    try:
        value: Any = orjson.loads(text)
    except orjson.JSONDecodeError:
        return "the answer is not JSON"
    if response_format.schema is None:
        return None if isinstance(value, dict) else "the answer is not a JSON object"
    error = schema_error(response_format.schema, value)
    return None if error is None else f"the answer does not satisfy the JSON schema: {error}"


def tool_call_error(schemas: Mapping[str, Mapping[str, Any]], name: str, arguments: str) -> str | None:
    """Why a call of tool ``name`` with ``arguments`` (JSON text) is not one of the offered tools
    (``schemas``: each tool's parameters schema, by name) called as its schema says, or ``None``."""
    if name not in schemas:
        return f"tool call to {name!r}, which is not offered"
    try:
        value = orjson.loads(arguments or "{}")
    except orjson.JSONDecodeError:
        return f"tool call to {name!r}: arguments are not JSON"
    error = schema_error(schemas[name], value)
    return None if error is None else f"tool call to {name!r}: arguments do not satisfy its parameters schema ({error})"


def wants_structure(request: ChatRequest) -> bool:
    """Did the request ask for JSON (a ``response_format``) or offer tools?"""
    rf = request.response_format
    return bool(request.tools) or (rf is not None and rf.type != "text")


def answer_error(request: ChatRequest, response: ChatResponse) -> str | None:
    """Why an answer is not what its request asked for: each choice's text against the
    ``response_format``, each tool call against the offered tool's parameters (a choice that
    calls tools is not held to the text format); ``None`` when all is well."""
    schemas = {t.name: t.parameters or {"type": "object"} for t in request.tools}
    for choice in response.choices:
        message = choice.message
        if message.tool_calls:
            for call in message.tool_calls:
                error = tool_call_error(schemas, call.name, call.arguments)
                if error is not None:
                    return error
        else:
            error = format_error(request.response_format, message.text())
            if error is not None:
                return error
    return None
