"""Where a configuration comes from: a YAML file (its relative paths anchored at its directory), or
the embedded default; and the checks that need more than its text (``runtime/wiring.py``)."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

from breakwater.core.config import Config, ConfigError, Problem, parse_config
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
    try:
        text = Path(path).read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(path, [Problem("", f"cannot read the file: {exc.strerror}")]) from None
    return anchor_paths(parse_config(text, path), Path(path).absolute().parent)


def checked(config: Config, environ: Mapping[str, str]) -> Config:
    """``config``, once its credentials resolve, its hosts are known and its mock faults parse.

    Raises:
        ConfigError: every problem found.
    """
    problems = check_environment(config, environ)
    if problems:
        raise ConfigError("<config>", problems)
    return config
