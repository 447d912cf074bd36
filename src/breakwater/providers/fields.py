"""Typed readers for fields of a decoded JSON body, raising ``InvalidRequest`` with the path.

Ingress translators read client bodies with these instead of trusting ``dict[str, Any]``, so a
wrong type becomes a 400 that names the field ("messages[2].content: expected a string or a
list") and never an ``AttributeError`` deep in a translator, which would be a 500.
"""

from __future__ import annotations

from typing import Any

from breakwater.core.errors import InvalidRequest
from breakwater.core.types import PromptReference, Tool, ToolChoice

JSON = dict[str, Any]


def bad(path: str, expected: str) -> InvalidRequest:
    return InvalidRequest(f"'{path}': expected {expected}", param=path)


def obj(value: Any, path: str) -> JSON:
    if not isinstance(value, dict):
        raise bad(path, "an object")
    return value


def req_str(body: JSON, key: str, path: str = "") -> str:
    value = body.get(key)
    if not isinstance(value, str):
        if value is None:
            raise InvalidRequest(f"'{path + key}' is required", param=path + key)
        raise bad(path + key, "a string")
    return value


# Value readers: check one already-fetched value (``None`` passes through as "absent").


def as_str(value: Any, path: str) -> str | None:
    if value is not None and not isinstance(value, str):
        raise bad(path, "a string")
    return value


def as_bool(value: Any, path: str) -> bool | None:
    if value is not None and not isinstance(value, bool):
        raise bad(path, "a boolean")
    return value


def as_int(value: Any, path: str, minimum: int | None = None) -> int | None:
    if value is None:
        return None
    if not isinstance(value, int) or isinstance(value, bool):
        raise bad(path, "an integer")
    if minimum is not None and value < minimum:
        raise bad(path, f"an integer >= {minimum}")
    return value


def as_num(value: Any, path: str, lo: float | None = None, hi: float | None = None) -> float | None:
    if value is None:
        return None
    if not isinstance(value, (int, float)) or isinstance(value, bool):
        raise bad(path, "a number")
    if (lo is not None and value < lo) or (hi is not None and value > hi):
        raise bad(path, f"a number between {lo} and {hi}")
    return float(value)


# Field readers: fetch ``key`` from ``body`` and check it; ``path`` prefixes the key in messages.


def opt_str(body: JSON, key: str, path: str = "") -> str | None:
    return as_str(body.get(key), path + key)


def opt_bool(body: JSON, key: str, path: str = "") -> bool | None:
    return as_bool(body.get(key), path + key)


def opt_int(body: JSON, key: str, path: str = "", minimum: int | None = None) -> int | None:
    return as_int(body.get(key), path + key, minimum)


def opt_num(body: JSON, key: str, path: str = "", lo: float | None = None, hi: float | None = None) -> float | None:
    return as_num(body.get(key), path + key, lo, hi)


def opt_list(body: JSON, key: str, path: str = "") -> list[Any]:
    value = body.get(key)
    if value is None:
        return []
    if not isinstance(value, list):
        raise bad(path + key, "an array")
    return value


def str_list(value: Any, path: str) -> list[str]:
    """A string or a list of strings (OpenAI's ``stop``, embeddings ``input``)."""
    if value is None:
        return []
    if isinstance(value, str):
        return [value]
    if isinstance(value, list) and all(isinstance(v, str) for v in value):
        return value
    raise bad(path, "a string or an array of strings")


def cache_control(block: JSON, path: str = "") -> JSON | None:
    """A block's Anthropic ``cache_control`` breakpoint, kept as sent once it is an object with a
    string ``type`` (the upstream checks the rest); ``path`` prefixes the key in messages."""
    value = block.get("cache_control")
    if value is None:
        return None
    cc = obj(value, path + "cache_control")
    req_str(cc, "type", path + "cache_control.")
    return cc


def check_tool_choice(choice: ToolChoice | None, tools: list[Tool]) -> None:
    """A tool choice that forces a call needs tools to call, and a named one must be among them.

    OpenAI and Anthropic both refuse such a request with a 400; ``auto`` and ``none`` without
    tools change nothing and pass.
    """
    if choice is None or choice.mode in ("auto", "none"):
        return
    if not tools:
        raise InvalidRequest(
            f"'tool_choice' ({choice.mode}) is only allowed when 'tools' are specified", param="tool_choice"
        )
    if choice.mode == "named" and all(t.name != choice.name for t in tools):
        raise InvalidRequest(f"'tool_choice' names {choice.name!r}, which is not among the tools", param="tool_choice")


def prompt_reference(value: Any) -> PromptReference:
    """Breakwater's ``prompt`` body field, on either wire: ``{"id", "version", "variables"}``.

    The shape of OpenAI's Responses ``prompt`` object: ``version`` may be a string (OpenAI's
    type) or an integer; ``id`` may be left out on a route that pins its prompt.
    """
    ref = obj(value, "prompt")
    unknown = sorted(k for k in ref if k not in ("id", "version", "variables"))
    if unknown:
        raise InvalidRequest(
            f"'prompt.{unknown[0]}': unknown field (expected id, version, variables)", param=f"prompt.{unknown[0]}"
        )
    name = as_str(ref.get("id"), "prompt.id")
    raw_version = ref.get("version")
    version: int | None = None
    if isinstance(raw_version, str) and raw_version.isascii() and raw_version.isdigit() and len(raw_version) < 10:
        version = int(raw_version)
    elif raw_version is not None:
        version = as_int(raw_version, "prompt.version", 1)
    if version is not None and version < 1:
        raise bad("prompt.version", "a version number >= 1")
    variables = ref.get("variables")
    return PromptReference(name, version, {} if variables is None else obj(variables, "prompt.variables"))
