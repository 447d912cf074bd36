"""Log lines hide the secrets the app resolved: each ``JsonFormatter`` owns its ``Redactor``, and
``hide_secrets`` reaches the formatters of the handlers logging was configured with.

The secrets here are not shaped like credentials (no ``sk-``, no ``Bearer``), so only the values
the app handed over can hide them, not the pattern matching of ``observability/redact.py``.
"""

from __future__ import annotations

import io
import json
import logging
import subprocess
import sys
from collections.abc import Iterator

import pytest

from breakwater.observability.logging import JsonFormatter, hide_secrets, json_formatters

SECRET = "correct-horse-battery-staple"


def _record(msg: str, *args: object) -> logging.LogRecord:
    return logging.LogRecord("breakwater.test", logging.WARNING, __file__, 1, msg, args, None)


@pytest.fixture
def configured() -> Iterator[tuple[JsonFormatter, io.StringIO]]:
    """A ``JsonFormatter`` on a handler of the ``breakwater`` logger, writing to a StringIO."""
    out, formatter = io.StringIO(), JsonFormatter()
    handler = logging.StreamHandler(out)
    handler.setFormatter(formatter)
    logger = logging.getLogger("breakwater")
    logger.addHandler(handler)
    try:
        yield formatter, out
    finally:
        logger.removeHandler(handler)


def test_a_secret_added_to_one_formatter_is_hidden_by_it_only() -> None:
    one, other = JsonFormatter(), JsonFormatter()
    one.redactor.add([SECRET, "short", None])
    assert json.loads(one.format(_record("key %s", SECRET)))["msg"] == "key [REDACTED]"
    assert json.loads(other.format(_record("key %s", SECRET)))["msg"] == f"key {SECRET}"
    # shorter than 6 characters: ignored (it would blank out ordinary words)
    assert json.loads(one.format(_record("a short word")))["msg"] == "a short word"


def test_hide_secrets_reaches_the_configured_formatters_and_only_those(
    configured: tuple[JsonFormatter, io.StringIO],
) -> None:
    formatter, out = configured
    unattached = JsonFormatter()
    assert formatter in json_formatters() and unattached not in json_formatters()
    hide_secrets(iter([SECRET]))  # any iterable, a generator too
    logging.getLogger("breakwater.test").warning("the key is %s", SECRET)
    line = json.loads(out.getvalue())
    assert line["msg"] == "the key is [REDACTED]" and SECRET not in out.getvalue()
    assert SECRET in unattached.format(_record("the key is %s", SECRET))


def test_the_app_hides_the_secrets_its_config_references(configured: tuple[JsonFormatter, io.StringIO]) -> None:
    """Building the app (its ``Runtime``) hands the resolved provider key and admin key over."""
    from breakwater.core.config import build_config
    from breakwater.server.app import create_app

    _, out = configured
    create_app(build_config(_CONFIG), environ={"ADMIN": SECRET, "KEY": "provider-key-0123456789"})
    logging.getLogger("breakwater.test").warning("admin %s, provider %s", SECRET, "provider-key-0123456789")
    assert json.loads(out.getvalue().splitlines()[-1])["msg"] == "admin [REDACTED], provider [REDACTED]"


_CONFIG = {
    "server": {"admin_key": "env:ADMIN"},
    "access": {"enabled": False},
    "providers": {"p": {"type": "openai", "host": "mock", "base_url": "http://127.0.0.1:9/v1", "api_key": "env:KEY"}},
    "deployments": {"d": {"provider": "p", "model": "m"}},
    "routes": {"r": {"deployments": ["d"]}},
}

#: what a uvicorn worker does (``uvicorn._subprocess.subprocess_started``): logging set up from
#: ``logging_config``, then the app built; in a process of its own, so this one's logging is untouched
_WORKER = f"""
import logging, logging.config, sys
from breakwater.core.config import build_config
from breakwater.observability.logging import logging_config
from breakwater.server.app import create_app

logging.config.dictConfig(logging_config("info"))
create_app(build_config({_CONFIG!r}), environ={{"ADMIN": {SECRET!r}, "KEY": "provider-key-0123456789"}})
for name in ("breakwater.test", "uvicorn.error", "aiohttp.client"):
    logging.getLogger(name).warning("admin %s, provider %s", {SECRET!r}, "provider-key-0123456789")
"""


def test_logging_configured_then_the_app_built_hides_secrets_from_every_logger() -> None:
    proc = subprocess.run([sys.executable, "-c", _WORKER], capture_output=True, text=True, timeout=60, check=True)
    lines = [json.loads(line) for line in proc.stderr.splitlines()]
    assert SECRET not in proc.stderr and "provider-key-0123456789" not in proc.stderr
    assert [(r["logger"], r["msg"]) for r in lines if r["level"] == "warning" and "admin" in r["msg"]] == [
        (name, "admin [REDACTED], provider [REDACTED]")
        for name in ("breakwater.test", "uvicorn.error", "aiohttp.client")
    ]
