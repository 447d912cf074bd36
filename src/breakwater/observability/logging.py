"""Structured JSON logs on stderr, one object per line, with the request id when there is one.

Every line passes through ``Redactor`` before it is written: the secret values the app was
configured with (provider keys, the admin key, a database URL), plus anything shaped like an
API key or a bearer token, become ``[REDACTED]``, whatever logged them.
"""

from __future__ import annotations

import logging
import sys
import time
from collections.abc import Iterable

import orjson

from breakwater.observability.redact import redact_secrets

REDACTED = "[REDACTED]"


class Redactor:
    """Replaces known secret values and credential-shaped strings in text."""

    def __init__(self) -> None:
        self._values: set[str] = set()

    def add(self, values: Iterable[str | None]) -> None:
        """Remember secret values to hide (values shorter than 6 characters are ignored)."""
        self._values.update(v for v in values if v and len(v) >= 6)

    def __call__(self, text: str) -> str:
        for value in self._values:
            if value in text:
                text = text.replace(value, REDACTED)
        return redact_secrets(text)


#: the process's redactor: the app adds the secrets it resolved (``server/app.py``)
redactor = Redactor()

_STANDARD = frozenset(logging.LogRecord("", 0, "", 0, "", (), None).__dict__) | {"message", "asctime"}


class JsonFormatter(logging.Formatter):
    """Formats a record as one JSON line; ``extra=`` fields become top-level keys."""

    def format(self, record: logging.LogRecord) -> str:
        out: dict[str, object] = {
            "ts": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created)) + f".{int(record.msecs):03d}Z",
            "level": record.levelname.lower(),
            "logger": record.name,
            "msg": record.getMessage(),
        }
        for key, value in record.__dict__.items():
            if key not in _STANDARD and not key.startswith("_"):
                out[key] = value
        if record.exc_info:
            out["exc"] = self.formatException(record.exc_info)
        return redactor(orjson.dumps(out, default=str).decode())


def configure_logging(level: str = "info") -> None:
    """Send the ``breakwater`` loggers to stderr as JSON lines (called by the CLI, never on import)."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter())
    root = logging.getLogger("breakwater")
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    root.propagate = False
