"""The eval case cache in files: one JSON file per answer, named by its key (``runner.cache_key``).

A run's answers outlive it here, so an unchanged case on the same target is not asked again
(``breakwater eval --no-cache`` opts out). An entry is written to a temporary file and renamed,
so a run stopped half way leaves no broken entry; an unreadable one is a miss.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import orjson


def default_cache_dir(environ: Mapping[str, str]) -> Path:
    """``$BREAKWATER_EVAL_CACHE``, else ``$XDG_CACHE_HOME/breakwater/evals``, else ``~/.cache/breakwater/evals``."""
    chosen = environ.get("BREAKWATER_EVAL_CACHE")
    if chosen:
        return Path(chosen)
    base = environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "breakwater" / "evals"


class FileCaseCache:
    """``runner.CaseCache`` in a directory (created when the first entry is written)."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self.hits = 0

    def _path(self, key: str) -> Path:
        return self.directory / key[:2] / f"{key}.json"

    def get(self, key: str) -> Mapping[str, Any] | None:
        try:
            entry = orjson.loads(self._path(key).read_bytes())
        except (OSError, orjson.JSONDecodeError):
            return None
        if not isinstance(entry, dict):
            return None
        self.hits += 1
        return entry

    def put(self, key: str, entry: Mapping[str, Any]) -> None:
        path = self._path(key)
        path.parent.mkdir(parents=True, exist_ok=True)
        handle, temporary = tempfile.mkstemp(dir=path.parent, suffix=".tmp")
        try:
            with os.fdopen(handle, "wb") as out:
                out.write(orjson.dumps(entry))
            os.replace(temporary, path)
        except BaseException:
            Path(temporary).unlink(missing_ok=True)
            raise
