"""Typed readers for fields of a decoded JSON body, raising ``InvalidRequest`` with the path.

Ingress translators read client bodies with these instead of trusting ``dict[str, Any]``, so a
wrong type becomes a 400 that names the field ("messages[2].content: expected a string or a
list") and never an ``AttributeError`` deep in a translator, which would be a 500.
"""

from __future__ import annotations

from typing import Any

from breakwater.core.errors import InvalidRequest

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


def opt_str(body: JSON, key: str, path: str = "") -> str | None:
    value = body.get(key)
    if value is not None and not isinstance(value, str):
        raise bad(path + key, "a string")
    return value


def opt_bool(body: JSON, key: str, path: str = "") -> bool | None:
    value = body.get(key)
    if value is not None and not isinstance(value, bool):
        raise bad(path + key, "a boolean")
    return value


def opt_int(body: JSON, key: str, path: str = "", minimum: int | None = None) -> int | None:
    value = body.get(key)
    if value is None:
        return None
    if not isinstance(value, int) or isinstance(value, bool):
        raise bad(path + key, "an integer")
    if minimum is not None and value < minimum:
        raise bad(path + key, f"an integer >= {minimum}")
    return value


def opt_num(body: JSON, key: str, path: str = "", lo: float | None = None, hi: float | None = None) -> float | None:
    value = body.get(key)
    if value is None:
        return None
    if not isinstance(value, (int, float)) or isinstance(value, bool):
        raise bad(path + key, "a number")
    if (lo is not None and value < lo) or (hi is not None and value > hi):
        raise bad(path + key, f"a number between {lo} and {hi}")
    return float(value)


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
