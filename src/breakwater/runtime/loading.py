"""Where a configuration comes from: a YAML file (its relative paths anchored at its directory;
one that ``extends`` another laid over it, ``core/config/overlay.py``), or the embedded default;
and the checks that need more than its text (``runtime/wiring.py``)."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import yaml

from breakwater.core.config import Config, ConfigError, Problem, parse_config
from breakwater.core.config.overlay import EXTENDS, merge
from breakwater.core.config.paths import anchor_paths
from breakwater.core.defaults import default_config
from breakwater.runtime.wiring import check_environment


def load_config(path: str | None, environ: Mapping[str, str]) -> Config:
    """The config at ``path``, or the embedded default when ``path`` is None.

    Relative paths in the file (SQLite stores, the spool, ``file:`` references) are made relative
    to the file's directory (``core/config/paths.py``); the embedded default's stay relative to
    the current directory.
    """
    if path is None:
        return default_config(environ)
    return anchor_paths(parse_config(read_config_text(path), path), Path(path).absolute().parent)


#: how many files deep ``extends`` may go (a cycle is caught before this)
_MAX_DEPTH = 8


def read_config_text(path: str) -> str:
    """The YAML text of the config at ``path``: the file as it is, or, when it ``extends`` another
    file, the two merged (at any depth) and written out as one YAML document, with no ``extends``.

    Relative paths in every file of the chain are relative to ``path``'s directory (the file
    given), as the merged text is one config.

    Raises:
        ConfigError: a file that cannot be read, YAML that is not valid, ``extends`` that is not a
            file name, a cycle.
    """
    text = _read(Path(path))
    if EXTENDS not in text:
        return text  # the common case: the file as written (comments, line numbers in errors)
    data = _load(Path(path), text)
    if EXTENDS not in data:
        return text
    return yaml.safe_dump(_flatten(Path(path), data, [Path(path).absolute()]), sort_keys=False)


def _flatten(path: Path, data: dict[str, Any], chain: list[Path]) -> dict[str, Any]:
    base_name = data.pop(EXTENDS, None)
    if base_name is None:
        return data
    if not isinstance(base_name, str) or not base_name:
        raise ConfigError(str(path), [Problem(EXTENDS, "expected the path of the config this one extends")])
    base = (path.absolute().parent / base_name).absolute()
    if base in chain or len(chain) >= _MAX_DEPTH:
        cycle = " -> ".join(p.name for p in [*chain, base])
        raise ConfigError(str(path), [Problem(EXTENDS, f"configs extend each other in a cycle: {cycle}")])
    base_data = _flatten(base, _load(base, _read(base, str(path))), [*chain, base])
    return merge(base_data, data)


def _read(path: Path, extended_by: str | None = None) -> str:
    try:
        return path.read_text(encoding="utf-8")
    except OSError as exc:
        if extended_by is not None:
            raise ConfigError(extended_by, [Problem(EXTENDS, f"cannot read {path}: {exc.strerror}")]) from None
        raise ConfigError(str(path), [Problem("", f"cannot read the file: {exc.strerror}")]) from None


def _load(path: Path, text: str) -> dict[str, Any]:
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise ConfigError(str(path), [Problem("", f"not valid YAML: {exc}")]) from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ConfigError(str(path), [Problem("", "expected a mapping at the top level")])
    return data


def checked(config: Config, environ: Mapping[str, str]) -> Config:
    """``config``, once its credentials resolve, its hosts are known and its mock faults parse.

    Raises:
        ConfigError: every problem found.
    """
    problems = check_environment(config, environ)
    if problems:
        raise ConfigError("<config>", problems)
    return config
