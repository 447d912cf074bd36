"""From YAML text to a ``Config``, or to every problem at once, each with its key path.

Field problems come from validating the model; ``cross_check`` adds the ones that span sections
(references resolve, wildcards are well formed), so ``check-config`` is a to-do list and not a
game of whack-a-mole.
"""

from __future__ import annotations

from typing import Any

import yaml
from pydantic import ValidationError

from breakwater.core.config.model import Config
from breakwater.core.config.problems import ConfigError, Problem
from breakwater.core.config.references import cross_check

__all__ = ["ConfigError", "Problem", "build_config", "cross_check", "parse_config"]


def parse_config(text: str, source: str = "<config>") -> Config:
    """Parse and validate YAML text into a ``Config``.

    Raises:
        ConfigError: with every problem found, each with its key path.
    """
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        problem = getattr(exc, "problem", None) or str(exc)
        raise ConfigError(source, [Problem(where, f"not valid YAML: {problem}")]) from None
    return build_config(data if data is not None else {}, source)


def build_config(data: Any, source: str = "<config>") -> Config:
    """Validate already-parsed data (a dict) into a ``Config``."""
    if not isinstance(data, dict):
        raise ConfigError(source, [Problem("", "expected a mapping at the top level")])
    problems: list[Problem] = []
    config: Config | None = None
    try:
        config = Config.model_validate(data)
    except ValidationError as exc:
        problems = [_problem(e) for e in exc.errors()]
    problems.extend(p for p in cross_check(data) if p not in problems)
    if problems or config is None:
        raise ConfigError(source, problems)
    return config


#: mappings keyed by integers (every other integer in a key path is a list index)
_NUMBERED = frozenset({"versions"})


def _problem(error: Any) -> Problem:
    parts: list[str] = []
    previous: Any = None
    for item in error["loc"]:
        if item == "[key]":  # pydantic's marker: the problem is the mapping's key, not its value
            continue
        if isinstance(item, int) and previous in _NUMBERED:
            parts.append(f".{item}")  # a mapping keyed by numbers, as YAML writes it (versions.3)
        elif isinstance(item, int):
            parts.append(f"[{item}]")
        else:
            parts.append(f".{item}" if parts else str(item))
        previous = item
    msg = error["msg"]
    if "[key]" in error["loc"]:
        msg = f"the key: {msg}"
    if error["type"] == "extra_forbidden":
        msg = "unknown key"
    elif error["type"] == "missing":
        msg = "required key is missing"
    elif msg.startswith("Value error, "):
        msg = msg[len("Value error, ") :]
    return Problem("".join(parts), msg)
