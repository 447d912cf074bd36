"""Resolve credential references (``env:NAME``, ``file:/path``) to secret values.

This is the only place a provider key is read. The value goes straight into the adapter's
``Target`` and never back into config objects, logs or admin responses.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path


class CredentialError(Exception):
    """A reference points at nothing (unset variable, unreadable file)."""


def resolve(reference: str | None, environ: Mapping[str, str]) -> str | None:
    """The secret a reference names, or None for no reference.

    Args:
        reference: ``env:NAME`` or ``file:/path`` (already validated by the config model).
        environ: the environment to read (``os.environ`` in production, a dict in tests).

    Raises:
        CredentialError: the variable is unset/empty or the file cannot be read. The message
            names the reference, never a value.
    """
    if reference is None:
        return None
    kind, _, where = reference.partition(":")
    if kind == "env":
        value = environ.get(where, "")
        if not value:
            raise CredentialError(f"environment variable {where} is not set")
        return value
    try:
        value = Path(where).read_text(encoding="utf-8").strip()
    except OSError as exc:
        raise CredentialError(f"cannot read credential file {where}: {exc.strerror}") from None
    if not value:
        raise CredentialError(f"credential file {where} is empty")
    return value


def is_reference(value: str) -> bool:
    """Whether a value is a credential reference (``env:NAME`` or ``file:/path``) rather than inline."""
    return value.startswith(("env:", "file:"))


def resolve_optional(value: str, environ: Mapping[str, str]) -> str:
    """A value that may be given inline or by reference: the secret a reference names, else the
    value as it is.

    Raises:
        CredentialError: ``value`` is a reference that names nothing (see ``resolve``).
    """
    return (resolve(value, environ) or "") if is_reference(value) else value
