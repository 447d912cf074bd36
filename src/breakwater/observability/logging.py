"""Structured JSON logs on stderr, one object per line, with the request id when there is one.

``logging_config`` is the whole set-up as a ``logging.config.dictConfig`` document. The CLI
gives it to uvicorn as its ``log_config``, which applies it in the CLI process and again in
each worker process it starts (a worker starts fresh, with no logging set up), so the gateway's
own loggers, uvicorn's and any library's warnings come out as the same JSON lines in every
process, at the level chosen on the command line.

Every line passes through its formatter's ``Redactor`` before it is written: the secret values
the app was configured with (provider keys, the admin key, a database URL), plus anything shaped
like an API key or a bearer token, become ``[REDACTED]``, whatever logged them. Each
``JsonFormatter`` owns its ``Redactor``; the app hands the secrets it resolved to
``hide_secrets``, which adds them to every ``JsonFormatter`` this process's loggers write
through. Logging is configured before the app is built (the CLI, and uvicorn in each worker
before it calls the app factory), so those formatters exist by then; a process that never
configured logging (a test) has none, and nothing to add them to.
"""

from __future__ import annotations

import logging
import logging.config
import time
from collections.abc import Iterable
from typing import Any

import orjson

from breakwater.observability.redact import redact_secrets

REDACTED = "[REDACTED]"


class Redactor:
    """Replaces known secret values and credential-shaped strings in text."""

    def __init__(self) -> None:
        self._values: set[str] = set()

    def add(self, values: Iterable[str | None]) -> None:
        """Remember secret values to hide (values shorter than 6 characters are ignored)."""
        # a new set, not updated in place: a line being formatted in another thread iterates the old one
        self._values = self._values | {v for v in values if v and len(v) >= 6}

    def __call__(self, text: str) -> str:
        for value in self._values:
            if value in text:
                text = text.replace(value, REDACTED)
        return redact_secrets(text)


_STANDARD = frozenset(logging.LogRecord("", 0, "", 0, "", (), None).__dict__) | {"message", "asctime"}


class JsonFormatter(logging.Formatter):
    """Formats a record as one JSON line; ``extra=`` fields become top-level keys.

    Takes ``logging.Formatter``'s arguments (``dictConfig`` builds it with none); ``redactor``,
    its own, hides the secrets ``hide_secrets`` gave it in every line it formats.
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.redactor = Redactor()

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
        return self.redactor(orjson.dumps(out, default=str).decode())


def json_formatters() -> list[JsonFormatter]:
    """The ``JsonFormatter`` of every handler this process's loggers write through, each once.

    The root logger and every named one (``breakwater``, ``uvicorn``, ... as ``logging_config``
    sets them up); none where logging was never configured.
    """
    loggers: list[logging.Logger] = [logging.getLogger()]
    loggers += [lg for lg in list(logging.Logger.manager.loggerDict.values()) if isinstance(lg, logging.Logger)]
    found: dict[int, JsonFormatter] = {}
    for logger in loggers:
        for handler in logger.handlers:
            if isinstance(handler.formatter, JsonFormatter):
                found.setdefault(id(handler.formatter), handler.formatter)
    return list(found.values())


def hide_secrets(values: Iterable[str | None]) -> None:
    """Hide ``values`` in every line logged from now on: they join the ``Redactor`` of each
    ``JsonFormatter`` in ``json_formatters()`` (values shorter than 6 characters are ignored)."""
    secrets = list(values)
    for formatter in json_formatters():
        formatter.redactor.add(secrets)


def logging_config(level: str = "info") -> dict[str, Any]:
    """The ``dictConfig`` document: JSON lines on stderr, the ``breakwater`` loggers at ``level``.

    uvicorn's loggers log at WARNING or above (its INFO lines say "started", "shutting down"),
    its access log is off, and every other logger (asyncio, aiohttp, ...) reaches the same
    handler at WARNING or above. Only names and strings: uvicorn pickles it into each worker.

    Args:
        level: ``debug``, ``info``, ``warning`` or ``error``.
    """
    ours = level.upper()
    theirs = ours if logging.getLevelName(ours) > logging.WARNING else "WARNING"
    handler = ["stderr"]
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "formatters": {"json": {"()": f"{__name__}.JsonFormatter"}},
        "handlers": {"stderr": {"class": "logging.StreamHandler", "formatter": "json", "stream": "ext://sys.stderr"}},
        "loggers": {
            "breakwater": {"handlers": handler, "level": ours, "propagate": False},
            "uvicorn": {"handlers": handler, "level": theirs, "propagate": False},
            "uvicorn.error": {"level": theirs},
            "uvicorn.access": {"handlers": [], "level": theirs, "propagate": False},
        },
        "root": {"handlers": handler, "level": theirs},
    }


def configure_logging(level: str = "info") -> None:
    """Apply ``logging_config(level)`` to this process (called by the CLI, never on import)."""
    logging.config.dictConfig(logging_config(level))
