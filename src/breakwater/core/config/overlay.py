"""Per-environment configs: a file that ``extends`` another is that file with its own keys laid over.

``prod.yaml`` holding ``extends: base.yaml`` and a few keys is ``base.yaml`` with those keys
merged in: mappings are merged key by key, at every depth; anything else (a list, a number, a
string) replaces the base's value; ``null`` removes the key. Pure: the files are read by
``runtime/loading.py``.
"""

from __future__ import annotations

from typing import Any

__all__ = ["EXTENDS", "merge"]

#: the top-level key naming the file a config extends (relative to that config's directory)
EXTENDS = "extends"


def merge(base: dict[str, Any], overlay: dict[str, Any]) -> dict[str, Any]:
    """``base`` with ``overlay`` laid over it (neither is changed)."""
    out = dict(base)
    for key, value in overlay.items():
        if value is None:
            out.pop(key, None)
        elif isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = merge(out[key], value)
        else:
            out[key] = value
    return out
